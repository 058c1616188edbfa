// The CUDA backend against the CPU backend, stage by stage and end to end. Runs where a CUDA
// device is present; skips with a message elsewhere. The portable stages it runs are also
// checked on every machine (test_portable_stages.cpp), and the per-pair logic is shared.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <cstring>
#include <memory>
#include <numeric>
#include <set>

#include "cublas_library.cuh"
#include "cuda_stages.hpp"
#include "evidence_math.hpp"
#include "host_row_search.hpp"
#include "test_support.hpp"
#include "pair_evidence.hpp"
#include "ringscan/account_index.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/backend.hpp"
#include "ringscan/error.hpp"
#include "ringscan/evaluate.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"

using namespace ringscan;

// GTEST_SKIP returns from the function it is in: it must stand in the test body.
#define SKIP_WITHOUT_CUDA_DEVICE()                                                    \
  do {                                                                                \
    if (::ringscan::build_info().cuda_devices == 0)                                   \
      GTEST_SKIP() << "no CUDA device on this machine: CUDA test skipped";            \
  } while (0)

namespace {

constexpr int64_t kDeviceBudget = int64_t(2) << 30;

Context test_context() {
  Context ctx;
  ctx.threads = 2;
  return ctx;
}

Dataset small_world(int64_t accounts, uint64_t seed, int64_t dim = 48) {
  GenerateOptions g;
  g.accounts = accounts;
  g.dim = dim;
  g.seed = seed;
  return generate_in_memory(g, test_context());
}

/// Options under which the CPU backend's indices are exact too.
DetectOptions exact_everywhere() {
  DetectOptions o;
  o.exact_request_limit = int64_t(1) << 40;
  o.exact_account_limit = int64_t(1) << 40;
  return o;
}

/// Brute-force reference of nearest_rows on the host, in double.
RowNeighbours reference_nearest(const std::vector<float>& x, int64_t n, int64_t d, float radius,
                                int64_t cap) {
  return ringscan::testing::HostRowSearch(x.data(), n, d).nearest_others(nullptr, n, nullptr, n, radius, cap);
}

}  // namespace

// Runs without a device: loading a library needs no GPU.
TEST(CublasLibrary, LoadsOnDemandWithEveryEntryPoint) {
  const cuda::CublasLibrary& l = cuda::CublasLibrary::get();
  EXPECT_NE(l.create, nullptr);
  EXPECT_NE(l.destroy, nullptr);
  EXPECT_NE(l.set_stream, nullptr);
  EXPECT_NE(l.sgemm, nullptr);
  EXPECT_NE(l.gemm_ex, nullptr);
  EXPECT_STREQ(l.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
}

/// nearest_rows of n random rows (d = 24, a block of 12 identical ones) against brute force,
/// with and without a radius, within `budget` bytes of device memory.
void expect_nearest_rows_match_brute_force(int64_t n, int64_t cap, int64_t budget) {
  const int64_t d = 24;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> x(n * d);
  for (auto& v : x) v = normal(rng);
  // A block of identical rows: ties are broken by row index.
  for (int64_t r = 1; r < std::min<int64_t>(n, 12); ++r) std::copy_n(&x[0], d, &x[r * d]);
  for (float radius : {-1.0f, 30.0f}) {
    const auto gpu = cuda::nearest_rows(x.data(), n, d, radius, cap, false, budget, "test");
    const auto ref = reference_nearest(x, n, d, radius, std::min(cap, n - 1));
    ASSERT_EQ(gpu.offsets, ref.offsets) << "radius " << radius;
    for (std::size_t h = 0; h < ref.other.size(); ++h) {
      // Distances agree to fp32 GEMM rounding; rows may only differ where distances tie.
      EXPECT_NEAR(gpu.distance[h], ref.distance[h], 1e-3f * (1 + ref.distance[h]));
      if (gpu.other[h] != ref.other[h]) EXPECT_NEAR(gpu.distance[h], ref.distance[h], 1e-4f);
    }
  }
}

class CudaNearestRows : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(CudaNearestRows, MatchesBruteForceIncludingTiesAndCapsAboveN) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const auto [n, cap] = GetParam();
  expect_nearest_rows_match_brute_force(n, cap, kDeviceBudget);
}

