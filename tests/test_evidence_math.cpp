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
#include "ring_signals.hpp"
#include "ringscan/evidence_calibration.hpp"
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

namespace {

/// ln P(X >= k) for X ~ Poisson(mu), summed term by term in long double (the reference).
double reference_log_poisson_tail(int k, double mu) {
  long double term = std::exp(-(long double)mu), below = 0;
  for (int i = 0; i < k; ++i) {
    below += term;
    term *= (long double)mu / (long double)(i + 1);
  }
  // The tail itself, summed from k, where 1 - below would lose every digit.
  long double tail = 0, t = std::exp(-(long double)mu + k * std::log((long double)mu) - std::lgamma((long double)k + 1));
  for (int i = k; i < k + 400; ++i) {
    tail += t;
    t *= (long double)mu / (long double)(i + 1);
  }
  return double(std::log(tail));
}

/// ln P(G >= x) for G ~ Gamma(a, 1), integer a: e^-x sum_{i<a} x^i / i!.
double reference_log_gamma_tail(int a, double x) {
  long double sum = 0, term = 1;
  for (int i = 0; i < a; ++i) {
    sum += term;
    term *= (long double)x / (long double)(i + 1);
  }
  return double(-(long double)x + std::log(sum));
}

/// Unix times of `n` requests at `second_of_day` on consecutive days from day `first_day`.
std::vector<int64_t> daily(int64_t first_day, int64_t n, int64_t second_of_day) {
  std::vector<int64_t> t;
  for (int64_t d = 0; d < n; ++d) t.push_back(1767225600 + (first_day + d) * 86400 + second_of_day);
  return t;
}

}  // namespace

TEST(TailProbability, LogGammaMatchesTheLibrary) {
  for (double x : {1e-6, 0.01, 0.3, 0.5, 1.0, 1.5, 2.0, 3.7, 10.0, 33.3, 171.0, 1000.0, 1e6})
    EXPECT_NEAR(portable_lgamma(x), std::lgamma(x), 1e-12 * std::max(1.0, std::fabs(std::lgamma(x)))) << x;
}

TEST(TailProbability, PoissonTailMatchesADirectSumDeepIntoTheTail) {
  for (int k : {1, 2, 3, 5, 10, 30, 100})
    for (double mu : {1e-9, 1e-4, 0.01, 0.3, 1.0, 4.0, 20.0, 150.0}) {
      const double want = reference_log_poisson_tail(k, mu);
      EXPECT_NEAR(log_poisson_tail(k, mu), want, 1e-9 * std::max(1.0, std::fabs(want))) << "k " << k << " mu " << mu;
    }
  EXPECT_EQ(log_poisson_tail(0, 3.0), 0.0);    // P(X >= 0) = 1
  EXPECT_TRUE(std::isinf(log_poisson_tail(1, 0.0)));  // nothing expected, one seen
}

TEST(TailProbability, GammaTailMatchesTheErlangSum) {
  for (int a : {1, 2, 3, 4, 8})
    for (double x : {0.01, 0.5, 1.0, 3.0, 10.0, 50.0, 300.0}) {
      const double want = reference_log_gamma_tail(a, x);
      EXPECT_NEAR(log_gamma_tail(a, x), want, 1e-9 * std::max(1.0, std::fabs(want))) << "a " << a << " x " << x;
    }
  EXPECT_EQ(log_gamma_tail(3, 0.0), 0.0);
}

TEST(SharedPromptSurprise, IsZeroWithoutSharedGroupsAndGrowsWithEachOne) {
  const double R = 250000;
  EXPECT_EQ(shared_groups_surprise(0, 20, 20, 25, 25, R), 0.0f);
  float last = 0;
  for (int k = 1; k <= 8; ++k) {
    const float s = shared_groups_surprise(float(k), 40, 40, 25, 25, R);
    EXPECT_GT(s, last + 5.0f) << k;  // each further rare group is many times less likely
    last = s;
  }
}

