// The per-element logic both backends share.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "evidence_math.hpp"
#include "prompt_pairs.hpp"
#include "ringscan/pipeline.hpp"

using namespace ringscan;

TEST(PortableMath, ExpAndLogMatchTheLibraryToAFewUlpsOverTheirRange) {
  // The shared exp and log trade the library's for bits both backends reproduce; they must
  // still be as accurate as a double needs to be before it is rounded to float.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exponent(-700, 700), magnitude(-300, 300);
  const auto ulps = [](double got, double want) {
    return std::fabs(got - want) / (std::fabs(want) * 2.220446049250313e-16);
  };
  double worst_exp = 0, worst_log = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = i < 100000 ? exponent(rng) : exponent(rng) / 1000;  // and near 0
    worst_exp = std::max(worst_exp, ulps(portable_exp(x), std::exp(x)));
    const double y = std::pow(10.0, magnitude(rng));
    if (std::fabs(std::log(y)) > 1e-3) worst_log = std::max(worst_log, ulps(portable_log(y), std::log(y)));
  }
  EXPECT_LT(worst_exp, 4.0);
  EXPECT_LT(worst_log, 4.0);
  EXPECT_EQ(portable_exp(0.0), 1.0);
  EXPECT_EQ(portable_log(1.0), 0.0);
  EXPECT_EQ(portable_exp(-1000.0), 0.0);
  EXPECT_TRUE(std::isinf(portable_exp(1000.0)));
  EXPECT_TRUE(std::isnan(portable_log(-1.0)));
  // Where the evidence uses them (float arguments and results): the float the library gives,
  // or its neighbour.
  for (float v = -20.0f; v < 0.0f; v += 0.001f) {
    const float got = float(portable_exp(double(v))), want = std::exp(v);
    EXPECT_LE(std::fabs(got - want), std::nextafter(want, 2.0f) - want) << v;
  }
}

TEST(SharedPromptSignal, IsZeroWithoutSharedPromptsAndGrowsWithRarity) {
  EXPECT_EQ(shared_prompt_signal(0.0f), 0.0f);
  const float viral = shared_prompt_signal(std::log(10.0f));    // sent by 10% of accounts
  const float rare = shared_prompt_signal(std::log(1000.0f));   // sent by 0.1%
  EXPECT_LT(viral, 0.5f);
  EXPECT_GT(rare, 0.8f);
  EXPECT_LT(rare, 1.0f);
  EXPECT_LT(shared_prompt_signal(5.0f), shared_prompt_signal(5.5f));
}

TEST(BehaviourSimilarity, IdenticalVectorsAreFullySimilar) {
  const std::vector<float> a = {0.1f, -2.0f, 3.0f, 0.0f, 1.0f, 1.0f, -1.0f, 0.5f};
  EXPECT_FLOAT_EQ(behaviour_similarity(a.data(), a.data(), nullptr, 8), 1.0f);
}

TEST(BehaviourSimilarity, IgnoresAQuarterOfTheFeaturesSoARotatedClientStillMatches) {
  std::vector<float> a(8, 0.0f), b(8, 0.0f);
  b[2] = 4.0f;  // two settings changed (a rotated client)
  b[6] = -3.0f;
  EXPECT_FLOAT_EQ(behaviour_similarity(a.data(), b.data(), nullptr, 8), 1.0f);
  b[0] = 4.0f;  // a third one is no longer ignored
  EXPECT_LT(behaviour_similarity(a.data(), b.data(), nullptr, 8), 0.01f);
}

TEST(BehaviourSimilarity, TrimsExactlyAQuarterWhenDifferencesTie) {
  std::vector<float> a(8, 0.0f), b(8, 1.0f);  // eight equal squared differences of 1
  const float expected = std::exp(-1.0f / (2 * kBehaviourWidth * kBehaviourWidth));
  EXPECT_NEAR(behaviour_similarity(a.data(), b.data(), nullptr, 8), expected, 1e-6f);
}

TEST(BehaviourSimilarity, NeedsTwoFeaturesToCompare) {
  const float a[2] = {0.0f, 0.0f}, b[2] = {1.0f, 0.0f};
  EXPECT_EQ(behaviour_similarity(a, b, nullptr, 1), 0.0f);
  EXPECT_EQ(behaviour_similarity(a, b, nullptr, 0), 0.0f);
  EXPECT_LT(behaviour_similarity(a, b, nullptr, 2), 0.05f);
}