// Under a 20 MiB budget a score tile holds about 1,200 columns of the 4,096-query block, so
// each query's list is carried across five column tiles (at 2 GiB the search takes one).
TEST(CudaNearestRowsTiles, CarryEachQuerysListAcrossColumnTiles) {
  SKIP_WITHOUT_CUDA_DEVICE();
  expect_nearest_rows_match_brute_force(5000, 16, int64_t(20) << 20);
}

// One row, k >= n, a block of identical rows, several query blocks.
INSTANTIATE_TEST_SUITE_P(Sizes, CudaNearestRows,
                         ::testing::Values(std::make_tuple(1, 4), std::make_tuple(2, 4),
                                           std::make_tuple(50, 100), std::make_tuple(600, 24),
                                           std::make_tuple(5000, 16), std::make_tuple(300, 2048),
                                           // a list of 1600: its slots pass 48 KiB of shared memory
                                           std::make_tuple(2500, 1600)));

/// Rows equal to the reference's except where distances tie; distances to fp32 GEMM rounding.
void expect_same_neighbours(const RowNeighbours& got, const RowNeighbours& ref, const char* what) {
  ASSERT_EQ(got.offsets, ref.offsets) << what;
  for (std::size_t h = 0; h < ref.other.size(); ++h) {
    EXPECT_NEAR(got.distance[h], ref.distance[h], 1e-3f * (1 + ref.distance[h])) << what;
    if (got.other[h] != ref.other[h]) EXPECT_NEAR(got.distance[h], ref.distance[h], 1e-4f) << what;
  }
}

TEST(CudaRowSearch, SearchesAmongSubsetsAndFindsNearestCentroidsAsBruteForce) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int64_t n = 3000, d = 40;
  std::mt19937_64 rng(8);
  std::normal_distribution<float> normal;
  std::vector<float> x(n * d);
  for (auto& v : x) v = normal(rng);
  // Queries: every third row, some twice; members: a shuffled half including some queries.
  std::vector<int64_t> queries, members(n);
  for (int64_t r = 0; r < n; r += 3) queries.push_back(r);
  queries.insert(queries.end(), queries.begin(), queries.begin() + 100);
  std::iota(members.begin(), members.end(), 0);
  std::shuffle(members.begin(), members.end(), rng);
  members.resize(n / 2);
  const auto device = cuda::make_row_search(x.data(), n, d, false, kDeviceBudget, "test");
  ringscan::testing::HostRowSearch host(x.data(), n, d);
  for (float radius : {-1.0f, 60.0f}) {
    expect_same_neighbours(
        device->nearest_others(queries.data(), int64_t(queries.size()), members.data(), int64_t(members.size()), radius, 20),
        host.nearest_others(queries.data(), int64_t(queries.size()), members.data(), int64_t(members.size()), radius, 20),
        radius < 0 ? "kNN among a subset" : "radius among a subset");
  }
  const int64_t k = 37, probes = 3;
  std::vector<float> centroids(x.begin(), x.begin() + k * d);
  for (auto& v : centroids) v += 0.1f * normal(rng);
  std::vector<int64_t> cell(n * probes), host_cell(n * probes);
  std::vector<float> dist(n * probes), host_dist(n * probes);
  device->nearest_centroids(centroids.data(), k, probes, cell.data(), dist.data());
  host.nearest_centroids(centroids.data(), k, probes, host_cell.data(), host_dist.data());
  int64_t differ = 0;
  for (int64_t i = 0; i < n * probes; ++i) {
    EXPECT_NEAR(dist[i], host_dist[i], 1e-3f * (1 + host_dist[i]));
    differ += cell[i] != host_cell[i];
  }
  EXPECT_LE(differ, n * probes / 1000) << "cells differ beyond rounding ties";
}

