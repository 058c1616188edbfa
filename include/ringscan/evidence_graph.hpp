// Stage 5: evidence per account pair, fused into one edge weight; symmetric CSR graph.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "ringscan/account_profiles.hpp"
#include "ringscan/context.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/pipeline.hpp"

namespace ringscan {

/// The signals of one account pair, each in [0, 1].
struct PairEvidence {
  float shared_prompts = 0;  ///< 1 - exp(-sum of IDF of shared groups / scale)
  float synchrony = 0;       ///< IDF-weighted cosine of activity buckets
  float behaviour = 0;       ///< similarity of robust behaviour vectors (trimmed)
  float content = 0;         ///< excess cosine of content profiles above 0.5, rescaled
  float weight = 0;          ///< fused edge weight
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
/// whose fused evidence passes the edge rule.
EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                             const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                             const DetectOptions& options, const Context& ctx);

}  // namespace ringscan
