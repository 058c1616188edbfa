// Template groups below the near-duplicate cosine, and the background similarity that sets
// their floor, on embeddings shaped like a real sentence model's: every prompt shares a
// common direction (unrelated prompts sit at a cosine of 0.1-0.2, not 0), instances of one
// template sit at about 0.75, rewordings of one topic spread continuously.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <map>
#include <set>
#include <vector>

#include "ringscan/near_duplicates.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"

using namespace ringscan;

namespace {

constexpr int64_t kDim = 48;

/// Embeddings of an anisotropic model: `common` times a shared direction, plus `signal`
/// times the prompt's own direction `center` (unit, or empty for none), plus unit-scale noise.
struct Space {
  std::mt19937_64 rng{7};
  std::vector<float> common_direction = direction();

  std::vector<float> direction() {
    std::normal_distribution<float> n(0.0f, 1.0f);
    std::vector<float> v(kDim);
    double s = 0;
    for (auto& x : v) {
      x = n(rng);
      s += double(x) * x;
    }
    for (auto& x : v) x = float(x / std::sqrt(s));
    return v;
  }
  std::vector<float> prompt(const std::vector<float>& center, float signal, float noise, float common = 0.4f) {
    std::vector<float> v = direction();
    for (int64_t i = 0; i < kDim; ++i) {
      v[i] = noise * v[i] + common * common_direction[i];
      if (!center.empty()) v[i] += signal * center[i];
    }
    return v;
  }
};

struct Traffic {
  Dataset data;
  void send(int64_t account, const std::vector<float>& embedding) {
    data.request_account.push_back(account);
    data.embeddings.insert(data.embeddings.end(), embedding.begin(), embedding.end());
  }
  void finish(int64_t accounts) {
    data.source = "synthetic";
    data.dim = kDim;
    for (int64_t a = 0; a < accounts; ++a) data.account_ids.push_back(1000 + a);
  }
};

Context context() {
  Context ctx;
  ctx.threads = 2;
  return ctx;
}

/// The prompt groups of `data` at the given template floor (the near-duplicate cosine: none).
PromptGroups groups_at(const CanonicalRequests& req, float template_similarity) {
  DetectOptions o;
  o.template_similarity = template_similarity;
  return prompt_groups(req, prompt_links(req, near_duplicate_pairs(req, o, context()), o), o);
}

/// Canonical requests of the accounts in [first, last).
std::vector<int64_t> requests_of(const CanonicalRequests& req, int64_t first, int64_t last) {
  std::vector<int64_t> out;
  for (int64_t a = first; a < last; ++a)
    for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) out.push_back(r);
  return out;
}

// 300 ordinary accounts with ten unrelated prompts each; accounts 300-307 also send three
// instances of one template each (a cosine of about 0.79 between instances).
Traffic template_ring_among_ordinary_users(Space& space, std::vector<float>* template_direction = nullptr) {
  Traffic t;
  const std::vector<float> none, tmpl = space.direction();
  for (int64_t a = 0; a < 308; ++a) {
    for (int i = 0; i < 10; ++i) t.send(a, space.prompt(none, 0, 1.0f));
    if (a >= 300)
      for (int i = 0; i < 3; ++i) t.send(a, space.prompt(tmpl, 1.0f, 0.55f));
  }
  t.finish(308);
  if (template_direction) *template_direction = tmpl;
  return t;
}

/// The groups of `groups` with more than `accounts` accounts, as sets of requests.
std::set<std::vector<int64_t>> groups_above(const PromptGroups& groups, int64_t accounts) {
  std::map<int64_t, std::vector<int64_t>> members;
  for (int64_t r = 0; r < int64_t(groups.group_of_request.size()); ++r) {
    const int64_t g = groups.group_of_request[r];
    if (g >= 0 && groups.accounts_in(g) > accounts) members[g].push_back(r);
  }
  std::set<std::vector<int64_t>> out;
  for (auto& [g, rs] : members) out.insert(rs);
  return out;
}

