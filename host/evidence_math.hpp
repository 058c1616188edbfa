// Per-element logic shared by the CPU and CUDA backends: compiled by g++ for the host stages
// and by nvcc for the kernels, so the CPU tests exercise the arithmetic the GPU runs.
#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.hpp"
#include "portable_math.hpp"

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
/// Requests of prior weight in each direction's co-active share: an account's excess share is
/// scaled by n / (n + this), so an account with one or two requests cannot look synchronised
/// on its own. Among a million accounts, thousands of one-request pairs fall in the same ten
/// minutes by chance, and the account index finds exactly those.
constexpr float kSynchronyPriorRequests = 2.0f;

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

/// Scales v [d] to unit length in place (a zero vector stays zero). The squared norm is
/// summed in double, where float products are exact, so host and device agree bit for bit.
RINGSCAN_HD inline void normalise_to_unit(float* v, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += double(v[i]) * v[i];
  const float inv = s > 0 ? float(1.0 / sqrt(s)) : 0.0f;
  for (int64_t i = 0; i < d; ++i) v[i] *= inv;
}

/// Signal in [0, 1) from the summed IDF of the prompt groups two accounts share.
RINGSCAN_HD inline float shared_prompt_signal(float summed_idf) {
  return summed_idf > 0 ? 1.0f - float(portable_exp(double(-summed_idf / kSharedPromptScale))) : 0.0f;
}

/// True when feature f of both vectors sits at a value that many accounts share (an SDK
/// default): such a match is no evidence. `common` [B] holds that value per feature, NaN
/// where no value is that common.
RINGSCAN_HD inline bool shared_default(const float* a, const float* b, const float* common,
                                       int64_t f) {
  return common != nullptr && a[f] == common[f] && b[f] == common[f];
}

