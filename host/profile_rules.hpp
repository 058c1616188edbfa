// The per-element rules of the account profiles' behaviour and timing parts, shared by the CPU
// stage (host/account_profiles.cpp) and the portable stage the CUDA backend runs
// (host/portable/account_profiles.hpp), so that both give the same bits.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "host_device.hpp"
#include "portable_math.hpp"
#include "ringscan/error.hpp"

namespace ringscan {

/// Robust z-scores are clipped to +-kMaxZ: a single wild value carries no more weight.
constexpr float kMaxZ = 8.0f;
/// Scale below which a feature counts as constant (it carries no information).
constexpr float kMinRobustScale = 1e-12f;

/// Activity bucket of time t: buckets of `width` seconds from the earliest time t0.
RINGSCAN_HD inline int64_t activity_bucket(int64_t t, int64_t t0, int64_t width) {
  return (t - t0) / width;
}

/// IDF of an activity bucket in which `accounts_in_bucket` of `active_accounts` were active:
/// ln(1 + active / in bucket); 0 for an empty bucket.
RINGSCAN_HD inline float activity_bucket_idf(int64_t active_accounts, int64_t accounts_in_bucket) {
  return accounts_in_bucket > 0
             ? float(portable_log(1.0 + double(active_accounts) / double(accounts_in_bucket)))
             : 0.0f;
}

/// sqrt of the sum of idf^2 over an account's n active buckets, summed in their order in double.
RINGSCAN_HD inline float activity_norm(const int32_t* buckets, int64_t n, const float* bucket_idf) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(bucket_idf[buckets[i]]) * bucket_idf[buckets[i]];
  return float(sqrt(s));
}

/// Whole days and activity buckets (width 2 windows, from the earliest time) spanned by times
/// in [t0, t1]; the bucket count is bounded so that the bucket arrays stay small.
struct ActivitySpan {
  int64_t first = 0, days = 0, width = 0, buckets = 0;
};
inline ActivitySpan activity_span(int64_t t0, int64_t t1, int64_t window_seconds) {
  RINGSCAN_EXPECTS(window_seconds >= 1, "--time-window must be at least 1 second");
  ActivitySpan s;
  s.first = t0;
  s.days = (t1 - t0) / 86400 + 1;
  s.width = 2 * window_seconds;
  s.buckets = (t1 - t0) / s.width + 1;
  RINGSCAN_EXPECTS(s.buckets <= (int64_t(1) << 30),
                   "requests span too long a time for --time-window " + std::to_string(window_seconds) +
                       " s (" + std::to_string(s.buckets) + " buckets)");
  return s;
}

/// v with -0 as +0: a median picked from a sorted column is either
/// zero, depending on the sort; both backends take +0, so their z-scores agree to the bit.
RINGSCAN_HD inline float canonical_zero(float v) { return v + 0.0f; }

/// Robust scale of a feature from the median of its absolute deviations (1.4826 MAD).
RINGSCAN_HD inline float mad_scale(float median_absolute_deviation) {
  return 1.4826f * median_absolute_deviation;
}

/// Accounts per partial sum of the fallback scale. Both backends sum each block of absolute
/// deviations in order, in double, then the blocks' sums in order: they agree to the bit,
/// and a device sums the blocks in parallel (one thread over a column of 10^8 accounts, at
/// a memory latency per few loads, would take seconds per feature).
constexpr int64_t kScaleSumBlock = 4096;

RINGSCAN_HD inline int64_t scale_sum_blocks(int64_t n) {
  return (n + kScaleSumBlock - 1) / kScaleSumBlock;
}

/// Block b of the n absolute deviations, summed in order in double.
RINGSCAN_HD inline double deviation_block_sum(const float* absolute_deviation, int64_t n, int64_t b) {
  const int64_t end = (b + 1) * kScaleSumBlock < n ? (b + 1) * kScaleSumBlock : n;
  double sum = 0;
  for (int64_t a = b * kScaleSumBlock; a < end; ++a) sum += absolute_deviation[a];
  return sum;
}

/// The fallback scale where more than half of n accounts share one value (MAD 0): from the
/// mean absolute deviation, given the sums of its scale_sum_blocks(n) blocks
/// (deviation_block_sum), added in order.
RINGSCAN_HD inline float mean_absolute_scale(const double* block_sums, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < scale_sum_blocks(n); ++b) total += block_sums[b];
  return float(1.2533 * total / double(n > 1 ? n : 1));
}

/// Clipped robust z-score of x for a feature of median `median` and scale `scale`.
RINGSCAN_HD inline float robust_z_score(float x, float median, float scale) {
  const float z = (x - median) / scale;
  return z < -kMaxZ ? -kMaxZ : (z > kMaxZ ? kMaxZ : z);
}

}  // namespace ringscan