TEST(SharedPromptSurprise, HeavierAccountsAndWiderGroupsAreWeakerEvidence) {
  const double R = 250000;
  const float base = shared_groups_surprise(2, 10, 10, 25, 25, R);
  EXPECT_LT(shared_groups_surprise(2, 10, 10, 2500, 25, R), base);    // a heavy account
  EXPECT_LT(shared_groups_surprise(2, 1000, 10, 25, 25, R), base);    // groups sent by many
  // One group shared by a heavy account whose groups reach thousands of others: a coincidence.
  EXPECT_LT(shared_groups_surprise(1, 5000, 3000, 2000, 2000, R), 1.0f);
}

TEST(CoactiveEpisodes, CountsEpisodesNotRequests) {
  const TimingNull null = timing_null(1767225600, 1767225600 + 14 * 86400);
  // x: one session of ten requests a minute apart; y: one request in the middle of it.
  std::vector<int64_t> x, y = {1767225600 + 3600 + 300};
  for (int i = 0; i < 10; ++i) x.push_back(1767225600 + 3600 + 60 * i);
  EXPECT_EQ(coactive_episodes(x.data(), 10, y.data(), 1, 600, 600, 0, null), 1);
  // Two sessions far apart, each near a request of y: two episodes.
  x.push_back(1767225600 + 5 * 86400);
  y.push_back(1767225600 + 5 * 86400 + 100);
  EXPECT_EQ(coactive_episodes(x.data(), 11, y.data(), 2, 600, 600, 0, null), 2);
  // At a minute's scale the session is one episode of requests a minute apart.
  EXPECT_EQ(coactive_episodes(x.data(), 11, y.data(), 2, 60, 60, 0, null), 1);
  // With episodes of up to six days' gaps, both sessions are one episode.
  EXPECT_EQ(coactive_episodes(x.data(), 11, y.data(), 2, 600, 6 * 86400, 0, null), 1);
}

TEST(CoactiveEpisodes, AShiftWrapsAroundTheSpanAndCountsAStraddlingEpisodeOnce) {
  const int64_t t0 = 1767225600;
  const TimingNull null = timing_null(t0, t0 + 7 * 86400 - 1);
  ASSERT_EQ(null.period, 7 * 86400);
  // x: one episode around the end of day 2. Moved back by two days it straddles the wrap: its
  // first requests land at the end of the span, its last ones at the start.
  const std::vector<int64_t> x = {t0 + 2 * 86400 - 120, t0 + 2 * 86400 - 60, t0 + 2 * 86400, t0 + 2 * 86400 + 60};
  // y is active near both ends of the span: the one episode counts once.
  const std::vector<int64_t> y = {t0 + 30, t0 + 7 * 86400 - 90};
  EXPECT_EQ(coactive_episodes(x.data(), 4, y.data(), 2, 600, 600, 2 * 86400, null), 1);
  // With y near one end only, still one.
  EXPECT_EQ(coactive_episodes(x.data(), 4, y.data() + 1, 1, 600, 600, 2 * 86400, null), 1);
  // Without the move nothing of y is near.
  EXPECT_EQ(coactive_episodes(x.data(), 4, y.data(), 2, 600, 600, 0, null), 0);
}

