// The portable (Thrust) stages the CUDA backend runs, instantiated here for thrust::omp and
// compared with the CPU stages: the GPU's algorithms are exercised on every machine.
#include <gtest/gtest.h>
#include <thrust/system/omp/execution_policy.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "portable/components.hpp"
#include "portable/account_profiles.hpp"
#include "portable/evidence_graph.hpp"
#include "portable/prompt_groups.hpp"
#include "portable/request_order.hpp"
#include "portable/ring_tallies.hpp"
#include "portable/shared_infrastructure.hpp"
#include "ringscan/ring_scoring.hpp"
#include "stage_variants.hpp"
#include "ringscan/account_index.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/request_order.hpp"
#include "device_like_buffer.hpp"
#include "test_support.hpp"

using namespace ringscan;
using ringscan::testing::DeviceLikeBuffer;

namespace {

Context two_threads() {
  Context ctx;
  ctx.threads = 2;
  return ctx;
}

Dataset generated(int64_t accounts, int64_t dim, uint64_t seed) {
  GenerateOptions gen;
  gen.accounts = accounts;
  gen.dim = dim;
  gen.seed = seed;
  return generate_in_memory(gen, two_threads());
}

/// Clusters of `g` by the portable stage on the OpenMP system.
Clustering portable_clusters(const EvidenceGraph& g, int64_t min_core_degree) {
  const int64_t A = g.num_accounts;
  DeviceLikeBuffer<uint8_t> core(A);
  DeviceLikeBuffer<int64_t> parent(A), root(A), size(A), first(A), label(A), start(A);
  const portable::GraphArrays graph{A, g.offsets.data(), g.neighbours.data(), g.evidence.data()};
  const portable::ComponentArrays w{core.data(), parent.data(), root.data(),
                                    size.data(), first.data(),  label.data()};
  portable::cluster_components(thrust::omp::par, graph, min_core_degree, w, start.data());
  Clustering c;
  c.label.assign(label.data(), label.data() + A);
  c.num_clusters = A > 0 ? start.data()[A - 1] : 0;
  return c;
}

/// A symmetric CSR graph with ascending rows over n accounts: m random edges with random
/// weights drawn from a few levels (so ties between a border's core neighbours occur), half
/// of them with shared-prompt evidence (the only edges a border account joins through).
EvidenceGraph random_graph(int64_t n, int64_t m, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::pair<int64_t, PairEvidence>>> adj(n);
  for (int64_t i = 0; i < m && n > 1; ++i) {
    const int64_t a = int64_t(rng() % uint64_t(n)), b = int64_t(rng() % uint64_t(n));
    if (a == b) continue;
    PairEvidence e;
    e.weight = 0.5f + 0.1f * float(rng() % 4);
    e.shared_prompts = rng() % 2 ? e.weight : 0.0f;
    adj[a].emplace_back(b, e);
    adj[b].emplace_back(a, e);
  }
  return ringscan::testing::graph_from_adjacency(std::move(adj));
}

/// The CPU stages up to the evidence graph on a generated input.
struct CpuStages {
  DetectOptions o;
  PromptGroups groups;
  AccountProfiles profiles;
  std::vector<std::pair<int64_t, int64_t>> account_pairs;
  EvidenceCalibration calibration;
  EvidenceGraph graph;

