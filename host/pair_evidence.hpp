// Evidence of one account pair, over a trivially copyable view of the account profiles and
// the evidence calibration: the CPU evidence graph and the CUDA kernel call the same function.
#pragma once
#include <cstdint>

#include "evidence_math.hpp"
#include "ringscan/evidence_calibration.hpp"
#include "ringscan/evidence_graph.hpp"

namespace ringscan {

/// Which evaluated pairs the evidence graph keeps: edges (fused evidence of edge_threshold
/// nats) and weak edges (shared-prompt evidence alone of weak_threshold nats; none at 0).
struct EdgeRule {
  float edge_threshold = 0, weak_threshold = 0;
  RINGSCAN_HD bool is_edge(const PairEvidence& e) const { return e.weight >= edge_threshold && e.weight > 0; }
  RINGSCAN_HD bool keeps(const PairEvidence& e) const {
    return is_edge(e) || (weak_threshold > 0 && e.shared_prompts >= weak_threshold);
  }
};

inline EdgeRule edge_rule(const EvidenceCalibration& c) { return {c.edge_threshold, c.weak_edge_threshold}; }

/// Pointers into AccountProfiles and EvidenceCalibration (host or device memory) and the
/// scalars the signals use.
struct ProfilesView {
  int64_t dim = 0, feature_dim = 0;
  bool has_timing = false, has_behaviour = false;
  int signals = 1;
  float index_penalty = 0;
  double total_prompts = 0;
  TimingNull timing;
  EmpiricalNull behaviour_null, content_null;
  const float* content = nullptr;           ///< [A x D]
  const int64_t* request_offsets = nullptr; ///< [A+1]
  const int64_t* request_time = nullptr;    ///< [R], or null without times
  const float* group_mass = nullptr;        ///< [A]
  const int64_t* distinct_prompts = nullptr;  ///< [A] tries at sharing a group
  const float* feature_rank = nullptr;      ///< [A x B]
  const float* feature_tie = nullptr;       ///< [A x B]
  const float* feature_weight = nullptr;    ///< [B]
  const uint8_t* categorical = nullptr;     ///< [B]
  // Shared infrastructure (all null when the input has none).
  int64_t num_accounts = 0;
  int infrastructure_kinds = 0;
  int64_t proposing_users = 0;              ///< a token of at most this many accounts proposed the pair
  const int64_t* token_offsets = nullptr;   ///< [A+1] CSR over account_tokens
  const int64_t* account_tokens = nullptr;  ///< each account's evidence tokens, ascending
  const int32_t* token_kind = nullptr;      ///< [T]
  const int32_t* token_users = nullptr;     ///< [T]
  // Seeds (null without): a pair with a seed gains seed_prior nats.
  const uint8_t* seed = nullptr;            ///< [A]
  float seed_prior = 0;
};

/// The signals of accounts a and b (nats) and the evidence of an edge between them, given
/// the number of prompt groups they share.
RINGSCAN_HD inline PairEvidence evaluate_pair(const ProfilesView& p, int64_t a, int64_t b, float shared_groups) {
  PairEvidence e;
  const int64_t oa = p.request_offsets[a], ob = p.request_offsets[b];
  const int64_t na = p.request_offsets[a + 1] - oa, nb = p.request_offsets[b + 1] - ob;
  e.shared_prompts = shared_groups_surprise(shared_groups, p.group_mass[a], p.group_mass[b],
                                            double(p.distinct_prompts[a]), double(p.distinct_prompts[b]),
                                            p.total_prompts);
  if (p.has_timing)
    e.synchrony = synchrony_surprise(p.request_time + oa, na, p.request_time + ob, nb, p.timing);
  const int64_t B = p.feature_dim, D = p.dim;
  if (p.has_behaviour)
    e.behaviour = null_surprise(behaviour_statistic(p.feature_rank + a * B, p.feature_rank + b * B,
                                                    p.feature_tie + a * B, p.feature_weight, p.categorical, B),
                                p.behaviour_null);
  e.content = null_surprise(dot_product(p.content + a * D, p.content + b * D, D), p.content_null);
  int32_t rarest_token = 0;
  if (p.token_offsets != nullptr) {
    const int64_t ta = p.token_offsets[a], tb = p.token_offsets[b];
    e.infrastructure = shared_infrastructure_surprise(
        p.account_tokens + ta, p.token_offsets[a + 1] - ta, p.account_tokens + tb, p.token_offsets[b + 1] - tb,
        p.token_kind, p.token_users, p.num_accounts, p.infrastructure_kinds, &rarest_token);
  }
  // A pair that shares no prompt and no token rare enough to propose it was proposed by the
  // account index, which picked it for its timing and behaviour among all accounts: it pays
  // for that choice.
  const bool proposed = shared_groups > 0 || (rarest_token > 0 && rarest_token <= p.proposing_users);
  float penalty = proposed ? 0.0f : p.index_penalty;
  // A known ring member's pairs start from better odds: the prior adds to the evidence.
  if (p.seed != nullptr && (p.seed[a] || p.seed[b])) penalty -= p.seed_prior;
  // A pair that shares no prompt group is judged on its other signals alone: its
  // shared-prompt evidence is nothing by what the pair is, not a draw from that signal's null.
  const int signals = p.signals - (shared_groups > 0 ? 0 : 1);
  e.weight = edge_evidence(e.shared_prompts, e.synchrony, e.behaviour, e.infrastructure, signals, penalty);
  return e;
}

/// A view of a null sample in host memory.
inline EmpiricalNull empirical_null(const NullSample& s) {
  return EmpiricalNull{s.values.data(), int64_t(s.values.size()), s.tail_start, s.tail_scale, s.tail_log_share};
}

/// A view of `profiles` and `calibration` in host memory.
inline ProfilesView host_view(const AccountProfiles& profiles, const EvidenceCalibration& c) {
  ProfilesView v;
  v.dim = profiles.dim;
  v.feature_dim = c.feature_dim;
  v.has_timing = c.has_timing;
  v.has_behaviour = c.behaviour_present;
  v.signals = c.signals;
  v.index_penalty = c.index_penalty;
  v.total_prompts = c.total_prompts;
  if (c.has_timing) v.timing = timing_null(c.first_time, c.last_time);
  v.behaviour_null = empirical_null(c.behaviour_null);
  v.content_null = empirical_null(c.content_null);
  v.content = profiles.content.data();
  v.request_offsets = profiles.request_offsets.data();
  v.request_time = profiles.request_time.empty() ? nullptr : profiles.request_time.data();
  v.group_mass = c.group_mass.data();
  v.distinct_prompts = c.distinct_prompts.data();
  v.feature_rank = c.feature_rank.data();
  v.feature_tie = c.feature_tie.data();
  v.feature_weight = c.feature_weight.data();
  v.categorical = c.categorical.data();
  if (c.has_infrastructure) {
    v.num_accounts = c.num_accounts;
    v.infrastructure_kinds = c.infrastructure_kinds;
    v.proposing_users = c.proposing_users;
    v.token_offsets = c.token_offsets.data();
    v.account_tokens = c.account_tokens.data();
    v.token_kind = c.token_kind.data();
    v.token_users = c.token_users.data();
  }
  if (!c.seed.empty()) {
    v.seed = c.seed.data();
    v.seed_prior = c.seed_prior;
  }
  return v;
}

}  // namespace ringscan
