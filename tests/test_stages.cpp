// Stage-level behaviour of the CPU backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "ringscan/account_index.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/request_order.hpp"
#include "parallel.hpp"
#include "test_support.hpp"

using namespace ringscan;

namespace {

Context test_context() {
  Context ctx;
  ctx.threads = 2;
  ctx.memory_budget = int64_t(4) << 30;
  return ctx;
}

/// A dataset of `accounts` accounts and one request each, all with the given embedding rows.
Dataset tiny_dataset(const std::vector<std::vector<float>>& rows, const std::vector<int64_t>& owner,
                     int64_t accounts) {
  Dataset d;
  d.source = "tiny";
  d.dim = int64_t(rows.at(0).size());
  for (int64_t a = 0; a < accounts; ++a) d.account_ids.push_back(1000 + a * 7);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    d.embeddings.insert(d.embeddings.end(), rows[r].begin(), rows[r].end());
    d.request_account.push_back(owner[r]);
    d.request_time.push_back(1767225600 + int64_t(r) * 3600);
  }
  return d;
}

std::vector<float> unit(int64_t d, int64_t hot, float noise = 0, uint32_t seed = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> v(d, 0.0f);
  v[hot] = 1.0f;
  for (auto& x : v) x += noise * n(rng) / std::sqrt(float(d));
  return v;
}

GenerateOptions small_world(uint64_t seed) {
  GenerateOptions g;
  g.accounts = 1500;
  g.dim = 48;
  g.seed = seed;
  g.requests_per_account = 12;
  g.ring_fraction = 0.06;
  return g;
}

}  // namespace

TEST(CanonicalRequests, AreTheSameWhateverTheInputOrder) {
  Context ctx = test_context();
  Dataset d = generate_in_memory(small_world(5), ctx);
  const CanonicalRequests a = canonical_requests(d, ctx);

  const Dataset p = ringscan::testing::permuted(d, 99);
  const CanonicalRequests b = canonical_requests(p, ctx);
  EXPECT_EQ(a.account_id, b.account_id);
  EXPECT_EQ(a.account_offsets, b.account_offsets);
  EXPECT_EQ(a.time, b.time);
  EXPECT_EQ(a.unit_embeddings, b.unit_embeddings);
  EXPECT_EQ(a.features, b.features);
}

/// `d` with its requests listed in `order` (request i of the result is d's order[i]).
static Dataset with_request_order(const Dataset& d, const std::vector<int64_t>& order) {
  Dataset p = d;
  for (std::size_t r = 0; r < order.size(); ++r) {
    p.request_account[r] = d.request_account[order[r]];
    if (d.has_time()) p.request_time[r] = d.request_time[order[r]];
    std::copy_n(&d.embeddings[order[r] * d.dim], d.dim, &p.embeddings[r * d.dim]);
  }
  return p;
}

TEST(CanonicalRequests, TakingTheDatasetOverGivesTheSameAsCopyingIt) {
  // Taken over, the embeddings are permuted in place: cycles cut into segments moved by
  // several threads, short cycles one per task. Copied, they are gathered. Three input
  // orders: random (mostly one long cycle), canonical already (nothing moves), and
  // canonical with neighbours swapped (only 2-cycles); three thread counts.
  Context ctx = test_context();
  const Dataset random_order = ringscan::testing::permuted(generate_in_memory(small_world(6), ctx), 17);
  ASSERT_GT(random_order.num_requests(), 3 * 4096);  // long cycles of several segments
  const std::vector<int64_t> canonical = canonical_requests(random_order, ctx).request_row;
  std::vector<int64_t> swapped = canonical;
  for (std::size_t r = 0; r + 1 < swapped.size(); r += 2) std::swap(swapped[r], swapped[r + 1]);
  for (const Dataset& d : {random_order, with_request_order(random_order, canonical),
                           with_request_order(random_order, swapped)}) {
    const CanonicalRequests expected = canonical_requests(d, ctx);
    for (const int threads : {1, 2, 3}) {
      Context c = ctx;
      c.threads = threads;
      Dataset moved = d;
      const CanonicalRequests got = canonical_requests(std::move(moved), c);
      EXPECT_TRUE(moved.embeddings.empty());
      SCOPED_TRACE(std::to_string(threads) + " threads");
      ringscan::testing::expect_same_order(got, expected);
    }
  }
}

