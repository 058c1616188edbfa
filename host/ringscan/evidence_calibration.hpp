// Stage 4b: the null distributions every pair signal is scored against, estimated from the
// input itself (never from constants fitted to some other data).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ringscan/account_profiles.hpp"
#include "ringscan/context.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/shared_infrastructure.hpp"

namespace ringscan {

/// A statistic's distribution over random account pairs of the input: the values ascending,
/// and an exponential tail fitted to the top 1% for values beyond them.
struct NullSample {
  std::vector<float> values;
  float tail_start = 0, tail_scale = 1;
  double tail_log_share = 0;  ///< ln of the share of values at or above tail_start

  /// From unsorted values.
  static NullSample of(std::vector<float> values);
};

/// What the evidence of a pair of accounts is measured against (docs/method.md).
struct EvidenceCalibration {
  int64_t num_accounts = 0, feature_dim = 0;
  // Shared prompts: the chance that an independent account shares a group. An account's
  // tries at it are its distinct prompts: a prompt sent again is no new chance to meet another.
  std::vector<int64_t> distinct_prompts;  ///< [A] prompt groups the account sent, plus its prompts in none
  double total_prompts = 0;            ///< the sum of distinct_prompts
  std::vector<float> group_mass;       ///< [A] sum over the account's evidence groups of (accounts in it - 1)
  // Behaviour: each feature's values as ranks among the accounts, and what each feature is
  // worth, learnt from pairs that share rare prompts.
  std::vector<float> feature_rank;     ///< [A x B] mid-rank of the account's value in (0, 1)
  std::vector<float> feature_tie;      ///< [A x B] share of accounts at exactly that value
  std::vector<uint8_t> categorical;    ///< [B] 1 where equal values are the only evidence
  std::vector<float> feature_weight;   ///< [B] in [0, 1]; 0 for a feature that carries nothing
  std::vector<float> feature_lift;     ///< [B] mean surprise of anchor pairs minus random pairs (nats)
  std::vector<std::string> feature_names;  ///< [B] the input's columns, then sign_up_time when present
  NullSample behaviour_null;           ///< the weighted behaviour sum over random pairs
  bool behaviour_present = false;      ///< some feature has weight
  int64_t anchor_pairs = 0;            ///< pairs the weights were learnt from
  // Timing: the span the null moves timelines over.
  bool has_timing = false;
  int64_t first_time = 0, last_time = 0;
  // Shared infrastructure: each account's evidence tokens, each token's kind and users.
  bool has_infrastructure = false;     ///< some token is shared by 2 to max(64, share * A) accounts
  int infrastructure_kinds = 0;        ///< kinds with such a token
  int64_t proposing_users = 0;         ///< tokens of at most this many accounts propose candidates
  std::vector<int64_t> token_offsets;  ///< [A+1]
  std::vector<int64_t> account_tokens;
  std::vector<int32_t> token_kind, token_users;  ///< [T]
  // Seeds: accounts known to be in rings, and the nats of prior a pair with one gains.
  std::vector<uint8_t> seed;           ///< [A] 1 for a seed; empty without seeds
  float seed_prior = 0;
  // Content: cosines of the content profiles of random account pairs.
  NullSample content_null;
  // Fusion.
  int signals = 1;                     ///< signals every pair is scored on (prompts, timing, behaviour, infrastructure)
  float index_penalty = 0;             ///< nats a pair proposed only by the account index pays
  float edge_threshold = 0;            ///< nats of edge evidence that make an edge
  /// Nats of shared-prompt evidence alone that make a weak edge (0: none): so few that chance
  /// gives an account about kChanceWeakDegree of them, so that they count only where they
  /// cluster (with_weak_cores in clustering.hpp): a network of light accounts no pair betrays.
  float weak_edge_threshold = 0;

  /// One line per kind of evidence that is off or weak in this input and why, for stderr and
  /// the report ("timing evidence off: no /requests/time").
  std::vector<std::string> notes;
};

/// Nats of evidence an edge needs for `false_edges_per_million` expected false edges per
/// million candidate pairs.
float edge_threshold_nats(double false_edges_per_million);

/// Weak edges chance gives an account, on average, at the weak edge threshold: far below the
/// mean degree (about 3.35) at which a random graph grows a 3-core.
constexpr double kChanceWeakDegree = 0.5;

/// The weak edge threshold for `candidate_pairs` candidate pairs (an upper bound will do)
/// among `accounts`: ln(mean candidates per account / kChanceWeakDegree), at most
/// `edge_threshold`; 0 (no weak edges) when that is below one nat.
float weak_edge_threshold_nats(double candidate_pairs, int64_t accounts, float edge_threshold);

/// Expected false merges, by chance, among the unit pairs one round of merge_clusters judges.
constexpr double kChanceFalseMerges = 0.02;

/// The evidence a merge of two units (clusters, or a cluster and an account) needs when a
/// round judges `judged_pairs` pairs: ln(judged_pairs / kChanceFalseMerges), at most
/// `edge_threshold`. A false edge of the account graph is one edge, which clustering asks
/// more structure of; a false merge joins two units outright, so its threshold counts the
/// tests made, and a round that judges few pairs needs less from each.
float merge_threshold_nats(int64_t judged_pairs, float edge_threshold);

/// Calibrates the pair evidence on this input: prompt-group masses, feature ranks and weights
/// (from pairs whose shared prompts alone are strong, against random pairs), the gamma null
/// of the behaviour sum, the content null, the edge threshold. Deterministic.
/// With `infra`, its shared tokens are a signal and /accounts/created a behaviour column
/// (sign_up_time).
EvidenceCalibration calibrate_evidence(const CanonicalRequests& req, const PromptGroups& groups,
                                       const AccountProfiles& profiles, const SharedInfrastructure& infra,
                                       const DetectOptions& options, const Context& ctx);
/// The same for an input without infrastructure tokens or payment instruments.
EvidenceCalibration calibrate_evidence(const CanonicalRequests& req, const PromptGroups& groups,
                                       const AccountProfiles& profiles, const DetectOptions& options,
                                       const Context& ctx);

}  // namespace ringscan