TEST(CudaRowSearch, PartitionedJoinFindsWhatTheHostSearchFinds) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int64_t d = 48, n = 400 * 25;
  const auto x = ringscan::testing::noisy_copies(400, 25, d, 17);
  const float tau = 0.9f, radius = 2.0f * (1.0f - tau) + 0.02f;
  const JoinFilter accept = ringscan::testing::cosine_at_least(x, d, tau);
  Context ctx = test_context();
  std::vector<std::vector<RequestPair>> found;
  for (bool on_device : {true, false}) {
    std::unique_ptr<RowSearch> search;
    if (on_device) search = cuda::make_row_search(x.data(), n, d, true, kDeviceBudget, "test");
    else search = std::make_unique<ringscan::testing::HostRowSearch>(x.data(), n, d);
    found.push_back(partitioned_self_join(*search, x.data(), n, d, radius, 24, accept,
                                          PartitionShape{500, 2}, ctx, "test"));
  }
  std::set<std::pair<int64_t, int64_t>> host;
  for (const auto& p : found[1]) host.emplace(p.first, p.second);
  std::size_t common = 0;
  for (const auto& p : found[0]) common += host.count({p.first, p.second});
  ASSERT_GT(host.size(), 100000u);
  // fp16 distances move a few rows across cell boundaries and change which of a blob's
  // near-identical rows fill the cap; nearly every pair is the same.
  EXPECT_GE(double(common), 0.99 * double(std::max(found[0].size(), found[1].size())));
}

class CudaStages : public ::testing::TestWithParam<int64_t> {};

TEST_P(CudaStages, GiveTheCpuStagesResults) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Context ctx = test_context();
  ctx.device_memory_budget = kDeviceBudget;
  const DetectOptions o = exact_everywhere();
  const CanonicalRequests req = canonical_requests(small_world(GetParam(), 31), ctx);
  auto cpu = make_backend(Device::Cpu);
  auto gpu = make_backend(Device::Cuda);

  // Request index: every pair is verified by the CPU's fp32 function, so its similarity is
  // exactly the CPU's. Which `cap` neighbours a request in a large blob of near-identical
  // prompts keeps depends on rounding (fp16 GEMM here, BLAS there), so the pairs themselves
  // may differ inside a blob; the prompt groups they form must not.
  const auto cpu_pairs = cpu->near_duplicate_pairs(req, o, ctx, nullptr);
  const auto gpu_pairs = gpu->near_duplicate_pairs(req, o, ctx, nullptr);
  for (const RequestPair& p : gpu_pairs) {
    const float sim = dot_product(&req.unit_embeddings[p.first * req.dim],
                                  &req.unit_embeddings[p.second * req.dim], req.dim);
    EXPECT_EQ(p.similarity, sim);
    EXPECT_GE(p.similarity, o.duplicate_similarity);
  }
  const PromptGroups groups = prompt_groups(req, cpu_pairs, o);
  const PromptGroups gpu_groups = prompt_groups(req, gpu_pairs, o);
  EXPECT_EQ(gpu_groups.group_of_request, groups.group_of_request);
  EXPECT_EQ(gpu_groups.group_accounts, groups.group_accounts);
  // The groups themselves, built on the device from the same pairs: identical, IDF included
  // (the portable logarithm).
  ringscan::testing::expect_same_groups(gpu->prompt_groups(req, cpu_pairs, o, ctx), groups, 0.0f);

  // Profiles: content, behaviour and timing, bit for bit the CPU's.
  const AccountProfiles cpu_profiles = cpu->account_profiles(req, o, ctx);
  ringscan::testing::expect_same_profiles(gpu->account_profiles(req, o, ctx), cpu_profiles);

  // Account index: exact on both; neighbour choices may differ only at distance ties, which
  // random profiles make rare: at least 99.5% of the pairs agree.
  const auto cpu_accounts = cpu->account_candidate_pairs(cpu_profiles, o, ctx);
  const auto gpu_accounts = gpu->account_candidate_pairs(cpu_profiles, o, ctx);
  std::vector<std::pair<int64_t, int64_t>> common;
  std::set_intersection(cpu_accounts.begin(), cpu_accounts.end(), gpu_accounts.begin(),
                        gpu_accounts.end(), std::back_inserter(common));
  EXPECT_GE(double(common.size()), 0.995 * double(std::max(cpu_accounts.size(), gpu_accounts.size())));

  // Evidence graph and clustering on the same candidates: identical edges, weights and labels
  // (the shared arithmetic is built without multiply-add contraction, exp and log are
  // host/portable_math.hpp's).
  const EvidenceCalibration cal = calibrate_evidence(req, groups, cpu_profiles, o, ctx);
  const EvidenceGraph cpu_graph = cpu->evidence_graph(groups, cpu_profiles, cal, cpu_accounts, o, ctx);
  const EvidenceGraph gpu_graph = gpu->evidence_graph(groups, cpu_profiles, cal, cpu_accounts, o, ctx);
  EXPECT_EQ(gpu_graph.offsets, cpu_graph.offsets);
  EXPECT_EQ(gpu_graph.neighbours, cpu_graph.neighbours);
  for (std::size_t e = 0; e < std::min(gpu_graph.evidence.size(), cpu_graph.evidence.size()); ++e)
    EXPECT_EQ(gpu_graph.evidence[e].weight, cpu_graph.evidence[e].weight) << e;
  const Clustering cpu_clusters = cpu->cluster_accounts(cpu_graph, o, ctx);
  const Clustering gpu_clusters = gpu->cluster_accounts(cpu_graph, o, ctx);
  EXPECT_EQ(gpu_clusters.num_clusters, cpu_clusters.num_clusters);
  EXPECT_EQ(gpu_clusters.label, cpu_clusters.label);

  // Ring tallies: integer sums, so identical whatever order the device adds in.
  const auto cpu_tallies = cpu->cluster_tallies(req, groups, cpu_graph, cpu_clusters, ctx);
  const auto gpu_tallies = gpu->cluster_tallies(req, groups, cpu_graph, cpu_clusters, ctx);
  ASSERT_EQ(gpu_tallies.size(), cpu_tallies.size());
  for (std::size_t c = 0; c < cpu_tallies.size(); ++c)
    EXPECT_EQ(std::memcmp(&gpu_tallies[c], &cpu_tallies[c], sizeof(ClusterTally)), 0) << "cluster " << c;
}

