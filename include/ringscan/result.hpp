// What `detect` produces: per-account labels, ranked rings and their evidence.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ringscan {

/// One group of near-duplicate prompts shared by a ring's accounts (report evidence).
struct SharedPromptExample {
  int64_t accounts_in_ring = 0;        ///< ring members that sent a prompt of the group
  int64_t accounts_overall = 0;        ///< accounts in the whole input that sent one
  float idf = 0;                       ///< rarity weight of the group, ln(A / accounts_overall)
  std::vector<int64_t> request_rows;   ///< example requests, row numbers in the input file
};

/// An infrastructure token (or payment instrument) two or more of a ring's members used.
struct SharedTokenExample {
  std::string kind;              ///< the token's kind: a name of /requests/infra, or "payment"
  int64_t token = 0;             ///< the token as in the input
  int64_t accounts_in_ring = 0;  ///< members that used it
  int64_t accounts_overall = 0;  ///< accounts in the whole input that used it
};

/// A reported ring with the signals that support it.
struct Ring {
  int64_t id = 0;                  ///< rank, 0 = highest score
  int64_t cluster = 0;             ///< cluster id in the evidence graph
  int64_t size = 0;                ///< member accounts
  float score = 0;                 ///< ring score in [0, 1], see ring_scoring.hpp
  float shared_prompt_strength = 0;  ///< share of the members' requests in prompt groups two or more members sent
  float synchrony = 0;             ///< mean co-activity evidence of the ring's edges (nats)
  float behaviour_tightness = 0;   ///< mean behaviour evidence of the ring's edges (nats)
  float prompt_diversity = 0;      ///< distinct prompt groups / requests (low = narrow focus)
  float volume = 0;                ///< requests sent by the ring (count)
  float internal_edge_weight = 0;  ///< mean edge evidence inside the ring (nats)
  std::vector<int64_t> members;    ///< account ids, ascending
  int64_t shared_groups = 0;       ///< rare prompt groups two or more members sent
  std::vector<SharedPromptExample> examples;  ///< strongest shared prompt groups (at most --report-examples)
  /// Rare tokens two or more members used, most members first (at most --report-examples).
  std::vector<SharedTokenExample> shared_tokens;
  int64_t sign_up_first = 0, sign_up_last = 0;  ///< members' earliest and latest known sign-up (0: none known)
  int64_t seeds = 0;  ///< members that were seeds (--seeds): 0 for a ring not known before
};

/// What one reported ring leaves for others to match.
struct RingIndicator {
  int64_t ring = 0;     ///< the ring's id in the run that wrote it
  int64_t size = 0;     ///< its members
  float score = 0;      ///< its ring score
  /// [P x dim] unit-length prompt exemplars: per prompt group two or more members sent (most
  /// members first, at most kIndicatorPrompts), the normalised mean of the members' requests
  /// in it. A direction, not any customer's own request.
  std::vector<float> prompts;
  /// Rare tokens two or more members used, most members first (at most kIndicatorTokens).
  std::vector<SharedTokenExample> tokens;
  int64_t first_seen = 0, last_seen = 0;        ///< members' first and last request (0: no times)
  int64_t sign_up_first = 0, sign_up_last = 0;  ///< members' known sign-up span (0: none known)

  int64_t num_prompts(int64_t dim) const { return dim > 0 ? int64_t(prompts.size()) / dim : 0; }
};

constexpr int64_t kIndicatorPrompts = 32;
constexpr int64_t kIndicatorTokens = 64;

/// Indicators of one run's rings.
struct Indicators {
  int64_t dim = 0;              ///< embedding width of the prompts
  std::string source;           ///< the input they were taken from
  std::vector<RingIndicator> rings;

  bool empty() const { return rings.empty(); }
};

/// How an account of the input matched known indicators (`--indicators-in`).
struct IndicatorMatch {
  int64_t ring = -1;          ///< the matched indicator's ring id, -1 = none
  int64_t prompt_hits = 0;    ///< requests within --duplicate-similarity of one of its prompts
  int64_t token_hits = 0;     ///< its tokens the account used
};

/// An edge of the evidence graph between two members of one reported ring: what each signal
/// says about the pair (nats, against independent accounts of the same input).
struct RingEdge {
  int64_t ring = -1;                ///< the ring's id
  int64_t first = 0, second = 0;    ///< the members, as rows of the input's accounts (first < second)
  float shared_prompts = 0, synchrony = 0, behaviour = 0, infrastructure = 0;
  float weight = 0;                 ///< the signals fused
  bool weak = false;                ///< below the edge threshold: a link of a weak core
};

/// Labels in the input's account order plus the ranked rings.
struct DetectionResult {
  std::vector<int64_t> account_ids;  ///< [A] input order
  std::vector<int64_t> cluster;      ///< [A] cluster id, -1 = none
  std::vector<int64_t> ring;         ///< [A] ring id, -1 = none
  std::vector<float> ring_score;     ///< [A] score of the account's ring, 0 if none
  std::vector<Ring> rings;           ///< ranked by score, descending
  std::string backend;               ///< "cpu" or "cuda"
  std::vector<std::pair<std::string, std::string>> parameters;  ///< every parameter used
  std::vector<std::pair<std::string, double>> stage_seconds;     ///< wall time per stage
  std::vector<std::pair<std::string, double>> statistics;        ///< counts (pairs, edges...)
  /// Evidence that is off or weak for this input, and why ("timing evidence off: the input
  /// has no /requests/time"); also logged as warnings.
  std::vector<std::string> notes;
  std::string input_path;
  /// With DetectOptions::collect_indicators: every reported ring's indicators.
  Indicators indicators;
  /// [A] input order, with DetectOptions::known_indicators: how each account matched them.
  std::vector<IndicatorMatch> indicator_matches;
  /// Every edge (weak ones too) between two members of the same reported ring, by ring,
  /// then accounts.
  std::vector<RingEdge> ring_edges;
};

}  // namespace ringscan
