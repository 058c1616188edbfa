#include "ringscan/evidence_calibration.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>

#include "evidence_math.hpp"
#include "parallel.hpp"
#include "prompt_pairs.hpp"
#include "random.hpp"
#include "ringscan/error.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/sizes.hpp"

namespace ringscan {
namespace {

/// Random account pairs the behaviour and content nulls are estimated on.
constexpr int64_t kNullPairs = 20000;
/// Pairs whose shared prompts alone have a chance below e^kAnchorSurprise are anchors: what
/// their behaviour shows is what coordinated accounts' behaviour looks like in this file.
constexpr double kAnchorSurprise = 9.21;  // one in 10,000
constexpr int64_t kMaxAnchors = 20000;
/// Fewer anchors than this and the features cannot be told apart: all weigh alike.
constexpr int64_t kMinAnchors = 30;
/// A feature is weighted when anchors sit closer on it than random pairs by this many
/// standard errors (a column of noise passes with a chance of about 3e-5).
constexpr double kWeightZ = 4.0;
/// Expected false edges per million among the pairs of a seed (an account known to be in a
/// ring): a seed has a few dozen candidates, so about one false edge per 20 seeds.
constexpr double kSeedFalseEdgesPerMillion = 1000.0;
/// Prompt pairs enumerated to find anchors, at most (the groups are taken in order).
constexpr int64_t kMaxPromptPairs = int64_t(1) << 23;
constexpr uint64_t kCalibrationSeed = 0x63616c6962726174ULL;  // "calibrat"

/// Random pair i of A >= 2 accounts (a != b), the same on every run.
std::pair<int64_t, int64_t> random_pair(int64_t A, int64_t i) {
  const int64_t a = int64_t(mix64(kCalibrationSeed + 2 * uint64_t(i)) % uint64_t(A));
  int64_t b = int64_t(mix64(kCalibrationSeed + 2 * uint64_t(i) + 1) % uint64_t(A - 1));
  if (b >= a) ++b;
  return {a, b};
}

/// Mid-rank and tie share of column f of [A x B] ranks, from value(i) for account i. Accounts
/// whose value is unknown(i) get rank -1 and tie share 1: no other rank is near theirs and a
/// shared unknown is no evidence; the known values are ranked among themselves.
template <class Value, class Unknown>
void rank_column(int64_t A, int64_t B, int64_t f, Value value, Unknown unknown, std::vector<float>& rank,
                 std::vector<float>& tie) {
  std::vector<int64_t> order;
  order.reserve(A);
  for (int64_t i = 0; i < A; ++i) {
    if (unknown(i)) {
      rank[i * B + f] = -1.0f;
      tie[i * B + f] = 1.0f;
    } else {
      order.push_back(i);
    }
  }
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) {
    const auto xi = value(i), xj = value(j);
    return xi != xj ? xi < xj : i < j;
  });
  const int64_t n = int64_t(order.size());
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && value(order[j]) == value(order[i])) ++j;
    const float u = float((double(i) + 0.5 * double(j - i)) / double(n));
    const float t = float(double(j - i) / double(n));
    for (int64_t k = i; k < j; ++k) {
      rank[order[k] * B + f] = u;
      tie[order[k] * B + f] = t;
    }
    i = j;
  }
}

/// Ranks of the behaviour columns [A x B'] with B' = B, plus one for the sign-up time when the
/// input has it (0 = unknown).
void rank_features(const CanonicalRequests& req, int64_t columns, std::vector<float>& rank, std::vector<float>& tie) {
  const int64_t A = req.num_accounts, B = req.feature_dim;
  rank.assign(A * columns, 0.5f);
  tie.assign(A * columns, 1.0f);
  detail::parallel_for(columns, 1, [&](int64_t f) {
    if (f < B)
      rank_column(A, columns, f, [&](int64_t i) { return req.features[i * B + f]; }, [](int64_t) { return false; },
                  rank, tie);
    else
      rank_column(A, columns, f, [&](int64_t i) { return req.created[i]; },
                  [&](int64_t i) { return req.created[i] == 0; }, rank, tie);
  });
}

