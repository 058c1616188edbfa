// The device's row search (host/tiled_row_search.hpp: the tiling, the ids, the lists carried
// from tile to tile, the budget) run on a host device: loops for the GEMM and the gathers,
// emulated thread blocks for the selection kernel's code. Rows of small integers make every
// distance exact, so the results must equal a brute-force sort by (distance, row).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "emulated_block.hpp"
#include "portable/nearest_selection.hpp"
#include "ringscan/error.hpp"
#include "tiled_row_search.hpp"

using namespace ringscan;
using ringscan::testing::EmulatedBlock;
using ringscan::testing::run_emulated_block;

namespace {

/// Inner product in float, in order: the host device's GEMM and the reference share it.
float dot(const float* a, const float* b, int64_t d) {
  float s = 0;
  for (int64_t i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

/// Bytes of host-device memory held now, and the most held at once since reset.
struct DeviceBytes {
  static inline int64_t live = 0, peak = 0;
  static void add(int64_t b) {
    live += b;
    peak = std::max(peak, live);
  }
  static void reset() { peak = live; }
};

/// Device memory of the host device: garbage at first, as cudaMalloc's, and counted, so
/// that a test can hold the search to its budget.
template <class T>
class HostDeviceBuffer {
 public:
  static_assert(std::is_trivially_copyable_v<T>, "poisoned as bytes");
  HostDeviceBuffer() = default;
  explicit HostDeviceBuffer(int64_t n) : data_(static_cast<size_t>(n)) {
    if (n > 0) std::memset(static_cast<void*>(data_.data()), 0xA5, sizeof(T) * static_cast<size_t>(n));
    DeviceBytes::add(bytes());
  }
  HostDeviceBuffer(HostDeviceBuffer&& other) noexcept : data_(std::move(other.data_)) { other.data_.clear(); }
  HostDeviceBuffer& operator=(HostDeviceBuffer&& other) noexcept {
    DeviceBytes::add(-bytes());
    data_ = std::move(other.data_);
    other.data_.clear();
    return *this;
  }
  ~HostDeviceBuffer() { DeviceBytes::add(-bytes()); }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  int64_t size() const { return int64_t(data_.size()); }

 private:
  int64_t bytes() const { return int64_t(sizeof(T) * data_.size()); }
  std::vector<T> data_;
};

/// The Device of TiledRowSearch on the host, rows stored as float; selection blocks of
/// `Threads` emulated threads.
template <int Threads>
struct HostSearchDevice {
  template <class T>
  using Buffer = HostDeviceBuffer<T>;

  int select_threads() const { return Threads; }
  int64_t staging_bytes(int64_t, int64_t) const { return 0; }
  void store_rows(const float* x, int64_t n, int64_t d, float* rows, float* norms) {
    std::copy_n(x, n * d, rows);
    for (int64_t r = 0; r < n; ++r) norms[r] = dot(x + r * d, x + r * d, d);
  }
  void upload(const int64_t* host, int64_t n, int64_t* device) { std::copy_n(host, n, device); }
  void gather(const float* rows, int64_t d, const int64_t* ids, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) std::copy_n(rows + ids[i] * d, d, out + i * d);
  }
  void inner_products(const float* q, int64_t nq, const float* c, int64_t nc, int64_t d, float* scores) {
    for (int64_t i = 0; i < nq; ++i)
      for (int64_t j = 0; j < nc; ++j) scores[i * nc + j] = dot(q + i * d, c + j * d, d);
  }
  void clear(int* counts, int64_t n) { std::fill_n(counts, n, 0); }
  void select(const portable::SelectionTile& tile, int64_t queries) {
    ++selections;
    for (int64_t qi = 0; qi < queries; ++qi) {
      std::vector<float> dist(size_t(tile.slots), -7.0f);  // shared memory: garbage at first
      std::vector<int64_t> row(size_t(tile.slots), -7);
      portable::SelectionState state{-1, -7.0f, -7};
      run_emulated_block(Threads, [&](const EmulatedBlock& block) {
        portable::select_nearest_of_query(block, tile, qi, dist.data(), row.data(), state);
      });
    }
  }
  template <class T>
  void download(const T* device, int64_t n, T* host) {
    std::copy_n(device, n, host);
  }
  void synchronize() {}

  int64_t selections = 0;  ///< select() calls: tiles searched
};

// One thread per selection block: the selection's threads and barriers are
// test_nearest_selection.cpp's subject; here the orchestration around it is, over thousands
// of blocks.
using HostTiledSearch = TiledRowSearch<float, HostSearchDevice<1>>;

/// n rows of d small integers (exact distances, many ties).
std::vector<float> integer_rows(int64_t n, int64_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> x(size_t(n * d));
  for (float& v : x) v = float(int64_t(rng() % 5) - 2);
  return x;
}

/// For each query (null: rows 0..nq), its up to cap nearest among members (null: all rows)
/// other than itself (when exclude_self), within radius when radius >= 0, by brute force.
RowNeighbours brute_force(const std::vector<float>& x, int64_t d, const int64_t* queries, int64_t nq,
                          const int64_t* members, int64_t m, float radius, int64_t cap,
                          bool exclude_self = true) {
  RowNeighbours r;
  r.offsets.assign(size_t(nq + 1), 0);
  for (int64_t i = 0; i < nq; ++i) {
    const int64_t q = queries ? queries[i] : i;
    std::vector<std::pair<float, int64_t>> hits;
    for (int64_t j = 0; j < m; ++j) {
      const int64_t other = members ? members[j] : j;
      if (exclude_self && other == q) continue;
      const float d2 = portable::squared_distance(dot(&x[q * d], &x[q * d], d),
                                                  dot(&x[other * d], &x[other * d], d),
                                                  dot(&x[q * d], &x[other * d], d));
      if (radius < 0 || d2 <= radius) hits.emplace_back(d2, other);
    }
    std::sort(hits.begin(), hits.end());
    hits.resize(size_t(std::min<int64_t>(int64_t(hits.size()), cap)));
    for (const auto& [d2, other] : hits) {
      r.other.push_back(other);
      r.distance.push_back(d2);
    }
    r.offsets[i + 1] = int64_t(r.other.size());
  }
  return r;
}

void expect_same(const RowNeighbours& found, const RowNeighbours& expected, const std::string& what) {
  EXPECT_EQ(found.offsets, expected.offsets) << what;
  EXPECT_EQ(found.other, expected.other) << what;
  EXPECT_EQ(found.distance, expected.distance) << what;
}

/// Small tiles, so that a search of a few hundred rows spans several query blocks and
/// several column tiles.
TileLimits small_tiles() {
  TileLimits t;
  t.query_block = 64;
  t.min_column_tile = 8;
  t.max_score_tile = 4 * 64 * 40;  // 40 columns per tile at 64 queries
  return t;
}

constexpr int64_t kRows = 300, kDim = 8;
constexpr int64_t kLargeBudget = int64_t(1) << 30;

TEST(TiledRowSearch, FindsEveryQuerysNearestAmongSubsetsAsBruteForce) {
  const std::vector<float> x = integer_rows(kRows, kDim, 5);
  HostTiledSearch search(x.data(), kRows, kDim, kLargeBudget, "test search", small_tiles());
  const int64_t before = search.device().selections;
  expect_same(search.nearest_others(nullptr, kRows, nullptr, kRows, -1.0f, 5),
              brute_force(x, kDim, nullptr, kRows, nullptr, kRows, -1.0f, 5), "all rows");
  // 5 query blocks of 64 queries by 8 column tiles of 40: the tiling is what is tested.
  EXPECT_EQ(search.device().selections - before, 5 * 8);
  std::mt19937_64 rng(6);
  std::vector<int64_t> all(kRows);
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  // Queries: 150 shuffled rows; members: 200 shuffled rows, overlapping them.
  const std::vector<int64_t> queries(all.begin(), all.begin() + 150);
  const std::vector<int64_t> members(all.begin() + 70, all.begin() + 270);
  for (const auto& [radius, cap] : {std::pair<float, int64_t>{-1.0f, 5}, {6.0f, 40}, {-1.0f, 1}}) {
    const std::string what = "radius " + std::to_string(radius) + ", cap " + std::to_string(cap);
    expect_same(search.nearest_others(queries.data(), 150, members.data(), 200, radius, cap),
                brute_force(x, kDim, queries.data(), 150, members.data(), 200, radius, cap),
                "subsets, " + what);
    expect_same(search.nearest_others(nullptr, kRows, nullptr, kRows, radius, cap),
                brute_force(x, kDim, nullptr, kRows, nullptr, kRows, radius, cap), "all rows, " + what);
  }
  // A cap above the members: every member but the query itself.
  expect_same(search.nearest_others(queries.data(), 10, members.data(), 12, -1.0f, 50),
              brute_force(x, kDim, queries.data(), 10, members.data(), 12, -1.0f, 50), "cap above members");
  EXPECT_EQ(search.work().flop, 2.0 * kDim * (3 * (150.0 * 200 + kRows * kRows) + kRows * kRows + 10 * 12));
}

TEST(TiledRowSearch, FindsEachRowsNearestCentroidsAsBruteForce) {
  const std::vector<float> x = integer_rows(kRows, kDim, 7);
  const std::vector<float> centroids = integer_rows(50, kDim, 8);
  HostTiledSearch search(x.data(), kRows, kDim, kLargeBudget, "test search", small_tiles());
  const int64_t probes = 2;
  std::vector<int64_t> cell(kRows * probes);
  std::vector<float> dist2(kRows * probes);
  search.nearest_centroids(centroids.data(), 50, probes, cell.data(), dist2.data());
  // The reference: rows and centroids in one matrix, each row's nearest among the centroids.
  std::vector<float> both = x;
  both.insert(both.end(), centroids.begin(), centroids.end());
  std::vector<int64_t> centroid_rows(50);
  std::iota(centroid_rows.begin(), centroid_rows.end(), kRows);
  const RowNeighbours expected =
      brute_force(both, kDim, nullptr, kRows, centroid_rows.data(), 50, -1.0f, probes, false);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t p = 0; p < probes; ++p) {
      EXPECT_EQ(cell[r * probes + p], expected.other[r * probes + p] - kRows) << "row " << r;
      EXPECT_EQ(dist2[r * probes + p], expected.distance[r * probes + p]) << "row " << r;
    }
}

TEST(TiledRowSearch, KeepsWithinATightBudgetAcrossSearchesOfChangingShapes) {
  // Search A (cap 5, 200 members) keeps a wide score tile; search B (cap 200) needs long
  // lists. The budget fits either alone, not A's tile kept beside B's lists: B must drop
  // the tiles A left and size its own to what remains, and the device memory held must
  // never pass the budget.
  const std::vector<float> x = integer_rows(kRows, kDim, 9);
  TileLimits limits = small_tiles();
  limits.max_score_tile = int64_t(1) << 30;
  const int64_t resident = kRows * kDim * 4 + kRows * 4, ids = 8 * (64 + 210), row = kDim * 4;
  const int64_t b_need = 64 * (200 * 12 + 4) + 64 * row + 60 * (64 * 4 + row);  // 60 columns a tile
  const int64_t a_tile = 200 * (64 * 4 + row);
  const int64_t budget = resident + ids + b_need;
  ASSERT_GT(resident + ids + a_tile + b_need, budget);
  DeviceBytes::reset();
  const int64_t held_before = DeviceBytes::live;
  HostTiledSearch search(x.data(), kRows, kDim, budget, "test search", limits);
  std::vector<int64_t> order(kRows);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(10));
  const int64_t* queries = order.data();
  for (const auto& [m, cap] : {std::pair<int64_t, int64_t>{200, 5}, {210, 200}, {200, 5}, {40, 30}, {210, 200}}) {
    const int64_t* members = order.data() + kRows - m;
    expect_same(search.nearest_others(queries, 64, members, m, -1.0f, cap),
                brute_force(x, kDim, queries, 64, members, m, -1.0f, cap),
                std::to_string(m) + " members, cap " + std::to_string(cap));
  }
  EXPECT_LE(DeviceBytes::peak - held_before, budget) << "the searches held more than their budget";
}

TEST(TiledRowSearch, RefusesABudgetTooSmallForOneTileOrForItsRows) {
  const std::vector<float> x = integer_rows(kRows, kDim, 11);
  const int64_t resident = kRows * kDim * 4 + kRows * 4;
  EXPECT_THROW(HostTiledSearch(x.data(), kRows, kDim, resident - 1, "test search", small_tiles()),
               BudgetExceeded);
  HostTiledSearch search(x.data(), kRows, kDim, resident + 1000, "test search", small_tiles());
  try {
    search.nearest_others(nullptr, kRows, nullptr, kRows, -1.0f, 5);
    FAIL() << "a budget without room for one score tile was accepted";
  } catch (const BudgetExceeded& e) {
    EXPECT_NE(std::string(e.what()).find("test search on the device, for its score tile"), std::string::npos)
        << e.what();
  }
}

}  // namespace
