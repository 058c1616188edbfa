// End to end on generated data: quality, determinism, order invariance, edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

#include "ringscan/backend.hpp"
#include "ringscan/context.hpp"
#include "ringscan/evaluate.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/error.hpp"
#include "ringscan/pipeline.hpp"
#include "test_support.hpp"

using namespace ringscan;

namespace {

Context ctx_with_threads(int threads) {
  Context ctx;
  ctx.threads = threads;
  ctx.memory_budget = int64_t(8) << 30;
  return ctx;
}

GenerateOptions world(uint64_t seed, int64_t accounts = 3000) {
  GenerateOptions g;
  g.accounts = accounts;
  g.dim = 64;
  g.seed = seed;
  return g;
}

}  // namespace

class QualityOnUnseenSeeds : public ::testing::TestWithParam<uint64_t> {};

TEST_P(QualityOnUnseenSeeds, FindsPlantedRingsWithoutAccusingLookAlikes) {
  const Context ctx = ctx_with_threads(2);
  std::vector<int64_t> roles;
  const Dataset d = generate_in_memory(world(GetParam()), ctx, &roles);
  const DetectionResult r = detect_rings(d, DetectOptions{}, ctx);
  const Evaluation e = evaluate_rings(r.ring, d.labels);
  ASSERT_GE(e.planted_rings, 3);
  EXPECT_GE(e.ring_recall, 0.95);
  EXPECT_GE(e.account_precision, 0.98);
  EXPECT_GE(e.account_recall, 0.95);
  const LookalikeAccusations f = lookalike_accusations(r.ring, d.labels, roles);
  EXPECT_EQ(f.team_accounts, 0);
  EXPECT_EQ(f.crowd_accounts, 0);
  EXPECT_EQ(f.mostly_innocent_rings, 0);
}

// Seeds the defaults were not tuned on.
INSTANTIATE_TEST_SUITE_P(Seeds, QualityOnUnseenSeeds, ::testing::Values(9001, 9002));

TEST(DetectRings, IvfRequestIndexKeepsTheQuality) {
  const Context ctx = ctx_with_threads(2);
  const Dataset d = generate_in_memory(world(9003), ctx);
  DetectOptions o;
  o.exact_request_limit = 0;
  const DetectionResult r = detect_rings(d, o, ctx);
  const Evaluation e = evaluate_rings(r.ring, d.labels);
  EXPECT_GE(e.ring_recall, 0.95);
  EXPECT_GE(e.account_precision, 0.98);
  EXPECT_GE(e.account_recall, 0.95);
}

TEST(DetectRings, GivesTheSameLabelsAndScoresOnAnyThreadCount) {
  const Dataset d = generate_in_memory(world(77, 2000), ctx_with_threads(2));
  DetectOptions o;
  o.exact_request_limit = 0;  // the IVF path has the most room for scheduling effects
  const DetectionResult one = detect_rings(d, o, ctx_with_threads(1));
  const DetectionResult two = detect_rings(d, o, ctx_with_threads(2));
  const DetectionResult three = detect_rings(d, o, ctx_with_threads(3));
  EXPECT_EQ(one.cluster, two.cluster);
  EXPECT_EQ(one.ring, two.ring);
  EXPECT_EQ(one.ring_score, two.ring_score);
  EXPECT_EQ(one.ring, three.ring);
  EXPECT_EQ(one.ring_score, three.ring_score);
  EXPECT_GT(*std::max_element(one.ring.begin(), one.ring.end()), 0);
}

TEST(DetectRings, LabelsAreInvariantUnderPermutationOfRequestsAndAccounts) {
  const Context ctx = ctx_with_threads(2);
  const Dataset d = generate_in_memory(world(78, 2000), ctx);
  std::vector<int64_t> new_row;
  const Dataset p = ringscan::testing::permuted(d, 5, &new_row);
  const DetectionResult a = detect_rings(d, DetectOptions{}, ctx);
  const DetectionResult b = detect_rings(p, DetectOptions{}, ctx);
  ASSERT_FALSE(a.rings.empty());
  for (int64_t i = 0; i < d.num_accounts(); ++i) {
    const int64_t j = new_row[i];  // the same account in the permuted input
    ASSERT_EQ(b.account_ids[j], a.account_ids[i]);
    EXPECT_EQ(b.cluster[j], a.cluster[i]);
    EXPECT_EQ(b.ring[j], a.ring[i]);
    EXPECT_EQ(b.ring_score[j], a.ring_score[i]);
  }
}