TEST(CoactiveEpisodes, MatchesABruteForceCountForAnyShift) {
  // Reference: episodes of x (gaps of at most w), each counted when some request of y lies
  // within w of some request of x moved by -shift and wrapped into the period.
  const int64_t t0 = 1767225600, period = 9 * 86400;
  TimingNull null;
  null.origin = t0;
  null.period = period;
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 400; ++trial) {
    const int64_t w = std::vector<int64_t>{60, 600, 3600, 14400}[trial % 4];
    const int64_t gap = trial % 2 ? w : 12 * w;
    std::uniform_int_distribution<int64_t> when(0, period - 1);
    std::vector<int64_t> x(1 + rng() % 30), y(1 + rng() % 30);
    for (auto& t : x) t = t0 + when(rng);
    for (auto& t : y) t = t0 + when(rng);
    if (trial % 3 == 0)  // sessions: runs of close requests
      for (std::size_t i = 1; i < x.size(); ++i) x[i] = x[i - 1] + int64_t(rng() % 900);
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    x.erase(std::remove_if(x.begin(), x.end(), [&](int64_t t) { return t >= t0 + period; }), x.end());
    const int64_t shift = std::vector<int64_t>{0, 86400, -2 * 86400, 37 * 60, 3 * 86400 + 5}[trial % 5];
    std::vector<int64_t> episode(x.size(), 0);
    for (std::size_t i = 1; i < x.size(); ++i) episode[i] = episode[i - 1] + (x[i] - x[i - 1] > gap);
    std::set<int64_t> matched;
    for (std::size_t i = 0; i < x.size(); ++i) {
      int64_t q = (x[i] - shift - t0) % period;
      if (q < 0) q += period;
      q += t0;
      for (int64_t t : y)
        if (t >= q - w && t <= q + w) matched.insert(episode[i]);
    }
    EXPECT_EQ(coactive_episodes(x.data(), int64_t(x.size()), y.data(), int64_t(y.size()), w, gap, shift, null),
              int64_t(matched.size()))
        << "trial " << trial;
  }
}

TEST(SynchronySurprise, BurstsAtTheSameMomentsAreStrongEvidence) {
  const int64_t t0 = 1767225600;
  const TimingNull null = timing_null(t0, t0 + 14 * 86400);
  std::vector<int64_t> a, b;
  for (int k = 0; k < 12; ++k) {  // twelve bursts at irregular moments of two weeks
    const int64_t burst = t0 + (k * 97 % 14) * 86400 + (k * 7919 % 86000);
    a.push_back(burst);
    b.push_back(burst + 120);
  }
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_GT(synchrony_surprise(a.data(), 12, b.data(), 12, null), 15.0f);
}

TEST(SynchronySurprise, TheSameHoursOnEveryDayAreNoEvidence) {
  // Office hours: both accounts every day at 09:00-09:30; moving one by whole days keeps it
  // co-active, so the null explains all of it.
  const int64_t t0 = 1767225600;
  const TimingNull null = timing_null(t0, t0 + 14 * 86400);
  std::vector<int64_t> a = daily(0, 14, 9 * 3600), b = daily(0, 14, 9 * 3600 + 900);
  EXPECT_LT(synchrony_surprise(a.data(), 14, b.data(), 14, null), 1.0f);
}

TEST(SynchronySurprise, OneCoincidenceIsNoEvidence) {
  const int64_t t0 = 1767225600;
  const TimingNull null = timing_null(t0, t0 + 14 * 86400);
  const std::vector<int64_t> a = {t0 + 3 * 86400 + 500}, b = {t0 + 3 * 86400 + 560};
  EXPECT_EQ(synchrony_surprise(a.data(), 1, b.data(), 1, null), 0.0f);
}

TEST(SynchronySurprise, AHeavyAccountDoesNotMakeALightOneLookSynchronised) {
  // The heavy account is active every ten minutes of two weeks: whatever the light one does,
  // the moved timelines are as co-active as the real one.
  const int64_t t0 = 1767225600;
  const TimingNull null = timing_null(t0, t0 + 14 * 86400);
  std::vector<int64_t> heavy, light;
  for (int64_t t = t0; t < t0 + 14 * 86400; t += 600) heavy.push_back(t);
  for (int k = 0; k < 6; ++k) light.push_back(t0 + k * 2 * 86400 + 4000 + k * 1000);
  EXPECT_LT(synchrony_surprise(light.data(), 6, heavy.data(), int64_t(heavy.size()), null), 1.0f);
}

