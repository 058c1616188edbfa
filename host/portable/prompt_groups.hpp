// Prompt groups (connected components of the near-duplicate request pairs) and their IDF
// weights as Thrust algorithms over raw arrays: instantiated for thrust::cuda by the CUDA
// backend and for thrust::omp by the CPU tests, which compare it with the CPU stage. The
// union-find is the clustering's lock-free one (components.hpp): every root is the smallest
// request of its component, so group ids (in the order of each group's first request) do not
// depend on the order threads run in.
#pragma once
#include <thrust/binary_search.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/scan.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/transform.h>
#include <thrust/unique.h>

#include <cstdint>

#include "components.hpp"
#include "prompt_pairs.hpp"
#include "ringscan/error.hpp"
#include "ringscan/near_duplicates.hpp"

namespace ringscan::portable {

namespace detail {

struct JoinPair {
  const RequestPair* pairs;
  int64_t* parent;
  uint8_t* paired;
  RINGSCAN_HD void operator()(int64_t i) const {
    paired[pairs[i].first] = 1;  // racing writes all store 1
    paired[pairs[i].second] = 1;
    concurrent_union(parent, pairs[i].first, pairs[i].second);
  }
};

/// 1 for the first (smallest) request of each group.
struct GroupStart {
  const int64_t* root;
  const uint8_t* paired;
  RINGSCAN_HD int64_t operator()(int64_t r) const { return paired[r] && root[r] == r ? 1 : 0; }
};

/// Group of each request, and the key group * A + owner of each paired one (others last).
struct LabelRequest {
  const int64_t* root;
  const uint8_t* paired;
  const int64_t* starts_up_to;
  const int64_t* request_owner;
  int64_t num_accounts;
  int64_t* group_of_request;
  int64_t* key;
  RINGSCAN_HD void operator()(int64_t r) const {
    const int64_t g = paired[r] ? starts_up_to[root[r]] - 1 : -1;
    group_of_request[r] = g;
    key[r] = g >= 0 ? g * num_accounts + request_owner[r] : INT64_MAX;
  }
};

struct GroupStartKey {
  int64_t num_accounts;
  RINGSCAN_HD int64_t operator()(int64_t g) const { return g * num_accounts; }
};

struct KeyAccount {
  int64_t num_accounts;
  RINGSCAN_HD int64_t operator()(int64_t key) const { return key % num_accounts; }
};

struct WeighGroup {
  const int64_t* account_offsets;
  int64_t num_accounts, common_limit;
  float* idf;
  uint8_t* common;
  RINGSCAN_HD void operator()(int64_t g) const {
    const int64_t count = account_offsets[g + 1] - account_offsets[g];
    idf[g] = prompt_group_idf(num_accounts, count);
    common[g] = count > common_limit ? 1 : 0;
  }
};

}  // namespace detail

/// The CPU stage's prompt_groups of R canonical requests owned by request_owner [R] among A
/// accounts, from the verified pairs [P], all in the policy's memory. Memory::Buffer<T>(n)
/// and Memory::to_host(p, n, out) as for build_evidence_graph. Policy memory: about 40 R
/// bytes.
template <class Memory, class Policy>
PromptGroups build_prompt_groups(Policy&& policy, int64_t R, int64_t A, const int64_t* request_owner,
                                 const RequestPair* pairs, int64_t P, int64_t common_limit) {
  using I64 = typename Memory::template Buffer<int64_t>;
  PromptGroups g;
  g.near_duplicate_pairs = P;
  g.group_of_request.assign(R, -1);
  g.account_offsets.assign(1, 0);
  if (R == 0 || P == 0) return g;
  RINGSCAN_EXPECTS(A > 0 && R <= INT64_MAX / A, "prompt groups: too many requests x accounts");
  const thrust::counting_iterator<int64_t> zero(0);
  I64 parent(R), starts_up_to(R), group(R), key(R);
  typename Memory::template Buffer<uint8_t> paired(R);
  thrust::sequence(policy, parent.data(), parent.data() + R);
  thrust::fill(policy, paired.data(), paired.data() + R, uint8_t(0));
  thrust::for_each(policy, zero, zero + P, detail::JoinPair{pairs, parent.data(), paired.data()});
  flatten_forest(policy, parent.data(), R);
  const auto starts = thrust::make_transform_iterator(zero, detail::GroupStart{parent.data(), paired.data()});
  thrust::inclusive_scan(policy, starts, starts + R, starts_up_to.data());
  Memory::to_host(starts_up_to.data() + R - 1, 1, &g.num_groups);
  const int64_t G = g.num_groups;
  thrust::for_each(policy, zero, zero + R,
                   detail::LabelRequest{parent.data(), paired.data(), starts_up_to.data(), request_owner, A,
                                        group.data(), key.data()});
  Memory::to_host(group.data(), R, g.group_of_request.data());
  // Distinct (group, account) keys, ascending: each group's accounts, ascending. By
  // unique_by_key (the spent group array as its values): Thrust's CUDA unique counts in 32
  // bits, its unique_by_key in 64.
  thrust::sort(policy, key.data(), key.data() + R);
  const int64_t distinct =
      int64_t(thrust::unique_by_key(policy, key.data(), key.data() + R, group.data()).first - key.data());
  int64_t last = 0;
  Memory::to_host(key.data() + distinct - 1, 1, &last);
  const int64_t entries = distinct - (last == INT64_MAX ? 1 : 0);
  I64 offsets(G + 1), accounts(entries);
  const auto group_key = thrust::make_transform_iterator(zero, detail::GroupStartKey{A});
  thrust::lower_bound(policy, key.data(), key.data() + entries, group_key, group_key + G + 1, offsets.data());
  thrust::transform(policy, key.data(), key.data() + entries, accounts.data(), detail::KeyAccount{A});
  typename Memory::template Buffer<float> idf(G);
  typename Memory::template Buffer<uint8_t> common(G);
  thrust::for_each(policy, zero, zero + G,
                   detail::WeighGroup{offsets.data(), A, common_limit, idf.data(), common.data()});
  g.account_offsets.resize(G + 1);
  g.group_accounts.resize(entries);
  g.idf.resize(G);
  g.common.resize(G);
  Memory::to_host(offsets.data(), G + 1, g.account_offsets.data());
  Memory::to_host(accounts.data(), entries, g.group_accounts.data());
  Memory::to_host(idf.data(), G, g.idf.data());
  Memory::to_host(common.data(), G, g.common.data());
  return g;
}

}  // namespace ringscan::portable
