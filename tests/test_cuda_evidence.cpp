// The CUDA evidence stage against the CPU one. Runs where a CUDA device is present; skips
// with a message elsewhere (the CPU tests cover the shared per-pair logic).
#include <gtest/gtest.h>

#include <cmath>

#include "cuda_stages.hpp"
#include "pair_evidence.hpp"
#include "ringscan/account_index.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/request_order.hpp"

using namespace ringscan;

// GTEST_SKIP returns from the function it is in: it must stand in the test body.
#define SKIP_WITHOUT_CUDA_DEVICE()                                                    \
  do {                                                                                \
    if (::ringscan::build_info().cuda_devices == 0)                                   \
      GTEST_SKIP() << "no CUDA device on this machine: CUDA test skipped";            \
  } while (0)

class CudaEvidence : public ::testing::TestWithParam<int64_t> {};

TEST_P(CudaEvidence, MatchesTheCpuStagePairByPair) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Context ctx;
  ctx.threads = 2;
  GenerateOptions g;
  g.accounts = GetParam();
  g.dim = 48;
  g.seed = 31;
  const Dataset d = generate_in_memory(g, ctx);
  DetectOptions o;
  const AccountProfiles p = account_profiles(canonical_requests(d, ctx), o, ctx);
  const auto pairs = account_candidate_pairs(p, o, ctx);
  std::vector<int64_t> first, second;
  std::vector<float> idf;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    first.push_back(pairs[i].first);
    second.push_back(pairs[i].second);
    idf.push_back(float(i % 7));  // exercise the shared-prompt signal too
  }
  const auto gpu = cuda::evaluate_pairs(p, first.data(), second.data(), idf.data(),
                                        int64_t(first.size()), o);
  ASSERT_EQ(gpu.size(), first.size());
  const ProfilesView view = host_view(p, o);
  // Tolerance: expf/sqrtf and fused multiply-adds differ by a few ulps between host and device.
  for (std::size_t i = 0; i < gpu.size(); ++i) {
    const PairEvidence cpu = evaluate_pair(view, first[i], second[i], idf[i]);
    EXPECT_NEAR(gpu[i].shared_prompts, cpu.shared_prompts, 1e-5f);
    EXPECT_NEAR(gpu[i].synchrony, cpu.synchrony, 1e-5f);
    EXPECT_NEAR(gpu[i].behaviour, cpu.behaviour, 1e-5f);
    EXPECT_NEAR(gpu[i].content, cpu.content, 1e-5f);
    EXPECT_NEAR(gpu[i].weight, cpu.weight, 1e-5f);
  }
}

// One account (no pairs), a small and a larger input.
INSTANTIATE_TEST_SUITE_P(Sizes, CudaEvidence, ::testing::Values(1, 200, 3000));