TEST(CanonicalRequests, KeepZeroNormEmbeddingsAtZero) {
  Dataset d = tiny_dataset({std::vector<float>(4, 0.0f), {3, 0, 0, 4}}, {0, 1}, 3);
  const CanonicalRequests c = canonical_requests(d, test_context());
  EXPECT_EQ(std::vector<float>(c.unit_embeddings.begin(), c.unit_embeddings.begin() + 4),
            std::vector<float>(4, 0.0f));
  EXPECT_FLOAT_EQ(c.unit_embeddings[4], 0.6f);
  EXPECT_EQ(c.account_offsets, (std::vector<int64_t>{0, 1, 2, 2}));  // third account: none
}

TEST(NearDuplicatePairs, FindsPlantedDuplicatesAcrossAccountsAndNothingElse) {
  const int64_t D = 32;
  // Requests 0,1,2 are rewordings of one prompt; 3 and 4 are unrelated.
  Dataset d = tiny_dataset({unit(D, 0, 0.1f, 1), unit(D, 0, 0.1f, 2), unit(D, 0, 0.1f, 3),
                            unit(D, 5, 0.1f, 4), unit(D, 9, 0.1f, 5)},
                           {0, 1, 2, 3, 4}, 5);
  const CanonicalRequests req = canonical_requests(d, test_context());
  DetectOptions o;
  const auto pairs = near_duplicate_pairs(req, o, test_context());
  ASSERT_EQ(pairs.size(), 3u);
  for (const auto& p : pairs) {
    EXPECT_LT(p.second, 3);
    EXPECT_GE(p.similarity, o.duplicate_similarity);
  }
}

TEST(NearDuplicatePairs, IvfIndexFindsNearlyAllPairsTheExactIndexFinds) {
  Context ctx = test_context();
  Dataset d = generate_in_memory(small_world(8), ctx);
  const CanonicalRequests req = canonical_requests(d, ctx);
  DetectOptions exact, ivf;
  exact.exact_request_limit = d.num_requests();
  ivf.exact_request_limit = 0;
  ivf.reduced_dim = 32;
  bool was_exact = false;
  const auto e = near_duplicate_pairs(req, exact, ctx, &was_exact);
  EXPECT_TRUE(was_exact);
  const auto v = near_duplicate_pairs(req, ivf, ctx, &was_exact);
  EXPECT_FALSE(was_exact);
  // Both cap neighbours per query, so compare the prompt groups they induce: the share of
  // exact pairs whose requests the IVF pairs also join.
  const PromptGroups gv = prompt_groups(req, v, ivf);
  int64_t joined = 0;
  for (const auto& p : e) joined += gv.group_of_request[p.first] >= 0 &&
                                    gv.group_of_request[p.first] == gv.group_of_request[p.second];
  ASSERT_GT(e.size(), 100u);
  EXPECT_GE(double(joined) / double(e.size()), 0.97);
}

TEST(NearDuplicatePairs, ThousandsOfIdenticalPromptsGiveBoundedPairsAndOneGroup) {
  const int64_t D = 16, n = 3000;
  std::vector<std::vector<float>> rows(n, unit(D, 3));
  std::vector<int64_t> owner(n);
  std::iota(owner.begin(), owner.end(), 0);
  Dataset d = tiny_dataset(rows, owner, n);
  const CanonicalRequests req = canonical_requests(d, test_context());
  DetectOptions o;
  const auto pairs = near_duplicate_pairs(req, o, test_context());
  EXPECT_LE(int64_t(pairs.size()), n * o.duplicate_neighbours);
  const PromptGroups g = prompt_groups(req, pairs, o);
  ASSERT_EQ(g.num_groups, 1);
  EXPECT_EQ(g.accounts_in(0), n);
  EXPECT_TRUE(g.common[0]);  // everyone sends it: no evidence
  EXPECT_FALSE(g.is_evidence(0));
}

TEST(PromptGroups, WeighGroupsByHowManyAccountsSentThem) {
  const int64_t D = 16;
  // Group A: accounts 0 and 1 (and account 0 twice). Group B: one account repeating itself.
  Dataset d = tiny_dataset({unit(D, 0), unit(D, 0), unit(D, 0), unit(D, 7), unit(D, 7), unit(D, 11)},
                           {0, 0, 1, 2, 2, 3}, 100);
  const CanonicalRequests req = canonical_requests(d, test_context());
  DetectOptions o;
  const auto g = prompt_groups(req, near_duplicate_pairs(req, o, test_context()), o);
  ASSERT_EQ(g.num_groups, 2);
  EXPECT_EQ(g.accounts_in(0), 2);
  EXPECT_NEAR(g.idf[0], std::log(100.0 / 2.0), 1e-5);
  EXPECT_TRUE(g.is_evidence(0));
  EXPECT_EQ(g.accounts_in(1), 1);
  EXPECT_FALSE(g.is_evidence(1));  // one account repeating itself is no shared prompt
  EXPECT_EQ(g.group_of_request[5], -1);
}