TEST(BehaviourSimilarity, SharingAnSdkDefaultIsNoEvidence) {
  const float nan = std::nanf("");
  // Features 0-3 at the population's default (z = 0); features 4-7 differ a little.
  const std::vector<float> common = {0, 0, 0, 0, nan, nan, nan, nan};
  const std::vector<float> a = {0, 0, 0, 0, 0.0f, 1.0f, -1.0f, 0.5f};
  const std::vector<float> b = {0, 0, 0, 0, 0.45f, 0.55f, -0.55f, 0.95f};
  const float without_defaults = behaviour_similarity(a.data(), b.data(), common.data(), 8);
  const float counting_defaults = behaviour_similarity(a.data(), b.data(), nullptr, 8);
  EXPECT_GT(counting_defaults, 0.5f);  // the four matching defaults would make them alike
  EXPECT_LT(without_defaults, 0.25f);  // on what is left they are much less so
  // Two accounts alike outside the defaults are still alike.
  std::vector<float> c = a;
  c[4] += 0.05f;
  EXPECT_GT(behaviour_similarity(a.data(), c.data(), common.data(), 8), 0.9f);
}

namespace {
std::vector<int32_t> times_of_day(const std::vector<int64_t>& t) {
  std::vector<int32_t> tod;
  for (int64_t x : t) tod.push_back(int32_t(((x % 86400) + 86400) % 86400));
  std::sort(tod.begin(), tod.end());
  return tod;
}
float synchrony(const std::vector<int64_t>& a, const std::vector<int64_t>& b, int64_t window,
                int64_t days) {
  const auto ta = times_of_day(a), tb = times_of_day(b);
  return timing_synchrony(a.data(), ta.data(), int64_t(a.size()), b.data(), tb.data(),
                          int64_t(b.size()), window, days);
}
}  // namespace

TEST(CoactiveShare, CountsRequestsWithinTheWindowOnly) {
  const std::vector<int64_t> a = {1000, 2000}, b = {1050, 2500};
  EXPECT_FLOAT_EQ(coactive_share(a.data(), 2, b.data(), 2, 60), 0.5f);
  EXPECT_FLOAT_EQ(coactive_share(a.data(), 2, b.data(), 2, 600), 1.0f);
}

TEST(TimingSynchrony, IdenticalSchedulesNearOneAsTheyGrowAndDisjointOnesAreZero) {
  // Within a day nothing is co-active by chance: an identical schedule of n requests is
  // n / (n + kSynchronyPriorRequests), the prior's shrinkage alone.
  const std::vector<int64_t> a = {100, 15000, 29000}, far = {50000, 70000};
  EXPECT_FLOAT_EQ(synchrony(a, a, 60, 1), 3.0f / (3.0f + kSynchronyPriorRequests));
  std::vector<int64_t> busy;
  for (int64_t t = 0; t < 48; ++t) busy.push_back(t * 1800);
  EXPECT_FLOAT_EQ(synchrony(busy, busy, 60, 1), 48.0f / (48.0f + kSynchronyPriorRequests));
  EXPECT_FLOAT_EQ(synchrony(a, far, 60, 1), 0.0f);
  EXPECT_FLOAT_EQ(synchrony({}, far, 60, 1), 0.0f);
}

TEST(TimingSynchrony, OneRequestEachInTheSameMinutesIsBelowCorroboration) {
  // Among a million accounts thousands of such pairs happen by chance (the account index
  // finds them): alone they must not corroborate another signal.
  const float one = synchrony({3 * 86400 + 1000}, {3 * 86400 + 1100}, 600, 7);
  EXPECT_GT(one, 0.0f);
  EXPECT_LT(one, DetectOptions{}.corroboration_threshold);
}

TEST(TimingSynchrony, SameHoursOnDifferentDaysAreNotSynchronised) {
  // Both active at 09:00-09:30 every day, but never on the same day.
  std::vector<int64_t> a, b;
  for (int64_t day = 0; day < 14; ++day)
    for (int64_t m = 0; m < 30; m += 10) (day % 2 ? a : b).push_back(day * 86400 + 9 * 3600 + m * 60);
  EXPECT_FLOAT_EQ(synchrony(a, b, 600, 14), 0.0f);
}

TEST(TimingSynchrony, BurstsAtTheSameMomentsAreSynchronised) {
  // Five short bursts at scattered moments of a week; both accounts in each burst.
  std::vector<int64_t> a, b;
  for (int64_t burst : {3, 29, 71, 100, 150}) {
    a.push_back(burst * 3600 + 120);
    b.push_back(burst * 3600 + 300);
  }
  // Each direction: co-active share 1, less chance (about 1/7 by shuffled days), shrunk by
  // 5 / (5 + 2): well above corroboration.
  EXPECT_GT(synchrony(a, b, 600, 7), 0.55f);
}

TEST(TimingSynchrony, AccountsBusyAtTheSameHoursOfOneDayAreNotSynchronised) {
  // Both send a request every 4 minutes from 09:00 to 17:00 of one day, at different
  // seconds: co-active all day, but just as much with a shifted schedule.
  std::vector<int64_t> a, b;
  for (int64_t t = 9 * 3600; t < 17 * 3600; t += 240) {
    a.push_back(t);
    b.push_back(t + 97);
  }
  // Only starting and stopping together remains: a weak signal, below corroboration.
  EXPECT_LT(synchrony(a, b, 600, 1), 0.25f);
}

