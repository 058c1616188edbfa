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

/// Scores every cluster and returns the rings, ranked (id = rank), members as account ids.
std::vector<Ring> score_rings(const CanonicalRequests& req, const PromptGroups& groups,
                              const EvidenceGraph& graph, const Clustering& clusters,
                              const DetectOptions& options, const Context& ctx);

}  // namespace ringscan
