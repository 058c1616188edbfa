// The device's exact row search, as host orchestration over a Device: the rows resident in
// the device's memory with their squared norms, and searches among any subsets of them by
// tiles of inner products (a GEMM) and the selection of host/portable/nearest_selection.hpp,
// the tiles sized to a memory budget. cuda/nearest_rows.cu runs it on the CUDA device (cuBLAS,
// its kernels, a stream); the CPU tests on a host device (loops, emulated thread blocks), so
// the tiling, the ids and the lists carried from tile to tile run in the tests on any machine.
//
// A Device (default-constructible) provides, for rows stored as `Stored`:
//   template <class T> using Buffer;     owning array of its memory: Buffer(n), data(), size()
//   int select_threads() const;          threads of a selection block
//   int64_t staging_bytes(n, d) const;   scratch bytes store_rows takes for n rows
//   void store_rows(x, n, d, rows, norms);   host x [n x d] into rows, squared norms; synchronous
//   void upload(host, n, device);        n int64 ids, host to device memory
//   void gather(rows, d, ids, n, out);   out [n x d] = rows[ids[i]]
//   void inner_products(q, nq, c, nc, d, scores);  scores [nq x nc] row-major = q c^T
//   void clear(counts, n);               n ints to 0
//   void select(tile, queries);          select_nearest_of_query for each query of the tile
//   void download(device, n, host);      for float, int64_t and int
//   void synchronize();                  every operation above has completed
// Operations run in order; only download's results need synchronize() before they are read.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "device_budget.hpp"
#include "partitioned_join.hpp"
#include "portable/nearest_selection.hpp"
#include "ringscan/error.hpp"

namespace ringscan {

/// Bounds of a search's tiles.
struct TileLimits {
  int64_t query_block = 4096;                   ///< queries per GEMM tile (upper bound)
  int64_t min_column_tile = 1024;               ///< below this a budget is refused
  int64_t max_score_tile = int64_t(1) << 30;    ///< bytes: GEMMs this size already run at full rate
  int64_t max_neighbours = 2048;                ///< per query: the selection's shared memory
};

template <class Stored, class Device>
class TiledRowSearch final : public RowSearch {
 public:
  template <class T>
  using Buffer = typename Device::template Buffer<T>;

  /// Stores the rows of x [n x d] (host memory) on a default-made Device; every byte the
  /// search takes there is counted against `budget` (BudgetExceeded beyond, naming `stage`).
  TiledRowSearch(const float* x, int64_t n, int64_t d, int64_t budget, const char* stage,
                 TileLimits limits = {})
      : n_(n), d_(d), budget_(budget), stage_(stage), limits_(limits) {
    RINGSCAN_EXPECTS(d <= std::numeric_limits<int>::max(), stage_ + ": dimension too large");
    RINGSCAN_EXPECTS(budget > 0, stage_ + ": the device memory budget must be positive");
    resident_ = n * d * int64_t(sizeof(Stored)) + n * 4;
    require(resident_ + device_.staging_bytes(n, d), "its rows");
    rows_ = Buffer<Stored>(n * d);
    norms_ = Buffer<float>(n);
    if (n > 0) device_.store_rows(x, n, d, rows_.data(), norms_.data());
  }

  RowNeighbours nearest_others(const int64_t* queries, int64_t nq, const int64_t* members,
                               int64_t m, float radius, int64_t cap) override {
    const int64_t* query_ids = upload_ids(queries, nq, ws_.query_ids);
    const int64_t* member_ids = upload_ids(members, m, ws_.member_ids);
    const Operand q{rows_.data(), norms_.data(), query_ids, nq};
    const Operand c{rows_.data(), norms_.data(), member_ids, m};
    return search(q, c, true, radius, cap, 0);
  }

  /// The device it runs on (its figures, for tests).
  const Device& device() const { return device_; }

