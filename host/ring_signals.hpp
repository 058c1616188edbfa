// A cluster's ring signals and score from its tallies: shared by the CPU stage and the
// portable (Thrust) tallies the CUDA backend computes.
#pragma once
#include <cmath>
#include <cstdint>

#include "evidence_math.hpp"
#include "host_device.hpp"
#include "ringscan/ring_scoring.hpp"

namespace ringscan {

/// Shared prompt groups per member at which a cluster's sharing counts in full.
constexpr float kSharedBreadth = 3.0f;

/// An edge signal in fixed point (kTallyScale units), rounded to nearest.
RINGSCAN_HD inline int64_t tally_units(float signal) {
  return int64_t(floor(double(signal) * kTallyScale + 0.5));
}

/// The ring signals of one cluster.
struct RingSignals {
  float shared_prompt_strength = 0, synchrony = 0, behaviour_tightness = 0,
        internal_edge_weight = 0, prompt_diversity = 1, volume = 0, score = 0;
};

RINGSCAN_HD inline RingSignals ring_signals(const ClusterTally& t) {
  RingSignals s;
  // Shared-prompt strength: the share of the cluster's requests in groups that two or more
  // members sent, times its breadth, the mean number of such groups per member (saturating
  // at kSharedBreadth). An operator's accounts draw many prompts from one pool; a company
  // team shares a document or two.
  float breadth = t.size > 0 ? float(t.member_groups) / float(t.size) / kSharedBreadth : 0.0f;
  breadth = breadth < 1.0f ? breadth : 1.0f;
  s.shared_prompt_strength = t.requests > 0 ? breadth * float(t.shared_requests) / float(t.requests) : 0.0f;
  if (t.internal_edges > 0) {
    const double n = double(t.internal_edges) * kTallyScale;
    s.synchrony = float(double(t.synchrony) / n);
    s.behaviour_tightness = float(double(t.behaviour) / n);
    s.internal_edge_weight = float(double(t.weight) / n);
  }
  s.prompt_diversity =
      t.requests > 0 ? float(t.singletons + t.distinct_groups) / float(t.requests) : 1.0f;
  s.volume = float(t.requests);
  s.score = ring_score(s.shared_prompt_strength, s.synchrony, s.behaviour_tightness, s.prompt_diversity);
  return s;
}

}  // namespace ringscan
