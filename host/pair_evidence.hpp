// Evidence of one account pair, over a trivially copyable view of the account profiles:
// the CPU evidence graph and the CUDA kernel call the same function.
#pragma once
#include <cstdint>

#include "evidence_math.hpp"
#include "ringscan/evidence_graph.hpp"

namespace ringscan {

/// Pointers into AccountProfiles (host or device memory) and the parameters the signals use.
struct ProfilesView {
  int64_t dim = 0, feature_dim = 0, days = 0, time_window_seconds = 0;
  bool has_timing = false;
  float corroboration = 0;
  const float* content = nullptr;           ///< [A x D]
  const float* behaviour = nullptr;         ///< [A x B]
  const float* behaviour_common = nullptr;  ///< [B]
  const int64_t* request_offsets = nullptr; ///< [A+1]
  const int64_t* request_time = nullptr;    ///< [R]
  const int32_t* time_of_day = nullptr;     ///< [R]
};

/// The four signals of accounts a and b and their fused weight; `summed_idf` over the
/// prompt groups they share.
RINGSCAN_HD inline PairEvidence evaluate_pair(const ProfilesView& p, int64_t a, int64_t b,
                                              float summed_idf) {
  PairEvidence e;
  e.shared_prompts = shared_prompt_signal(summed_idf);
  if (p.has_timing) {
    const int64_t oa = p.request_offsets[a], ob = p.request_offsets[b];
    e.synchrony = timing_synchrony(p.request_time + oa, p.time_of_day + oa,
                                   p.request_offsets[a + 1] - oa, p.request_time + ob,
                                   p.time_of_day + ob, p.request_offsets[b + 1] - ob,
                                   p.time_window_seconds, p.days);
  }
  const int64_t B = p.feature_dim, D = p.dim;
  if (B > 0)
    e.behaviour = behaviour_similarity(p.behaviour + a * B, p.behaviour + b * B,
                                       p.behaviour_common, B);
  e.content = content_signal(dot_product(p.content + a * D, p.content + b * D, D));
  e.weight = fused_edge_weight(e.shared_prompts, e.synchrony, e.behaviour, e.content,
                               p.corroboration);
  return e;
}

/// A view of `profiles` in host memory.
inline ProfilesView host_view(const AccountProfiles& profiles, const DetectOptions& options) {
  ProfilesView v;
  v.dim = profiles.dim;
  v.feature_dim = profiles.feature_dim;
  v.days = profiles.days;
  v.time_window_seconds = options.time_window_seconds;
  v.has_timing = profiles.has_timing;
  v.corroboration = options.corroboration_threshold;
  v.content = profiles.content.data();
  v.behaviour = profiles.behaviour.data();
  v.behaviour_common = profiles.behaviour_common.empty() ? nullptr : profiles.behaviour_common.data();
  v.request_offsets = profiles.request_offsets.data();
  v.request_time = profiles.request_time.data();
  v.time_of_day = profiles.time_of_day.data();
  return v;
}

}  // namespace ringscan
