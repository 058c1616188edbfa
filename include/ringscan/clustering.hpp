// Stage 6: clustering of the evidence graph: core test, union-find components, canonical labels.
#pragma once
#include <cstdint>
#include <vector>

#include <utility>

#include "ringscan/account_profiles.hpp"
#include "ringscan/context.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/pipeline.hpp"

namespace ringscan {

struct Clustering {
  std::vector<int64_t> label;  ///< [A] cluster of each canonical account, -1 = none
  int64_t num_clusters = 0;    ///< labels are 0..C-1, numbered by their smallest account
};

/// Accounts with >= min_core_degree edges are cores; cores joined by an edge share a cluster;
/// every other account joins the cluster of its strongest core neighbour through an edge with
/// shared-prompt evidence, if any.
Clustering cluster_accounts(const EvidenceGraph& graph, const DetectOptions& options,
                            const Context& ctx);

/// Refinement: merges clusters whose members, taken all pairs together, are synchronised and
/// behave alike (an operator splitting one ring across capabilities). Only clusters held
/// together by shared prompts take part (half their members share a prompt group with another
/// member), so clusters of look-alikes cannot chain rings together. Cluster pairs are
/// considered when `account_pairs` links them; evidence is averaged over up to
/// kMergeSample x kMergeSample member pairs, far less noisy than any single pair. Both
/// mean synchrony / kMergeSynchronyScale and mean behaviour similarity must reach
/// options.merge_threshold. Labels stay canonical.
constexpr int64_t kMergeSample = 64;
constexpr float kMergeSynchronyScale = 0.3f;
Clustering merge_coordinated_clusters(const Clustering& clusters, const CanonicalRequests& req,
                                      const PromptGroups& groups, const AccountProfiles& profiles,
                                      const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                                      const DetectOptions& options, const Context& ctx);

}  // namespace ringscan
