// Per-element logic shared by the CPU and CUDA backends: compiled by g++ for the host stages
// and by nvcc for the kernels, so the CPU tests exercise the arithmetic the GPU runs.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RINGSCAN_HD __host__ __device__
#else
#define RINGSCAN_HD
#endif

namespace ringscan {

/// Scale of the shared-prompt signal: one group shared by a tenth of 1% of accounts (IDF ~6.9)
/// gives 0.82; a viral prompt sent by 10% (IDF 2.3) gives 0.44.
constexpr float kSharedPromptScale = 4.0f;
/// Width (in robust z units) of the behaviour similarity kernel.
constexpr float kBehaviourWidth = 0.25f;
/// Content cosine below which account profiles count as unrelated.
constexpr float kContentFloor = 0.5f;
/// Weight of content similarity in the fused edge weight (a bonus, never a corroboration:
/// users with the same interests have similar mean embeddings).
constexpr float kContentBonus = 0.1f;

/// Dot product of two [d] vectors with 16 independent partial sums: vectorisable without
/// fast-math and with a fixed summation order, so the result is the same everywhere.
RINGSCAN_HD inline float dot_product(const float* a, const float* b, int64_t d) {
  float part[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 16 <= d; i += 16)
    for (int j = 0; j < 16; ++j) part[j] += a[i + j] * b[i + j];
  for (; i < d; ++i) part[i & 15] += a[i] * b[i];
  float s = 0;
  for (int j = 0; j < 16; ++j) s += part[j];
  return s;
}

/// Signal in [0, 1) from the summed IDF of the prompt groups two accounts share.
RINGSCAN_HD inline float shared_prompt_signal(float summed_idf) {
  return summed_idf > 0 ? 1.0f - expf(-summed_idf / kSharedPromptScale) : 0.0f;
}

/// Similarity in (0, 1] of two behaviour vectors [B] of robust z-scores. The B/4 largest
/// per-feature differences are ignored, so a rotated client (a couple of settings changed)
/// still matches its ring.
RINGSCAN_HD inline float behaviour_similarity(const float* a, const float* b, int64_t dims) {
  if (dims <= 0) return 0.0f;
  const int64_t trimmed = dims / 4;
  float sum = 0;
  for (int64_t f = 0; f < dims; ++f) sum += (a[f] - b[f]) * (a[f] - b[f]);
  // Remove the `trimmed` largest squared differences, one selection pass per distinct value
  // (B is small; no scratch array, so the same code runs in a kernel).
  int64_t remaining = trimmed;
  float bound = INFINITY;
  while (remaining > 0) {
    float largest = -1;
    int64_t count = 0;
    for (int64_t f = 0; f < dims; ++f) {
      const float d = (a[f] - b[f]) * (a[f] - b[f]);
      if (d >= bound) continue;
      if (d > largest) {
        largest = d;
        count = 1;
      } else if (d == largest) {
        ++count;
      }
    }
    if (count == 0) break;
    const int64_t take = count < remaining ? count : remaining;
    sum -= largest * static_cast<float>(take);
    remaining -= take;
    bound = largest;
  }
  const float mean = (sum > 0 ? sum : 0.0f) / static_cast<float>(dims - trimmed);
  return expf(-mean / (2.0f * kBehaviourWidth * kBehaviourWidth));
}

/// Content signal in [0, 1]: how far the profiles' cosine exceeds kContentFloor.
RINGSCAN_HD inline float content_signal(float cosine) {
  const float s = (cosine - kContentFloor) / (1.0f - kContentFloor);
  return s < 0 ? 0.0f : (s > 1 ? 1.0f : s);
}

/// Fused edge weight: the mean of the two strongest of (prompts, synchrony, behaviour), plus
/// a small content bonus. Returns 0 unless the second-strongest signal reaches
/// `corroboration`: no single kind of evidence makes an edge on its own.
RINGSCAN_HD inline float fused_edge_weight(float prompts, float synchrony, float behaviour,
                                           float content, float corroboration) {
  float hi = prompts, mid = synchrony, lo = behaviour;
  if (mid > hi) { float t = hi; hi = mid; mid = t; }
  if (lo > mid) { float t = mid; mid = lo; lo = t; }
  if (mid > hi) { float t = hi; hi = mid; mid = t; }
  if (mid < corroboration) return 0.0f;
  const float w = 0.5f * (hi + mid) + kContentBonus * content;
  return w > 1 ? 1.0f : w;
}

/// Ring score in [0, 1] of a cluster (see ring_scoring.hpp for the meaning of each input).
RINGSCAN_HD inline float ring_score(float shared_request_share, float synchrony,
                                    float behaviour_tightness, float prompt_diversity) {
  const float prompts = shared_request_share / 0.4f;
  return 0.50f * (prompts > 1 ? 1.0f : prompts) + 0.20f * synchrony +
         0.15f * behaviour_tightness + 0.15f * (1.0f - prompt_diversity);
}

}  // namespace ringscan

namespace ringscan {

/// Share of one account's requests [na] that have a request of the other [nb] within
/// `window` seconds, both directions, combined by geometric mean (a heavy account covering
/// every window does not make a light one look synchronised). Times ascending.
RINGSCAN_HD inline float timing_synchrony(const int64_t* a, int64_t na, const int64_t* b,
                                          int64_t nb, int64_t window) {
  if (na == 0 || nb == 0) return 0.0f;
  int64_t matched_a = 0, matched_b = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const int64_t* x = pass == 0 ? a : b;
    const int64_t* y = pass == 0 ? b : a;
    const int64_t nx = pass == 0 ? na : nb, ny = pass == 0 ? nb : na;
    int64_t j = 0, matched = 0;
    for (int64_t i = 0; i < nx; ++i) {
      while (j < ny && y[j] < x[i] - window) ++j;
      matched += j < ny && y[j] <= x[i] + window;
    }
    (pass == 0 ? matched_a : matched_b) = matched;
  }
  return sqrtf((static_cast<float>(matched_a) / static_cast<float>(na)) *
               (static_cast<float>(matched_b) / static_cast<float>(nb)));
}

}  // namespace ringscan