TEST(TimingSynchrony, AHeavyAccountDoesNotMakeALightOneLookSynchronised) {
  std::vector<int64_t> heavy;
  for (int64_t t = 0; t < 100000; t += 300) heavy.push_back(t);
  const std::vector<int64_t> light = {1000, 50000};
  EXPECT_LT(synchrony(light, heavy, 120, 1), 0.15f);
}

TEST(FusedEdgeWeight, NoSingleSignalMakesAnEdge) {
  EXPECT_EQ(fused_edge_weight(1.0f, 0.0f, 0.0f, 1.0f, 0.35f), 0.0f);
  EXPECT_EQ(fused_edge_weight(0.0f, 1.0f, 0.2f, 0.0f, 0.35f), 0.0f);
  EXPECT_EQ(fused_edge_weight(0.0f, 0.1f, 1.0f, 1.0f, 0.35f), 0.0f);
}

TEST(FusedEdgeWeight, IsTheMeanOfTheTwoStrongestPlusAContentBonus) {
  EXPECT_FLOAT_EQ(fused_edge_weight(0.8f, 0.4f, 0.1f, 0.0f, 0.35f), 0.6f);
  EXPECT_FLOAT_EQ(fused_edge_weight(0.1f, 0.4f, 0.8f, 0.0f, 0.35f), 0.6f);
  EXPECT_FLOAT_EQ(fused_edge_weight(0.4f, 0.8f, 0.1f, 1.0f, 0.35f), 0.6f + kContentBonus);
  EXPECT_FLOAT_EQ(fused_edge_weight(1.0f, 1.0f, 1.0f, 1.0f, 0.35f), 1.0f);
}

TEST(ContentSignal, IsZeroBelowTheFloorAndOneForIdenticalProfiles) {
  EXPECT_EQ(content_signal(0.2f), 0.0f);
  EXPECT_EQ(content_signal(kContentFloor), 0.0f);
  EXPECT_FLOAT_EQ(content_signal(1.0f), 1.0f);
}

TEST(DotProduct, MatchesADoublePrecisionSumForAnyLength) {
  for (int64_t d : {1, 15, 16, 17, 64, 383}) {
    std::vector<float> a(d), b(d);
    double want = 0;
    for (int64_t i = 0; i < d; ++i) {
      a[i] = std::sin(float(i)) * 0.3f;
      b[i] = std::cos(float(i) * 0.7f);
      want += double(a[i]) * b[i];
    }
    EXPECT_NEAR(dot_product(a.data(), b.data(), d), want, 1e-5) << "d = " << d;
  }
}

TEST(RingScore, StaysInTheUnitIntervalAndRewardsSharedPrompts) {
  EXPECT_FLOAT_EQ(ring_score(1.0f, 1.0f, 1.0f, 0.0f), 1.0f);
  EXPECT_FLOAT_EQ(ring_score(0.0f, 0.0f, 0.0f, 1.0f), 0.0f);
  EXPECT_GT(ring_score(0.5f, 0.3f, 0.8f, 0.3f), 0.5f);
  EXPECT_LT(ring_score(0.02f, 0.3f, 1.0f, 0.95f), 0.5f);  // a company team's profile
}

TEST(PromptPairs, SmallGroupsGiveEveryPairOnceAndLargeOnesLinkEachAccountToItsNextAccounts) {
  for (int64_t m : {0, 1, 2, 3, 7, 64, 255, 256, 257, 300, 1000}) {
    std::vector<int64_t> ordered(m);
    for (int64_t i = 0; i < m; ++i) ordered[i] = 10 * i + 3;  // ids distinct from positions
    const int64_t count = prompt_pairs_of_group(m);
    std::set<std::pair<int64_t, int64_t>> seen;
    for (int64_t t = 0; t < count; ++t) {
      int64_t a = -1, b = -1;
      prompt_pair(ordered.data(), m, t, &a, &b);
      ASSERT_LT(a, b) << "m " << m << " t " << t;
      ASSERT_EQ((a - 3) % 10, 0);
      ASSERT_EQ((b - 3) % 10, 0);
      if (m <= kAllPairsLimit) ASSERT_TRUE(seen.emplace(a, b).second) << "m " << m << " t " << t << " repeats";
      else seen.emplace(a, b);
    }
    if (m <= kAllPairsLimit) {
      EXPECT_EQ(int64_t(seen.size()), m * (m - 1) / 2) << "m " << m;
    } else {
      // Position i is linked to positions i+1 .. i+kSampledLinks (mod m), nothing else.
      for (int64_t i = 0; i < m; ++i)
        for (int64_t s = 1; s <= kSampledLinks; ++s) {
          const int64_t x = ordered[i], y = ordered[(i + s) % m];
          EXPECT_TRUE(seen.count({std::min(x, y), std::max(x, y)})) << "m " << m << " i " << i;
        }
      EXPECT_EQ(int64_t(seen.size()), m * kSampledLinks) << "m " << m;
    }
  }
}