TEST(DetectRings, HandlesASingleAccount) {
  Dataset d;
  d.source = "one";
  d.dim = 4;
  d.account_ids = {42};
  d.request_account = {0, 0};
  d.embeddings = {1, 0, 0, 0, 1, 0, 0, 0};
  const DetectionResult r = detect_rings(d, DetectOptions{}, ctx_with_threads(2));
  EXPECT_EQ(r.ring, std::vector<int64_t>{-1});
  EXPECT_TRUE(r.rings.empty());
}

TEST(DetectRings, HandlesZeroRequestsAndAccountsWithoutRequests) {
  Dataset d;
  d.source = "empty";
  d.dim = 8;
  d.account_ids = {1, 2, 3};
  const DetectionResult r = detect_rings(d, DetectOptions{}, ctx_with_threads(2));
  EXPECT_EQ(r.cluster, (std::vector<int64_t>{-1, -1, -1}));
  EXPECT_TRUE(r.rings.empty());
}

TEST(DetectRings, HandlesOneRequestPerAccountAndNeighboursBeyondTheInputSize) {
  GenerateOptions g = world(79, 400);
  g.requests_per_account = 1;
  const Context ctx = ctx_with_threads(2);
  const Dataset d = generate_in_memory(g, ctx);
  DetectOptions o;
  o.duplicate_neighbours = 2048;  // k far above the number of requests
  o.account_neighbours = 2048;
  const DetectionResult r = detect_rings(d, o, ctx);
  EXPECT_EQ(int64_t(r.ring.size()), d.num_accounts());
}

TEST(DetectRings, RejectsTheCudaDeviceWithoutADevice) {
  if (build_info().cuda_devices > 0) GTEST_SKIP() << "a CUDA device is present: Device::Cuda is valid here";
  Dataset d;
  d.dim = 2;
  d.account_ids = {1};
  DetectOptions o;
  o.device = Device::Cuda;
  EXPECT_THROW(detect_rings(d, o, ctx_with_threads(1)), InvalidInput);
}

/// A build with the CUDA backend for sm_80 and newer, on a machine with `arch` devices.
BuildInfo cuda_build_with_devices(std::vector<int> arch) {
  BuildInfo info;
  info.cuda_compiled = true;
  info.cuda_min_arch = 80;
  info.cuda_devices = int(arch.size());
  info.cuda_device_arch = std::move(arch);
  return info;
}

TEST(CudaBackendChoice, RunsOnTheBuildsArchitecturesAndNewer) {
  for (int arch : {80, 86, 89, 90, 100, 120})
    EXPECT_EQ(cuda_backend_problem(cuda_build_with_devices({arch})), "") << "sm_" << arch;
}

TEST(CudaBackendChoice, RefusesAFirstDeviceOlderThanTheBuildsKernels) {
  const std::string problem = cuda_backend_problem(cuda_build_with_devices({75, 90}));
  EXPECT_NE(problem.find("sm_75"), std::string::npos) << problem;
  EXPECT_NE(problem.find("sm_80"), std::string::npos) << problem;
  // The backend runs on device 0: only its architecture counts.
  EXPECT_EQ(cuda_backend_problem(cuda_build_with_devices({90, 75})), "");
}