TEST(AccountProfiles, RobustScoresSurviveAFeatureWhereMostAccountsShareOneValue) {
  Dataset d = tiny_dataset({unit(8, 0), unit(8, 1), unit(8, 2), unit(8, 3), unit(8, 4)},
                           {0, 1, 2, 3, 4}, 5);
  d.feature_dim = 1;
  d.features = {1.0f, 1.0f, 1.0f, 1.0f, 0.2f};  // SDK default for most: MAD is zero
  const AccountProfiles p = account_profiles(canonical_requests(d, test_context()), DetectOptions{}, test_context());
  EXPECT_EQ(p.behaviour[0], 0.0f);
  EXPECT_LT(p.behaviour[4], -1.0f);  // the odd one out stands out
  for (float z : p.behaviour) EXPECT_TRUE(std::isfinite(z));
}

TEST(AccountProfiles, AccountsWithoutRequestsHaveEmptyProfiles) {
  Dataset d = tiny_dataset({unit(8, 0)}, {0}, 2);
  const AccountProfiles p = account_profiles(canonical_requests(d, test_context()), DetectOptions{}, test_context());
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(p.content[8 + i], 0.0f);
  EXPECT_EQ(p.request_offsets[2] - p.request_offsets[1], 0);
}

TEST(AccountCandidatePairs, HoldEveryAccountsNearestContentNeighboursOnAnyThreadCount) {
  Context ctx = test_context();
  const Dataset d = generate_in_memory(small_world(21), ctx);
  const AccountProfiles p = account_profiles(canonical_requests(d, ctx), DetectOptions{}, ctx);
  const int64_t A = p.num_accounts, D = p.dim;
  for (const int64_t exact_limit : {A, int64_t(0)}) {  // the exact join, then the IVF one
    DetectOptions o;
    o.exact_account_limit = exact_limit;
    std::vector<std::pair<int64_t, int64_t>> expected;
    for (const int threads : {1, 2, 3}) {
      ctx.threads = threads;
      const auto pairs = account_candidate_pairs(p, o, ctx);
      ASSERT_TRUE(std::is_sorted(pairs.begin(), pairs.end()));
      ASSERT_TRUE(std::adjacent_find(pairs.begin(), pairs.end()) == pairs.end());
      if (threads == 1) expected = pairs;
      EXPECT_EQ(pairs, expected) << threads << " threads, exact limit " << exact_limit;
    }
    if (exact_limit == 0) continue;
    // Exact: each account is paired with every account clearly nearer in content than its
    // k-th nearest (a margin for the search's rounding).
    const int64_t k = o.account_neighbours;
    int64_t checked = 0;
    for (int64_t a = 0; a < A; a += 7) {
      std::vector<std::pair<float, int64_t>> dist;
      for (int64_t b = 0; b < A; ++b) {
        if (b == a) continue;
        float s = 0;
        for (int64_t i = 0; i < D; ++i) s += (p.content[a * D + i] - p.content[b * D + i]) * (p.content[a * D + i] - p.content[b * D + i]);
        dist.emplace_back(s, b);
      }
      std::nth_element(dist.begin(), dist.begin() + (k - 1), dist.end());
      const float kth = dist[k - 1].first;
      for (const auto& [s, b] : dist) {
        if (s >= kth - 1e-4f) continue;
        ++checked;
        EXPECT_TRUE(std::binary_search(expected.begin(), expected.end(), std::make_pair(std::min(a, b), std::max(a, b))))
            << "account " << a << " lost its neighbour " << b;
      }
    }
    EXPECT_GT(checked, A / 7);
  }
}

namespace {
/// A graph over n accounts from an edge list, every edge with weight w; `prompts` says
/// whether the edges carry shared-prompt evidence.
EvidenceGraph graph_of(int64_t n, const std::vector<std::pair<int64_t, int64_t>>& edges, float w = 0.8f,
                       bool prompts = true) {
  std::vector<std::vector<std::pair<int64_t, PairEvidence>>> adj(n);
  PairEvidence e;
  e.weight = w;
  e.shared_prompts = prompts ? w : 0.0f;
  for (auto [a, b] : edges) {
    adj[a].emplace_back(b, e);
    adj[b].emplace_back(a, e);
  }
  return ringscan::testing::graph_from_adjacency(std::move(adj));
}
}  // namespace