TEST(SynchronySurprise, IndependentTimelinesWithOneDailyRhythmShowAboutNothing) {
  // The null of the null: pairs of independent accounts whose requests follow the same daily
  // rhythm (office hours, on random days) get surprises no larger than chance allows:
  // P(surprise >= s) stays below e^-s, so a mean of at most about one nat.
  const int64_t t0 = 1767225600;
  const TimingNull null = timing_null(t0, t0 + 14 * 86400);
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> day(0, 13), second(9 * 3600, 17 * 3600);
  auto account = [&] {
    std::vector<int64_t> t;
    for (int i = 0; i < 20; ++i) t.push_back(t0 + day(rng) * 86400 + second(rng));
    std::sort(t.begin(), t.end());
    return t;
  };
  const int pairs = 2000;
  double sum = 0;
  int above_3 = 0;
  for (int i = 0; i < pairs; ++i) {
    const auto a = account(), b = account();
    const float s = synchrony_surprise(a.data(), 20, b.data(), 20, null);
    sum += s;
    above_3 += s >= 3.0f;
  }
  EXPECT_LT(sum / pairs, 1.0);
  EXPECT_LE(above_3, int(pairs * std::exp(-3.0)) + 10);
}

TEST(TimingNull, MovesByWholeDaysOverAWeekAndByMinutesWithinADay) {
  const int64_t t0 = 1767225600;
  const TimingNull week = timing_null(t0, t0 + 10 * 86400);
  ASSERT_EQ(week.shifts, kMaxTimingShifts);
  for (int i = 0; i < week.shifts; ++i) EXPECT_EQ(week.shift[i] % 86400, 0);
  const TimingNull three = timing_null(t0, t0 + 2 * 86400 + 5);
  ASSERT_EQ(three.shifts, kMaxTimingShifts);
  EXPECT_EQ(three.shift[0], 86400);
  EXPECT_EQ(three.shift[1], 2 * 86400);
  EXPECT_NE(three.shift[2] % 86400, 0);
  const TimingNull day = timing_null(t0, t0 + 3600);
  ASSERT_EQ(day.shifts, kMaxTimingShifts);
  for (int i = 0; i < day.shifts; ++i) EXPECT_NE(day.shift[i] % 86400, 0);
}

TEST(FeatureSurprise, ASharedDefaultIsNoEvidenceAndASharedRareSettingIs) {
  // A value half the accounts share (an SDK default): about ln 2.
  EXPECT_NEAR(feature_surprise(0.5f, 0.5f, 0.5f, false), std::log(2.0f), 1e-6f);
  // A value one account in a thousand has: ln 1000.
  EXPECT_NEAR(feature_surprise(0.3f, 0.3f, 0.001f, false), std::log(1000.0f), 1e-4f);
  // Ordinal: the share of accounts as close, 2 |u_a - u_b|.
  EXPECT_NEAR(feature_surprise(0.40f, 0.41f, 0.0001f, false), -std::log(0.02f), 1e-3f);
  EXPECT_EQ(feature_surprise(0.1f, 0.9f, 0.0001f, false), 0.0f);
  // Categorical: different categories are no evidence, however close their ranks.
  EXPECT_EQ(feature_surprise(0.40f, 0.41f, 0.01f, true), 0.0f);
  EXPECT_NEAR(feature_surprise(0.40f, 0.40f, 0.01f, true), std::log(100.0f), 1e-4f);
}

TEST(GroupFeatureSurprise, ImpreciseMediansOfVariedGroupsAreNoEvidence) {
  // Two groups of varied clients: both medians near the population's, but each known only
  // to +-0.1: the floor keeps their closeness from counting.
  EXPECT_LT(group_feature_surprise(0.50f, 0.001f, 0.1f, 0.501f, 0.1f, false), 1.0f);
  // Two groups of one scripted client each, medians known to 0.002: close medians count.
  EXPECT_GT(group_feature_surprise(0.30f, 0.001f, 0.002f, 0.301f, 0.002f, false), 4.0f);
  // A group of one account is an account: the pair's rule.
  EXPECT_FLOAT_EQ(group_feature_surprise(0.40f, 0.001f, 0.0f, 0.41f, 0.0f, false),
                  feature_surprise(0.40f, 0.41f, 0.001f, false));
}

