// A cluster's ring signals and score from its tallies: shared by the CPU stage and the
// portable (Thrust) tallies the CUDA backend computes.
#pragma once
#include <cmath>
#include <cstdint>

#include "evidence_math.hpp"
#include "host_device.hpp"
#include "ringscan/ring_scoring.hpp"

namespace ringscan {

/// An edge signal (nats, at most kMaxSurprise) in fixed point (kTallyScale units), rounded
/// to nearest.
RINGSCAN_HD inline int64_t tally_units(float signal) {
  return int64_t(floor(double(signal) * kTallyScale + 0.5));
}

/// The one-sided 99% lower confidence bound (Wilson's) of a share of k in n: what the share
/// is at least, with the uncertainty of a small cluster's few requests taken into account.
RINGSCAN_HD inline float share_lower_bound(int64_t k, int64_t n) {
  if (n <= 0) return 0.0f;
  constexpr double z = 2.3263478740408408;
  const double p = double(k) / double(n), z2n = z * z / double(n);
  const double centre = p + 0.5 * z2n;
  const double margin = z * sqrt(p * (1.0 - p) / double(n) + 0.25 * z2n / double(n));
  const double bound = (centre - margin) / (1.0 + z2n);
  return float(bound > 0 ? bound : 0.0);
}

/// The ring signals of one cluster.
struct RingSignals {
  float shared_prompt_strength = 0, synchrony = 0, behaviour_tightness = 0,
        internal_edge_weight = 0, prompt_diversity = 1, volume = 0, score = 0;
};

RINGSCAN_HD inline RingSignals ring_signals(const ClusterTally& t) {
  RingSignals s;
  // Concentration: the share of the members' requests in prompt groups that two or more
  // members sent. An operator's accounts draw most of their traffic from one pool or a few
  // templates; a company team shares a document or two amid diverse work, a crowd asks one
  // trending question among its own.
  s.shared_prompt_strength = t.requests > 0 ? float(t.shared_requests) / float(t.requests) : 0.0f;
  if (t.internal_edges > 0) {
    const double n = double(t.internal_edges) * kTallyScale;
    s.synchrony = float(double(t.synchrony) / n);
    s.behaviour_tightness = float(double(t.behaviour) / n);
    s.internal_edge_weight = float(double(t.weight) / n);
  }
  s.prompt_diversity =
      t.requests > 0 ? float(t.singletons + t.distinct_groups) / float(t.requests) : 1.0f;
  s.volume = float(t.requests);
  // The share as the cluster's requests establish it: three light accounts that happen to
  // share a document count for less than their raw share says.
  s.score = share_lower_bound(t.shared_requests, t.requests);
  return s;
}

}  // namespace ringscan