/// Account pairs whose shared prompt groups alone are strong evidence, up to kMaxAnchors (a
/// hashed, reproducible choice when there are more).
std::vector<std::pair<int64_t, int64_t>> anchor_pairs(const PromptGroups& groups,
                                                      const EvidenceCalibration& c) {
  const int64_t A = c.num_accounts;
  std::vector<int64_t> keys;
  for (int64_t g = 0; g < groups.num_groups && int64_t(keys.size()) < kMaxPromptPairs; ++g) {
    const int64_t m = groups.accounts_in(g);
    if (!groups.is_evidence(g) || sampled_group(m)) continue;
    const int64_t* acc = &groups.group_accounts[groups.account_offsets[g]];
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = i + 1; j < m; ++j) keys.push_back(acc[i] * A + acc[j]);
  }
  detail::parallel_sort(keys, std::less<int64_t>());
  std::vector<std::pair<uint64_t, int64_t>> anchors;  // (hash, key)
  for (std::size_t i = 0; i < keys.size();) {
    std::size_t j = i;
    while (j < keys.size() && keys[j] == keys[i]) ++j;
    const int64_t a = keys[i] / A, b = keys[i] % A;
    const float s = shared_groups_surprise(float(j - i), c.group_mass[a], c.group_mass[b],
                                           double(c.distinct_prompts[a]), double(c.distinct_prompts[b]),
                                           c.total_prompts);
    if (s >= kAnchorSurprise) anchors.emplace_back(mix64(uint64_t(keys[i]) ^ kCalibrationSeed), keys[i]);
    i = j;
  }
  if (int64_t(anchors.size()) > kMaxAnchors) {
    std::nth_element(anchors.begin(), anchors.begin() + kMaxAnchors, anchors.end());
    anchors.resize(kMaxAnchors);
  }
  std::sort(anchors.begin(), anchors.end());
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& [h, key] : anchors) out.emplace_back(key / A, key % A);
  return out;
}

/// Mean and variance of v.
std::pair<double, double> moments(const std::vector<double>& v) {
  if (v.empty()) return {0.0, 0.0};
  double mean = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  return {mean, v.size() > 1 ? var / double(v.size() - 1) : 0.0};
}

/// Learns each feature's weight from the anchors against random pairs, then fits the gamma
/// null of the weighted sum on the random pairs.
void calibrate_behaviour(EvidenceCalibration& c, const std::vector<std::pair<int64_t, int64_t>>& anchors,
                         const std::vector<std::pair<int64_t, int64_t>>& random) {
  const int64_t B = c.feature_dim;
  c.feature_weight.assign(B, 0.0f);
  c.feature_lift.assign(B, 0.0f);
  auto surprise = [&](int64_t f, int64_t a, int64_t b) {
    return double(feature_surprise(c.feature_rank[a * B + f], c.feature_rank[b * B + f],
                                   c.feature_tie[a * B + f], c.categorical[f] != 0));
  };
  c.anchor_pairs = int64_t(anchors.size());
  const bool learn = int64_t(anchors.size()) >= kMinAnchors;
  std::vector<double> values;
  for (int64_t f = 0; f < B; ++f) {
    values.clear();
    for (const auto& [a, b] : random) values.push_back(surprise(f, a, b));
    const auto [null_mean, null_var] = moments(values);
    if (!(null_var > 0)) continue;  // a constant column carries nothing
    if (!learn) {
      c.feature_weight[f] = 1.0f;
      continue;
    }
    values.clear();
    for (const auto& [a, b] : anchors) values.push_back(surprise(f, a, b));
    const double lift = moments(values).first - null_mean;
    c.feature_lift[f] = float(lift);
    const double z = lift / std::sqrt(null_var / double(anchors.size()));
    // The weight grows with the lift (in units of the null's mean) up to 1.
    if (z >= kWeightZ) c.feature_weight[f] = float(std::min(1.0, lift / std::max(null_mean, 0.1)));
  }
  // The null of the weighted sum over the same random pairs, as sampled: correlated features
  // and defaults that half the clients share shape it, and no family of distributions is
  // assumed for them.
  std::vector<float> sums;
  for (const auto& [a, b] : random)
    sums.push_back(behaviour_statistic(&c.feature_rank[a * B], &c.feature_rank[b * B], &c.feature_tie[a * B],
                                       c.feature_weight.data(), c.categorical.data(), B));
  c.behaviour_null = NullSample::of(std::move(sums));
  c.behaviour_present = c.behaviour_null.values.back() > c.behaviour_null.values.front();
}