TEST(TemplateGroups, InstancesOfOneTemplateBelowTheNearDuplicateCosineShareOneGroup) {
  Space space;
  std::vector<float> tmpl;
  const Traffic t = template_ring_among_ordinary_users(space, &tmpl);
  const CanonicalRequests req = canonical_requests(t.data, context());
  std::vector<int64_t> instances;
  for (int64_t r = 0; r < req.num_requests; ++r) {
    double along = 0;
    for (int64_t i = 0; i < kDim; ++i) along += double(req.unit_embeddings[r * kDim + i]) * tmpl[i];
    if (along > 0.5) instances.push_back(r);
  }
  ASSERT_EQ(instances.size(), 24u);
  const PromptGroups off = groups_at(req, 0.9f), on = groups_at(req, 0.5f);
  const int64_t g = on.group_of_request[instances[0]];
  ASSERT_GE(g, 0);
  std::vector<int64_t> members;
  for (int64_t r = 0; r < req.num_requests; ++r)
    if (on.group_of_request[r] == g) members.push_back(r);
  EXPECT_EQ(members, instances);
  EXPECT_EQ(on.accounts_in(g), 8);
  EXPECT_TRUE(on.is_evidence(g));
  for (int64_t r : instances) EXPECT_LT(off.group_of_request[r], 0) << "the near-duplicate cosine alone groups no instance";
}

TEST(TemplateGroups, ATopicAskedInManyWordingsFormsNoGroupOfMoreThanAFewAccounts) {
  // 400 accounts each ask once about one topic, in wordings spread continuously around it
  // (cosines of 0.6-0.8 among them): components grow at every level until they are common,
  // so none becomes a template group. Pairs that happen to sit apart may pair up.
  Space space;
  Traffic t;
  const std::vector<float> none, topic = space.direction();
  for (int64_t a = 0; a < 400; ++a) {
    for (int i = 0; i < 5; ++i) t.send(a, space.prompt(none, 0, 1.0f));
    t.send(a, space.prompt(topic, 1.0f, 0.6f + 0.002f * float(a % 100)));
  }
  t.finish(400);
  const CanonicalRequests req = canonical_requests(t.data, context());
  EXPECT_TRUE(groups_above(groups_at(req, 0.9f), 1).empty());
  EXPECT_TRUE(groups_above(groups_at(req, 0.5f), 3).empty());
}

TEST(TemplateGroups, AQuestionEachAccountAsksOnceInItsOwnWordsIsNoTemplate) {
  // 30 accounts of a trending crowd each ask one question once, in wordings at a cosine of
  // about 0.79 from each other: a rare, stable clump, but nobody reuses it.
  Space space;
  Traffic t = template_ring_among_ordinary_users(space);
  const std::vector<float> question = space.direction();
  for (int64_t a = 0; a < 30; ++a) t.send(a, space.prompt(question, 1.0f, 0.55f));
  const CanonicalRequests req = canonical_requests(t.data, context());
  const PromptGroups on = groups_at(req, 0.5f);
  // Only the ring's template (8 accounts, 24 instances) is a group of more than 3 accounts.
  const auto large = groups_above(on, 3);
  ASSERT_EQ(large.size(), 1u);
  EXPECT_EQ(large.begin()->size(), 24u);
}

TEST(TemplateGroups, RequestsWithANearDuplicateKeepTheirNearDuplicateGroup) {
  // Two accounts send copies of one prompt (cosine > 0.9) and each also a template instance
  // close to it: the copies' group is the near-duplicate group, as without templates.
  Space space;
  Traffic t = template_ring_among_ordinary_users(space);
  const std::vector<float> copy = space.prompt(space.direction(), 1.0f, 0.1f);
  t.send(10, copy);
  t.send(11, copy);
  const CanonicalRequests req = canonical_requests(t.data, context());
  const PromptGroups off = groups_at(req, 0.9f), on = groups_at(req, 0.5f);
  for (int64_t r = 0; r < req.num_requests; ++r)
    if (off.group_of_request[r] >= 0 && off.accounts_in(off.group_of_request[r]) >= 2) {
      ASSERT_GE(on.group_of_request[r], 0);
      EXPECT_EQ(on.accounts_in(on.group_of_request[r]), off.accounts_in(off.group_of_request[r]));
    }
}

