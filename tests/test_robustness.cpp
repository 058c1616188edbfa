// The robustness matrix in small (benchmarks/robustness.sh runs it at 10,000 accounts): each
// regime takes away or blurs one kind of evidence the generator's default traffic carries,
// and detection at default parameters must still find the rings without accusing anyone.
// The seeds are ones the defaults were not chosen on.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "ringscan/evaluate.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/pipeline.hpp"
#include "test_support.hpp"

using namespace ringscan;

namespace {

struct Regime {
  const char* name;
  void (*apply)(GenerateOptions&);
};

void PrintTo(const Regime& r, std::ostream* os) { *os << r.name; }

const Regime kRegimes[] = {
    {"PopulationBehaviour", [](GenerateOptions& g) { g.ring_population_behaviour = true; }},
    {"EightNoiseFeatures", [](GenerateOptions& g) { g.noise_features = 8; }},
    {"TwentyFourNoiseFeatures", [](GenerateOptions& g) { g.noise_features = 24; }},
    {"NoFeatures", [](GenerateOptions& g) { g.features = false; }},
    {"SessionsOverHours", [](GenerateOptions& g) { g.ring_sessions = true; }},
    {"HalfCoverTraffic", [](GenerateOptions& g) { g.ring_cover = 0.5; }},
    {"Infrastructure", [](GenerateOptions& g) { g.infrastructure = true; }},
    // At 10,000 accounts this regime is still below its floors (docs/benchmarks/robustness.md):
    // some split rings' sub-groups, which share no prompt, have too little behaviour in common.
    {"NoTimes", [](GenerateOptions& g) { g.times = false; }},
    // Below its floors too at 10,000 accounts: some members' two or three requests share no
    // prompt with another member's. Here its account recall was 0.942 until a member sharing
    // one prompt with a cluster could join it when the cluster sent most of that prompt.
    {"LightAccounts", [](GenerateOptions& g) { g.light_rings = true; }},
};

struct Outcome {
  Evaluation evaluation;
  LookalikeAccusations lookalikes;
  std::map<int64_t, int64_t> style_of_label;
};

/// Generates `regime` at 4,000 accounts and detects at defaults; `strip` may take datasets away
/// from the generated file first.
Outcome detect_regime(const Regime& regime, uint64_t seed, void (*strip)(Dataset&) = nullptr,
                      DetectionResult* result = nullptr) {
  Context ctx;
  ctx.threads = 2;
  ctx.memory_budget = int64_t(8) << 30;
  GenerateOptions g;
  g.accounts = 4000;
  g.dim = 64;
  g.seed = seed;
  regime.apply(g);
  std::vector<int64_t> roles, styles;
  Dataset d = generate_in_memory(g, ctx, &roles, &styles);
  if (strip != nullptr) strip(d);
  const DetectionResult r = detect_rings(d, DetectOptions{}, ctx);
  Outcome o;
  o.evaluation = evaluate_rings(r.ring, d.labels);
  o.lookalikes = lookalike_accusations(r.ring, d.labels, roles);
  for (std::size_t a = 0; a < styles.size(); ++a)
    if (d.labels[a] >= 0) o.style_of_label[d.labels[a]] = styles[a];
  if (result != nullptr) *result = r;
  return o;
}

/// Each regime is detected once and judged by several tests.
const Outcome& outcome(const Regime& regime) {
  static std::map<std::string, Outcome> done;
  auto it = done.find(regime.name);
  if (it == done.end()) it = done.emplace(regime.name, detect_regime(regime, 9101)).first;
  return it->second;
}

class RobustnessRegime : public ::testing::TestWithParam<Regime> {};

TEST_P(RobustnessRegime, AccusesNoLookAlike) {
  const Outcome& o = outcome(GetParam());
  ASSERT_GE(o.evaluation.planted_rings, 3);
  EXPECT_GE(o.evaluation.account_precision, 0.99);
  EXPECT_EQ(o.lookalikes.team_accounts, 0);
  EXPECT_EQ(o.lookalikes.crowd_accounts, 0);
  EXPECT_EQ(o.lookalikes.viral_sharer_accounts, 0);
  EXPECT_EQ(o.lookalikes.mostly_innocent_rings, 0);
}

TEST_P(RobustnessRegime, FindsTheRings) {
  const Outcome& o = outcome(GetParam());
  ASSERT_GE(o.evaluation.planted_rings, 3);
  EXPECT_GE(o.evaluation.ring_recall, 0.95);
  EXPECT_GE(o.evaluation.account_recall, 0.95);
}

const auto kName = [](const ::testing::TestParamInfo<Regime>& info) { return std::string(info.param.name); };
INSTANTIATE_TEST_SUITE_P(Regimes, RobustnessRegime, ::testing::ValuesIn(kRegimes), kName);

const Regime& regime_named(const std::string& name) {
  for (const Regime& r : kRegimes)
    if (name == r.name) return r;
  throw std::invalid_argument("no regime " + name);
}

TEST(RobustnessRegime, SplitRingsJoinWhereARoundJudgesFewPairsOfClusters) {
  // A ring split across capabilities whose sub-groups share no prompt is joined on their
  // timing and behaviour alone, which at 4,000 accounts reach 9-11 nats: above what a round
  // that judges a few hundred pairs asks (merge_threshold_nats), below the edge threshold.
  // While every merge asked the edge threshold, light-accounts seed 9207 had ring recall
  // 0.80 and account recall 0.925, and no-times seed 9204 ring recall 0.875.
  for (const auto& [name, seed] : {std::pair<std::string, uint64_t>{"LightAccounts", 9207},
                                   std::pair<std::string, uint64_t>{"NoTimes", 9204}}) {
    SCOPED_TRACE(name);
    const Outcome o = detect_regime(regime_named(name), seed);
    ASSERT_GE(o.evaluation.planted_rings, 3);
    EXPECT_GE(o.evaluation.ring_recall, 0.95);
    EXPECT_GE(o.evaluation.account_recall, 0.95);
    EXPECT_GE(o.evaluation.account_precision, 0.99);
    EXPECT_EQ(o.lookalikes.mostly_innocent_rings, 0);
  }
}

TEST(RobustnessRegime, OnlyTheRequiredDatasetsFindTemplateRingsAndAccuseNoOne) {
  // No times, no behaviour: shared prompts and their concentration are all there is. The
  // sub-groups of a ring split across capabilities share no prompt and cannot be joined, so
  // the floor is on the rings of prompt templates.
  const Regime required{"Required", [](GenerateOptions& g) {
                          g.times = false;
                          g.features = false;
                        }};
  const Outcome o = detect_regime(required, 9102);
  int64_t templates = 0, found = 0;
  for (const RingMatch& m : o.evaluation.matches)
    if (o.style_of_label.at(m.truth_label) == int64_t(RingStyle::Templates)) {
      ++templates;
      found += m.found;
    }
  ASSERT_GE(templates, 1);
  EXPECT_GE(double(found) / double(templates), 0.9);
  EXPECT_GE(o.evaluation.account_precision, 0.99);
  EXPECT_EQ(o.lookalikes.mostly_innocent_rings, 0);
}

// A proxy network: a tenth of the accounts, 1-3 requests a day, 50-90% of them resold
// ordinary traffic, all through a proxy service 5% of ordinary customers use too. No pair of
// its accounts carries an edge's evidence; the network is held together only as a whole.
const Regime kProxyNetwork{"ProxyNetwork", [](GenerateOptions& g) {
                             g.infrastructure = true;
                             g.proxy_network = 0.1;
                           }};

double network_jaccard(const Outcome& o) {
  for (const RingMatch& m : o.evaluation.matches)
    if (o.style_of_label.at(m.truth_label) == int64_t(RingStyle::ProxyNetwork)) return m.jaccard;
  return -1;
}

double statistic(const DetectionResult& r, const std::string& name) {
  for (const auto& [key, value] : r.statistics)
    if (key == name) return value;
  ADD_FAILURE() << "no statistic " << name;
  return -1;
}

// Sentence models are anisotropic: every vector leans along common directions, and unrelated
// texts sit at a cosine of 0.1-0.4, some models' at 0.8 or more. The same traffic embedded by a
// model whose vectors all lean one way: each row's component along one direction replaced by
// a common one, so that every pairwise cosine c becomes (c + w^2) / (1 + w^2).
void lean_one_way(Dataset& d) {
  constexpr double kLean = 2.38;  // unrelated prompts (c = 0) at 0.85
  const int64_t D = d.dim;
  std::vector<double> u(D);
  for (int64_t i = 0; i < D; ++i) u[i] = (i % 3 == 0 ? 1.0 : -0.5) * std::sqrt(2.0 / double(D));
  double un = 0;
  for (double x : u) un += x * x;
  for (double& x : u) x /= std::sqrt(un);
  for (int64_t r = 0; r < d.num_requests(); ++r) {
    float* row = d.embeddings.data() + r * D;
    double n = 0, along = 0;
    for (int64_t i = 0; i < D; ++i) n += double(row[i]) * row[i];
    for (int64_t i = 0; i < D; ++i) along += double(row[i]) / std::sqrt(n) * u[i];
    double m = 0;
    std::vector<double> v(D);
    for (int64_t i = 0; i < D; ++i) {
      v[i] = double(row[i]) / std::sqrt(n) - along * u[i];
      m += v[i] * v[i];
    }
    for (int64_t i = 0; i < D; ++i) row[i] = float(v[i] / std::sqrt(m) + kLean * u[i]);
  }
}

double statistic(const DetectionResult& r, const std::string& name);

TEST(RobustnessRegime, AModelWhoseVectorsAllLeanOneWayFindsTheSameRings) {
  // The near-duplicate and template similarities are measured from where this file's
  // unrelated prompts sit, so the defaults serve both models. (At a fixed cosine of 0.9 the
  // leaning model's unrelated prompts on one topic become near-duplicates.)
  const Regime plain{"Default", [](GenerateOptions&) {}};
  DetectionResult upright, leaning;
  const Outcome a = detect_regime(plain, 9104, nullptr, &upright);
  const Outcome b = detect_regime(plain, 9104, lean_one_way, &leaning);
  const double m = statistic(leaning, "background_median_cosine");
  EXPECT_NEAR(statistic(upright, "background_median_cosine"), 0.0, 0.05);
  EXPECT_GT(m, 0.8);
  EXPECT_NEAR(statistic(leaning, "duplicate_cosine"), m + 0.9 * (1 - m), 1e-4);
  ASSERT_GE(a.evaluation.planted_rings, 3);
  EXPECT_EQ(b.evaluation.reported_rings, a.evaluation.reported_rings);
  EXPECT_EQ(b.evaluation.ring_recall, a.evaluation.ring_recall);
  EXPECT_NEAR(b.evaluation.account_precision, a.evaluation.account_precision, 0.01);
  EXPECT_NEAR(b.evaluation.account_recall, a.evaluation.account_recall, 0.01);
  EXPECT_GE(b.evaluation.ring_recall, 0.95);
  EXPECT_GE(b.evaluation.account_precision, 0.99);
}

TEST(ProxyNetwork, IsFoundAsOneRingWithoutTheProxyServicesCustomers) {
  DetectionResult r;
  const Outcome o = detect_regime(kProxyNetwork, 9103, nullptr, &r);
  EXPECT_GE(network_jaccard(o), 0.5);
  EXPECT_GE(statistic(r, "weak_core_clusters"), 1);
  EXPECT_GE(o.evaluation.ring_recall, 0.95);
  EXPECT_GE(o.evaluation.account_precision, 0.99);
  EXPECT_EQ(o.lookalikes.proxy_customer_accounts, 0);
  EXPECT_EQ(o.lookalikes.mostly_innocent_rings, 0);
}

TEST(ProxyNetwork, WithoutInfrastructureNoWeakCoreFormsAndNoOneIsAccused) {
  // Without infrastructure a weak core's members must spend most of their traffic on its
  // prompts; the network's accounts resell mostly ordinary traffic, so none is formed, and
  // the network goes unfound rather than the proxy service's customers accused.
  DetectionResult r;
  const Outcome o = detect_regime(kProxyNetwork, 9103, [](Dataset& d) {
    d.infra_dim = 0;
    d.request_infra.clear();
    d.infra_names.clear();
    d.account_payment.clear();
    d.account_created.clear();
  }, &r);
  EXPECT_EQ(statistic(r, "weak_core_clusters"), 0);
  EXPECT_LT(network_jaccard(o), 0.5);
  EXPECT_GE(o.evaluation.account_precision, 0.99);
}

// A ring of light accounts, each sending three to five requests drawn mostly from the
// operator's private pool: every pool prompt is sent by a few members, so no pair shares
// enough to make an edge, and the file has no infrastructure. Beside it, the users of a
// public app's prompt pool: most send its prompts amid much work of their own, some are light
// users who send little else.
struct LightRingShape {
  /// Of the ring's accounts, these send 20-30 requests from the pool instead, and make a
  /// cluster of edges.
  int64_t heavy_members = 0;
  /// Prompts in the ring's pool (0: 14, or 40 with heavy members).
  int64_t pool = 0;
  /// A second ring (label 1) of as many heavy accounts, whose traffic holds the first ring's
  /// pool half of the time and a pool of its own otherwise: two operators on one template.
  int64_t neighbours = 0;
  /// Requests of each member that is not heavy: between this and this + 2 (0: 3-5).
  int64_t member_requests = 0;
};

struct LightRingInput {
  Dataset data;
  std::vector<uint8_t> app_user;  ///< [A]
};

/// Random prompts of `dim` dimensions and resendings of them (the same text, nearly), drawn
/// from `rng`, which the inputs below also use for everything else they draw.
struct PromptMaker {
  PromptMaker(uint64_t seed, int64_t dim) : rng(seed), dim(dim) {}
  std::vector<float> random_prompt() {
    std::vector<float> v(dim);
    for (float& x : v) x = normal(rng);
    return v;
  }
  std::vector<float> resent(const std::vector<float>& base) {
    std::vector<float> v(base);
    for (float& x : v) x += 0.02f * normal(rng);
    return v;
  }
  std::mt19937_64 rng;
  int64_t dim;
  std::normal_distribution<float> normal;
};

LightRingInput light_ring_input(uint64_t seed, LightRingShape shape = {}) {
  constexpr int64_t kDim = 48, kOrdinary = 3000, kRing = 18, kHeavyAppUsers = 120, kLightAppUsers = 30;
  PromptMaker prompts(seed, kDim);
  std::mt19937_64& rng = prompts.rng;
  std::vector<std::vector<float>> ring_pool(shape.pool > 0 ? shape.pool : shape.heavy_members > 0 ? 40 : 14),
      neighbour_pool(shape.neighbours > 0 ? 40 : 0), app_pool(40);
  for (auto& p : ring_pool) p = prompts.random_prompt();
  for (auto& p : neighbour_pool) p = prompts.random_prompt();
  for (auto& p : app_pool) p = prompts.random_prompt();
  LightRingInput in;
  Dataset& d = in.data;
  d.dim = kDim;
  const auto send = [&](int64_t account, const std::vector<float>& v) {
    d.request_account.push_back(account);
    d.embeddings.insert(d.embeddings.end(), v.begin(), v.end());
    d.request_time.push_back(1700000000 + int64_t(rng() % (30 * 86400)));
  };
  const auto between = [&](int64_t lo, int64_t hi) { return lo + int64_t(rng() % uint64_t(hi - lo + 1)); };
  const auto pick = [&](const std::vector<std::vector<float>>& pool) { return prompts.resent(pool[rng() % pool.size()]); };
  const int64_t apps = kOrdinary + kRing + shape.neighbours;
  for (int64_t a = 0; a < apps + kHeavyAppUsers + kLightAppUsers; ++a) {
    d.account_ids.push_back(100000 + 7 * a);
    const bool ring = a >= kOrdinary && a < kOrdinary + kRing;
    const bool neighbour = a >= kOrdinary + kRing && a < apps;
    const bool app = a >= apps;
    const bool light_app_user = a >= apps + kHeavyAppUsers;
    d.labels.push_back(ring ? 0 : neighbour ? 1 : -1);
    in.app_user.push_back(app ? 1 : 0);
    if (ring) {
      const int64_t light = shape.member_requests > 0 ? shape.member_requests : 3;
      for (int64_t i = a - kOrdinary < shape.heavy_members ? between(20, 30) : between(light, light + 2); i > 0; --i)
        send(a, rng() % 5 ? pick(ring_pool) : prompts.random_prompt());
      continue;
    }
    if (neighbour) {
      for (int64_t i = between(20, 30); i > 0; --i) send(a, pick(rng() % 2 ? ring_pool : neighbour_pool));
      continue;
    }
    for (int64_t i = app ? between(2, 3) : 0; i > 0; --i) send(a, pick(app_pool));
    for (int64_t i = light_app_user ? between(0, 1) : app ? between(20, 40) : between(4, 15); i > 0; --i)
      send(a, prompts.random_prompt());
  }
  return in;
}

/// Detection of `d` at defaults on `threads` threads.
DetectionResult detect_at_defaults(const Dataset& d, int threads = 2) {
  Context ctx;
  ctx.threads = threads;
  return detect_rings(d, DetectOptions{}, ctx);
}

/// Detection at defaults on light_ring_input: the evaluation, and the app users accused.
std::pair<Evaluation, int64_t> detect_light_ring(const LightRingInput& in, DetectionResult* result) {
  *result = detect_at_defaults(in.data);
  int64_t app_users_accused = 0;
  for (std::size_t a = 0; a < result->ring.size(); ++a) app_users_accused += in.app_user[a] && result->ring[a] >= 0;
  return {evaluate_rings(result->ring, in.data.labels), app_users_accused};
}

/// What every light-ring input must give: each ring found, `min_account_recall` of its
/// members, no app user accused, account precision 0.99.
void expect_rings_found_and_no_app_user(const Evaluation& e, int64_t app_users_accused, const std::string& what,
                                        double min_account_recall) {
  EXPECT_EQ(e.ring_recall, 1.0) << what;
  EXPECT_GE(e.account_recall, min_account_recall) << what << ": account recall " << e.account_recall;
  EXPECT_EQ(app_users_accused, 0) << what;
  EXPECT_GE(e.account_precision, 0.99) << what;
}

TEST(LightRing, ThatNoPairBetraysIsFoundWithoutInfrastructureAndNoAppUserAccused) {
  for (const uint64_t seed : {31u, 32u}) {
    DetectionResult r;
    const auto [e, app_users_accused] = detect_light_ring(light_ring_input(seed), &r);
    const std::string what = "seed " + std::to_string(seed) + ": " + std::to_string(int64_t(statistic(r, "edges"))) +
                             " edges, " + std::to_string(int64_t(statistic(r, "weak_core_clusters"))) + " weak cores";
    expect_rings_found_and_no_app_user(e, app_users_accused, what, 0.8);
  }
}

TEST(LightRing, MembersBesideAClusterOfHeavyMembersJoinIt) {
  // The light members' few prompts are the ring's own: most share two or more pool prompts
  // with the cluster, short of an edge.
  for (const uint64_t seed : {33u, 34u}) {
    DetectionResult r;
    const auto [e, app_users_accused] = detect_light_ring(light_ring_input(seed, {8}), &r);
    const std::string what = "seed " + std::to_string(seed);
    // Account recall without the light members' join: 0.67 and 0.72 (members whose few
    // prompts hit one group of the pool stay out).
    expect_rings_found_and_no_app_user(e, app_users_accused, what, 0.85);
  }
}

TEST(LightRing, OnATemplateAnotherRingFillsTooIsFoundApartFromIt) {
  // Each light member sends little but one prompt (one group), which a ring of 40 heavy
  // accounts also sends: the light ring is a small share of the prompt's senders, but the
  // other senders are a ring's, found already. Before one group could hold a weak core, and
  // before senders in clusters were set aside, the light ring was missed (ring recall 0.5).
  for (const uint64_t seed : {36u, 37u}) {
    DetectionResult r;
    const auto [e, app_users_accused] = detect_light_ring(light_ring_input(seed, {0, 1, 40}), &r);
    const std::string what = "seed " + std::to_string(seed);
    EXPECT_GE(statistic(r, "weak_core_clusters"), 1) << what;
    expect_rings_found_and_no_app_user(e, app_users_accused, what, 0.85);
  }
}

TEST(LightRing, WhoseMembersSendOneTemplateOverAndOverIsFoundBesideAnotherRingOnIt) {
  // Each member sends ten to twelve requests, nearly all of them the one prompt that a ring of
  // 40 heavy accounts also sends. A member's repeats are one try at sharing it: counted as ten
  // tries, the pairs' shared-prompt evidence stayed short of a weak edge and the ring was
  // missed (ring recall 0.5, account recall 0.69 and 0.66).
  for (const uint64_t seed : {38u, 39u}) {
    DetectionResult r;
    const auto [e, app_users_accused] = detect_light_ring(light_ring_input(seed, {0, 1, 40, 10}), &r);
    const std::string what = "seed " + std::to_string(seed);
    expect_rings_found_and_no_app_user(e, app_users_accused, what, 0.85);
  }
}

/// A week of traffic drawn from `prompts`: ordinary accounts that send four to fifteen random
/// prompts at random times, and ring members' requests within twenty minutes of a start.
/// One draw a statement: the order of a call's arguments is the compiler's to choose.
struct WeekOfTraffic {
  static constexpr int64_t kSpan = 7 * 86400, kEpoch = 1700000000;
  explicit WeekOfTraffic(PromptMaker& prompts) : prompts(prompts) { d.dim = prompts.dim; }
  void send(int64_t account, const std::vector<float>& v, int64_t time) {
    d.request_account.push_back(account);
    d.embeddings.insert(d.embeddings.end(), v.begin(), v.end());
    d.request_time.push_back(kEpoch + time);
  }
  void ordinary(int64_t account) {
    for (int64_t i = 4 + int64_t(prompts.rng() % 12); i > 0; --i) {
      const int64_t time = int64_t(prompts.rng() % uint64_t(kSpan));
      send(account, prompts.random_prompt(), time);
    }
  }
  /// A request at `start` plus up to twenty minutes.
  void in_session(int64_t account, const std::vector<float>& v, int64_t start) {
    send(account, v, start + int64_t(prompts.rng() % 1200));
  }
  PromptMaker& prompts;
  Dataset d;
};

// A ring split in sub-groups (two of ten members, unless told) that work on different
// capabilities: each sends its own pool of prompts, so nothing but timing joins them (no
// behaviour columns, no infrastructure). The operator runs them together in bursts of twenty
// minutes, several an afternoon, an hour or so apart; each member sends six to ten requests,
// too few for a pair across sub-groups to make an edge. Beside them, ordinary accounts at
// random times.
Dataset split_ring_input(uint64_t seed, int64_t bursts, int64_t sub_groups = 2, int64_t members = 10) {
  constexpr int64_t kDim = 48, kOrdinary = 3000, kSpan = WeekOfTraffic::kSpan;
  PromptMaker prompts(seed, kDim);
  std::mt19937_64& rng = prompts.rng;
  std::vector<std::vector<std::vector<float>>> pools(sub_groups);
  for (auto& pool : pools)
    for (int i = 0; i < 6; ++i) pool.push_back(prompts.random_prompt());
  // Afternoons of three to five bursts, each starting 40 to 80 minutes after the last.
  std::vector<int64_t> burst_start;
  while (int64_t(burst_start.size()) < bursts) {
    int64_t t = int64_t(rng() % uint64_t(kSpan - 8 * 3600));
    for (int64_t k = 3 + int64_t(rng() % 3); k > 0 && int64_t(burst_start.size()) < bursts; --k) {
      burst_start.push_back(t);
      t += 2400 + int64_t(rng() % 2400);
    }
  }
  WeekOfTraffic w(prompts);
  Dataset& d = w.d;
  for (int64_t a = 0; a < kOrdinary + sub_groups * members; ++a) {
    d.account_ids.push_back(500000 + 13 * a);
    const bool ring = a >= kOrdinary;
    d.labels.push_back(ring ? 0 : -1);
    if (!ring) {
      w.ordinary(a);
      continue;
    }
    const auto& pool = pools[(a - kOrdinary) / members];
    for (int64_t i = 6 + int64_t(rng() % 5); i > 0; --i) {
      const std::vector<float> v = prompts.resent(pool[rng() % pool.size()]);
      const int64_t burst = burst_start[rng() % burst_start.size()];
      w.in_session(a, v, burst);
    }
  }
  return d;
}

/// Whether all members of split_ring_input's ring are in one reported ring, which accuses
/// nobody else: the failures, for a message.
std::string split_ring_failures(const Dataset& d) {
  const DetectionResult r = detect_at_defaults(d);
  std::set<int64_t> rings_of_members;
  int64_t accused = 0;
  for (int64_t a = 0; a < d.num_accounts(); ++a) {
    if (d.labels[a] == 0) rings_of_members.insert(r.ring[a]);
    accused += d.labels[a] < 0 && r.ring[a] >= 0;
  }
  std::string failures;
  // Half the ring alone counts as found in the evaluation: the test is that it is one ring.
  if (rings_of_members.size() != 1 || rings_of_members.count(-1) != 0)
    failures += "members in " + std::to_string(rings_of_members.size()) + " rings (-1: none); ";
  if (accused > 0) failures += std::to_string(accused) + " ordinary accounts accused; ";
  return failures;
}

TEST(SplitRing, WhoseSubGroupsShareOnlyBurstsAnHourApartIsReportedAsOneRing) {
  // Counted in episodes that two hours without activity end, an afternoon's bursts were one
  // coincidence, and the halves were reported as two rings.
  for (const uint64_t seed : {41u, 42u})
    EXPECT_EQ(split_ring_failures(split_ring_input(seed, 16)), "") << "seed " << seed;
}

TEST(SplitRing, OfSmallSubGroupsIsReportedAsOneRingThoughTheAccountIndexMissedTheirLinks) {
  // Three sub-groups of four. Every pair of clusters is judged: with only the pairs of
  // clusters the account index linked, the sub-groups of seed 42 were reported as two rings.
  for (const uint64_t seed : {41u, 42u})
    EXPECT_EQ(split_ring_failures(split_ring_input(seed, 16, 3, 4)), "") << "seed " << seed;
}

TEST(SplitRing, WhoseSubGroupsShareAFewBurstsAndNoPromptIsReportedAsOneRing) {
  // Six or eight bursts. Sub-groups that sent no common prompt are judged on timing and
  // behaviour alone: counted as a third signal tried, their empty shared-prompt evidence
  // cost them 2.5 to 3 nats, and these halves were reported as two rings (so were 7 of 40
  // such inputs; 5 are still).
  for (const auto& [bursts, seed] : {std::pair<int64_t, uint64_t>{6, 48}, {6, 50}, {8, 43}})
    EXPECT_EQ(split_ring_failures(split_ring_input(seed, bursts)), "") << bursts << " bursts, seed " << seed;
}

TEST(SplitRing, WithoutTimesWhoseSubGroupsRunOneClientIsReportedWhole) {
  // No times: a pair across sub-groups has nothing but behaviour. Judged with its empty
  // shared-prompt evidence counted as a signal tried, such pairs made too few edges, and one
  // split ring of this file (generated, 4,000 accounts, no /requests/time) was reported in
  // two parts.
  Context ctx;
  ctx.threads = 2;
  GenerateOptions g;
  g.accounts = 4000;
  g.dim = 64;
  g.seed = 4;
  g.times = false;
  std::vector<int64_t> roles, styles;
  const Dataset d = generate_in_memory(g, ctx, &roles, &styles);
  const DetectionResult r = detect_rings(d, DetectOptions{}, ctx);
  std::map<int64_t, std::set<int64_t>> rings_of;  // truth label -> reported rings of its members
  for (int64_t a = 0; a < d.num_accounts(); ++a)
    if (d.labels[a] >= 0) rings_of[d.labels[a]].insert(r.ring[a]);
  int64_t split_rings = 0;
  for (const auto& [label, rings] : rings_of) {
    EXPECT_EQ(rings.size(), 1u) << "ring " << label << " reported in " << rings.size() << " parts";
    EXPECT_EQ(rings.count(-1), 0u) << "ring " << label;
  }
  for (std::size_t a = 0; a < styles.size(); ++a) split_rings += d.labels[a] >= 0 && styles[a] == int64_t(RingStyle::Split);
  EXPECT_GT(split_rings, 0);
  EXPECT_GE(evaluate_rings(r.ring, d.labels).account_precision, 0.99);
}

// Two operators' rings of ten light accounts on one public template: each member sends three
// to five requests, all of them the template (near-duplicates of one prompt), in its
// operator's six sessions of twenty minutes in a week; ten public users send the template
// once amid their own work. No pair shares enough to make an edge, and nothing but timing
// tells the rings apart. Beside them, ordinary accounts at random times.
Dataset two_rings_on_one_template(uint64_t seed) {
  constexpr int64_t kDim = 48, kOrdinary = 3000, kPublic = 10, kMembers = 10, kSessions = 6;
  constexpr int64_t kSpan = WeekOfTraffic::kSpan;
  PromptMaker prompts(seed, kDim);
  std::mt19937_64& rng = prompts.rng;
  const std::vector<float> template_prompt = prompts.random_prompt();
  std::vector<std::vector<int64_t>> sessions(2);
  for (auto& s : sessions)
    for (int64_t i = 0; i < kSessions; ++i) s.push_back(int64_t(rng() % uint64_t(kSpan - 3600)));
  WeekOfTraffic w(prompts);
  Dataset& d = w.d;
  for (int64_t a = 0; a < kOrdinary + kPublic + 2 * kMembers; ++a) {
    d.account_ids.push_back(700000 + 11 * a);
    const int64_t ring = a >= kOrdinary + kPublic ? (a - kOrdinary - kPublic) / kMembers : -1;
    d.labels.push_back(ring);
    if (ring < 0) {
      if (a >= kOrdinary) {
        const std::vector<float> v = prompts.resent(template_prompt);
        const int64_t time = int64_t(rng() % uint64_t(kSpan));
        w.send(a, v, time);
      }
      w.ordinary(a);
      continue;
    }
    for (int64_t i = 3 + int64_t(rng() % 3); i > 0; --i) {
      const std::vector<float> v = prompts.resent(template_prompt);
      const int64_t session = sessions[ring][rng() % sessions[ring].size()];
      w.in_session(a, v, session);
    }
  }
  return d;
}

/// How two_rings_on_one_template's rings are reported: for each, unless the reported ring
/// holding most of its members holds 80% of them and is 80% theirs, a message; and the
/// other accounts accused.
std::string two_rings_failures(const Dataset& d) {
  const DetectionResult r = detect_at_defaults(d);
  std::map<int64_t, std::map<int64_t, int64_t>> members_of_ring;  // reported ring -> label -> members
  int64_t accused = 0;
  for (int64_t a = 0; a < d.num_accounts(); ++a) {
    if (r.ring[a] >= 0) ++members_of_ring[r.ring[a]][d.labels[a]];
    accused += d.labels[a] < 0 && r.ring[a] >= 0;
  }
  std::string failures;
  for (const int64_t label : {0, 1}) {
    int64_t best = 0, size = 0, planted = 0;
    for (const int64_t l : d.labels) planted += l == label;
    for (const auto& [ring, by_label] : members_of_ring) {
      const auto at = by_label.find(label);
      if (at == by_label.end() || at->second <= best) continue;
      best = at->second;
      size = 0;
      for (const auto& [l, n] : by_label) size += n;
    }
    if (best < 0.8 * double(planted) || best < 0.8 * double(size))
      failures += "ring " + std::to_string(label) + ": " + std::to_string(best) + " of its " + std::to_string(planted) +
                  " members in a reported ring of " + std::to_string(size) + "; ";
  }
  if (accused > 0) failures += std::to_string(accused) + " other accounts accused; ";
  return failures;
}

TEST(LightRing, OfTwoOperatorsOnOnePublicTemplateAreReportedApartByTheirSessions) {
  // One weak core holds both rings. Before it was cut around its timing cores, the two rings
  // were reported as one on these seeds, and on all of seeds 51-62; cut, 7 of those 12 are
  // reported apart.
  for (const uint64_t seed : {51u, 52u, 59u})
    EXPECT_EQ(two_rings_failures(two_rings_on_one_template(seed)), "") << "seed " << seed;
}

/// Detection of `d` at defaults on two threads, and of `d` permuted (accounts and requests) on
/// one: the same clusters, rings and scores for every account. Returns the first.
DetectionResult expect_same_for_any_order_and_thread_count(const Dataset& d, const std::string& what) {
  std::vector<int64_t> new_row;
  const Dataset p = ringscan::testing::permuted(d, 7, &new_row);
  DetectionResult a = detect_at_defaults(d, 2);
  const DetectionResult b = detect_at_defaults(p, 1);
  EXPECT_EQ(statistic(a, "light_members_joined"), statistic(b, "light_members_joined")) << what;
  EXPECT_EQ(statistic(a, "weak_core_clusters"), statistic(b, "weak_core_clusters")) << what;
  EXPECT_EQ(statistic(a, "weak_cores_cut"), statistic(b, "weak_cores_cut")) << what;
  for (int64_t i = 0; i < d.num_accounts(); ++i) {
    const int64_t j = new_row[i];
    EXPECT_EQ(b.account_ids[j], a.account_ids[i]) << what;
    EXPECT_EQ(b.cluster[j], a.cluster[i]) << what << ", account " << a.account_ids[i];
    EXPECT_EQ(b.ring[j], a.ring[i]) << what << ", account " << a.account_ids[i];
    EXPECT_EQ(b.ring_score[j], a.ring_score[i]) << what << ", account " << a.account_ids[i];
  }
  return a;
}

TEST(LightRing, WeakCoresAndJoinedMembersAreTheSameForAnyOrderOfTheInputAndThreadCount) {
  // Each input takes the path it is there for: a weak core without infrastructure, light
  // members joining a cluster, a weak core cut around its timing cores.
  for (const int64_t heavy : {0, 8}) {
    const std::string what = std::to_string(heavy) + " heavy members";
    const DetectionResult a = expect_same_for_any_order_and_thread_count(light_ring_input(35, {heavy}).data, what);
    ASSERT_FALSE(a.rings.empty()) << what;
    EXPECT_GE(statistic(a, heavy > 0 ? "light_members_joined" : "weak_core_clusters"), 1) << what;
  }
  const DetectionResult a = expect_same_for_any_order_and_thread_count(two_rings_on_one_template(51), "two rings");
  EXPECT_GE(statistic(a, "weak_core_clusters"), 2);
  EXPECT_EQ(statistic(a, "weak_cores_cut"), 1);
}

}  // namespace

