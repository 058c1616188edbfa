// Stage 7: per-cluster signals, the ring score and the ring decision.
//
// score = 0.50 * min(1, shared / 0.4)   where shared = (share of requests in prompt groups
//                                        that >= 2 members sent) x min(1, such groups per
//                                        member / 3): many prompts from one pool, not a
//                                        document or two passed around a team
//       + 0.20 * synchrony                            (mean over internal edges)
//       + 0.15 * behaviour_tightness                  (mean over internal edges)
//       + 0.15 * (1 - prompt_diversity)               (distinct prompts / requests)
// A cluster is reported as a ring when size >= min_ring_size and score >= ring_threshold.
#pragma once
#include <cstdint>
#include <vector>

#include "ringscan/clustering.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/result.hpp"

namespace ringscan {

/// What a cluster's signals are computed from: integer counts, and the internal edges'
/// signals summed in fixed point (kTallyScale units), so that the sums are exact and do not
/// depend on the order they are added in (threads, devices).
struct ClusterTally {
  int64_t size = 0;              ///< member accounts
  int64_t requests = 0;          ///< requests of the members
  int64_t singletons = 0;        ///< of which in no prompt group
  int64_t distinct_groups = 0;   ///< prompt groups any member sent
  int64_t shared_requests = 0;   ///< requests in non-common groups >= 2 members sent
  int64_t member_groups = 0;     ///< (member, such group) pairs
  int64_t internal_edges = 0;    ///< edges between members, counted from both ends
  int64_t synchrony = 0, behaviour = 0, weight = 0;  ///< fixed-point sums over those edges
};
/// Fixed-point units per 1.0 of a summed edge signal (signals lie in [0, 1]).
constexpr double kTallyScale = 4294967296.0;

/// The tallies of clusters 0..C-1 (the CPU's: one pass over members, requests and edges).
std::vector<ClusterTally> cluster_tallies(const CanonicalRequests& req, const PromptGroups& groups,
                                          const EvidenceGraph& graph, const Clustering& clusters,
                                          const Context& ctx);

/// The rings among the clusters given their tallies, ranked (id = rank), members as account
/// ids, with the evidence examples for the report.
std::vector<Ring> rings_from_tallies(const CanonicalRequests& req, const PromptGroups& groups,
                                     const Clustering& clusters,
                                     const std::vector<ClusterTally>& tallies,
                                     const DetectOptions& options, const Context& ctx);

/// Scores every cluster and returns the rings: rings_from_tallies(cluster_tallies(...)).
std::vector<Ring> score_rings(const CanonicalRequests& req, const PromptGroups& groups,
                              const EvidenceGraph& graph, const Clustering& clusters,
                              const DetectOptions& options, const Context& ctx);

}  // namespace ringscan