  void nearest_centroids(const float* centroids, int64_t k, int64_t probes, int64_t* cell,
                         float* dist2) override {
    require(resident_ + k * d_ * int64_t(sizeof(Stored) + 4) + device_.staging_bytes(k, d_),
            "its centroids");
    Buffer<Stored> stored(k * d_);
    Buffer<float> norms(k);
    if (k > 0) device_.store_rows(centroids, k, d_, stored.data(), norms.data());
    const Operand q{rows_.data(), norms_.data(), nullptr, n_};
    const Operand c{stored.data(), norms.data(), nullptr, k};
    const RowNeighbours found = search(q, c, false, -1.0f, probes, k * d_ * int64_t(sizeof(Stored) + 4));
    for (int64_t r = 0; r < n_; ++r) {
      RINGSCAN_ASSERT(found.offsets[r + 1] - found.offsets[r] == probes,
                      stage_ + ": a row found fewer centroids than asked");
      std::copy_n(&found.other[found.offsets[r]], probes, cell + r * probes);
      std::copy_n(&found.distance[found.offsets[r]], probes, dist2 + r * probes);
    }
  }

 private:
  /// Rows of one side of a search: a matrix [.. x d] with its row norms, and which of its
  /// rows take part (ids in device memory, or null for rows [0, count)).
  struct Operand {
    const Stored* rows;
    const float* norms;
    const int64_t* ids;
    int64_t count;
  };

  /// The per-search buffers, kept between searches: a partitioned join runs thousands, and
  /// allocating per search would synchronise the device each time.
  struct Workspace {
    Buffer<float> scores, best_dist;
    Buffer<int64_t> best_row, query_ids, member_ids;
    Buffer<int> best_count;
    Buffer<Stored> query_rows, column_rows;

    int64_t bytes() const {
      return 4 * int64_t(scores.size() + best_dist.size() + best_count.size()) +
             8 * int64_t(best_row.size() + query_ids.size() + member_ids.size()) +
             int64_t(sizeof(Stored)) * int64_t(query_rows.size() + column_rows.size());
    }
    /// Frees everything but the ids (which the current search is using).
    void release_tiles() {
      scores = Buffer<float>();
      best_dist = Buffer<float>();
      best_row = Buffer<int64_t>();
      best_count = Buffer<int>();
      query_rows = Buffer<Stored>();
      column_rows = Buffer<Stored>();
    }
  };

  /// Makes `buffer` hold at least n elements, keeping it when it already does.
  template <class T>
  static void grow(Buffer<T>& buffer, int64_t n) {
    if (int64_t(buffer.size()) < n) {
      buffer = Buffer<T>();  // free first: the old and new never coexist
      buffer = Buffer<T>(n);
    }
  }

  /// ids [n] copied into `buffer`, or null for null ids.
  const int64_t* upload_ids(const int64_t* ids, int64_t n, Buffer<int64_t>& buffer) {
    if (!ids) return nullptr;
    const int64_t more = std::max<int64_t>(0, n - int64_t(buffer.size())) * 8;
    // Earlier searches' tiles are a cache: drop them before refusing (search() sizes anew).
    if (resident_ + ws_.bytes() + more > budget_) ws_.release_tiles();
    require(resident_ + ws_.bytes() + more, "its row ids");
    grow(buffer, n);
    if (n > 0) device_.upload(ids, n, buffer.data());
    return buffer.data();
  }

  void require(int64_t bytes, const char* what) const {
    require_device_memory(double(bytes), budget_, stage_ + " on the device, for " + what + ",");
  }

