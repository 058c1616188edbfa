// The evidence calibration: nulls estimated from the input itself (docs/method.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "pair_evidence.hpp"
#include "random.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/evidence_calibration.hpp"
#include "ringscan/error.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"

using namespace ringscan;

namespace {

Context two_threads() {
  Context ctx;
  ctx.threads = 2;
  ctx.memory_budget = int64_t(8) << 30;
  return ctx;
}

struct Calibrated {
  CanonicalRequests req;
  PromptGroups groups;
  AccountProfiles profiles;
  EvidenceCalibration calibration;
};

Calibrated calibrate(const GenerateOptions& g) {
  const Context ctx = two_threads();
  Calibrated c;
  const DetectOptions o;
  c.req = canonical_requests(generate_in_memory(g, ctx), ctx);
  c.groups = prompt_groups(c.req, near_duplicate_pairs(c.req, o, ctx), o);
  c.profiles = account_profiles(c.req, o, ctx);
  c.calibration = calibrate_evidence(c.req, c.groups, c.profiles, o, ctx);
  return c;
}

GenerateOptions world(uint64_t seed) {
  GenerateOptions g;
  g.accounts = 3000;
  g.dim = 64;
  g.seed = seed;
  return g;
}

}  // namespace

TEST(EvidenceCalibration, ColumnsOfNoiseGetNoWeightAndTheGeneratorsColumnsDo) {
  GenerateOptions g = world(9201);
  g.noise_features = 12;
  const Calibrated c = calibrate(g);
  const EvidenceCalibration& cal = c.calibration;
  ASSERT_EQ(cal.feature_dim, 8 + 12);
  ASSERT_GE(cal.anchor_pairs, 30);  // enough pairs sharing rare prompts to learn from
  for (int64_t f = 8; f < 20; ++f) EXPECT_EQ(cal.feature_weight[f], 0.0f) << "noise column " << f;
  int64_t weighted = 0;
  for (int64_t f = 0; f < 8; ++f) weighted += cal.feature_weight[f] > 0;
  EXPECT_GE(weighted, 4) << "the rings' scripted clients make most of the generator's columns count";
}

TEST(EvidenceCalibration, ClientsAsVariedAsAnybodysGiveBehaviourNoWeight) {
  GenerateOptions g = world(9202);
  g.ring_population_behaviour = true;
  const Calibrated c = calibrate(g);
  for (int64_t f = 0; f < c.calibration.feature_dim; ++f)
    EXPECT_LT(c.calibration.feature_weight[f], 0.5f) << "column " << f;
}

TEST(EvidenceCalibration, TheBehaviourOfRandomPairsIsAsSurprisingAsChanceSays) {
  // Surprise against a null is calibrated when P(surprise >= s) is about e^-s for random
  // pairs (fresh ones, not those the null was estimated on).
  const Calibrated c = calibrate(world(9203));
  ASSERT_TRUE(c.calibration.behaviour_present);
  const ProfilesView view = host_view(c.profiles, c.calibration);
  const int64_t A = c.req.num_accounts, n = 20000;
  int64_t above_1 = 0, above_3 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = int64_t(mix64(uint64_t(i) * 2 + 77) % uint64_t(A));
    const int64_t b = int64_t(mix64(uint64_t(i) * 2 + 78) % uint64_t(A));
    if (a == b) continue;
    const float s = evaluate_pair(view, a, b, 0.0f).behaviour;
    above_1 += s >= 1.0f;
    above_3 += s >= 3.0f;
  }
  EXPECT_NEAR(double(above_1) / n, std::exp(-1.0), 0.03);
  EXPECT_NEAR(double(above_3) / n, std::exp(-3.0), 0.015);
}

TEST(EvidenceCalibration, CategoricalColumnsCountOnlyWhenEqual) {
  GenerateOptions g = world(9204);
  const Context ctx = two_threads();
  Dataset d = generate_in_memory(g, ctx);
  // Column 0 made a category with three values, rank-adjacent ones among them.
  for (int64_t a = 0; a < d.num_accounts(); ++a) d.features[a * d.feature_dim] = float(a % 3);
  d.feature_categorical.assign(d.feature_dim, 0);
  d.feature_categorical[0] = 1;
  const DetectOptions o;
  const CanonicalRequests req = canonical_requests(d, ctx);
  const PromptGroups groups = prompt_groups(req, near_duplicate_pairs(req, o, ctx), o);
  const AccountProfiles p = account_profiles(req, o, ctx);
  const EvidenceCalibration cal = calibrate_evidence(req, groups, p, o, ctx);
  ASSERT_EQ(cal.categorical[0], 1);
  const int64_t B = cal.feature_dim;
  for (int64_t a = 0; a + 1 < req.num_accounts; ++a) {
    const float* ra = &cal.feature_rank[a * B];
    const float* rb = &cal.feature_rank[(a + 1) * B];
    const float s = feature_surprise(ra[0], rb[0], cal.feature_tie[a * B], true);
    if (ra[0] == rb[0]) EXPECT_NEAR(s, -std::log(cal.feature_tie[a * B]), 1e-5f);
    else EXPECT_EQ(s, 0.0f);
  }
}