// One account (no pairs), a small and a larger input.
INSTANTIATE_TEST_SUITE_P(Sizes, CudaStages, ::testing::Values(1, 200, 3000));

TEST(CudaDetection, GivesTheCpuBackendsRingsAndLabels) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Context ctx = test_context();
  ctx.device_memory_budget = kDeviceBudget;
  const Dataset d = small_world(3000, 9001, 64);
  DetectOptions o = exact_everywhere();
  o.device = Device::Cpu;
  const DetectionResult cpu = detect_rings(d, o, ctx);
  o.device = Device::Cuda;
  const DetectionResult gpu = detect_rings(d, o, ctx);
  EXPECT_EQ(gpu.backend, "cuda");
  ASSERT_GT(cpu.rings.size(), 0u);
  // The contract between the backends (docs/cuda.md): the evidence arithmetic is the CPU's
  // bit for bit and the prompt groups are identical, but the device account index may choose
  // other neighbours at distance ties (CudaStages), so a few candidate pairs, and through
  // them a few labels, may differ. The rings must agree: every CPU ring found by the GPU run,
  // an adjusted Rand index of at least 0.98 between the two, and the same quality against
  // the planted rings.
  const Evaluation agreement = evaluate_rings(gpu.ring, cpu.ring);
  EXPECT_EQ(agreement.ring_recall, 1.0);
  EXPECT_GE(agreement.adjusted_rand_index, 0.98);
  const Evaluation cpu_quality = evaluate_rings(cpu.ring, d.labels), gpu_quality = evaluate_rings(gpu.ring, d.labels);
  EXPECT_NEAR(gpu_quality.ring_recall, cpu_quality.ring_recall, 0.05);
  EXPECT_NEAR(gpu_quality.account_precision, cpu_quality.account_precision, 0.01);
  EXPECT_NEAR(gpu_quality.account_recall, cpu_quality.account_recall, 0.02);
  // Where both runs put an account in the same ring, they give it the same score.
  ASSERT_EQ(gpu.ring_score.size(), cpu.ring_score.size());
  for (std::size_t a = 0; a < cpu.ring_score.size(); ++a)
    if (gpu.ring[a] == cpu.ring[a]) EXPECT_NEAR(gpu.ring_score[a], cpu.ring_score[a], 1e-4f) << a;
}

