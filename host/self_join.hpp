// An IVF self-join: near neighbours of every row of a matrix among its other rows, for the
// request index (near-duplicate prompts) and the account index (similar profiles).
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/near_duplicates.hpp"

namespace ringscan {

/// Decides whether the candidate (query, other) at squared L2 distance `dist2` is kept, and
/// with which value; called from several threads at once.
using JoinFilter = std::function<bool(int64_t query, int64_t other, float dist2, float* value)>;

/// Which of a query's neighbours, nearest first, become candidates: every one within squared
/// distance `near`, and of those beyond it only the nearest `far_cap` (near < 0: no tiers,
/// every neighbour up to the cap). The request index looks for template groups further out
/// than near-duplicates, and a few such neighbours per prompt are enough to connect a
/// template's instances.
struct NeighbourTiers {
  float near = -1.0f;
  int64_t far_cap = 0;
  /// Whether the neighbour at squared distance d2 is kept, `far_seen` counting those beyond
  /// `near` already kept for this query.
  bool keep(float d2, int64_t& far_seen) const {
    if (near < 0 || d2 <= near) return true;
    return far_seen++ < far_cap;
  }
};

/// Pairs (first < second, sorted, unique) of rows of `x` [n x d] that are near each other.
/// Rows are partitioned by two levels of k-means (FAISS Clustering) into cells of about 256,
/// each row stored in its nearest cell and matched against the cells of its 2 nearest
/// top-level centroids (and its kLeafProbes nearest leaves inside each) by FAISS
/// brute-force search (BLAS); with `exact`, one cell holds everything. `radius` >= 0: every
/// row within that squared distance (FAISS range search), of which each query keeps its
/// `cap` closest; `radius` < 0: the `cap` nearest (kNN), `tiers` then limiting those beyond
/// a nearer radius. `accept` filters and values the candidates. Memory: O(n) beyond `x`.
std::vector<RequestPair> ivf_self_join(const float* x, int64_t n, int64_t d, bool exact,
                                       float radius, int64_t cap, const JoinFilter& accept,
                                       const Context& ctx, const char* stage,
                                       const NeighbourTiers& tiers = NeighbourTiers{});

/// One share of ivf_self_join's work, for a join spread over `parts` processes: the pairs of
/// the top-level cells whose place in the join's order (largest first) is `part` modulo
/// `parts` (one cell: part 0 alone). kNN mode only (radius < 0), where no pair joins two
/// cells' representatives. Unsorted: the union of every share's pairs, made canonical, is
/// ivf_self_join's result (make_canonical, below), whatever the number of parts.
std::vector<RequestPair> ivf_self_join_share(const float* x, int64_t n, int64_t d, bool exact, float radius,
                                             int64_t cap, const JoinFilter& accept, const Context& ctx,
                                             const char* stage, const NeighbourTiers& tiers, int part, int parts);

/// How the request and account indices find near rows: the CPU's ivf_self_join, or the
/// CUDA backend's device search (same contract as ivf_self_join).
struct SelfJoin {
  /// Inputs of up to this many rows are joined exactly whatever the options say (the device's
  /// exact search is cheap there).
  int64_t exact_up_to = 0;
  /// True when the join takes full-dimension rows at any size: the stages then skip the PCA
  /// projections the CPU's partitioned join needs.
  bool full_dimension = false;
  std::function<std::vector<RequestPair>(const float* x, int64_t n, int64_t d, bool exact,
                                         float radius, int64_t cap, const JoinFilter& accept,
                                         const Context& ctx, const char* stage, const NeighbourTiers& tiers)>
      run;
};

/// Appends the pair (q, other) at squared distance d2 to `out` as (smaller, larger, value)
/// when `accept` keeps it; value starts as d2. The one place a join turns a neighbour into a
/// pair, for ivf_self_join and the device join alike.
inline void append_accepted(int64_t q, int64_t other, float d2, const JoinFilter& accept,
                            std::vector<RequestPair>& out) {
  float value = d2;
  if (accept(q, other, d2, &value)) out.push_back({std::min(q, other), std::max(q, other), value});
}

/// Row ids grouped by cell (CSR): cell c holds ids[offsets[c] .. offsets[c + 1]), in entry order.
struct CellLists {
  std::vector<int64_t> offsets, ids;
};

/// Counting sort by cell of the entries cell[r * stride + p], p < used, r < n, into k cells;
/// entry (r, p) stands for row ids[r] (null ids: row r).
CellLists group_by_cell(const int64_t* cell, const int64_t* ids, int64_t n, int64_t stride,
                        int64_t used, int64_t k);

/// k centroids of the rows `rows[0..m)` (null: rows 0..m-1) of x [.. x d] (m >= k): FAISS k-means, 10 iterations,
/// on a strided sample of at most 64 rows per centroid, seeded, so it depends only on the
/// rows' order. Both backends' partitions start from it.
std::vector<float> kmeans_centroids(const float* x, int64_t d, const int64_t* rows, int64_t m,
                                    int64_t k, uint64_t seed);

/// Positions i * step (< m) of the rows kmeans_centroids trains k centroids on.
std::vector<int64_t> kmeans_sample_positions(int64_t m, int64_t k);
/// kmeans_centroids on the sampled rows themselves, sample [n x d].
std::vector<float> kmeans_on_sample(const float* sample, int64_t n, int64_t d, int64_t k, uint64_t seed);

/// For each of the n rows rows[i] of x (null rows: row i), its `probes` nearest of the k
/// centroids [k x d], nearest first: cell[i * probes + p]. Searched in fixed batches.
std::vector<int64_t> nearest_cells(const float* x, int64_t d, const int64_t* rows, int64_t n,
                                   const float* centroids, int64_t k, int64_t probes);

/// ivf_self_join's layout: the top-level cells of n rows, the cells each row visits there,
/// the seed of their k-means, and whether n rows are joined as one cell instead.
int64_t top_level_cells(int64_t n);
constexpr int64_t kTopLevelProbes = 2;
constexpr uint64_t kTopLevelSeed = 1234;
bool joins_in_one_cell(int64_t n, bool exact);

/// Queries a cell's search takes at a time. A query's neighbours depend only on the batch it
/// is searched in (FAISS rounds short batches differently), so a cell's queries split at
/// multiples of this find what the whole cell's search finds.
constexpr int64_t kJoinQueryBatch = 1024;

/// One cell's search of ivf_self_join: for each query, its members within `radius` (or its
/// cap nearest), kept as `tiers` allow and filtered by `accept`. Rows are ids into `vectors`.
struct CellJoin {
  const float* vectors;
  int64_t dr;
  float radius;
  int64_t cap;
  const JoinFilter& accept;
  const NeighbourTiers& tiers;
  void operator()(const int64_t* members, int64_t m, const int64_t* queries, int64_t nq,
                  std::vector<RequestPair>& out) const;
};

/// Leaf cells a top-level cell of `members` rows is refined into by k-means (seeded
/// kTopLevelSeed + its index, each row visiting its kLeafProbes nearest); below 2 it is
/// joined whole. Visiting two top cells catches near neighbours across the coarse
/// boundaries. A second leaf visit inside each finds the near-duplicates of a few light ring
/// members more (account recall +0.01 to +0.02 on generated light rings), changes which
/// rings the real-text fixture finds (one seed better, one worse) and costs 60% more time in
/// the request index (docs/benchmarks.md).
int64_t leaf_cells(int64_t members);
constexpr int64_t kLeafProbes = 1;

/// One leaf cell's join, then its representative (the member nearest the members' mean)
/// appended to `representatives` unless it has no members.
void join_leaf(const CellJoin& join, const int64_t* members, int64_t m, const int64_t* queries, int64_t nq,
               std::vector<RequestPair>& out, std::vector<int64_t>& representatives);

/// The join inside top-level cell c (its members and the queries visiting it, both ascending
/// ids): refined by k-means into leaf cells when large; the pairs go to `out` and each leaf
/// cell's representative (the member nearest its mean) to `representatives`. The same
/// whichever process runs it, so a distributed join gives the pairs of one process.
void join_top_cell(const CellJoin& join, const std::vector<int64_t>& members, const std::vector<int64_t>& queries,
                   int64_t c, std::vector<RequestPair>& out, std::vector<int64_t>& representatives);

/// Joins the leaf cells' representatives (rows `reps`, vectors rep_vectors [reps x dr], in
/// top-cell order) with each other and appends their pairs, as ids of `reps`, to `pairs`.
void join_representatives(const float* rep_vectors, const std::vector<int64_t>& reps, const CellJoin& join,
                          const Context& ctx, const char* stage, std::vector<RequestPair>& pairs);

/// The CPU backend's join: ivf_self_join.
SelfJoin host_self_join();

/// Sorts pairs by (first, second) and drops repeats (keeping the smallest value of a pair
/// found more than once): the canonical output of a join. Parallel for large inputs.
void make_canonical(std::vector<RequestPair>& pairs);

}  // namespace ringscan