TEST(NullSurprise, IsTheShareOfTheNullAtOrAboveAndFollowsTheTailBeyondIt) {
  std::vector<float> values;
  for (int i = 0; i < 1000; ++i) values.push_back(float(i) / 100.0f);  // 0 .. 9.99
  const NullSample s = NullSample::of(values);
  const EmpiricalNull null{s.values.data(), int64_t(s.values.size()), s.tail_start, s.tail_scale, s.tail_log_share};
  EXPECT_NEAR(null_surprise(5.0f, null), -std::log(501.0 / 1001.0), 1e-5);
  EXPECT_NEAR(null_surprise(-1.0f, null), 0.0f, 1e-6);
  const float far = null_surprise(30.0f, null), farther = null_surprise(40.0f, null);
  EXPECT_GT(far, -std::log(1.0 / 1001.0));  // beyond every sample: rarer than one in 1000
  EXPECT_GT(farther, far + 10.0f);          // and ever rarer along the tail
}

TEST(ShareLowerBound, DiscountsTheShareOfAFewRequestsAndNotOfMany) {
  // Four light accounts, 5 of 13 requests shared: not reliably a fifth.
  EXPECT_LT(share_lower_bound(5, 13), 0.2f);
  // The same share over hundreds of requests: close to itself.
  EXPECT_NEAR(share_lower_bound(500, 1300), 500.0 / 1300.0, 0.04);
  EXPECT_GT(share_lower_bound(46, 141), 0.2f);
  // Never above the share, never below zero; more requests at the same share, a higher bound.
  for (int64_t n : {1, 2, 10, 100, 10000})
    for (int64_t k = 0; k <= n; k += std::max<int64_t>(1, n / 7)) {
      EXPECT_LE(share_lower_bound(k, n), double(k) / double(n) + 1e-6);
      EXPECT_GE(share_lower_bound(k, n), 0.0f);
      EXPECT_GE(share_lower_bound(2 * k, 2 * n), share_lower_bound(k, n) - 1e-6f);
    }
  EXPECT_EQ(share_lower_bound(0, 0), 0.0f);
}

TEST(EdgeEvidence, OneOverwhelmingSignalOrSeveralWeakOnesMakeAnEdgeAndOneWeakOneDoesNot) {
  const float threshold = edge_threshold_nats(1.0);  // one false edge per million pairs
  EXPECT_NEAR(threshold, std::log(1e6), 1e-4);
  EXPECT_GE(edge_evidence(30.0f, 0.0f, 0.0f, 3, 0.0f), threshold);  // the same rare templates
  EXPECT_GE(edge_evidence(9.0f, 9.0f, 9.0f, 3, 0.0f), threshold);   // a bit of everything
  EXPECT_LT(edge_evidence(9.0f, 0.0f, 0.0f, 3, 0.0f), threshold);   // one coincidence
  // A signal the input lacks is left out, not counted against: two signals need less.
  EXPECT_GT(edge_evidence(9.0f, 9.0f, 0.0f, 2, 0.0f), edge_evidence(9.0f, 9.0f, 0.0f, 3, 0.0f));
  // What the account index selected the pair for is paid for.
  EXPECT_NEAR(edge_evidence(0.0f, 20.0f, 10.0f, 3, 5.0f), edge_evidence(0.0f, 20.0f, 10.0f, 3, 0.0f) - 5.0f, 1e-4f);
}

TEST(UnitPairIndexPenalty, AccountsPayForTheIndexsChoiceAndLargeUnitsLinkedByAnyMemberPayLess) {
  const float account = std::log(10000.0f / 32.0f);  // 10,000 accounts, 16 neighbours each way
  EXPECT_FLOAT_EQ(unit_pair_index_penalty(account, 1, 1), account);
  // Two clusters of 9: any of 81 member pairs could have been linked by chance.
  EXPECT_NEAR(unit_pair_index_penalty(account, 9, 9), account - std::log(81.0f), 1e-5);
  EXPECT_NEAR(unit_pair_index_penalty(account, 9, 1), account - std::log(9.0f), 1e-5);
  // Clusters so large that some link between them is expected pay nothing.
  EXPECT_FLOAT_EQ(unit_pair_index_penalty(account, 30, 20), 0.0f);
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
