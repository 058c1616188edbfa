// Stage 5: evidence per account pair, fused into one edge weight; symmetric CSR graph.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "ringscan/account_profiles.hpp"
#include "ringscan/context.hpp"
#include "ringscan/evidence_calibration.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/pipeline.hpp"

namespace ringscan {

/// The signals of one account pair, each a surprise in nats (-ln of the chance that two
/// independent accounts of this file show as much; evidence_math.hpp).
struct PairEvidence {
  float shared_prompts = 0;  ///< the count of rare prompt groups both sent, against chance
  float synchrony = 0;       ///< co-active episodes at the best time scale, against moved timelines
  float behaviour = 0;       ///< closeness of the behaviour features, weighted, against random pairs
  float content = 0;         ///< cosine of the content profiles against random pairs (reported only)
  float infrastructure = 0;  ///< the count of rare infrastructure tokens both used, against chance
  float weight = 0;          ///< evidence of an edge: the signals fused (nats)
};

/// Symmetric weighted graph over canonical accounts; offsets are 64-bit.
struct EvidenceGraph {
  int64_t num_accounts = 0;
  std::vector<int64_t> offsets;     ///< [A+1]
  std::vector<int64_t> neighbours;  ///< [2E] ascending within each row
  std::vector<PairEvidence> evidence;  ///< [2E] aligned with neighbours
  int64_t candidate_pairs = 0;
  int64_t prompt_pairs = 0;

  int64_t num_edges() const { return static_cast<int64_t>(neighbours.size()) / 2; }
};

/// Evaluates every candidate pair (shared prompt groups plus `account_pairs`) and keeps those
/// the edge rule of the calibration keeps (edges and weak edges; pair_evidence.hpp).
EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                             const EvidenceCalibration& calibration,
                             const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                             const DetectOptions& options, const Context& ctx);

/// `graph` without the edges of the accounts flagged in `drop` [A] (the allowlist's);
/// `*removed` receives the number of edges dropped.
EvidenceGraph without_accounts(const EvidenceGraph& graph, const std::vector<uint8_t>& drop, int64_t* removed);

/// Pairs the shared prompt groups propose, a pair counted once per group it shares (an upper
/// bound of the candidates they give).
int64_t shared_prompt_pairs(const PromptGroups& groups);

struct EdgeRule;

/// `graph` without its weak edges: the edges of `rule`.
EvidenceGraph strong_edges(const EvidenceGraph& graph, const EdgeRule& rule);

}  // namespace ringscan
