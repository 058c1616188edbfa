// Per-account rules of the clustering, shared by the CPU stage (host/clustering.cpp) and the
// portable one the CUDA backend runs (host/portable/components.hpp).
#pragma once
#include <cstdint>

#include "evidence_math.hpp"  // RINGSCAN_HD
#include "ringscan/evidence_graph.hpp"

namespace ringscan {

/// An account is a core when it has at least `min_core_degree` edges.
RINGSCAN_HD inline bool is_core_account(const int64_t* offsets, int64_t a, int64_t min_core_degree) {
  return offsets[a + 1] - offsets[a] >= min_core_degree;
}

/// The core neighbour a border account joins: the strongest edge with shared-prompt evidence,
/// ties to the smaller account (rows are ascending, and only a strictly stronger edge
/// replaces the best); -1 when none. A single edge of timing and behaviour alone is what
/// chance gives an ordinary account next to a large ring (a real member that shares no
/// prompt is synchronised with several members, and is a core).
RINGSCAN_HD inline int64_t strongest_core_neighbour(const int64_t* offsets, const int64_t* neighbours,
                                                    const PairEvidence* evidence,
                                                    const uint8_t* core, int64_t a) {
  int64_t best = -1;
  float best_weight = -1;
  for (int64_t e = offsets[a]; e < offsets[a + 1]; ++e) {
    const int64_t b = neighbours[e];
    if (core[b] && evidence[e].shared_prompts > 0 && evidence[e].weight > best_weight) {
      best_weight = evidence[e].weight;
      best = b;
    }
  }
  return best;
}

}  // namespace ringscan