std::string count_text(int64_t n) { return std::to_string(n); }

}  // namespace

NullSample NullSample::of(std::vector<float> values) {
  NullSample n;
  std::sort(values.begin(), values.end());
  n.values = std::move(values);
  const int64_t size = int64_t(n.values.size());
  if (size == 0) return n;
  // The tail: the top 1% (at least 10 values), their mean excess over its start.
  const int64_t top = std::min<int64_t>(size, std::max<int64_t>(10, size / 100));
  n.tail_start = n.values[size - top];
  double excess = 0;
  for (int64_t i = size - top; i < size; ++i) excess += double(n.values[i]) - double(n.tail_start);
  n.tail_scale = float(std::max(excess / double(top), 1e-3));
  const int64_t at_or_above = size - int64_t(std::lower_bound(n.values.begin(), n.values.end(), n.tail_start) -
                                             n.values.begin());
  n.tail_log_share = std::log((double(at_or_above) + 1.0) / (double(size) + 1.0));
  return n;
}

float weak_edge_threshold_nats(double candidate_pairs, int64_t accounts, float edge_threshold) {
  if (accounts <= 0 || candidate_pairs <= 0) return 0.0f;
  const double nats = std::log(2.0 * candidate_pairs / double(accounts) / kChanceWeakDegree);
  return nats < 1.0 ? 0.0f : float(std::min<double>(nats, edge_threshold));
}

float merge_threshold_nats(int64_t judged_pairs, float edge_threshold) {
  if (judged_pairs <= 0) return edge_threshold;
  return float(std::min<double>(std::log(double(judged_pairs) / kChanceFalseMerges), edge_threshold));
}

float edge_threshold_nats(double false_edges_per_million) {
  RINGSCAN_EXPECTS(false_edges_per_million > 0 && false_edges_per_million <= 1e6,
                   "--false-edges must be in (0, 1000000] per million pairs");
  return float(std::log(1e6 / false_edges_per_million));
}