  CpuStages(int64_t accounts, int64_t dim, uint64_t seed) {
    const Context ctx = two_threads();
    const CanonicalRequests req = canonical_requests(generated(accounts, dim, seed), ctx);
    groups = prompt_groups(req, near_duplicate_pairs(req, o, ctx), o);
    profiles = account_profiles(req, o, ctx);
    account_pairs = account_candidate_pairs(profiles, o, ctx);
    calibration = calibrate_evidence(req, groups, profiles, o, ctx);
    graph = evidence_graph(groups, profiles, calibration, account_pairs, o, ctx);
  }
};

/// How the portable stages hold and read memory on the OpenMP system: the host's.
struct HostMemory {
  template <class T>
  using Buffer = DeviceLikeBuffer<T>;
  template <class T>
  static void to_host(const T* p, int64_t n, T* out) {
    std::copy_n(p, n, out);
  }
};

/// The evidence graph by the portable construction on the OpenMP system.
EvidenceGraph portable_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                             const EvidenceCalibration& calibration,
                             const std::vector<std::pair<int64_t, int64_t>>& pairs) {
  std::vector<int64_t> first, second;
  for (const auto& [a, b] : pairs) {
    first.push_back(a);
    second.push_back(b);
  }
  const portable::GroupArrays g{groups.num_groups, groups.account_offsets.data(),
                                groups.group_accounts.data(), groups.common.data()};
  const PairEvaluator evaluate = host_pair_evaluator(profiles, calibration);
  return portable::build_evidence_graph<HostMemory>(
      thrust::omp::par, g, first.data(), second.data(), int64_t(first.size()), profiles.num_accounts,
      edge_rule(calibration),
      [&](const int64_t* a, const int64_t* b, const float* shared, int64_t n, PairEvidence* out) {
        evaluate(a, b, shared, n, out);
      },
      0);
}

/// Prompt groups by the portable construction on the OpenMP system.
PromptGroups portable_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                             const DetectOptions& o) {
  return portable::build_prompt_groups<HostMemory>(
      thrust::omp::par, req.num_requests, req.num_accounts, req.request_owner.data(), pairs.data(),
      int64_t(pairs.size()), common_group_accounts(req.num_accounts, o.max_prompt_share));
}

void expect_same_graph(const EvidenceGraph& twin, const EvidenceGraph& cpu) {
  EXPECT_EQ(twin.prompt_pairs, cpu.prompt_pairs);
  EXPECT_EQ(twin.candidate_pairs, cpu.candidate_pairs);
  ASSERT_EQ(twin.offsets, cpu.offsets);
  ASSERT_EQ(twin.neighbours, cpu.neighbours);
  ASSERT_EQ(twin.evidence.size(), cpu.evidence.size());
  for (std::size_t e = 0; e < cpu.evidence.size(); ++e)
    ASSERT_EQ(std::memcmp(&twin.evidence[e], &cpu.evidence[e], sizeof(PairEvidence)), 0) << "edge " << e;
}

}  // namespace

class PortableClusteringOfRandomGraphs : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(PortableClusteringOfRandomGraphs, GivesTheCpuStagesLabels) {
  const auto [n, m] = GetParam();
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const EvidenceGraph g = random_graph(n, m, seed);
    for (int64_t core_degree : {1, 2, 3}) {
      DetectOptions o;
      o.min_core_degree = core_degree;
      const Clustering cpu = cluster_accounts(g, o, two_threads());
      // More threads than cores too: preemption interleaves the lock-free union-find's
      // threads more finely, nearer a GPU's thousands.
      for (int threads : {2, 7}) {
        ThreadScope scope(threads);
        const Clustering twin = portable_clusters(g, core_degree);
        EXPECT_EQ(twin.num_clusters, cpu.num_clusters) << "n " << n << " seed " << seed << ", " << threads << " threads";
        EXPECT_EQ(twin.label, cpu.label) << "n " << n << " seed " << seed << ", " << threads << " threads";
      }
    }
  }
}

// Sizes: empty, one account, sparse (many small components), dense (one giant component).
INSTANTIATE_TEST_SUITE_P(Sizes, PortableClusteringOfRandomGraphs,
                         ::testing::Values(std::make_tuple(0, 0), std::make_tuple(1, 0),
                                           std::make_tuple(50, 40), std::make_tuple(2000, 1500),
                                           std::make_tuple(2000, 20000)));

TEST(PortableClustering, GivesTheCpuStagesLabelsOnADetectionGraph) {
  const CpuStages s(1500, 32, 77);
  ASSERT_GT(s.graph.num_edges(), 0);
  const Clustering cpu = cluster_accounts(s.graph, s.o, two_threads());
  ASSERT_GT(cpu.num_clusters, 0);
  const Clustering twin = portable_clusters(s.graph, s.o.min_core_degree);
  EXPECT_EQ(twin.num_clusters, cpu.num_clusters);
  EXPECT_EQ(twin.label, cpu.label);
}