TEST(EvidenceCalibration, SaysWhichEvidenceTheInputLacks) {
  GenerateOptions g = world(9205);
  g.times = false;
  g.features = false;
  const Calibrated c = calibrate(g);
  const auto& notes = c.calibration.notes;
  const auto says = [&](const std::string& text) {
    return std::any_of(notes.begin(), notes.end(), [&](const std::string& n) { return n.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(says("timing evidence off: the input has no /requests/time"));
  EXPECT_TRUE(says("behaviour evidence off: the input has no /accounts/features"));
  EXPECT_EQ(c.calibration.signals, 1);  // shared prompts alone
}

TEST(EvidenceCalibration, OnlyTheRequiredDatasetsStillFindRingsAndSaySo) {
  GenerateOptions g = world(9206);
  g.times = false;
  g.features = false;
  const Context ctx = two_threads();
  const Dataset d = generate_in_memory(g, ctx);
  const DetectionResult r = detect_rings(d, DetectOptions{}, ctx);
  EXPECT_FALSE(r.rings.empty());  // never a silent "0 rings" for want of a signal
  // Every missing kind of evidence is named.
  ASSERT_EQ(r.notes.size(), 3u);
  EXPECT_NE(r.notes[0].find("timing evidence off"), std::string::npos) << r.notes[0];
  EXPECT_NE(r.notes[1].find("infrastructure evidence off"), std::string::npos) << r.notes[1];
  EXPECT_NE(r.notes[2].find("behaviour evidence off"), std::string::npos) << r.notes[2];
}

TEST(SharedPromptEvidence, AccountsWhoseTrafficIsOneRareTemplateGainMoreThanOccasionalSenders) {
  // 400 accounts of 10 unrelated prompts each; accounts 0-3 send nothing but one template,
  // ten times each, and accounts 4-7 send it once amid nine prompts of their own. Both pairs
  // share the one group of eight senders and send as many requests, but a prompt sent again
  // is no new chance to meet another account: the focused pair had one try each, the others
  // ten.
  const int64_t A = 400, D = 64, per_account = 10;
  std::mt19937_64 rng(41);
  std::normal_distribution<float> normal;
  const auto random_row = [&] {
    std::vector<float> v(D);
    for (auto& x : v) x = normal(rng);
    return v;
  };
  const std::vector<float> template_row = random_row();
  const auto template_copy = [&] {
    std::vector<float> v = template_row;
    for (auto& x : v) x += 0.02f * normal(rng);
    return v;
  };
  Dataset d;
  d.source = "focused-and-occasional";
  d.dim = D;
  for (int64_t a = 0; a < A; ++a) {
    d.account_ids.push_back(1000 + a);
    for (int64_t r = 0; r < per_account; ++r) {
      const bool templated = a < 4 || (a < 8 && r == 0);
      const std::vector<float> row = templated ? template_copy() : random_row();
      d.embeddings.insert(d.embeddings.end(), row.begin(), row.end());
      d.request_account.push_back(a);
      d.request_time.push_back(1767225600 + (a * per_account + r) * 977);
    }
  }
  const Context ctx = two_threads();
  const DetectOptions o;
  const CanonicalRequests req = canonical_requests(d, ctx);
  const PromptGroups groups = prompt_groups(req, near_duplicate_pairs(req, o, ctx), o);
  const AccountProfiles profiles = account_profiles(req, o, ctx);
  const EvidenceCalibration cal = calibrate_evidence(req, groups, profiles, o, ctx);
  ASSERT_EQ(req.account_id[0], 1000);  // canonical order is the ids' order here
  for (int64_t a = 0; a < 4; ++a) EXPECT_EQ(cal.distinct_prompts[a], 1) << "account " << a;
  for (int64_t a = 4; a < 12; ++a) EXPECT_EQ(cal.distinct_prompts[a], per_account) << "account " << a;
  EXPECT_EQ(cal.group_mass[0], 7.0f);
  EXPECT_EQ(cal.group_mass[4], 7.0f);

  const ProfilesView view = host_view(profiles, cal);
  const float focused = evaluate_pair(view, 0, 1, 1.0f).shared_prompts;
  const float occasional = evaluate_pair(view, 4, 5, 1.0f).shared_prompts;
  EXPECT_GT(focused, occasional + 2.0f) << "ten times fewer tries is about ln 10 nats more surprise";
  EXPECT_GT(occasional, 0.0f);
}

TEST(EvidenceThreshold, IsTheSurpriseOfTheExpectedFalseEdgesPerMillionPairs) {
  EXPECT_NEAR(edge_threshold_nats(1.0), std::log(1e6), 1e-4);
  EXPECT_NEAR(edge_threshold_nats(10.0), std::log(1e5), 1e-4);
  EXPECT_THROW(edge_threshold_nats(0.0), InvalidInput);
}

TEST(MergeThreshold, ExpectsTheChosenFalseMergesAmongThePairsJudged) {
  // 300 pairs judged: each merges by chance with e^-t, so 300 e^-t = kChanceFalseMerges.
  const float t = merge_threshold_nats(300, 11.5f);
  EXPECT_NEAR(300.0 * std::exp(-double(t)), kChanceFalseMerges, 1e-6);
  EXPECT_LT(t, 11.5f);
  // More pairs need more evidence, up to the edge threshold and no further.
  EXPECT_GT(merge_threshold_nats(3000, 11.5f), t);
  EXPECT_EQ(merge_threshold_nats(int64_t(1) << 40, 11.5f), 11.5f);
  // A round that judges nothing asks the edge threshold (it merges nothing either way).
  EXPECT_EQ(merge_threshold_nats(0, 11.5f), 11.5f);
}

TEST(MergeEvidence, HalvesOfDifferentRingsShowWhatChanceGivesAndHalvesOfOneRingMuchMore) {
  // Each planted ring cut in two halves (every other member), each half a cluster. Halves of
  // two rings are two operators' accounts, so what they carry together is a surprise under
  // its null: about a share e^-t of such pairs reach t nats, which is what lets the merge
  // threshold count its tests (merge_threshold_nats). Halves of one ring carry far more.
  // Rings on one scripted client each, and rings whose members' clients are as varied as
  // anybody's (their halves' behaviour medians both sit near the population's).
  std::vector<float> apart, together;
  for (const uint64_t seed : {9301u, 9302u, 9303u, 9304u}) {
    const Context ctx = two_threads();
    GenerateOptions g = world(seed);
    g.accounts = 4000;
    g.ring_fraction = 0.2;
    g.ring_population_behaviour = seed % 2 == 0;
    const Dataset d = generate_in_memory(g, ctx);
    const DetectOptions o;
    const CanonicalRequests req = canonical_requests(d, ctx);
    const PromptGroups groups = prompt_groups(req, near_duplicate_pairs(req, o, ctx), o);
    const EvidenceCalibration cal = calibrate_evidence(req, groups, account_profiles(req, o, ctx), o, ctx);
    // Clusters: ring k's members in canonical order, alternately in clusters 2k and 2k + 1.
    Clustering halves;
    halves.label.assign(req.num_accounts, -1);
    std::vector<int64_t> seen;  // [rings] members placed so far
    for (int64_t a = 0; a < req.num_accounts; ++a) {
      const int64_t ring = d.labels[req.account_row[a]];
      if (ring < 0) continue;
      if (ring >= int64_t(seen.size())) seen.resize(ring + 1, 0);
      halves.label[a] = 2 * ring + seen[ring]++ % 2;
    }
    halves.num_clusters = 2 * int64_t(seen.size());
    for (const ClusterPairEvidence& p : judged_cluster_pairs(halves, req, groups, cal, {}, ctx))
      (p.first / 2 == p.second / 2 ? together : apart).push_back(p.evidence);
  }
  ASSERT_GE(apart.size(), 2500u);
  ASSERT_GE(together.size(), 60u);
  // A surprise is valid when chance reaches t nats at most a share e^-t of the time.
  for (const float t : {2.0f, 3.0f, 4.0f, 5.0f}) {
    const auto reached = std::count_if(apart.begin(), apart.end(), [&](float e) { return e >= t; });
    EXPECT_LE(double(reached) / double(apart.size()), std::exp(-double(t))) << t << " nats";
  }
  // Every ring's halves carry what even a round of millions of pairs would ask.
  EXPECT_GE(*std::min_element(together.begin(), together.end()),
            edge_threshold_nats(DetectOptions{}.false_edges_per_million));
}

TEST(WeakEdgeThreshold, GivesAnAccountHalfAWeakEdgeByChance) {
  // 300,000 candidate pairs among 10,000 accounts: 60 candidates an account, and a weak edge
  // at chance e^-t each, so e^-t = kChanceWeakDegree / 60.
  const float t = weak_edge_threshold_nats(3e5, 10000, 11.5f);
  EXPECT_NEAR(t, std::log(60.0 / kChanceWeakDegree), 1e-4);
  EXPECT_NEAR(60.0 * std::exp(-double(t)), kChanceWeakDegree, 1e-4);
  // Never above the edge threshold; none where candidates are too few to matter.
  EXPECT_EQ(weak_edge_threshold_nats(1e12, 10000, 11.5f), 11.5f);
  EXPECT_EQ(weak_edge_threshold_nats(100, 10000, 11.5f), 0.0f);
  EXPECT_EQ(weak_edge_threshold_nats(0, 0, 11.5f), 0.0f);
}