TEST(BackgroundSimilarity, MeasuresWhereUnrelatedPromptsSit) {
  Space space;
  const Traffic t = template_ring_among_ordinary_users(space);
  const CanonicalRequests req = canonical_requests(t.data, context());
  const BackgroundSimilarity bg = background_similarity(req);
  ASSERT_GT(bg.pairs, 10000);
  // Unrelated prompts here: a cosine of 0.16 / 1.16 = 0.14 on average, spread 1/sqrt(48).
  EXPECT_NEAR(bg.median, 0.14, 0.03);
  EXPECT_NEAR(bg.upper, 0.14 + 2.326 * 0.86 / std::sqrt(48.0), 0.05);
  // The same sample for any order of the input.
  Traffic reversed;
  for (int64_t r = t.data.num_requests() - 1; r >= 0; --r)
    reversed.send(t.data.request_account[r],
                  std::vector<float>(t.data.embeddings.begin() + r * kDim, t.data.embeddings.begin() + (r + 1) * kDim));
  reversed.finish(308);
  const BackgroundSimilarity again = background_similarity(canonical_requests(reversed.data, context()));
  EXPECT_EQ(again.median, bg.median);
  EXPECT_EQ(again.upper, bg.upper);
}

TEST(BackgroundSimilarity, SimilaritiesAreMeasuredFromTheMedianUnrelatedPair) {
  BackgroundSimilarity bg;
  bg.pairs = 1000;
  bg.median = 0.85f;
  bg.upper = 0.9f;
  EXPECT_FLOAT_EQ(background_offset(bg), 0.85f);
  EXPECT_NEAR(on_background_scale(bg, 0.9f), 0.85 + 0.9 * 0.15, 1e-6);
  EXPECT_FLOAT_EQ(on_background_scale(bg, 1.0f), 1.0f);
  // Below 0, or nothing sampled: cosines as they are.
  bg.median = -0.05f;
  EXPECT_FLOAT_EQ(on_background_scale(bg, 0.9f), 0.9f);
  EXPECT_FLOAT_EQ(on_background_scale(BackgroundSimilarity{}, 0.9f), 0.9f);
}

TEST(BackgroundSimilarity, TheTemplateFloorSitsThreeBackgroundScalesAboveTheMedian) {
  BackgroundSimilarity bg;
  bg.pairs = 1000;
  bg.median = 0.1f;
  bg.upper = 0.45f;
  EXPECT_NEAR(estimated_template_similarity(bg, 0.91f), 0.1 + 3 * 0.35 / 2.326, 1e-5);
  // Never below half-way from the median to the near-duplicate cosine, never above it.
  bg.upper = 0.15f;
  EXPECT_NEAR(estimated_template_similarity(bg, 0.91f), 0.1 + 0.5 * 0.81, 1e-6);
  bg.median = 0.0f;
  EXPECT_FLOAT_EQ(estimated_template_similarity(bg, 0.9f), 0.45f);
  bg.median = 0.5f;
  bg.upper = 0.99f;
  EXPECT_FLOAT_EQ(estimated_template_similarity(bg, 0.95f), 0.95f);
  // Nothing sampled: no template search.
  EXPECT_FLOAT_EQ(estimated_template_similarity(BackgroundSimilarity{}, 0.9f), 0.9f);
}

TEST(BackgroundSimilarity, OnlyUnrelatedPromptsSpreadCloseToTheNearDuplicateCosineCountAsCrowded) {
  BackgroundSimilarity bg;
  bg.pairs = 1000;
  // All leaning one way, but spread little: measured from their median, nothing crowds.
  bg.median = 0.85f;
  bg.upper = 0.9f;
  EXPECT_FALSE(crowded_background(bg));
  // Spread up to 0.8 from a median of 0.1: 1% of unrelated pairs within reach of 0.9.
  bg.median = 0.1f;
  bg.upper = 0.8f;
  EXPECT_TRUE(crowded_background(bg));
}

TEST(BackgroundSimilarity, AModelWhoseUnrelatedPromptsSpreadCloseIsNamedInTheNotes) {
  // A model that uses three directions: unrelated prompts' cosines spread over [-1, 1].
  Space space;
  const std::vector<float> axes[3] = {space.direction(), space.direction(), space.direction()};
  std::normal_distribution<float> n(0.0f, 1.0f);
  Traffic t;
  for (int64_t a = 0; a < 200; ++a)
    for (int i = 0; i < 5; ++i) {
      std::vector<float> v(kDim, 0.0f);
      for (const auto& axis : axes) {
        const float w = n(space.rng);
        for (int64_t j = 0; j < kDim; ++j) v[j] += w * axis[j];
      }
      t.send(a, v);
    }
  t.finish(200);
  const DetectionResult r = detect_rings(t.data, DetectOptions{}, context());
  bool named = false;
  for (const std::string& note : r.notes) named = named || note.find("--duplicate-similarity") != std::string::npos;
  EXPECT_TRUE(named);
}

}  // namespace