TEST(CudaBackendChoice, NamesTheRuntimesErrorWhenADriverCannotStartIt) {
  BuildInfo info = cuda_build_with_devices({});
  EXPECT_EQ(cuda_backend_problem(info), "no CUDA device found");
  info.cuda_error = "cudaErrorInsufficientDriver: CUDA driver version is insufficient";
  EXPECT_NE(cuda_backend_problem(info).find("cudaErrorInsufficientDriver"), std::string::npos);
  BuildInfo cpu_only;
  EXPECT_NE(cuda_backend_problem(cpu_only).find("no CUDA backend"), std::string::npos);
}

TEST(DetectRings, RejectsOutOfRangeParameters) {
  Dataset d;
  d.dim = 2;
  d.account_ids = {1};
  DetectOptions o;
  o.duplicate_similarity = 1.5f;
  EXPECT_THROW(detect_rings(d, o, ctx_with_threads(1)), InvalidInput);
}

TEST(DetectRings, TakingTheDatasetOverGivesTheSameResultAsCopyingIt) {
  const Context ctx = ctx_with_threads(2);
  Dataset d = generate_in_memory(world(80, 1500), ctx);
  const DetectionResult copied = detect_rings(d, DetectOptions{}, ctx);
  const DetectionResult moved = detect_rings(std::move(d), DetectOptions{}, ctx);
  EXPECT_EQ(copied.account_ids, moved.account_ids);
  EXPECT_EQ(copied.cluster, moved.cluster);
  EXPECT_EQ(copied.ring, moved.ring);
  EXPECT_EQ(copied.ring_score, moved.ring_score);
  ASSERT_EQ(copied.rings.size(), moved.rings.size());
  for (std::size_t i = 0; i < copied.rings.size(); ++i) {
    EXPECT_EQ(copied.rings[i].members, moved.rings[i].members);
    ASSERT_EQ(copied.rings[i].examples.size(), moved.rings[i].examples.size());
    for (std::size_t e = 0; e < copied.rings[i].examples.size(); ++e)
      EXPECT_EQ(copied.rings[i].examples[e].request_rows, moved.rings[i].examples[e].request_rows);
  }
}

TEST(DetectRings, ThousandsOfAccountsSendingTheSamePromptAreNoRing) {
  // 2,000 accounts, every request the same vector (a viral copy-paste prompt), the same
  // behaviour and times spread over a week: a common prompt is no evidence, so there is no
  // ring, on the exact and on the IVF request index, and the pairs stay bounded.
  Dataset d;
  d.source = "identical";
  d.dim = 16;
  d.feature_dim = 2;
  const int64_t A = 2000;
  for (int64_t a = 0; a < A; ++a) {
    d.account_ids.push_back(1000 + a);
    d.features.insert(d.features.end(), {0.7f, 1.0f});
    d.request_account.push_back(a);
    d.request_time.push_back(1767225600 + (a * 7919) % (7 * 86400));
    for (int64_t i = 0; i < d.dim; ++i) d.embeddings.push_back(i == 3 ? 1.0f : 0.25f);
  }
  for (const int64_t exact_limit : {int64_t(100000), int64_t(100)}) {
    DetectOptions o;
    o.exact_request_limit = exact_limit;
    const DetectionResult r = detect_rings(d, o, ctx_with_threads(2));
    ASSERT_EQ(int64_t(r.ring.size()), A);
    EXPECT_TRUE(r.rings.empty()) << r.rings.size() << " rings, exact limit " << exact_limit;
    EXPECT_TRUE(std::all_of(r.ring.begin(), r.ring.end(), [](int64_t v) { return v == -1; }));
  }
}

TEST(DetectRings, HandlesKLargerThanTheAccountsAndASingleRequest) {
  Dataset d;
  d.source = "tiny";
  d.dim = 4;
  d.account_ids = {7, 8, 9};
  d.request_account = {1};
  d.embeddings = {0, 1, 0, 0};
  DetectOptions o;
  o.account_neighbours = 2048;
  o.duplicate_neighbours = 2048;
  o.min_ring_size = 2;
  const DetectionResult r = detect_rings(d, o, ctx_with_threads(2));
  EXPECT_EQ(r.ring, (std::vector<int64_t>{-1, -1, -1}));
  EXPECT_TRUE(r.rings.empty());
}