EvidenceCalibration calibrate_evidence(const CanonicalRequests& req, const PromptGroups& groups,
                                       const AccountProfiles& profiles, const SharedInfrastructure& infra,
                                       const DetectOptions& options, const Context& ctx) {
  // The sign-up time is one more behaviour column, weighed like the others.
  const int64_t A = req.num_accounts, R = req.num_requests;
  const int64_t B = req.feature_dim + (req.created.empty() ? 0 : 1);
  EvidenceCalibration c;
  c.num_accounts = A;
  c.feature_dim = B;
  for (int64_t f = 0; f < req.feature_dim; ++f)
    c.feature_names.push_back(f < int64_t(req.feature_names.size()) && !req.feature_names[f].empty()
                                  ? req.feature_names[f]
                                  : "column_" + std::to_string(f));
  if (!req.created.empty()) c.feature_names.push_back("sign_up_time");
  c.edge_threshold = edge_threshold_nats(options.false_edges_per_million);
  ctx.require_memory(size_from_double(double(A) * (double(B) * 8 + 16) + double(kNullPairs) * 48),
                     "evidence calibration");
  ThreadScope threads(ctx.threads);

  // Shared prompts: each account's group mass.
  c.group_mass.assign(A, 0.0f);
  for (int64_t g = 0; g < groups.num_groups; ++g) {
    if (!groups.is_evidence(g)) continue;
    const float mass = float(groups.accounts_in(g) - 1);
    for (int64_t i = groups.account_offsets[g]; i < groups.account_offsets[g + 1]; ++i)
      c.group_mass[groups.group_accounts[i]] += mass;
  }
  c.distinct_prompts = distinct_prompts(req, groups);
  for (const int64_t n : c.distinct_prompts) c.total_prompts += double(n);

  std::vector<std::pair<int64_t, int64_t>> random;
  if (A >= 2)
    for (int64_t i = 0; i < kNullPairs; ++i) random.push_back(random_pair(A, i));

  // Behaviour.
  if (B > 0 && A >= 2) {
    rank_features(req, B, c.feature_rank, c.feature_tie);
    c.categorical = req.feature_categorical.empty() ? std::vector<uint8_t>(req.feature_dim, 0) : req.feature_categorical;
    c.categorical.resize(B, 0);
    calibrate_behaviour(c, anchor_pairs(groups, c), random);
  } else {
    c.categorical.assign(B, 0);
    c.feature_weight.assign(B, 0.0f);
    c.feature_lift.assign(B, 0.0f);
  }

  // Timing.
  c.has_timing = profiles.has_timing && R > 0;
  if (c.has_timing) {
    const auto [t0, t1] = std::minmax_element(req.time.begin(), req.time.end());
    c.first_time = *t0;
    c.last_time = *t1;
  }

  // Content.
  const int64_t D = profiles.dim;
  std::vector<float> cosines;
  for (const auto& [a, b] : random)
    cosines.push_back(dot_product(&profiles.content[a * D], &profiles.content[b * D], D));
  c.content_null = NullSample::of(std::move(cosines));

  // Shared infrastructure.
  c.has_infrastructure = infra.present() && infra.evidence_tokens > 0;
  if (c.has_infrastructure) {
    c.infrastructure_kinds = infra.evidence_kinds;
    c.proposing_users = infra.proposing_users;
    c.token_offsets = infra.account_offsets;
    c.account_tokens = infra.account_tokens;
    c.token_kind = infra.token_kind;
    c.token_users = infra.token_users;
  }

  // Seeds.
  if (!options.seeds.empty()) {
    c.seed.assign(A, 0);
    for (const int64_t id : options.seeds) {
      const auto at = std::lower_bound(req.account_id.begin(), req.account_id.end(), id);
      if (at != req.account_id.end() && *at == id) c.seed[at - req.account_id.begin()] = 1;
    }
    c.seed_prior = std::max(0.0f, c.edge_threshold - edge_threshold_nats(kSeedFalseEdgesPerMillion));
  }

  c.signals = 1 + (c.has_timing ? 1 : 0) + (c.behaviour_present ? 1 : 0) + (c.has_infrastructure ? 1 : 0);
  const int64_t proposed = 2 * options.account_neighbours;
  c.index_penalty = proposed > 0 && A > proposed ? float(std::log(double(A) / double(proposed))) : 0.0f;

  if (req.time.empty()) c.notes.push_back("timing evidence off: the input has no /requests/time");
  else if (c.has_timing && c.last_time - c.first_time < 2 * 86400)
    c.notes.push_back("timing evidence weak: the requests span less than two days, so chance is estimated by "
                      "moving timelines by tens of minutes instead of whole days");
  if (!infra.present())
    c.notes.push_back("infrastructure evidence off: the input has no /requests/infra and no /accounts/payment");
  else if (!c.has_infrastructure)
    c.notes.push_back("infrastructure evidence off: no token of /requests/infra or /accounts/payment is used by 2 to " +
                      count_text(common_group_accounts(A, options.max_prompt_share)) + " accounts");
  if (B == 0) {
    c.notes.push_back("behaviour evidence off: the input has no /accounts/features and no /accounts/created");
  } else if (!c.behaviour_present) {
    c.notes.push_back("behaviour evidence off: no column of /accounts/features brings the " +
                      count_text(c.anchor_pairs) + " account pairs that share rare prompts closer than random pairs");
  } else if (c.anchor_pairs < kMinAnchors) {
    c.notes.push_back("behaviour columns weighed alike: only " + count_text(c.anchor_pairs) +
                      " account pairs share enough rare prompts to learn what each column is worth");
  }
  ctx.report("calibration", 1, 1);
  return c;
}

EvidenceCalibration calibrate_evidence(const CanonicalRequests& req, const PromptGroups& groups,
                                       const AccountProfiles& profiles, const DetectOptions& options,
                                       const Context& ctx) {
  return calibrate_evidence(req, groups, profiles, SharedInfrastructure{}, options, ctx);
}

}  // namespace ringscan