/// The account profiles by the portable stages on the OpenMP system, as the CUDA backend
/// assembles them.
AccountProfiles portable_profiles(const CanonicalRequests& req, const DetectOptions& o) {
  ActivitySpan span;
  AccountProfiles p = account_profiles_frame(req, o, &span);
  p.content.assign(req.num_accounts * req.dim, -1.0f);
  portable::content_profiles(thrust::omp::par, req.account_offsets.data(), req.unit_embeddings.data(),
                             req.num_accounts, req.dim, p.content.data());
  portable::behaviour_profiles<HostMemory>(thrust::omp::par, req.features.data(), req.num_accounts,
                                           req.feature_dim, p.behaviour);
  if (p.has_timing)
    portable::timing_profiles<HostMemory>(thrust::omp::par, req.num_requests, req.num_accounts,
                                          req.account_offsets.data(), req.request_owner.data(),
                                          req.time.data(), span, p);
  return p;
}

TEST(PortableAccountProfiles, AreTheCpuStagesBitForBit) {
  const Context ctx = two_threads();
  Dataset d = generated(700, 40, 78);
  // Accounts without requests keep a zero profile.
  d.account_ids.push_back(1'000'000'007);
  d.features.resize(d.features.size() + d.feature_dim, 0.0f);
  if (!d.labels.empty()) d.labels.push_back(-1);
  if (!d.account_payment.empty()) d.account_payment.push_back(0);
  const CanonicalRequests req = canonical_requests(d, ctx);
  ASSERT_GT(req.feature_dim, 0);
  ASSERT_FALSE(req.time.empty());
  const DetectOptions o;
  const AccountProfiles cpu = account_profiles(req, o, ctx);
  ASSERT_GT(cpu.active_buckets.size(), 700u);
  ringscan::testing::expect_same_profiles(portable_profiles(req, o), cpu);
}

TEST(PortableAccountProfiles, HandleDefaultValuesConstantFeaturesAndTimesBefore1970) {
  const CanonicalRequests req = ringscan::testing::profile_edge_cases();
  DetectOptions o;
  o.time_window_seconds = ringscan::testing::kEdgeCaseWindow;
  const AccountProfiles cpu = account_profiles(req, o, two_threads());
  EXPECT_EQ(cpu.behaviour[0], 0.0f);                   // a constant feature: no information
  EXPECT_EQ(cpu.behaviour[7 * 4 + 3], kMaxZ);           // the outlier is clipped
  EXPECT_GE(cpu.days, 9);
  ringscan::testing::expect_same_profiles(portable_profiles(req, o), cpu);

  // One account, one request; and no times at all.
  const CanonicalRequests one = ringscan::testing::handmade({{-5}}, {{2.0f, 1.0f}});
  ringscan::testing::expect_same_profiles(portable_profiles(one, o), account_profiles(one, o, two_threads()));
  CanonicalRequests untimed = req;
  untimed.time.clear();
  ringscan::testing::expect_same_profiles(portable_profiles(untimed, o), account_profiles(untimed, o, two_threads()));
}

TEST(PortableAccountProfiles, SumTheFallbackScaleInTheSameBlocksOverManyAccounts) {
  // 10,000 accounts: the fallback scale of a feature 60% at one value spans three blocks.
  const int64_t A = 10000;
  std::mt19937_64 rng(91);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  std::vector<std::vector<float>> features(A);
  std::vector<std::vector<int64_t>> requests(A);
  for (int64_t a = 0; a < A; ++a) {
    features[a] = {a % 5 < 3 ? 1.0f : uniform(rng), uniform(rng)};
    requests[a] = {int64_t(rng() % 500000)};
  }
  const CanonicalRequests req = ringscan::testing::handmade(requests, features);
  ASSERT_GT(scale_sum_blocks(A), 2);
  const DetectOptions o;
  const AccountProfiles cpu = account_profiles(req, o, two_threads());
  ringscan::testing::expect_same_profiles(portable_profiles(req, o), cpu);
  // And it is the mean absolute deviation's scale: 1.2533 x mean |x - 1|.
  long double deviation = 0;
  for (int64_t a = 0; a < A; ++a) deviation += std::fabs(req.features[a * 2] - 1.0f);
  const double scale = 1.2533 * double(deviation / A);
  for (int64_t a = 0; a < A; a += 997) {
    const double z = std::clamp((double(req.features[a * 2]) - 1.0) / scale, -double(kMaxZ), double(kMaxZ));
    EXPECT_NEAR(cpu.behaviour[a * 2], z, 1e-5 * (1 + std::fabs(z))) << "account " << a;
  }
}

// Both backends take the span from account_profiles_frame, which refuses it before any work.
TEST(PortableAccountProfiles, RefuseASpanOfTooManyBucketsOnEitherBackend) {
  const CanonicalRequests req = ringscan::testing::handmade({{0}, {int64_t(1) << 40}}, {});
  DetectOptions o;
  o.time_window_seconds = 1;
  ActivitySpan span;
  EXPECT_THROW(account_profiles(req, o, two_threads()), InvalidInput);
  EXPECT_THROW(account_profiles_frame(req, o, &span), InvalidInput);
  o.time_window_seconds = 1 << 12;
  EXPECT_NO_THROW(account_profiles_frame(req, o, &span));
  EXPECT_EQ(span.buckets, ((int64_t(1) << 40) >> 13) + 1);
}

TEST(PortableEvidenceGraph, IsTheCpuStagesGraphBitForBitOnADetection) {
  const CpuStages s(2000, 32, 79);
  ASSERT_GT(s.graph.num_edges(), 100);
  ASSERT_GT(s.graph.prompt_pairs, 100);
  expect_same_graph(portable_graph(s.groups, s.profiles, s.calibration, s.account_pairs), s.graph);
}

TEST(PortableEvidenceGraph, IsTheCpuStagesGraphWithSampledGroupsRepeatsAndNoEvidence) {
  // Profiles of generated accounts, with made-up prompt groups: groups larger than the
  // all-pairs limit (linked in hashed order), common groups, groups sharing pairs (counted
  // together), and account pairs overlapping them. A low threshold keeps most candidates.
  const Context ctx = two_threads();
  const CanonicalRequests req = canonical_requests(generated(1200, 16, 80), ctx);
  DetectOptions o;
  const AccountProfiles prof = account_profiles(req, o, ctx);
  const int64_t A = prof.num_accounts;
  std::mt19937_64 rng(81);
  PromptGroups groups;
  groups.group_of_request.assign(req.num_requests, -1);  // the accounts' lists are made up, not their requests'
  groups.account_offsets = {0};
  for (int64_t size : {2, 3, 300, 5, 700, 40, 2, 257, 9, 256, 1000}) {
    std::set<int64_t> members;
    while (int64_t(members.size()) < size) members.insert(int64_t(rng() % uint64_t(A)));
    groups.group_accounts.insert(groups.group_accounts.end(), members.begin(), members.end());
    groups.account_offsets.push_back(int64_t(groups.group_accounts.size()));
    groups.idf.push_back(0.3f + float(rng() % 1000) / 137.0f);
    groups.common.push_back(size == 1000 ? 1 : 0);
    ++groups.num_groups;
  }
  std::set<std::pair<int64_t, int64_t>> pair_set;
  while (pair_set.size() < 3000) {
    const int64_t a = int64_t(rng() % uint64_t(A)), b = int64_t(rng() % uint64_t(A));
    if (a != b) pair_set.emplace(std::min(a, b), std::max(a, b));
  }
  const std::vector<std::pair<int64_t, int64_t>> pairs(pair_set.begin(), pair_set.end());
  EvidenceCalibration cal = calibrate_evidence(req, groups, prof, o, ctx);
  cal.edge_threshold = 0.5f;
  const EvidenceGraph cpu = evidence_graph(groups, prof, cal, pairs, o, ctx);
  ASSERT_GT(cpu.num_edges(), 1000);
  expect_same_graph(portable_graph(groups, prof, cal, pairs), cpu);
  // Nothing at all: no groups, no pairs.
  expect_same_graph(portable_graph(PromptGroups{0, {}, {0}, {}, {}, {}, 0}, prof, cal, {}),
                    evidence_graph(PromptGroups{0, {}, {0}, {}, {}, {}, 0}, prof, cal, {}, o, ctx));
}

/// token_uses by the portable construction on the OpenMP system.
std::vector<TokenUse> portable_token_uses(const CanonicalRequests& req) {
  const int64_t K = req.infra.empty() ? 0 : req.infra_dim;
  return portable::build_token_uses<HostMemory>(thrust::omp::par, req.num_requests, K, req.num_accounts,
                                                K > 0 ? req.infra.data() : nullptr, req.request_owner.data(),
                                                req.payment.empty() ? nullptr : req.payment.data());
}

TEST(PortableSharedInfrastructure, SortsTheCpuStagesTokenUsesWithAndWithoutEitherKind) {
  const Context ctx = two_threads();
  GenerateOptions g;
  g.accounts = 1500;
  g.dim = 8;
  g.seed = 84;
  g.infrastructure = true;
  g.proxy_network = 0.1;
  CanonicalRequests req = canonical_requests(generate_in_memory(g, ctx), ctx);
  ASSERT_EQ(req.infra_dim, 3);
  // Unknown tokens scattered in: they are no use of anything.
  for (int64_t i = 0; i < int64_t(req.infra.size()); i += 7) req.infra[i] = 0;
  const std::vector<TokenUse> cpu = token_uses(req, ctx);
  ASSERT_GT(cpu.size(), 1000u);
  EXPECT_TRUE(portable_token_uses(req) == cpu);
  EXPECT_TRUE(shared_infrastructure(req, portable_token_uses(req), DetectOptions{}, ctx).token_accounts ==
              shared_infrastructure(req, DetectOptions{}, ctx).token_accounts);

  CanonicalRequests payment_only = req;
  payment_only.infra.clear();
  payment_only.infra_dim = 0;
  EXPECT_TRUE(portable_token_uses(payment_only) == token_uses(payment_only, ctx));
  CanonicalRequests infra_only = req;
  infra_only.payment.clear();
  EXPECT_TRUE(portable_token_uses(infra_only) == token_uses(infra_only, ctx));
  std::fill(infra_only.infra.begin(), infra_only.infra.end(), 0);
  EXPECT_TRUE(portable_token_uses(infra_only).empty());
}

namespace {

/// canonical_requests of `d` with its two large parts by the portable stage on the OpenMP
/// system (the CUDA backend's sequence: accounts, sort, host bookkeeping, unit rows).
/// The order stage as the CUDA backend runs it, on thrust::omp, its unit rows written `block`
/// canonical rows at a time.
CanonicalRequests portable_order(const Dataset& d, int64_t block) {
  CanonicalRequests c;
  const std::vector<int64_t> rank = order_accounts(d, c);
  const int64_t R = d.num_requests(), D = d.dim;
  const bool timed = d.has_time();
  DeviceLikeBuffer<int64_t> row(R), owner(R), time(timed ? R : 0);
  portable::sort_request_rows(thrust::omp::par, R, rank.data(), d.request_account.data(),
                              timed ? d.request_time.data() : nullptr, row.data(), owner.data(),
                              timed ? time.data() : nullptr);
  c.request_row.assign(row.data(), row.data() + R);
  c.request_owner.assign(owner.data(), owner.data() + R);
  if (timed) c.time.assign(time.data(), time.data() + R);
  finish_bookkeeping(c, d, stored_row(d));
  DeviceLikeBuffer<int64_t> ordered(R);
  std::copy_n(c.request_row.data(), R, ordered.data());
  DeviceLikeBuffer<float> scale(block), unit(block * D);
  c.unit_embeddings.assign(size_t(R * D), std::nanf(""));
  int64_t next = 0;  // blocks arrive in order, each whole
  portable::unit_rows_in_order(thrust::omp::par, R, D, d.embeddings.data(), ordered.data(), block, scale.data(),
                               unit.data(), [&](int64_t first, int64_t count) {
                                 EXPECT_EQ(first, next);
                                 EXPECT_EQ(count, std::min(block, R - first));
                                 std::copy_n(unit.data(), count * D, c.unit_embeddings.data() + first * D);
                                 next = first + count;
                               });
  EXPECT_EQ(next, R);
  return c;
}

}  // namespace

TEST(PortableRequestOrder, IsTheCpuStagesOrderAndUnitRowsBitForBitInBlocksWithTiesZeroRowsAndNoTimes) {
  const Context ctx = two_threads();
  Dataset d = ringscan::testing::permuted(generated(1200, 24, 86), 5);
  // Times to the hour: many requests of one account at one time, whose order the stored
  // embeddings decide; identical rows among them; zero rows and negative times.
  const int64_t R = d.num_requests(), D = d.dim;
  for (int64_t r = 0; r < R; ++r) d.request_time[r] = d.request_time[r] / 3600 * 3600 - (r % 5 == 0 ? 1 << 30 : 0);
  for (int64_t r = 1; r < R; r += 11) std::copy_n(&d.embeddings[(r - 1) * D], D, &d.embeddings[r * D]);
  for (int64_t r = 0; r < R; r += 97) std::fill_n(&d.embeddings[r * D], D, 0.0f);
  const CanonicalRequests cpu = canonical_requests(d, ctx);
  int64_t ties = 0;
  for (int64_t r = 1; r < R; ++r) ties += cpu.request_owner[r] == cpu.request_owner[r - 1] && cpu.time[r] == cpu.time[r - 1];
  ASSERT_GT(ties, R / 8);
  // The unit rows in one block, and in blocks that do not divide the requests.
  for (const int64_t block : {R, int64_t(37), int64_t(1)}) ringscan::testing::expect_same_order(portable_order(d, block), cpu);

  d.request_time.clear();
  ringscan::testing::expect_same_order(portable_order(d, 37), canonical_requests(d, ctx));
}

TEST(PortablePromptGroups, AreTheCpuStagesGroupsOnADetectionRandomPairsAndNoPairs) {
  const Context ctx = two_threads();
  const CanonicalRequests req = canonical_requests(generated(1500, 32, 82), ctx);
  DetectOptions o;
  const auto pairs = near_duplicate_pairs(req, o, ctx);
  const PromptGroups cpu = prompt_groups(req, pairs, o);
  ASSERT_GT(cpu.num_groups, 100);
  ringscan::testing::expect_same_groups(portable_groups(req, pairs, o), cpu);

  // Random pairs: chains through many accounts, one giant group among small ones, common
  // groups under a low sharing limit.
  std::mt19937_64 rng(83);
  std::vector<RequestPair> random_pairs;
  const uint64_t R = uint64_t(req.num_requests);
  for (int i = 0; i < 4000; ++i) {
    const int64_t a = int64_t(rng() % R), b = i < 600 ? int64_t(rng() % 50) : int64_t(rng() % R);
    if (a != b) random_pairs.push_back({std::min(a, b), std::max(a, b), 0.99f});
  }
  o.max_prompt_share = 0.001f;
  const PromptGroups cpu_random = prompt_groups(req, random_pairs, o);
  ASSERT_GT(cpu_random.num_groups, 100);
  ASSERT_GT(std::count(cpu_random.common.begin(), cpu_random.common.end(), 1), 0);
  for (int threads : {2, 7}) {  // more threads than cores: finer interleaving of the union-find
    ThreadScope scope(threads);
    ringscan::testing::expect_same_groups(portable_groups(req, random_pairs, o), cpu_random);
  }
  ringscan::testing::expect_same_groups(portable_groups(req, {}, o), prompt_groups(req, {}, o));
}

TEST(PortableUnionFind, FlatteningPointsEveryElementAtItsRootOnDeepChains) {
  // Four chains of 2^18 elements each (parent[i] = i - 4): a pass whose finds shorten paths
  // while other threads store final roots leaves some elements at a stale ancestor here
  // (most runs did, on two threads, before the flattening walked without writing).
  const int64_t n = int64_t(1) << 20, chains = 4;
  for (int threads : {2, 3, 8}) {
    ThreadScope scope(threads);
    for (int run = 0; run < 3; ++run) {
      std::vector<int64_t> parent(n);
      for (int64_t i = 0; i < n; ++i) parent[i] = i < chains ? i : i - chains;
      portable::flatten_forest(thrust::omp::par, parent.data(), n);
      int64_t stale = 0;
      for (int64_t i = 0; i < n; ++i) stale += parent[i] != i % chains;
      EXPECT_EQ(stale, 0) << threads << " threads, run " << run;
    }
  }
}

TEST(PortableRingTallies, AreTheCpuStagesTalliesAndGiveItsRings) {
  const Context ctx = two_threads();
  const CanonicalRequests req = canonical_requests(generated(2500, 32, 84), ctx);
  DetectOptions o;
  const PromptGroups groups = prompt_groups(req, near_duplicate_pairs(req, o, ctx), o);
  const AccountProfiles prof = account_profiles(req, o, ctx);
  const EvidenceCalibration cal = calibrate_evidence(req, groups, prof, o, ctx);
  const EvidenceGraph graph = evidence_graph(groups, prof, cal, account_candidate_pairs(prof, o, ctx), o, ctx);
  const Clustering clusters = cluster_accounts(graph, o, ctx);
  ASSERT_GT(clusters.num_clusters, 3);
  const auto cpu = cluster_tallies(req, groups, graph, clusters, ctx);
  const portable::TallyInputs in{req.num_accounts,        clusters.num_clusters,   groups.num_groups,
                                 clusters.label.data(),   req.account_offsets.data(), groups.group_of_request.data(),
                                 groups.common.data(),    graph.offsets.data(),    graph.neighbours.data(),
                                 graph.evidence.data()};
  const auto twin = portable::build_cluster_tallies<HostMemory>(thrust::omp::par, in, req.num_requests);
  ASSERT_EQ(twin.size(), cpu.size());
  int64_t shared = 0;
  for (std::size_t c = 0; c < cpu.size(); ++c) {
    EXPECT_EQ(twin[c].size, cpu[c].size) << "cluster " << c;
    EXPECT_EQ(twin[c].requests, cpu[c].requests) << "cluster " << c;
    EXPECT_EQ(twin[c].singletons, cpu[c].singletons) << "cluster " << c;
    EXPECT_EQ(twin[c].distinct_groups, cpu[c].distinct_groups) << "cluster " << c;
    EXPECT_EQ(twin[c].shared_requests, cpu[c].shared_requests) << "cluster " << c;
    EXPECT_EQ(twin[c].member_groups, cpu[c].member_groups) << "cluster " << c;
    EXPECT_EQ(twin[c].internal_edges, cpu[c].internal_edges) << "cluster " << c;
    EXPECT_EQ(twin[c].synchrony, cpu[c].synchrony) << "cluster " << c;
    EXPECT_EQ(twin[c].behaviour, cpu[c].behaviour) << "cluster " << c;
    EXPECT_EQ(twin[c].weight, cpu[c].weight) << "cluster " << c;
    shared += cpu[c].shared_requests;
  }
  EXPECT_GT(shared, 0);
  // Equal tallies give equal rings.
  const auto rings = rings_from_tallies(req, groups, clusters, twin, o, ctx);
  const auto cpu_rings = score_rings(req, groups, graph, clusters, o, ctx);
  ASSERT_FALSE(cpu_rings.empty());
  ASSERT_EQ(rings.size(), cpu_rings.size());
  for (std::size_t i = 0; i < rings.size(); ++i) {
    EXPECT_EQ(rings[i].members, cpu_rings[i].members);
    EXPECT_EQ(rings[i].score, cpu_rings[i].score);
  }
}
