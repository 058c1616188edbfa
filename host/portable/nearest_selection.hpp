// The selection of the device's exact search (cuda/nearest_rows.cu): one block of threads per
// query keeps the query's `cap` nearest rows in shared memory while it scans the query's inner
// products with one tile of columns, carrying the list from tile to tile. Written once against
// a Block (its thread's index, its size, a barrier, an atomic counter in shared memory): the
// kernel instantiates it with the CUDA block, and the CPU tests run this same code on an
// emulated block of threads (tests/emulated_block.hpp), barriers and races included.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "host_device.hpp"

namespace ringscan::portable {

constexpr float kNoDistance = std::numeric_limits<float>::infinity();
constexpr int64_t kNoRow = std::numeric_limits<int64_t>::max();

/// Strict total order of candidates: distance, then row. The order threads find candidates
/// in is not deterministic; the lists, sorted by this order, are.
RINGSCAN_HD inline bool closer(float da, int64_t ia, float db, int64_t ib) {
  return da < db || (da == db && ia < ib);
}

/// Squared L2 distance from the two squared norms and the inner product, clamped at 0
/// (rounding can take it below).
RINGSCAN_HD inline float squared_distance(float query_norm, float column_norm, float inner) {
  return fmaxf(query_norm + column_norm - 2.0f * inner, 0.0f);
}

/// Candidate slots in shared memory for a list of `cap` and a block of `threads`: a power of
/// two (the bitonic sort's size) with room for the list and two rounds of one candidate per
/// thread, so that a round never overflows (a merge follows whenever a round could).
inline int64_t nearest_selection_slots(int64_t cap, int64_t threads) {
  int64_t p = 1;
  while (p < cap + 2 * threads) p <<= 1;
  return p;
}

/// Which rows one side of a search holds: ids[j] when ids is set, else first + j.
struct Side {
  const int64_t* ids;
  int64_t first;
  RINGSCAN_HD int64_t at(int64_t j) const { return ids ? ids[j] : first + j; }
};

/// One tile of a search: the inner products scores [queries x columns] (row-major) of the
/// query side's rows with the column side's, and every query's running list (best_*, `cap`
/// entries per query, sorted; best_count of them valid). Norms are indexed by row id.
struct SelectionTile {
  const float* scores;
  int64_t columns;
  Side query, column;
  const float* query_norms;
  const float* column_norms;
  bool exclude_self;  ///< a query's own row is not its neighbour
  float radius;       ///< squared distance bound, or < 0 for none
  int cap;
  int slots;  ///< nearest_selection_slots(cap, the block's threads)
  float* best_dist;
  int64_t* best_row;
  int* best_count;
};

/// The block-shared state of one query's selection.
struct SelectionState {
  int fill;           ///< candidates in the slots
  float worst_dist;   ///< admission bound: the cap-th of the list, once the list is full
  int64_t worst_row;
};

/// Sorts the candidates in the slots by (distance, row), keeps the first `cap`, and updates
/// the count and the admission bound. Only the first power of two >= the count is sorted
/// (`slots` bounds it): most queries of a threshold join have a handful of candidates, and a
/// full sort of the slots per query would cost more than the scan. Every thread must reach
/// it through a barrier after its last admission.
template <class Block>
RINGSCAN_HD void merge_candidates(const Block& block, float* dist, int64_t* row, int slots, int cap,
                                  SelectionState& state) {
  const int valid = state.fill;
  int p = 2;
  while (p < valid) p <<= 1;
  if (p > slots) p = slots;
  for (int t = valid + block.thread(); t < p; t += block.size()) {
    dist[t] = kNoDistance;
    row[t] = kNoRow;
  }
  block.sync();
  for (int k = 2; k <= p; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = block.thread(); i < p; i += block.size()) {
        const int partner = i ^ j;
        if (partner <= i) continue;
        const bool ascending = (i & k) == 0;
        const bool swap = ascending ? closer(dist[partner], row[partner], dist[i], row[i])
                                    : closer(dist[i], row[i], dist[partner], row[partner]);
        if (swap) {
          const float td = dist[i];
          dist[i] = dist[partner];
          dist[partner] = td;
          const int64_t tr = row[i];
          row[i] = row[partner];
          row[partner] = tr;
        }
      }
      block.sync();
    }
  if (block.thread() == 0) {
    state.fill = valid < cap ? valid : cap;
    if (state.fill == cap) {
      state.worst_dist = dist[cap - 1];
      state.worst_row = row[cap - 1];
    }
  }
  block.sync();
}

/// Query qi of the tile, by one block: loads its list into the slots (dist, row: `slots`
/// each, shared), scans its row of inner products, admits the columns closer than the list's
/// bound (and within the radius), merges whenever another round could overflow the slots,
/// and writes the list back.
template <class Block>
RINGSCAN_HD void select_nearest_of_query(const Block& block, const SelectionTile& tile, int64_t qi,
                                         float* dist, int64_t* row, SelectionState& state) {
  const int cap = tile.cap;
  const int have = tile.best_count[qi];
  for (int t = block.thread(); t < have; t += block.size()) {
    dist[t] = tile.best_dist[qi * cap + t];
    row[t] = tile.best_row[qi * cap + t];
  }
  if (block.thread() == 0) {
    state.fill = have;
    state.worst_dist = have == cap ? tile.best_dist[qi * cap + cap - 1] : kNoDistance;
    state.worst_row = have == cap ? tile.best_row[qi * cap + cap - 1] : kNoRow;
  }
  block.sync();
  const int64_t q = tile.query.at(qi);
  const float query_norm = tile.query_norms[q];
  const float* scores = tile.scores + qi * tile.columns;
  for (int64_t base = 0; base < tile.columns; base += block.size()) {
    const int64_t j = base + block.thread();
    if (j < tile.columns) {
      const int64_t other = tile.column.at(j);
      if (!(tile.exclude_self && other == q)) {
        const float d2 = squared_distance(query_norm, tile.column_norms[other], scores[j]);
        if ((tile.radius < 0 || d2 <= tile.radius) &&
            closer(d2, other, state.worst_dist, state.worst_row)) {
          const int at = block.claim(state.fill);
          dist[at] = d2;
          row[at] = other;
        }
      }
    }
    block.sync();
    const bool full = state.fill > tile.slots - block.size();  // room for one more round, else merge
    block.sync();
    if (full) merge_candidates(block, dist, row, tile.slots, cap, state);
  }
  // Every path here ends in a barrier: the load's, a round's or a merge's.
  merge_candidates(block, dist, row, tile.slots, cap, state);
  for (int t = block.thread(); t < state.fill; t += block.size()) {
    tile.best_dist[qi * cap + t] = dist[t];
    tile.best_row[qi * cap + t] = row[t];
  }
  if (block.thread() == 0) tile.best_count[qi] = state.fill;
}

}  // namespace ringscan::portable
