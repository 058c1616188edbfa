// A self-join over a coarse k-means partition whose searches are done by a RowSearch: the
// CUDA backend's join above the size where its exact search stops paying. The cells are
// large (thousands of rows), so each cell's search is one big GEMM-shaped piece of work; the
// partition, the bookkeeping and the pair filter are host code, tested on any machine with
// a host RowSearch.
#pragma once
#include <cstdint>
#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/near_duplicates.hpp"
#include "self_join.hpp"

namespace ringscan {

/// The nearest other rows of each query, in CSR form.
struct RowNeighbours {
  std::vector<int64_t> offsets;  ///< [queries + 1]
  std::vector<int64_t> other;    ///< rows, ascending by (distance, row) within each query
  std::vector<float> distance;   ///< squared L2 distances (as the search computed them)
};

/// What a RowSearch has done so far: floating-point operations of the inner products it
/// computed (2 d per query-row pair) and the wall time of its searches.
struct SearchWork {
  double flop = 0;
  double seconds = 0;
};

/// Searches among the rows of one matrix x [n x d] held by the implementation (the CUDA
/// backend keeps them on the device).
class RowSearch {
 public:
  virtual ~RowSearch() = default;
  const SearchWork& work() const { return work_; }
  /// For each query row queries[i], i < nq: its up to `cap` nearest rows among
  /// members[0..m) other than itself, within squared distance `radius` when radius >= 0.
  /// Null `queries` (or `members`) means every row, in order (nq or m is then n).
  virtual RowNeighbours nearest_others(const int64_t* queries, int64_t nq, const int64_t* members,
                                       int64_t m, float radius, int64_t cap) = 0;
  /// For every row r: its `probes` nearest of the k centroids [k x d], ascending by
  /// (distance, centroid): cell[r * probes + p] and the squared distance dist2[r * probes + p].
  virtual void nearest_centroids(const float* centroids, int64_t k, int64_t probes,
                                 int64_t* cell, float* dist2) = 0;

 protected:
  SearchWork work_;
};

/// Rows per cell the partition aims at, and the cells each row is searched in.
struct PartitionShape {
  int64_t cell_rows = 8192;
  int64_t probes = 2;
};

/// ivf_self_join's contract (pairs first < second, canonical; each query keeps its `cap`
/// nearest per visited cell; `accept` filters and values them) over a k-means partition of
/// the n rows into about n / cell_rows cells (kmeans_centroids). Every row is a member of
/// its nearest cell and is searched in its `probes` nearest. With radius >= 0, the member
/// nearest each cell's centroid represents the cell, and the representatives are joined with
/// each other too: a blob of near-identical rows larger than a cell is cut by k-means into
/// pieces whose members never meet, and the representatives link the pieces.
std::vector<RequestPair> partitioned_self_join(RowSearch& search, const float* x, int64_t n,
                                               int64_t d, float radius, int64_t cap,
                                               const JoinFilter& accept, PartitionShape shape,
                                               const Context& ctx, const char* stage,
                                               const NeighbourTiers& tiers = NeighbourTiers{});

/// Turns the neighbours of queries[i] (row i of `found`; null `queries`: row i is query i)
/// into accepted pairs appended to `pairs` (nearest first, as `tiers` allows), over OpenMP
/// threads; order is not canonical.
void append_neighbour_pairs(const RowNeighbours& found, const int64_t* queries,
                            const JoinFilter& accept, std::vector<RequestPair>& pairs,
                            const NeighbourTiers& tiers = NeighbourTiers{});

}  // namespace ringscan
