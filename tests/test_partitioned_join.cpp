// The partitioned self-join (the CUDA backend's join above its exact size), run here with a
// brute-force host search: the partition, the per-cell bookkeeping, the representatives and
// the pair filter are the code the device runs.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "evidence_math.hpp"
#include "host_row_search.hpp"
#include "partitioned_join.hpp"
#include "union_find.hpp"

using namespace ringscan;
using ringscan::testing::HostRowSearch;
using ringscan::testing::noisy_copies;

namespace {

constexpr float kTau = 0.9f;
const float kRadius = 2.0f * (1.0f - kTau) + 0.02f;

/// The request index's filter at kTau.
JoinFilter cosine_at_least(const std::vector<float>& x, int64_t d) {
  return ringscan::testing::cosine_at_least(x, d, kTau);
}

std::set<std::pair<int64_t, int64_t>> as_set(const std::vector<RequestPair>& pairs) {
  std::set<std::pair<int64_t, int64_t>> s;
  for (const auto& p : pairs) s.emplace(p.first, p.second);
  return s;
}

/// The exact join: every row against every other.
std::vector<RequestPair> exact_pairs(const std::vector<float>& x, int64_t n, int64_t d, float radius,
                                     int64_t cap, const JoinFilter& accept) {
  HostRowSearch search(x.data(), n, d);
  std::vector<RequestPair> pairs;
  append_neighbour_pairs(search.nearest_others(nullptr, n, nullptr, n, radius, cap), nullptr, accept, pairs);
  make_canonical(pairs);
  return pairs;
}

bool is_canonical(const std::vector<RequestPair>& pairs) {
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (pairs[i].first >= pairs[i].second) return false;
    if (i > 0 && std::make_pair(pairs[i - 1].first, pairs[i - 1].second) >=
                     std::make_pair(pairs[i].first, pairs[i].second))
      return false;
  }
  return true;
}

Context quiet_context() {
  Context ctx;
  ctx.threads = 2;
  return ctx;
}

/// Prompts sent several times each (noisy_copies), joined by the partitioned join with a
/// host search and by the exact join, at kTau.
struct NoisyPrompts {
  int64_t d, n;
  std::vector<float> x;
  JoinFilter accept;
  int64_t searches = 0;  ///< searches the last partitioned join made

  NoisyPrompts(int64_t prompts, int64_t copies, int64_t dim, uint64_t seed)
      : d(dim), n(prompts * copies), x(noisy_copies(prompts, copies, dim, seed)),
        accept(cosine_at_least(x, dim)) {}
  std::vector<RequestPair> partitioned(PartitionShape shape, int64_t cap) {
    HostRowSearch search(x.data(), n, d);
    auto pairs = partitioned_self_join(search, x.data(), n, d, kRadius, cap, accept, shape,
                                       quiet_context(), "test");
    searches = search.searches;
    return pairs;
  }
  std::vector<RequestPair> exact(int64_t cap) const { return exact_pairs(x, n, d, kRadius, cap, accept); }
};

}  // namespace

TEST(PartitionedSelfJoin, FindsNearlyAllNearDuplicatesTheExactJoinFinds) {
  NoisyPrompts rows(150, 20, 32, 7);
  const auto found = rows.partitioned(PartitionShape{200, 2}, 24);
  EXPECT_GT(rows.searches, 10) << "the rows were not split into cells";
  ASSERT_TRUE(is_canonical(found));
  const auto exact = as_set(rows.exact(24));
  const auto got = as_set(found);
  ASSERT_GT(exact.size(), 20000u);
  std::size_t common = 0;
  for (const auto& p : got) common += exact.count(p);
  EXPECT_EQ(common, got.size()) << "a pair the exact join does not find";
  EXPECT_GE(double(common), 0.97 * double(exact.size()));
  for (const auto& p : found) EXPECT_GE(p.similarity, kTau);
}