/// Similarity in [0, 1] of two behaviour vectors [B] of robust z-scores. Features where both
/// sit at a common default are left out; of the rest, the quarter with the largest
/// differences is ignored, so a rotated client (a couple of settings changed) still matches.
/// Fewer than two informative features give 0: nothing to compare.
RINGSCAN_HD inline float behaviour_similarity(const float* a, const float* b, const float* common,
                                              int64_t dims) {
  int64_t used = 0;
  float sum = 0;
  for (int64_t f = 0; f < dims; ++f) {
    if (shared_default(a, b, common, f)) continue;
    ++used;
    sum += (a[f] - b[f]) * (a[f] - b[f]);
  }
  if (used < 2) return 0.0f;
  const int64_t trimmed = used / 4;
  // Remove the `trimmed` largest squared differences, one selection pass per distinct value
  // (B is small; no scratch array, so the same code runs in a kernel).
  int64_t remaining = trimmed;
  float bound = INFINITY;
  while (remaining > 0) {
    float largest = -1;
    int64_t count = 0;
    for (int64_t f = 0; f < dims; ++f) {
      if (shared_default(a, b, common, f)) continue;
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
  const float mean = (sum > 0 ? sum : 0.0f) / static_cast<float>(used - trimmed);
  return float(portable_exp(double(-mean / (2.0f * kBehaviourWidth * kBehaviourWidth))));
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

/// First index i of the ascending array v [n] with v[i] >= key (n when none): std::lower_bound
/// for host and device code.
template <class T, class K>
RINGSCAN_HD inline int64_t first_not_below(const T* v, int64_t n, K key) {
  int64_t a = 0, b = n;
  while (a < b) {
    const int64_t m = a + (b - a) / 2;
    if (v[m] < key) a = m + 1;
    else b = m;
  }
  return a;
}

/// Number of entries of the ascending array v [n] in [lo, hi).
RINGSCAN_HD inline int64_t count_in_range(const int32_t* v, int64_t n, int64_t lo, int64_t hi) {
  const int64_t a = first_not_below(v, n, lo);
  return first_not_below(v + a, n - a, hi);
}

/// Share of x's requests [nx] (times ascending) with a request of y [ny] within `window`.
RINGSCAN_HD inline float coactive_share(const int64_t* x, int64_t nx, const int64_t* y, int64_t ny,
                                        int64_t window) {
  int64_t j = 0, matched = 0;
  for (int64_t i = 0; i < nx; ++i) {
    while (j < ny && y[j] < x[i] - window) ++j;
    matched += j < ny && y[j] <= x[i] + window;
  }
  return static_cast<float>(matched) / static_cast<float>(nx);
}

/// The share coactive_share would give by chance if y kept its times of day but its days
/// were shuffled over `days` days (x and y's times of day, seconds, ascending): each request
/// of x counts min(1, y's requests within `window` in time of day / days). Accounts active
/// at the same hours of the day (a timezone, office hours) are not synchronised by that alone.
RINGSCAN_HD inline float chance_coactive_share(const int32_t* tod_x, int64_t nx, const int32_t* tod_y,
                                               int64_t ny, int64_t window, int64_t days) {
  const int64_t day = 86400;
  float expected = 0;
  for (int64_t i = 0; i < nx; ++i) {
    const int64_t t = tod_x[i];
    int64_t near = count_in_range(tod_y, ny, t - window, t + window + 1);
    if (t - window < 0) near += count_in_range(tod_y, ny, t - window + day, day);
    if (t + window >= day) near += count_in_range(tod_y, ny, 0, t + window + 1 - day);
    const float p = static_cast<float>(near) / static_cast<float>(days);
    expected += p < 1 ? p : 1.0f;
  }
  return expected / static_cast<float>(nx);
}

/// The share coactive_share would give by chance if y's activity kept its shape but moved by
/// a few tens of minutes: the mean over four shifts. Accounts that are merely busy at the
/// same hours stay co-active after a shift; accounts in the same bursts do not.
RINGSCAN_HD inline float shifted_coactive_share(const int64_t* x, int64_t nx, const int64_t* y,
                                                int64_t ny, int64_t window) {
  // Tens of minutes to two hours, none a multiple of another or of a round period, so a
  // burst schedule does not line up again after a shift. (A local array: device code cannot
  // read a namespace-scope one.)
  const int64_t shifts[4] = {-131 * 60, -37 * 60, 41 * 60, 127 * 60};
  float sum = 0;
  for (int s = 0; s < 4; ++s) {
    const int64_t shift = shifts[s];
    int64_t j = 0, matched = 0;
    for (int64_t i = 0; i < nx; ++i) {
      const int64_t t = x[i] + shift;
      while (j < ny && y[j] < t - window) ++j;
      matched += j < ny && y[j] <= t + window;
    }
    sum += static_cast<float>(matched) / static_cast<float>(nx);
  }
  return sum / 4;
}

/// Synchronised activity of two accounts in [0, 1]: for each direction, the share of one
/// account's requests with a request of the other within `window` seconds, minus the share
/// expected by chance, shrunk towards 0 for accounts of few requests (kSynchronyPriorRequests);
/// the two directions combined by geometric
/// mean, so a heavy account covering every window does not make a light one look
/// synchronised. Chance is the larger of two null models: the other account's times of day
/// on shuffled days (chance_coactive_share; needs `days` >= 2), and its activity shifted by
/// tens of minutes (shifted_coactive_share; works on any span). Times ascending; times of
/// day ascending.
RINGSCAN_HD inline float timing_synchrony(const int64_t* a, const int32_t* tod_a, int64_t na,
                                          const int64_t* b, const int32_t* tod_b, int64_t nb,
                                          int64_t window, int64_t days) {
  if (na == 0 || nb == 0) return 0.0f;
  float share[2];
  for (int pass = 0; pass < 2; ++pass) {
    const bool ab = pass == 0;
    const int64_t* x = ab ? a : b;
    const int64_t* y = ab ? b : a;
    const int64_t nx = ab ? na : nb, ny = ab ? nb : na;
    const float seen = coactive_share(x, nx, y, ny, window);
    float chance = shifted_coactive_share(x, nx, y, ny, window);
    if (days >= 2) {
      const float by_day = chance_coactive_share(ab ? tod_a : tod_b, nx, ab ? tod_b : tod_a, ny,
                                                 window, days);
      chance = by_day > chance ? by_day : chance;
    }
    // A plain difference: near saturation (both accounts busy all the time) a rescaled
    // excess would blow small differences up.
    const float excess = seen - chance;
    const float n = static_cast<float>(nx);
    share[pass] = excess > 0 ? excess * n / (n + kSynchronyPriorRequests) : 0.0f;
  }
  return sqrtf(share[0] * share[1]);
}

}  // namespace ringscan
