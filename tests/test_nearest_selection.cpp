// The device search's per-query selection (host/portable/nearest_selection.hpp, the body of
// cuda/nearest_rows.cu's kernel) run here on emulated blocks of host threads: the kernel's
// code with its barriers and its racing admissions, tile after tile, against a brute-force
// sort of every candidate by (distance, row).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <ostream>
#include <random>
#include <tuple>
#include <vector>

#include "emulated_block.hpp"
#include "portable/nearest_selection.hpp"

using namespace ringscan;
using ringscan::testing::EmulatedBlock;
using ringscan::testing::run_emulated_block;

namespace {

/// Per query, its neighbours as (squared distance, row), nearest first.
using Lists = std::vector<std::vector<std::pair<float, int64_t>>>;

struct SelectionCase {
  const char* name;
  int threads;           ///< of the emulated block
  int cap;
  float radius;          ///< < 0: none
  bool exclude_self;
  bool column_ids;       ///< columns given by ids (a cell's members), else a range of rows
  int64_t columns;
  int64_t tile_columns;  ///< columns per tile: the list is carried from tile to tile
};

void PrintTo(const SelectionCase& c, std::ostream* os) { *os << c.name; }

/// Squared norms and inner products of small integers (halves), so that distances are exact
/// and many tie: the row breaks ties, and rounding decides nothing.
struct Problem {
  int64_t rows = 0;
  std::vector<float> norms;            ///< [rows], by row id
  std::vector<int64_t> queries;        ///< query row ids
  std::vector<int64_t> columns;        ///< column row ids
  std::vector<float> scores;           ///< [queries x columns]
};

Problem make_problem(const SelectionCase& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Problem p;
  p.rows = 3 * c.columns + 50;
  p.norms.resize(size_t(p.rows));
  for (float& v : p.norms) v = float(rng() % 9);
  std::vector<int64_t> all(size_t(p.rows));
  std::iota(all.begin(), all.end(), 0);
  if (c.column_ids) {
    std::shuffle(all.begin(), all.end(), rng);
    p.columns.assign(all.begin(), all.begin() + c.columns);
  } else {
    const int64_t first = 7;
    for (int64_t j = 0; j < c.columns; ++j) p.columns.push_back(first + j);
  }
  // Queries: 8 among the columns (their own row is then a candidate unless excluded), 8 not.
  for (int64_t j = 0; j < 8; ++j) p.queries.push_back(p.columns[size_t(j * c.columns / 8)]);
  for (int64_t r = 0; r < p.rows && p.queries.size() < 16; r += 3)
    if (std::find(p.columns.begin(), p.columns.end(), r) == p.columns.end()) p.queries.push_back(r);
  p.scores.resize(p.queries.size() * p.columns.size());
  for (float& s : p.scores) s = float(int64_t(rng() % 17) - 4) * 0.5f;
  return p;
}

/// Every query's list by brute force: all admissible columns sorted by (distance, row), the
/// first cap.
Lists brute_force(const SelectionCase& c, const Problem& p) {
  Lists lists(p.queries.size());
  for (size_t qi = 0; qi < p.queries.size(); ++qi) {
    const int64_t q = p.queries[qi];
    auto& list = lists[qi];
    for (size_t j = 0; j < p.columns.size(); ++j) {
      const int64_t other = p.columns[j];
      if (c.exclude_self && other == q) continue;
      const float d2 = portable::squared_distance(p.norms[size_t(q)], p.norms[size_t(other)],
                                                  p.scores[qi * p.columns.size() + j]);
      if (c.radius < 0 || d2 <= c.radius) list.emplace_back(d2, other);
    }
    std::sort(list.begin(), list.end());
    if (list.size() > size_t(c.cap)) list.resize(size_t(c.cap));
  }
  return lists;
}

/// Every query's list as the kernel builds it: one emulated block per query and tile, the
/// tiles in order, the lists carried between them in best_* as on the device.
Lists selected(const SelectionCase& c, const Problem& p) {
  const int64_t nq = int64_t(p.queries.size()), nc = int64_t(p.columns.size());
  const int slots = int(portable::nearest_selection_slots(c.cap, c.threads));
  std::vector<float> best_dist(size_t(nq * c.cap), -1.0f);
  std::vector<int64_t> best_row(size_t(nq * c.cap), -1);
  std::vector<int> best_count(size_t(nq), 0);
  std::vector<float> tile_scores;
  for (int64_t c0 = 0; c0 < nc; c0 += c.tile_columns) {
    const int64_t bc = std::min(c.tile_columns, nc - c0);
    tile_scores.resize(size_t(nq * bc));
    for (int64_t qi = 0; qi < nq; ++qi)
      std::copy_n(&p.scores[size_t(qi * nc + c0)], bc, &tile_scores[size_t(qi * bc)]);
    const portable::Side column = c.column_ids ? portable::Side{p.columns.data() + c0, 0}
                                               : portable::Side{nullptr, p.columns[0] + c0};
    const portable::SelectionTile tile{tile_scores.data(), bc, portable::Side{p.queries.data(), 0},
                                       column, p.norms.data(), p.norms.data(), c.exclude_self,
                                       c.radius, c.cap, slots, best_dist.data(), best_row.data(),
                                       best_count.data()};
    for (int64_t qi = 0; qi < nq; ++qi) {
      // Shared memory holds garbage when a block starts.
      std::vector<float> dist(size_t(slots), -7.0f);
      std::vector<int64_t> row(size_t(slots), -7);
      portable::SelectionState state{-1, -7.0f, -7};
      run_emulated_block(c.threads, [&](const EmulatedBlock& block) {
        portable::select_nearest_of_query(block, tile, qi, dist.data(), row.data(), state);
      });
    }
  }
  Lists lists(static_cast<size_t>(nq));
  for (int64_t qi = 0; qi < nq; ++qi)
    for (int t = 0; t < best_count[size_t(qi)]; ++t)
      lists[size_t(qi)].emplace_back(best_dist[size_t(qi * c.cap + t)], best_row[size_t(qi * c.cap + t)]);
  return lists;
}

class NearestSelection : public ::testing::TestWithParam<SelectionCase> {};

TEST_P(NearestSelection, KeepsEachQuerysCapNearestAsBruteForceAcrossTiles) {
  const SelectionCase& c = GetParam();
  for (uint64_t seed : {1u, 2u}) {
    const Problem p = make_problem(c, seed);
    const auto expected = brute_force(c, p);
    const auto found = selected(c, p);
    ASSERT_EQ(found.size(), expected.size());
    int64_t listed = 0;
    for (size_t qi = 0; qi < expected.size(); ++qi) {
      EXPECT_EQ(found[qi], expected[qi]) << c.name << ", seed " << seed << ", query row " << p.queries[qi];
      listed += int64_t(expected[qi].size());
    }
    EXPECT_GT(listed, 0) << "the case selects nothing: it would test nothing";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, NearestSelection,
    ::testing::Values(
        // One tile; a list of one.
        SelectionCase{"cap1", 8, 1, -1.0f, true, false, 100, 100},
        // Many rounds per tile, so the slots fill and merge mid-scan; the list carried over
        // tiles of odd sizes, the last one narrower than the block.
        SelectionCase{"midscan", 16, 5, -1.0f, true, true, 400, 137},
        // A threshold join's radius, the query's own row kept.
        SelectionCase{"radius", 16, 20, 3.0f, false, true, 300, 120},
        // A cap above what the radius admits: lists stay short of full across tiles.
        SelectionCase{"short", 16, 150, 1.0f, true, false, 300, 40},
        // A cap near the columns' count, tiles narrower than the block.
        SelectionCase{"wide", 32, 60, -1.0f, true, true, 70, 25},
        // A block wider than the first power of two its list needs.
        SelectionCase{"bigblock", 64, 3, 4.0f, true, false, 200, 200}),
    [](const ::testing::TestParamInfo<SelectionCase>& info) { return std::string(info.param.name); });

}  // namespace
