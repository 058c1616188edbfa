// Stage 7: per-cluster signals, the ring score and the ring decision.
//
// A cluster is held together by edges, each of which is already evidence beyond chance
// (evidence_graph.hpp). Whether it is a ring or a group of look-alikes (a company team on
// one client, a crowd on a trending topic) is told by what share of its members' traffic is
// coordinated: the share of the members' requests in prompt groups that two or more members
// sent (shared_prompt_strength). The score is that share's one-sided 99% lower confidence
// bound, so that a few light accounts do not pass on a small sample. A cluster is reported
// as a ring when size >= min_ring_size and score >= ring_threshold.
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
/// Fixed-point units per nat of a summed edge signal (signals lie in [0, 1000] nats, so that
/// 5e8 edges of the largest signals still sum within 64 bits).
constexpr double kTallyScale = 16777216.0;

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

/// Sets each ring's count of members among `seeds` (account ids; --seeds) and returns how
/// many rings hold one.
int64_t mark_seeds(const std::vector<int64_t>& seeds, std::vector<Ring>& rings);

}  // namespace ringscan
