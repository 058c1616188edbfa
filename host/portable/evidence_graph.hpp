// The evidence graph's construction as Thrust algorithms over raw arrays: instantiated for
// thrust::cuda by the CUDA backend and for thrust::omp by the CPU tests, which compare it with
// the CPU stage. Shared prompts give candidate pairs (prompt_pairs.hpp, the CPU's rule), the
// account index adds its pairs, and sort/reduce-by-key counts the groups each pair shares;
// the evaluated pairs whose evidence reaches the edge threshold become a symmetric CSR graph
// with 64-bit offsets. The counts are whole numbers summed in double: exact, whatever order
// a parallel reduction adds them in.
#pragma once
#include <thrust/binary_search.h>
#include <thrust/for_each.h>
#include <thrust/gather.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>

#include <cstdint>
#include <string>
#include <vector>

#include "device_budget.hpp"
#include "evidence_math.hpp"
#include "pair_evidence.hpp"
#include "prompt_pairs.hpp"
#include "ringscan/error.hpp"
#include "ringscan/evidence_graph.hpp"

namespace ringscan::portable {

/// Prompt groups in the policy's memory.
struct GroupArrays {
  int64_t num_groups = 0;
  const int64_t* account_offsets = nullptr;  ///< [G+1]
  const int64_t* group_accounts = nullptr;   ///< [offsets[G]], ascending within a group
  const uint8_t* common = nullptr;           ///< [G]
};

namespace detail {

struct PairsOfGroup {
  GroupArrays g;
  RINGSCAN_HD int64_t operator()(int64_t grp) const {
    const int64_t m = g.account_offsets[grp + 1] - g.account_offsets[grp];
    return m >= 2 && !g.common[grp] ? prompt_pairs_of_group(m) : 0;
  }
};

/// Orders a group's entries as prompt_pair expects: ascending, or hashed for sampled groups.
struct EntryBefore {
  GroupArrays g;
  const int64_t* entry_group;
  RINGSCAN_HD bool operator()(int64_t x, int64_t y) const {
    const int64_t gx = entry_group[x], gy = entry_group[y];
    if (gx != gy) return gx < gy;
    const int64_t ax = g.group_accounts[x], ay = g.group_accounts[y];
    if (sampled_group(g.account_offsets[gx + 1] - g.account_offsets[gx])) {
      const uint64_t hx = hashed_order_key(ax, gx), hy = hashed_order_key(ay, gy);
      if (hx != hy) return hx < hy;
    }
    return ax < ay;
  }
};

/// Entry t < P: the t-th prompt pair, keyed a * A + b, counting one shared group; entry P + i:
/// account pair i, counting none.
struct WriteEntry {
  GroupArrays g;
  const int64_t* pair_end;
  const int64_t* ordered;
  int64_t prompt_pairs;
  const int64_t* account_first;
  const int64_t* account_second;
  int64_t num_accounts;
  int64_t* key;
  double* shared;
  RINGSCAN_HD void operator()(int64_t t) const {
    if (t >= prompt_pairs) {
      key[t] = account_first[t - prompt_pairs] * num_accounts + account_second[t - prompt_pairs];
      shared[t] = 0.0;
      return;
    }
    const int64_t grp = first_not_below(pair_end, g.num_groups, t + 1);  // ends[grp] > t
    const int64_t first = g.account_offsets[grp], m = g.account_offsets[grp + 1] - first;
    int64_t a, b;
    prompt_pair(ordered + first, m, t - (grp > 0 ? pair_end[grp - 1] : 0), &a, &b);
    key[t] = a * num_accounts + b;
    shared[t] = 1.0;
  }
};

struct SplitPair {
  const int64_t* key;
  const double* count;
  int64_t num_accounts;
  int64_t* first;
  int64_t* second;
  float* shared;
  RINGSCAN_HD void operator()(int64_t i) const {
    first[i] = key[i] / num_accounts;
    second[i] = key[i] % num_accounts;
    shared[i] = float(count[i]);
  }
};

struct IsEdge {
  const PairEvidence* evidence;
  EdgeRule rule;
  RINGSCAN_HD int64_t operator()(int64_t c) const { return rule.keeps(evidence[c]) ? 1 : 0; }
};

/// Both directions of each edge: entries 2k and 2k+1 of edge k (candidate c, the k-th kept),
/// keyed row * A + column, valued c.
struct WriteDirections {
  const int64_t* edge_end;  ///< inclusive scan of IsEdge
  const PairEvidence* evidence;
  EdgeRule rule;
  const int64_t* first;
  const int64_t* second;
  int64_t num_accounts;
  int64_t* key;
  int64_t* candidate;
  RINGSCAN_HD void operator()(int64_t c) const {
    if (!IsEdge{evidence, rule}(c)) return;
    const int64_t k = edge_end[c] - 1;
    key[2 * k] = first[c] * num_accounts + second[c];
    key[2 * k + 1] = second[c] * num_accounts + first[c];
    candidate[2 * k] = candidate[2 * k + 1] = c;
  }
};

struct WriteAdjacency {
  const int64_t* key;
  const int64_t* candidate;
  const PairEvidence* evidence;
  int64_t num_accounts;
  int64_t* neighbours;
  PairEvidence* edge_evidence;
  RINGSCAN_HD void operator()(int64_t e) const {
    neighbours[e] = key[e] % num_accounts;
    edge_evidence[e] = evidence[candidate[e]];
  }
};

struct RowStart {
  int64_t num_accounts;
  RINGSCAN_HD int64_t operator()(int64_t a) const { return a * num_accounts; }
};

}  // namespace detail

/// Builds the evidence graph of `groups` and the account pairs (first[i] < second[i],
/// i < num_account_pairs), both in the policy's memory, over A accounts. `Memory` says how
/// that memory is held and read:
///   Memory::Buffer<T>(n)                 an owning array of n T with data();
///   Memory::to_host(const T* p, n, T* out)  copies n elements to host memory.
/// `evaluate(first, second, shared, n, out)` fills out[i] (policy memory) with the evidence of
/// candidate i, which shares shared[i] groups. `budget` bounds the bytes of policy memory held at once (0: no bound):
/// BudgetExceeded names the stage and the estimate otherwise.
template <class Memory, class Policy, class Evaluate>
EvidenceGraph build_evidence_graph(Policy&& policy, const GroupArrays& groups,
                                   const int64_t* account_first, const int64_t* account_second,
                                   int64_t num_account_pairs, int64_t A, const EdgeRule& rule,
                                   Evaluate&& evaluate, int64_t budget) {
  using I64 = typename Memory::template Buffer<int64_t>;
  using F64 = typename Memory::template Buffer<double>;
  EvidenceGraph graph;
  graph.num_accounts = A;
  graph.offsets.assign(A + 1, 0);
  RINGSCAN_EXPECTS(A < (int64_t(1) << 31), "evidence graph: more than 2^31 accounts");
  const int64_t G = groups.num_groups;
  const thrust::counting_iterator<int64_t> zero(0);
  auto read_last = [](const int64_t* p, int64_t n) {
    int64_t v = 0;
    if (n > 0) Memory::to_host(p + n - 1, 1, &v);
    return v;
  };
  auto require = [budget](double bytes, const char* what) {
    require_device_memory(bytes, budget, std::string("evidence graph on the device, for ") + what + ",");
  };

  // Candidates: every group's prompt pairs and the account pairs, summed per pair.
  I64 pair_end(G);
  const auto pairs_of_group = thrust::make_transform_iterator(zero, detail::PairsOfGroup{groups});
  thrust::inclusive_scan(policy, pairs_of_group, pairs_of_group + G, pair_end.data());
  const int64_t P = read_last(pair_end.data(), G);
  const int64_t entries = P + num_account_pairs;
  const int64_t N = G > 0 ? read_last(groups.account_offsets, G + 1) : 0;
  // Entries: key and count, sorted in place (about as much again for the sort), then reduced
  // into as many again; before them, the group members' order: three arrays of N, the
  // comparison sort's copy of one, and the groups' pair ends.
  require(double(entries) * 16 * 3 + double(N) * 32 + double(G) * 8, "the candidate pairs");
  I64 ordered(N);
  {
    I64 entry_group(N), order(N);
    thrust::upper_bound(policy, groups.account_offsets + 1, groups.account_offsets + G + 1, zero, zero + N,
                        entry_group.data());
    thrust::sequence(policy, order.data(), order.data() + N);
    thrust::sort(policy, order.data(), order.data() + N, detail::EntryBefore{groups, entry_group.data()});
    thrust::gather(policy, order.data(), order.data() + N, groups.group_accounts, ordered.data());
  }
  I64 key(entries);
  F64 count(entries);
  thrust::for_each(policy, zero, zero + entries,
                   detail::WriteEntry{groups, pair_end.data(), ordered.data(), P, account_first,
                                      account_second, A, key.data(), count.data()});
  pair_end = I64(0);
  ordered = I64(0);
  thrust::sort_by_key(policy, key.data(), key.data() + entries, count.data());
  I64 unique_key(entries);
  F64 summed(entries);
  const auto ends = thrust::reduce_by_key(policy, key.data(), key.data() + entries, count.data(),
                                          unique_key.data(), summed.data());
  const int64_t n = int64_t(ends.first - unique_key.data());
  key = I64(0);
  count = F64(0);
  graph.prompt_pairs = P;
  graph.candidate_pairs = n;

  // Evidence of every candidate.
  require(double(n) * (16 + 4 + sizeof(PairEvidence) + 8) + double(entries) * 16, "the candidates' evidence");
  I64 first(n), second(n);
  typename Memory::template Buffer<float> shared(n);
  thrust::for_each(policy, zero, zero + n,
                   detail::SplitPair{unique_key.data(), summed.data(), A, first.data(), second.data(),
                                     shared.data()});
  unique_key = I64(0);
  summed = F64(0);
  typename Memory::template Buffer<PairEvidence> evidence(n);
  evaluate(first.data(), second.data(), shared.data(), n, evidence.data());

  // Edges both ways, sorted by (row, column): CSR rows with ascending neighbours.
  I64 edge_end(n);
  const auto is_edge = thrust::make_transform_iterator(zero, detail::IsEdge{evidence.data(), rule});
  thrust::inclusive_scan(policy, is_edge, is_edge + n, edge_end.data());
  const int64_t E = read_last(edge_end.data(), n);
  require(double(n) * (24 + sizeof(PairEvidence)) + double(2 * E) * (24 + sizeof(PairEvidence)),
          "the graph's edges");
  I64 edge_key(2 * E), candidate(2 * E);
  thrust::for_each(policy, zero, zero + n,
                   detail::WriteDirections{edge_end.data(), evidence.data(), rule, first.data(),
                                           second.data(), A, edge_key.data(), candidate.data()});
  thrust::sort_by_key(policy, edge_key.data(), edge_key.data() + 2 * E, candidate.data());
  I64 offsets(A + 1), neighbours(2 * E);
  typename Memory::template Buffer<PairEvidence> edge_evidence(2 * E);
  const auto row_start = thrust::make_transform_iterator(zero, detail::RowStart{A});
  thrust::lower_bound(policy, edge_key.data(), edge_key.data() + 2 * E, row_start, row_start + A + 1,
                      offsets.data());
  thrust::for_each(policy, zero, zero + 2 * E,
                   detail::WriteAdjacency{edge_key.data(), candidate.data(), evidence.data(), A,
                                          neighbours.data(), edge_evidence.data()});
  Memory::to_host(offsets.data(), A + 1, graph.offsets.data());
  graph.neighbours.resize(2 * E);
  graph.evidence.resize(2 * E);
  Memory::to_host(neighbours.data(), 2 * E, graph.neighbours.data());
  Memory::to_host(edge_evidence.data(), 2 * E, graph.evidence.data());
  return graph;
}

}  // namespace ringscan::portable