  /// For each query of q: its up to `cap` nearest columns of c (not itself when
  /// exclude_self), within radius when radius >= 0. `extra` bytes are already held.
  RowNeighbours search(const Operand& q, const Operand& c, bool exclude_self, float radius,
                       int64_t cap, int64_t extra) {
    const auto started = std::chrono::steady_clock::now();
    const int64_t nq = q.count, nc = c.count;
    RowNeighbours result;
    result.offsets.assign(nq + 1, 0);
    cap = std::min<int64_t>(cap, nc);
    if (nq == 0 || nc == 0 || cap < 1) return result;
    RINGSCAN_EXPECTS(cap <= limits_.max_neighbours,
                     stage_ + ": at most " + std::to_string(limits_.max_neighbours) +
                         " neighbours per row on the device");
    const int64_t slots = portable::nearest_selection_slots(cap, device_.select_threads());

    // Fixed costs: resident rows, ids, the per-query lists and the gathered query block; the
    // rest goes to the score tile (at most max_score_tile bytes) and the gathered columns.
    const int64_t row_bytes = d_ * int64_t(sizeof(Stored));
    const int64_t q_block = std::min(limits_.query_block, nq);
    const int64_t ids = 8 * int64_t(ws_.query_ids.size() + ws_.member_ids.size());
    const int64_t fixed = resident_ + extra + ids + q_block * (cap * 12 + 4) + (q.ids ? q_block * row_bytes : 0);
    const int64_t per_column = q_block * 4 + (c.ids ? row_bytes : 0);
    const int64_t min_tile = std::min(limits_.min_column_tile, nc);
    int64_t c_tile = std::min<int64_t>(nc, (budget_ - fixed) / per_column);
    c_tile = std::min<int64_t>(c_tile, limits_.max_score_tile / (4 * q_block));
    if (c_tile < min_tile) require(fixed + per_column * min_tile, "its score tile");
    // Keep the buffers of earlier searches where they are large enough, unless keeping them
    // would hold more than the budget.
    if (fixed - ids + per_column * c_tile + ws_.bytes() > budget_) ws_.release_tiles();
    grow(ws_.scores, q_block * c_tile);
    if (q.ids) grow(ws_.query_rows, q_block * d_);
    if (c.ids) grow(ws_.column_rows, c_tile * d_);
    grow(ws_.best_dist, q_block * cap);
    grow(ws_.best_row, q_block * cap);
    grow(ws_.best_count, q_block);
    std::vector<float> host_dist(nq * cap);
    std::vector<int64_t> host_row(nq * cap);
    std::vector<int> count(nq);
    for (int64_t q0 = 0; q0 < nq; q0 += q_block) {
      const int64_t bq = std::min(q_block, nq - q0);
      const portable::Side query_side{q.ids ? q.ids + q0 : nullptr, q0};
      const Stored* query_matrix = contiguous(q, q0, bq, ws_.query_rows);
      device_.clear(ws_.best_count.data(), bq);
      for (int64_t c0 = 0; c0 < nc; c0 += c_tile) {
        const int64_t bc = std::min(c_tile, nc - c0);
        const portable::Side column_side{c.ids ? c.ids + c0 : nullptr, c0};
        const Stored* column_matrix = contiguous(c, c0, bc, ws_.column_rows);
        device_.inner_products(query_matrix, bq, column_matrix, bc, d_, ws_.scores.data());
        const portable::SelectionTile tile{ws_.scores.data(), bc, query_side, column_side,
                                           q.norms, c.norms, exclude_self, radius, int(cap),
                                           int(slots), ws_.best_dist.data(), ws_.best_row.data(),
                                           ws_.best_count.data()};
        device_.select(tile, bq);
      }
      device_.download(ws_.best_dist.data(), bq * cap, host_dist.data() + q0 * cap);
      device_.download(ws_.best_row.data(), bq * cap, host_row.data() + q0 * cap);
      device_.download(ws_.best_count.data(), bq, count.data() + q0);
      device_.synchronize();
    }
    work_.flop += 2.0 * double(nq) * double(nc) * double(d_);
    work_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (int64_t i = 0; i < nq; ++i) result.offsets[i + 1] = result.offsets[i] + count[i];
    result.other.resize(result.offsets[nq]);
    result.distance.resize(result.offsets[nq]);
    for (int64_t i = 0; i < nq; ++i) {
      std::copy_n(&host_row[i * cap], count[i], &result.other[result.offsets[i]]);
      std::copy_n(&host_dist[i * cap], count[i], &result.distance[result.offsets[i]]);
    }
    return result;
  }

  /// Rows [first, first + count) of operand o as one contiguous matrix: in place for a
  /// range, gathered into `scratch` for ids.
  const Stored* contiguous(const Operand& o, int64_t first, int64_t count, Buffer<Stored>& scratch) {
    if (!o.ids) return o.rows + first * d_;
    device_.gather(o.rows, d_, o.ids + first, count, scratch.data());
    return scratch.data();
  }

  Device device_;
  int64_t n_, d_, budget_, resident_ = 0;
  std::string stage_;
  TileLimits limits_;
  Buffer<Stored> rows_;
  Buffer<float> norms_;
  Workspace ws_;
};

}  // namespace ringscan