// Above kDeviceExactJoinRows requests the device joins over its k-means partition (and the
// CPU over its own IVF): the results may differ, the quality against the planted rings may
// not fall, and the same input gives the same result twice.
TEST(CudaDetection, PartitionedJoinsFindThePlantedRingsAndRepeatExactly) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Context ctx = test_context();
  ctx.device_memory_budget = kDeviceBudget;
  GenerateOptions g;
  g.accounts = 13000;
  g.dim = 32;
  g.seed = 9004;
  const Dataset d = generate_in_memory(g, ctx);
  ASSERT_GT(d.num_requests(), kDeviceExactJoinRows);
  DetectOptions o;
  o.device = Device::Cuda;
  const DetectionResult gpu = detect_rings(d, o, ctx);
  const DetectionResult again = detect_rings(d, o, ctx);
  EXPECT_EQ(again.ring, gpu.ring);
  EXPECT_EQ(again.ring_score, gpu.ring_score);
  o.device = Device::Cpu;
  const Evaluation cpu = evaluate_rings(detect_rings(d, o, ctx).ring, d.labels);
  const Evaluation e = evaluate_rings(gpu.ring, d.labels);
  EXPECT_GE(e.ring_recall, cpu.ring_recall - 0.05);
  EXPECT_GE(e.account_precision, cpu.account_precision - 0.02);
  EXPECT_GE(e.account_recall, cpu.account_recall - 0.05);
}

TEST(CudaAccountProfiles, AreTheCpuStagesOnDefaultValuesSignedZerosAndEarlyTimes) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Context ctx = test_context();
  ctx.device_memory_budget = kDeviceBudget;
  DetectOptions o;
  o.time_window_seconds = ringscan::testing::kEdgeCaseWindow;
  const CanonicalRequests req = ringscan::testing::profile_edge_cases();
  ringscan::testing::expect_same_profiles(make_backend(Device::Cuda)->account_profiles(req, o, ctx),
                                          make_backend(Device::Cpu)->account_profiles(req, o, ctx));
  const CanonicalRequests one = ringscan::testing::handmade({{-5}}, {{2.0f, 1.0f}});
  ringscan::testing::expect_same_profiles(make_backend(Device::Cuda)->account_profiles(one, o, ctx),
                                          make_backend(Device::Cpu)->account_profiles(one, o, ctx));
}

TEST(CudaAccountProfiles, ContentProfilesInManyBlocksAreTheCpuStages) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Context ctx = test_context();
  const DetectOptions o;
  // Without times: the timing profiles' buffers would not fit the small budget below.
  GenerateOptions g;
  g.accounts = 400;
  g.dim = 48;
  g.seed = 37;
  g.times = false;
  const CanonicalRequests req = canonical_requests(generate_in_memory(g, ctx), ctx);
  int64_t largest = 0;
  for (int64_t a = 0; a < req.num_accounts; ++a)
    largest = std::max(largest, req.account_offsets[a + 1] - req.account_offsets[a]);
  // A block of embeddings takes a quarter of the budget: room for about two of the largest
  // accounts makes the content profiles run in many blocks.
  const int64_t budget = 4 * 2 * largest * req.dim * int64_t(sizeof(float));
  ASSERT_GT(req.num_requests, 8 * 2 * largest) << "the requests must take several blocks";
  ringscan::testing::expect_same_profiles(cuda::account_profiles(req, o, budget),
                                          make_backend(Device::Cpu)->account_profiles(req, o, ctx));
}

TEST(CudaDetection, RefusesADeviceBudgetTooSmallForOneTile) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Context ctx = test_context();
  ctx.device_memory_budget = 1 << 20;  // 1 MiB
  DetectOptions o;
  o.device = Device::Cuda;
  EXPECT_THROW(detect_rings(small_world(3000, 9002), o, ctx), BudgetExceeded);
}