TEST(ClusterAccounts, ABridgeThroughABorderAccountDoesNotMergeTwoClusters) {
  // Triangles {0,1,2} and {4,5,6}; account 3 touches one of each (degree 2: a core)...
  // so use 7: touching only 2 (degree 1, a border account of the first triangle).
  const EvidenceGraph g = graph_of(9, {{0, 1}, {1, 2}, {0, 2}, {4, 5}, {5, 6}, {4, 6}, {2, 7}, {3, 8}});
  const Clustering c = cluster_accounts(g, DetectOptions{}, test_context());
  EXPECT_EQ(c.num_clusters, 2);
  EXPECT_EQ(c.label, (std::vector<int64_t>{0, 0, 0, -1, 1, 1, 1, 0, -1}));
}

TEST(ClusterAccounts, ABorderAccountJoinsOnlyThroughAnEdgeWithSharedPrompts) {
  // Triangle {0,1,2}; account 3 touches 2 by timing and behaviour alone, account 4 touches 1
  // through shared prompts. One synchronised edge to a large ring is what chance gives an
  // ordinary account; a real member shares prompts or is synchronised with several members.
  EvidenceGraph g = graph_of(5, {{0, 1}, {1, 2}, {0, 2}, {1, 4}});
  std::vector<std::vector<std::pair<int64_t, PairEvidence>>> adj(5);
  for (int64_t a = 0; a < 5; ++a)
    for (int64_t e = g.offsets[a]; e < g.offsets[a + 1]; ++e) adj[a].emplace_back(g.neighbours[e], g.evidence[e]);
  PairEvidence timing_only;
  timing_only.weight = 0.9f;
  timing_only.synchrony = 0.6f;
  timing_only.behaviour = 0.9f;
  adj[2].emplace_back(3, timing_only);
  adj[3].emplace_back(2, timing_only);
  g = ringscan::testing::graph_from_adjacency(std::move(adj));
  const Clustering c = cluster_accounts(g, DetectOptions{}, test_context());
  EXPECT_EQ(c.label, (std::vector<int64_t>{0, 0, 0, -1, 0}));
}

TEST(ClusterAccounts, LabelsAreNumberedBySmallestMember) {
  const EvidenceGraph g = graph_of(6, {{3, 4}, {4, 5}, {3, 5}, {0, 1}, {1, 2}, {0, 2}});
  const Clustering c = cluster_accounts(g, DetectOptions{}, test_context());
  EXPECT_EQ(c.label, (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
}

TEST(EvidenceGraph, IsSymmetricWithAscendingRows) {
  Context ctx = test_context();
  Dataset d = generate_in_memory(small_world(3), ctx);
  const CanonicalRequests req = canonical_requests(d, ctx);
  DetectOptions o;
  const PromptGroups groups = prompt_groups(req, near_duplicate_pairs(req, o, ctx), o);
  const AccountProfiles prof = account_profiles(req, o, ctx);
  const EvidenceCalibration cal = calibrate_evidence(req, groups, prof, o, ctx);
  const EvidenceGraph g = evidence_graph(groups, prof, cal, account_candidate_pairs(prof, o, ctx), o, ctx);
  ASSERT_GT(g.num_edges(), 0);
  for (int64_t a = 0; a < g.num_accounts; ++a)
    for (int64_t e = g.offsets[a]; e < g.offsets[a + 1]; ++e) {
      const int64_t b = g.neighbours[e];
      if (e > g.offsets[a]) EXPECT_LT(g.neighbours[e - 1], b);
      const auto* row = &g.neighbours[g.offsets[b]];
      const auto* end = &g.neighbours[0] + g.offsets[b + 1];
      const auto* it = std::lower_bound(row, end, a);
      ASSERT_TRUE(it != end && *it == a);
      EXPECT_EQ(g.evidence[it - &g.neighbours[0]].weight, g.evidence[e].weight);
      EXPECT_GE(g.evidence[e].weight, cal.edge_threshold);
    }
}

TEST(ParallelSort, GivesStdSortsOrderOnAnyThreadCount) {
  std::mt19937_64 rng(12);
  for (int64_t n : {int64_t(0), int64_t(1000), int64_t(3) << 19}) {
    std::vector<std::pair<int64_t, int64_t>> v(n);
    for (auto& p : v) p = {int64_t(rng() % 5000), int64_t(rng() % 7)};  // many equal elements
    auto expected = v;
    std::sort(expected.begin(), expected.end());
    for (int threads : {1, 2, 3}) {
      ThreadScope scope(threads);
      auto got = v;
      detail::parallel_sort(got, std::less<std::pair<int64_t, int64_t>>());
      EXPECT_EQ(got, expected) << "n " << n << " threads " << threads;
    }
  }
}
