// The device's row search (host/tiled_row_search.hpp: the tiling, the ids, the lists carried
// from tile to tile, the budget) run on a host device: loops for the GEMM and the gathers,
// emulated thread blocks for the selection kernel's code. Rows of small integers make every
// distance exact, so the results must equal HostRowSearch's brute force.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "device_budget.hpp"
#include "device_like_buffer.hpp"
#include "emulated_block.hpp"
#include "evidence_math.hpp"
#include "host_row_search.hpp"
#include "portable/nearest_selection.hpp"
#include "ringscan/error.hpp"
#include "tiled_row_search.hpp"

using namespace ringscan;
using ringscan::testing::DeviceLikeBuffer;
using ringscan::testing::DeviceLikeBytes;
using ringscan::testing::EmulatedBlock;
using ringscan::testing::HostRowSearch;
using ringscan::testing::run_emulated_block;

namespace {

/// The Device of TiledRowSearch on the host, rows stored as float; selection blocks of
/// `Threads` emulated threads.
template <int Threads>
struct HostSearchDevice {
  template <class T>
  using Buffer = DeviceLikeBuffer<T>;

  int select_threads() const { return Threads; }
  int64_t staging_bytes(int64_t, int64_t) const { return 0; }
  void store_rows(const float* x, int64_t n, int64_t d, float* rows, float* norms) {
    std::copy_n(x, n * d, rows);
    for (int64_t r = 0; r < n; ++r) norms[r] = dot_product(x + r * d, x + r * d, d);
  }
  void upload(const int64_t* host, int64_t n, int64_t* device) { std::copy_n(host, n, device); }
  void gather(const float* rows, int64_t d, const int64_t* ids, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) std::copy_n(rows + ids[i] * d, d, out + i * d);
  }
  void inner_products(const float* q, int64_t nq, const float* c, int64_t nc, int64_t d, float* scores) {
    for (int64_t i = 0; i < nq; ++i)
      for (int64_t j = 0; j < nc; ++j) scores[i * nc + j] = dot_product(q + i * d, c + j * d, d);
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

/// Rows 0 .. kRows - 1 in a random order.
std::vector<int64_t> shuffled_rows(uint64_t seed) {
  std::vector<int64_t> order(kRows);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  return order;
}

TEST(TiledRowSearch, FindsEveryQuerysNearestAmongSubsetsAsBruteForce) {
  const std::vector<float> x = integer_rows(kRows, kDim, 5);
  HostTiledSearch search(x.data(), kRows, kDim, kLargeBudget, "test search", small_tiles());
  HostRowSearch reference(x.data(), kRows, kDim);
  const int64_t before = search.device().selections;
  expect_same(search.nearest_others(nullptr, kRows, nullptr, kRows, -1.0f, 5),
              reference.nearest_others(nullptr, kRows, nullptr, kRows, -1.0f, 5), "all rows");
  // 5 query blocks of 64 queries by 8 column tiles of 40: the tiling is what is tested.
  EXPECT_EQ(search.device().selections - before, 5 * 8);
  const std::vector<int64_t> all = shuffled_rows(6);
  // Queries: 150 shuffled rows; members: 200 shuffled rows, overlapping them.
  const std::vector<int64_t> queries(all.begin(), all.begin() + 150);
  const std::vector<int64_t> members(all.begin() + 70, all.begin() + 270);
  for (const auto& [radius, cap] : {std::pair<float, int64_t>{-1.0f, 5}, {6.0f, 40}, {-1.0f, 1}}) {
    const std::string what = "radius " + std::to_string(radius) + ", cap " + std::to_string(cap);
    expect_same(search.nearest_others(queries.data(), 150, members.data(), 200, radius, cap),
                reference.nearest_others(queries.data(), 150, members.data(), 200, radius, cap),
                "subsets, " + what);
    expect_same(search.nearest_others(nullptr, kRows, nullptr, kRows, radius, cap),
                reference.nearest_others(nullptr, kRows, nullptr, kRows, radius, cap), "all rows, " + what);
  }
  // A cap above the members: every member but the query itself.
  expect_same(search.nearest_others(queries.data(), 10, members.data(), 12, -1.0f, 50),
              reference.nearest_others(queries.data(), 10, members.data(), 12, -1.0f, 50), "cap above members");
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
  std::vector<int64_t> expected_cell(kRows * probes);
  std::vector<float> expected_dist2(kRows * probes);
  HostRowSearch(x.data(), kRows, kDim)
      .nearest_centroids(centroids.data(), 50, probes, expected_cell.data(), expected_dist2.data());
  EXPECT_EQ(cell, expected_cell);
  EXPECT_EQ(dist2, expected_dist2);
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
  DeviceLikeBytes::reset();
  const int64_t held_before = DeviceLikeBytes::live;
  HostTiledSearch search(x.data(), kRows, kDim, budget, "test search", limits);
  HostRowSearch reference(x.data(), kRows, kDim);
  const std::vector<int64_t> order = shuffled_rows(10);
  const int64_t* queries = order.data();
  for (const auto& [m, cap] : {std::pair<int64_t, int64_t>{200, 5}, {210, 200}, {200, 5}, {40, 30}, {210, 200}}) {
    const int64_t* members = order.data() + kRows - m;
    expect_same(search.nearest_others(queries, 64, members, m, -1.0f, cap),
                reference.nearest_others(queries, 64, members, m, -1.0f, cap),
                std::to_string(m) + " members, cap " + std::to_string(cap));
  }
  EXPECT_LE(DeviceLikeBytes::peak - held_before, budget) << "the searches held more than their budget";
}

TEST(TiledRowSearch, DropsEarlierTilesWhenTheNextSearchsIdsWouldPassTheBudget) {
  // Search A (64 query ids, 40 member ids) keeps its tiles; search B brings 300 + 300 ids.
  // The budget fits B alone, not B's ids beside A's kept tiles: uploading B's ids must drop
  // those tiles first (the cache, not the ids in use), then B sizes its own.
  const std::vector<float> x = integer_rows(kRows, kDim, 13);
  const TileLimits limits = small_tiles();  // query blocks of 64, tiles of at least 8 columns
  const int64_t resident = kRows * kDim * 4 + kRows * 4, row = kDim * 4, cap = 5;
  const int64_t lists = 64 * (cap * 12 + 4), per_column = 64 * 4 + row;
  const int64_t budget = resident + 8 * 600 + lists + 64 * row + 10 * per_column;  // B: 10 columns
  // A's tiles as A sizes them within that budget, and its ids.
  const int64_t a_ids = 8 * (64 + 40);
  const int64_t a_columns = std::min<int64_t>(40, (budget - resident - a_ids - lists - 64 * row) / per_column);
  const int64_t a_held = a_ids + lists + 64 * row + a_columns * per_column;
  ASSERT_GE(a_columns, limits.min_column_tile);
  ASSERT_GT(resident + a_held + 8 * (300 - 64), budget) << "B's query ids would fit beside A's tiles";
  DeviceLikeBytes::reset();
  const int64_t held_before = DeviceLikeBytes::live;
  HostTiledSearch search(x.data(), kRows, kDim, budget, "test search", limits);
  HostRowSearch reference(x.data(), kRows, kDim);
  const std::vector<int64_t> order = shuffled_rows(14);
  expect_same(search.nearest_others(order.data(), 64, order.data() + 100, 40, -1.0f, cap),
              reference.nearest_others(order.data(), 64, order.data() + 100, 40, -1.0f, cap), "search A");
  expect_same(search.nearest_others(order.data(), kRows, order.data(), kRows, -1.0f, cap),
              reference.nearest_others(order.data(), kRows, order.data(), kRows, -1.0f, cap), "search B");
  EXPECT_LE(DeviceLikeBytes::peak - held_before, budget) << "the searches held more than their budget";
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

TEST(DeviceBudget, ABatchShrinksToTheRoomTheBudgetLeavesAndIsRefusedBelowItsLeast) {
  constexpr int64_t kMost = 1 << 20, kLeast = 1024, kPerItem = 40;
  // No budget, or room to spare: the largest batch.
  EXPECT_EQ(batch_within_budget(0, 1e9, kPerItem, kMost, kLeast, "pairs"), kMost);
  EXPECT_EQ(batch_within_budget(int64_t(1) << 40, 1e6, kPerItem, kMost, kLeast, "pairs"), kMost);
  // Room for 5000 items after what the stage holds: 5000 of them.
  EXPECT_EQ(batch_within_budget(1000000 + 5000 * kPerItem, 1e6, kPerItem, kMost, kLeast, "pairs"), 5000);
  // Exactly the least.
  EXPECT_EQ(batch_within_budget(1000000 + kLeast * kPerItem, 1e6, kPerItem, kMost, kLeast, "pairs"), kLeast);
  // Below it: refused, naming the stage.
  try {
    batch_within_budget(1000000 + 10 * kPerItem, 1e6, kPerItem, kMost, kLeast, "pair evidence on the device");
    FAIL() << "no exception";
  } catch (const BudgetExceeded& e) {
    EXPECT_NE(std::string(e.what()).find("pair evidence on the device"), std::string::npos) << e.what();
  }
}
