// The clustering stage as Thrust algorithms over raw arrays: instantiated for thrust::cuda by
// the CUDA backend and for thrust::omp by the CPU tests, which compare it with the CPU stage.
// Union-find is lock-free (compare-and-swap hooking, the larger root under the smaller, path
// halving), in the style of ECL-CC: every root is the smallest member of its component, so
// the labels do not depend on the order threads run in.
#pragma once
#include <thrust/for_each.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/scan.h>

#include <cstdint>
#include <cuda/atomic>

#include "clustering_rules.hpp"

namespace ringscan::portable {

/// The evidence graph's CSR arrays, in the memory of the policy's system.
struct GraphArrays {
  int64_t num_accounts = 0;
  const int64_t* offsets = nullptr;         ///< [A+1]
  const int64_t* neighbours = nullptr;      ///< [2E]
  const PairEvidence* evidence = nullptr;   ///< [2E]
};

/// Scratch and output arrays of cluster_components, each [A], in the policy's memory.
struct ComponentArrays {
  uint8_t* core = nullptr;
  int64_t* parent = nullptr;
  int64_t* root = nullptr;          ///< component root of each account, -1 = unattached
  int64_t* size = nullptr;          ///< members, indexed by root
  int64_t* first_member = nullptr;  ///< smallest member, indexed by root
  int64_t* label = nullptr;         ///< output: cluster of each account, -1 = none
};

using AtomicIndex = ::cuda::atomic_ref<int64_t, ::cuda::thread_scope_device>;

RINGSCAN_HD inline int64_t relaxed_load(int64_t* p) {
  return AtomicIndex(*p).load(::cuda::memory_order_relaxed);
}

/// Root of x. Parents only ever point to smaller ancestors, so the halving writes of
/// concurrent finds are benign: each replaces a parent by one of its ancestors.
RINGSCAN_HD inline int64_t concurrent_find(int64_t* parent, int64_t x) {
  int64_t p = relaxed_load(&parent[x]);
  while (p != x) {
    const int64_t grand = relaxed_load(&parent[p]);
    if (grand != p) AtomicIndex(parent[x]).store(grand, ::cuda::memory_order_relaxed);
    x = p;
    p = grand;
  }
  return x;
}

/// Root of x, walking without writing. For a pass in which every thread stores its own
/// element's final root into `parent` while others walk through it: a halving write of
/// concurrent_find could land after such a store and put back a stale, non-root ancestor.
RINGSCAN_HD inline int64_t walk_to_root(int64_t* parent, int64_t x) {
  for (int64_t p = relaxed_load(&parent[x]); p != x; p = relaxed_load(&parent[x])) x = p;
  return x;
}

/// Joins the components of a and b: the larger root is hooked under the smaller one.
RINGSCAN_HD inline void concurrent_union(int64_t* parent, int64_t a, int64_t b) {
  while (true) {
    a = concurrent_find(parent, a);
    b = concurrent_find(parent, b);
    if (a == b) return;
    if (a > b) {
      const int64_t t = a;
      a = b;
      b = t;
    }
    int64_t expected = b;
    if (AtomicIndex(parent[b]).compare_exchange_strong(expected, a, ::cuda::memory_order_relaxed))
      return;
  }
}

namespace detail {

struct PointAtRoot {
  int64_t* parent;
  RINGSCAN_HD void operator()(int64_t x) const {
    AtomicIndex(parent[x]).store(walk_to_root(parent, x), ::cuda::memory_order_relaxed);
  }
};

struct MarkCores {
  GraphArrays g;
  ComponentArrays w;
  int64_t min_core_degree;
  RINGSCAN_HD void operator()(int64_t a) const {
    w.core[a] = is_core_account(g.offsets, a, min_core_degree);
    w.parent[a] = a;
    w.size[a] = 0;
    w.first_member[a] = INT64_MAX;  // no member yet
  }
};

struct JoinCoreEdges {
  GraphArrays g;
  ComponentArrays w;
  RINGSCAN_HD void operator()(int64_t a) const {
    if (!w.core[a]) return;
    for (int64_t e = g.offsets[a]; e < g.offsets[a + 1]; ++e) {
      const int64_t b = g.neighbours[e];
      if (b > a && w.core[b]) concurrent_union(w.parent, a, b);
    }
  }
};

struct AttachAccounts {
  GraphArrays g;
  ComponentArrays w;
  RINGSCAN_HD void operator()(int64_t a) const {
    int64_t r = -1;
    if (w.core[a]) {
      r = concurrent_find(w.parent, a);
    } else {
      const int64_t best = strongest_core_neighbour(g.offsets, g.neighbours, g.evidence, w.core, a);
      if (best >= 0) r = concurrent_find(w.parent, best);
    }
    w.root[a] = r;
    if (r >= 0) {
      AtomicIndex(w.size[r]).fetch_add(1, ::cuda::memory_order_relaxed);
      AtomicIndex(w.first_member[r]).fetch_min(a, ::cuda::memory_order_relaxed);
    }
  }
};

/// 1 for the smallest member of each component of two or more accounts (a cluster's start).
struct ClusterStart {
  ComponentArrays w;
  RINGSCAN_HD int64_t operator()(int64_t a) const {
    const int64_t r = w.root[a];
    return r >= 0 && w.size[r] >= 2 && w.first_member[r] == a ? 1 : 0;
  }
};

struct WriteLabel {
  ComponentArrays w;
  const int64_t* starts_up_to;
  RINGSCAN_HD void operator()(int64_t a) const {
    const int64_t r = w.root[a];
    w.label[a] = r >= 0 && w.size[r] >= 2 ? starts_up_to[w.first_member[r]] - 1 : -1;
  }
};

}  // namespace detail

/// Points every element of the union-find forest parent [n] straight at its root. The only
/// writes are final roots, each thread to its own element, so any thread count and order
/// give the same result.
template <class Policy>
void flatten_forest(Policy&& policy, int64_t* parent, int64_t n) {
  const thrust::counting_iterator<int64_t> first(0);
  thrust::for_each(policy, first, first + n, detail::PointAtRoot{parent});
}

/// Cores (>= min_core_degree edges) joined by core-core edges form components; every other
/// account joins the component of the core neighbour strongest_core_neighbour picks.
/// Components of two or more accounts are clusters 0..C-1, numbered in the order of their
/// smallest member (the CPU stage's canonical labels). `starts_up_to` [A] receives the
/// number of clusters whose smallest member is <= a, so C is its last element: the caller
/// reads it from the policy's memory (a reduction to the host would do that here, but
/// Thrust's OpenMP reduce binds a reference to a null pointer internally, which UBSan
/// rejects).
template <class Policy>
void cluster_components(Policy&& policy, const GraphArrays& g, int64_t min_core_degree,
                        const ComponentArrays& w, int64_t* starts_up_to) {
  const int64_t A = g.num_accounts;
  if (A == 0) return;
  const thrust::counting_iterator<int64_t> first(0), last(A);
  thrust::for_each(policy, first, last, detail::MarkCores{g, w, min_core_degree});
  thrust::for_each(policy, first, last, detail::JoinCoreEdges{g, w});
  thrust::for_each(policy, first, last, detail::AttachAccounts{g, w});
  const auto starts = thrust::make_transform_iterator(first, detail::ClusterStart{w});
  thrust::inclusive_scan(policy, starts, starts + A, starts_up_to);
  thrust::for_each(policy, first, last, detail::WriteLabel{w, starts_up_to});
}

}  // namespace ringscan::portable