TEST(PartitionedSelfJoin, LinksABlobOfIdenticalRowsCutIntoManyCellsThroughRepresentatives) {
  // 1,200 copies of one prompt among 800 others, cells of about 100 rows searched only in
  // their own cell: k-means cuts the blob into many cells whose members never meet.
  const int64_t d = 16;
  std::vector<int64_t> prompt;
  auto x = noisy_copies(400, 2, d, 11, &prompt);
  const auto blob = noisy_copies(1, 1200, d, 12);
  x.insert(x.end(), blob.begin(), blob.end());
  const int64_t n = int64_t(x.size()) / d;
  const auto accept = cosine_at_least(x, d);
  HostRowSearch search(x.data(), n, d);
  const auto found = partitioned_self_join(search, x.data(), n, d, kRadius, 24, accept,
                                           PartitionShape{100, 1}, quiet_context(), "test");
  std::vector<int64_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  for (const auto& p : found) union_sets(parent.data(), p.first, p.second);
  const int64_t first_blob_row = 800;
  for (int64_t r = first_blob_row; r < n; ++r)
    ASSERT_EQ(find_root(parent.data(), r), find_root(parent.data(), first_blob_row)) << "row " << r;
  // Bounded: each row keeps at most 24 per cell it visits, plus the representatives' pairs.
  EXPECT_LE(int64_t(found.size()), n * 24 + 20 * 24);
}

TEST(PartitionedSelfJoin, KnnModeKeepsEachRowsNearestInItsCells) {
  const int64_t d = 24, n = 2000, k = 5;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> x(n * d);
  for (auto& v : x) v = normal(rng);
  const JoinFilter keep_all = [](int64_t, int64_t, float, float*) { return true; };
  HostRowSearch search(x.data(), n, d);
  const auto found = partitioned_self_join(search, x.data(), n, d, -1.0f, k, keep_all,
                                           PartitionShape{250, 2}, quiet_context(), "test");
  ASSERT_TRUE(is_canonical(found));
  std::vector<int64_t> degree(n, 0);
  for (const auto& p : found) {
    ++degree[p.first];
    ++degree[p.second];
  }
  for (int64_t r = 0; r < n; ++r) ASSERT_GE(degree[r], k) << "row " << r;
  // Random rows are the hard case for a partition; two probes still find most true
  // neighbours.
  const auto exact = exact_pairs(x, n, d, -1.0f, k, keep_all);
  const auto got = as_set(found);
  std::size_t common = 0;
  for (const auto& p : exact) common += got.count({p.first, p.second});
  EXPECT_GE(double(common), 0.6 * double(exact.size()));
}

TEST(PartitionedSelfJoin, IsTheSameOnAnyThreadCountAndRun) {
  NoisyPrompts rows(60, 25, 16, 21);
  std::vector<std::vector<RequestPair>> runs;
  for (int threads : {1, 2, 2}) {
    omp_set_num_threads(threads);
    runs.push_back(rows.partitioned(PartitionShape{150, 2}, 8));
  }
  omp_set_num_threads(2);
  ASSERT_FALSE(runs[0].empty());
  for (std::size_t i = 1; i < runs.size(); ++i) {
    ASSERT_EQ(runs[i].size(), runs[0].size());
    for (std::size_t j = 0; j < runs[0].size(); ++j) {
      EXPECT_EQ(runs[i][j].first, runs[0][j].first);
      EXPECT_EQ(runs[i][j].second, runs[0][j].second);
      EXPECT_EQ(runs[i][j].similarity, runs[0][j].similarity);
    }
  }
}

TEST(PartitionedSelfJoin, OneCellIsTheExactJoinAndTinyInputsGiveNothing) {
  NoisyPrompts rows(30, 4, 16, 5);
  const auto found = rows.partitioned(PartitionShape{1000, 2}, 24);
  EXPECT_EQ(rows.searches, 1);
  EXPECT_EQ(as_set(found), as_set(rows.exact(24)));
  EXPECT_FALSE(found.empty());
  NoisyPrompts one(1, 1, 16, 5);
  EXPECT_TRUE(one.partitioned(PartitionShape{}, 24).empty());
}
