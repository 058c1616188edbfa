// The clusters' ring tallies (ring_scoring.hpp) as Thrust algorithms over raw arrays:
// instantiated for thrust::cuda by the CUDA backend and for thrust::omp by the CPU tests, which
// compare them with the CPU stage. Every tally is an integer sum (counts, fixed-point edge
// signals) added atomically, so it does not depend on the order threads add in.
#pragma once
#include <thrust/binary_search.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/iterator/constant_iterator.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>
#include <thrust/sort.h>
#include <thrust/transform.h>
#include <thrust/unique.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "components.hpp"
#include "ring_signals.hpp"
#include "ringscan/error.hpp"

namespace ringscan::portable {

/// What the tallies are computed from, in the policy's memory.
struct TallyInputs {
  int64_t num_accounts = 0, num_clusters = 0, num_groups = 0;
  const int64_t* label = nullptr;             ///< [A] cluster of each account, -1 = none
  const int64_t* account_offsets = nullptr;   ///< [A+1] requests of each account
  const int64_t* group_of_request = nullptr;  ///< [R]
  const uint8_t* common = nullptr;            ///< [G]
  const int64_t* graph_offsets = nullptr;     ///< [A+1]
  const int64_t* neighbours = nullptr;        ///< [2E]
  const PairEvidence* evidence = nullptr;     ///< [2E]
};

namespace detail {

RINGSCAN_HD inline void add_to(int64_t& field, int64_t value) {
  if (value != 0) AtomicIndex(field).fetch_add(value, ::cuda::memory_order_relaxed);
}

/// Size, requests, singletons and internal edges of each member's cluster; the key
/// group * A + account of each of its grouped requests (others: no key).
struct TallyAccount {
  TallyInputs in;
  ClusterTally* tally;
  int64_t* key;  ///< [R]
  RINGSCAN_HD void operator()(int64_t a) const {
    const int64_t c = in.label[a];
    int64_t singletons = 0, internal = 0, sync = 0, behaviour = 0, weight = 0;
    for (int64_t r = in.account_offsets[a]; r < in.account_offsets[a + 1]; ++r) {
      const int64_t g = in.group_of_request[r];
      key[r] = c >= 0 && g >= 0 ? g * in.num_accounts + a : INT64_MAX;
      singletons += g < 0;
    }
    if (c < 0) return;
    ClusterTally& t = tally[c];
    for (int64_t e = in.graph_offsets[a]; e < in.graph_offsets[a + 1]; ++e) {
      if (in.label[in.neighbours[e]] != c) continue;
      ++internal;
      sync += tally_units(in.evidence[e].synchrony);
      behaviour += tally_units(in.evidence[e].behaviour);
      weight += tally_units(in.evidence[e].weight);
    }
    add_to(t.size, 1);
    add_to(t.requests, in.account_offsets[a + 1] - in.account_offsets[a]);
    add_to(t.singletons, singletons);
    add_to(t.internal_edges, internal);
    add_to(t.synchrony, sync);
    add_to(t.behaviour, behaviour);
    add_to(t.weight, weight);
  }
};

/// (group, cluster) key of a distinct (group, member) entry.
struct GroupClusterKey {
  TallyInputs in;
  RINGSCAN_HD int64_t operator()(int64_t key) const {
    const int64_t g = key / in.num_accounts, a = key % in.num_accounts;
    return g * in.num_clusters + in.label[a];
  }
};

/// Members of the cluster of group-cluster key k that sent its group (0 when none).
RINGSCAN_HD inline int64_t members_sending(const int64_t* keys, const int64_t* counts, int64_t n, int64_t k) {
  const int64_t i = first_not_below(keys, n, k);
  return i < n && keys[i] == k ? counts[i] : 0;
}

struct CountDistinctGroup {
  TallyInputs in;
  const int64_t* group_cluster;
  ClusterTally* tally;
  RINGSCAN_HD void operator()(int64_t i) const { add_to(tally[group_cluster[i] % in.num_clusters].distinct_groups, 1); }
};

/// A distinct (group, member) entry counts for member_groups when its group is not common and
/// two or more members of the cluster sent it.
struct CountMemberGroup {
  TallyInputs in;
  const int64_t* entry_key;
  const int64_t* group_cluster;
  const int64_t* members;
  int64_t n;
  ClusterTally* tally;
  RINGSCAN_HD void operator()(int64_t i) const {
    const int64_t g = entry_key[i] / in.num_accounts, a = entry_key[i] % in.num_accounts;
    const int64_t c = in.label[a];
    if (!in.common[g] && members_sending(group_cluster, members, n, g * in.num_clusters + c) >= 2)
      add_to(tally[c].member_groups, 1);
  }
};

/// A member's request counts for shared_requests under the same condition.
struct CountSharedRequests {
  TallyInputs in;
  const int64_t* group_cluster;
  const int64_t* members;
  int64_t n;
  ClusterTally* tally;
  RINGSCAN_HD void operator()(int64_t a) const {
    const int64_t c = in.label[a];
    if (c < 0) return;
    int64_t shared = 0;
    for (int64_t r = in.account_offsets[a]; r < in.account_offsets[a + 1]; ++r) {
      const int64_t g = in.group_of_request[r];
      if (g >= 0 && !in.common[g] && members_sending(group_cluster, members, n, g * in.num_clusters + c) >= 2) ++shared;
    }
    add_to(tally[c].shared_requests, shared);
  }
};

}  // namespace detail

/// The tallies of clusters 0..C-1, as the CPU's cluster_tallies computes them, over R
/// requests. Memory::Buffer<T>(n) and Memory::to_host(p, n, out) as for build_evidence_graph.
/// Policy memory: about 40 R bytes.
template <class Memory, class Policy>
std::vector<ClusterTally> build_cluster_tallies(Policy&& policy, const TallyInputs& in, int64_t R) {
  using I64 = typename Memory::template Buffer<int64_t>;
  const int64_t A = in.num_accounts, C = in.num_clusters;
  std::vector<ClusterTally> result(C);
  if (C == 0) return result;
  RINGSCAN_EXPECTS(in.num_groups <= INT64_MAX / std::max<int64_t>(A, C),
                   "ring scoring: too many prompt groups x accounts");
  const thrust::counting_iterator<int64_t> zero(0);
  typename Memory::template Buffer<ClusterTally> tally(C);
  thrust::fill(policy, tally.data(), tally.data() + C, ClusterTally{});
  I64 key(R), group_cluster(R);
  thrust::for_each(policy, zero, zero + A, detail::TallyAccount{in, tally.data(), key.data()});
  // Distinct (group, member) entries, then members per (group, cluster). By unique_by_key
  // (group_cluster, not yet filled, as its values): Thrust's CUDA unique counts in 32 bits,
  // its unique_by_key in 64.
  thrust::sort(policy, key.data(), key.data() + R);
  int64_t entries =
      R > 0 ? int64_t(thrust::unique_by_key(policy, key.data(), key.data() + R, group_cluster.data()).first -
                      key.data())
            : 0;
  if (entries > 0) {
    int64_t last = 0;
    Memory::to_host(key.data() + entries - 1, 1, &last);
    if (last == INT64_MAX) --entries;
  }
  I64 unique_group_cluster(entries), members(entries);
  thrust::transform(policy, key.data(), key.data() + entries, group_cluster.data(), detail::GroupClusterKey{in});
  thrust::sort(policy, group_cluster.data(), group_cluster.data() + entries);
  const auto ends = thrust::reduce_by_key(policy, group_cluster.data(), group_cluster.data() + entries,
                                          thrust::make_constant_iterator<int64_t>(1),
                                          unique_group_cluster.data(), members.data());
  const int64_t n = int64_t(ends.first - unique_group_cluster.data());
  thrust::for_each(policy, zero, zero + n,
                   detail::CountDistinctGroup{in, unique_group_cluster.data(), tally.data()});
  thrust::for_each(policy, zero, zero + entries,
                   detail::CountMemberGroup{in, key.data(), unique_group_cluster.data(), members.data(), n,
                                            tally.data()});
  thrust::for_each(policy, zero, zero + A,
                   detail::CountSharedRequests{in, unique_group_cluster.data(), members.data(), n, tally.data()});
  Memory::to_host(tally.data(), C, result.data());
  return result;
}

}  // namespace ringscan::portable