TEST(CudaEvidence, MatchesTheCpuPairByPair) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Context ctx = test_context();
  const Dataset d = small_world(3000, 31);
  DetectOptions o;
  const CanonicalRequests req = canonical_requests(d, ctx);
  const AccountProfiles p = account_profiles(req, o, ctx);
  const PromptGroups groups = prompt_groups(req, near_duplicate_pairs(req, o, ctx), o);
  const EvidenceCalibration cal = calibrate_evidence(req, groups, p, o, ctx);
  const auto pairs = account_candidate_pairs(p, o, ctx);
  std::vector<int64_t> first, second;
  std::vector<float> shared;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    first.push_back(pairs[i].first);
    second.push_back(pairs[i].second);
    shared.push_back(float(i % 7));  // exercise the shared-prompt signal too
  }
  // A budget with room for the profiles and about two thousand pairs: the pairs go over in
  // many batches through the same buffers.
  const int64_t small_budget = cuda::DevicePairEvaluator::profile_bytes(p, cal) +
                               2000 * cuda::DevicePairEvaluator::bytes_per_pair();
  const cuda::DevicePairEvaluator evaluator(p, cal, small_budget);
  ASSERT_LT(evaluator.batch() * 4, int64_t(first.size())) << "the pairs must take several batches";
  std::vector<PairEvidence> gpu(first.size());
  evaluator.evaluate(first.data(), second.data(), shared.data(), int64_t(first.size()), gpu.data());
  ASSERT_EQ(gpu.size(), first.size());
  const ProfilesView view = host_view(p, cal);
  // The same bits: no contraction in the kernels, exp and log from host/portable_math.hpp.
  for (std::size_t i = 0; i < gpu.size(); ++i) {
    const PairEvidence cpu = evaluate_pair(view, first[i], second[i], shared[i]);
    EXPECT_EQ(gpu[i].shared_prompts, cpu.shared_prompts) << i;
    EXPECT_EQ(gpu[i].synchrony, cpu.synchrony) << i;
    EXPECT_EQ(gpu[i].behaviour, cpu.behaviour) << i;
    EXPECT_EQ(gpu[i].content, cpu.content) << i;
    EXPECT_EQ(gpu[i].weight, cpu.weight) << i;
  }
}

TEST(CudaRequestOrder, IsTheCpuStagesBitForBitByCopyInBlocksAndTakingTheEmbeddingsOver) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const Context ctx = test_context();
  Dataset d = ringscan::testing::permuted(small_world(1500, 40), 3);
  // Times to the hour: ties of (account, time) that the stored embeddings decide.
  for (auto& t : d.request_time) t = t / 3600 * 3600;
  for (const bool timed : {true, false}) {
    if (!timed) d.request_time.clear();
    const CanonicalRequests cpu = canonical_requests(d, ctx);
    Dataset taken = d;
    double host_seconds = 0;
    // A budget that leaves room for blocks of about 100 unit rows beside the stored rows.
    const int64_t R = d.num_requests(), D = d.dim;
    const int64_t tight = std::max(R * (D * 4 + 8) + 100 * (D * 4 + 4), R * 64 + d.num_accounts() * 8);
    for (CanonicalRequests gpu : {cuda::canonical_requests(d, nullptr, ctx, kDeviceBudget, nullptr),
                                  cuda::canonical_requests(d, nullptr, ctx, tight, nullptr),
                                  cuda::canonical_requests(taken, &taken.embeddings, ctx, kDeviceBudget, &host_seconds)})
      ringscan::testing::expect_same_order(gpu, cpu);
    EXPECT_GT(host_seconds, 0.0);
  }
}

namespace {

TEST(CudaSharedInfrastructure, SortsTheCpuStagesTokenUsesAndFindsTheProxyNetwork) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Context ctx = test_context();
  ctx.device_memory_budget = kDeviceBudget;
  GenerateOptions g;
  g.accounts = 3000;
  g.dim = 64;
  g.seed = 9104;
  g.infrastructure = true;
  g.proxy_network = 0.1;
  std::vector<int64_t> roles, styles;
  const Dataset d = generate_in_memory(g, ctx, &roles, &styles);
  const CanonicalRequests req = canonical_requests(d, ctx);
  const std::vector<TokenUse> cpu = token_uses(req, ctx);
  ASSERT_GT(cpu.size(), 1000u);
  EXPECT_TRUE(cuda::token_uses(req, kDeviceBudget) == cpu);
  // The whole detection with the device's token uses and weak edges: the network is found.
  DetectOptions o;
  o.device = Device::Cuda;
  const DetectionResult r = detect_rings(d, o, ctx);
  EXPECT_EQ(r.backend, "cuda");
  int64_t network = -1;
  for (std::size_t a = 0; a < styles.size(); ++a)
    if (styles[a] == int64_t(RingStyle::ProxyNetwork)) network = d.labels[a];
  ASSERT_GE(network, 0);
  for (const RingMatch& m : evaluate_rings(r.ring, d.labels).matches)
    if (m.truth_label == network) EXPECT_GE(m.jaccard, 0.5);
}

}  // namespace
