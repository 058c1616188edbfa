#include "ringscan/account_profiles.hpp"

#include <algorithm>
#include <cmath>

#include "evidence_math.hpp"
#include "stage_variants.hpp"
#include "ringscan/error.hpp"
#include "parallel.hpp"
#include "ringscan/sizes.hpp"

namespace ringscan {
namespace {

constexpr float kMaxZ = 8.0f;
/// Share of accounts at one exact value that makes the value a default (no evidence).
constexpr double kCommonShare = 0.2;

/// Median of a copy of `v` (upper median for even sizes; deterministic).
float median_of(std::vector<float> v) {
  if (v.empty()) return 0;
  const auto mid = v.begin() + int64_t(v.size()) / 2;
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

/// Robust z-scores per feature: (x - median) / (1.4826 MAD). Where more than half of the
/// accounts share one value (SDK defaults) the MAD is 0: fall back to the mean absolute
/// deviation, so rare values still stand out.
std::vector<float> robust_z(const std::vector<float>& x, int64_t A, int64_t B,
                            std::vector<float>& common) {
  std::vector<float> z(A * B, 0.0f);
  common.assign(B, NAN);
  // Features are independent: one per iteration of a parallel loop.
  detail::parallel_for(B, 1, [&](int64_t f) {
    std::vector<float> column(A);
    for (int64_t a = 0; a < A; ++a) column[a] = x[a * B + f];
    // The most frequent exact value, when at least kCommonShare of accounts have it.
    std::vector<float> sorted = column;
    std::sort(sorted.begin(), sorted.end());
    float mode = NAN;
    int64_t best = 0;
    for (int64_t i = 0; i < A;) {
      int64_t j = i;
      while (j < A && sorted[j] == sorted[i]) ++j;
      if (j - i > best) {
        best = j - i;
        mode = sorted[i];
      }
      i = j;
    }
    const bool has_common = double(best) >= kCommonShare * double(A) && best >= 2;
    const float med = median_of(column);
    for (int64_t a = 0; a < A; ++a) column[a] = std::fabs(column[a] - med);
    float scale = 1.4826f * median_of(column);
    if (!(scale > 1e-12f)) {
      double mean_abs = 0;
      for (int64_t a = 0; a < A; ++a) mean_abs += column[a];
      scale = float(1.2533 * mean_abs / double(std::max<int64_t>(A, 1)));
    }
    if (!(scale > 1e-12f)) return;  // constant feature: carries no information
    for (int64_t a = 0; a < A; ++a)
      z[a * B + f] = std::clamp((x[a * B + f] - med) / scale, -kMaxZ, kMaxZ);
    if (has_common) common[f] = std::clamp((mode - med) / scale, -kMaxZ, kMaxZ);
  });
  return z;
}

}  // namespace

AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                 const Context& ctx) {
  return account_profiles(req, options, ctx, true);
}

AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                 const Context& ctx, bool with_content) {
  const int64_t A = req.num_accounts, D = req.dim, R = req.num_requests;
  RINGSCAN_EXPECTS(options.time_window_seconds >= 1, "--time-window must be at least 1 second");
  ctx.require_memory(size_from_double(double(A) * D * 4 + double(R) * 12), "account profiles");
  ThreadScope threads(ctx.threads);
  AccountProfiles p;
  p.num_accounts = A;
  p.dim = D;

  if (with_content) {
    p.content.assign(A * D, 0.0f);
    detail::parallel_for(A, 64, [&](int64_t a) {
      float* out = &p.content[a * D];
      for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r)
        for (int64_t i = 0; i < D; ++i) out[i] += req.unit_embeddings[r * D + i];
      normalise_to_unit(out, D);
    });
  }

  if (req.feature_dim > 0) {
    p.feature_dim = req.feature_dim;
    p.behaviour = robust_z(req.features, A, req.feature_dim, p.behaviour_common);
  }

  p.bucket_offsets.assign(A + 1, 0);
  p.timing_norm.assign(A, 0.0f);
  if (!req.time.empty() && R > 0) {
    p.has_timing = true;
    p.request_offsets = req.account_offsets;
    p.request_time = req.time;  // canonical order: by account, then time
    const int64_t t0 = *std::min_element(req.time.begin(), req.time.end());
    const int64_t t1 = *std::max_element(req.time.begin(), req.time.end());
    p.days = (t1 - t0) / 86400 + 1;
    p.time_of_day.resize(R);
    detail::parallel_for(A, 256, [&](int64_t a) {
      const int64_t first = req.account_offsets[a], last = req.account_offsets[a + 1];
      for (int64_t r = first; r < last; ++r) {
        const int64_t tod = req.time[r] % 86400;
        p.time_of_day[r] = int32_t(tod < 0 ? tod + 86400 : tod);
      }
      std::sort(p.time_of_day.begin() + first, p.time_of_day.begin() + last);
    });
    const int64_t width = 2 * options.time_window_seconds;
    // Very long spans get wider buckets so the bucket count stays bounded.
    const int64_t buckets = (t1 - t0) / width + 1;
    RINGSCAN_EXPECTS(buckets <= (int64_t(1) << 30),
                     "requests span too long a time for --time-window " +
                         std::to_string(options.time_window_seconds) + " s (" + std::to_string(buckets) + " buckets)");
    // Requests of an account are sorted by time, so its buckets come out ascending.
    std::vector<int64_t> count(A, 0);
    for (int64_t a = 0; a < A; ++a) {
      int64_t last = -1;
      for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
        const int64_t b = (req.time[r] - t0) / width;
        if (b != last) ++count[a];
        last = b;
      }
      p.bucket_offsets[a + 1] = p.bucket_offsets[a] + count[a];
    }
    p.active_buckets.resize(p.bucket_offsets[A]);
    std::vector<int64_t> accounts_in_bucket(buckets, 0);
    for (int64_t a = 0; a < A; ++a) {
      int64_t last = -1, at = p.bucket_offsets[a];
      for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
        const int64_t b = (req.time[r] - t0) / width;
        if (b != last) {
          p.active_buckets[at++] = int32_t(b);
          ++accounts_in_bucket[b];
        }
        last = b;
      }
    }
    int64_t active_accounts = 0;
    for (int64_t a = 0; a < A; ++a) active_accounts += count[a] > 0;
    p.bucket_idf.resize(buckets);
    for (int64_t b = 0; b < buckets; ++b)
      p.bucket_idf[b] = accounts_in_bucket[b] > 0
                            ? float(std::log(1.0 + double(active_accounts) / double(accounts_in_bucket[b])))
                            : 0.0f;
    for (int64_t a = 0; a < A; ++a) {
      double s = 0;
      for (int64_t i = p.bucket_offsets[a]; i < p.bucket_offsets[a + 1]; ++i)
        s += double(p.bucket_idf[p.active_buckets[i]]) * p.bucket_idf[p.active_buckets[i]];
      p.timing_norm[a] = float(std::sqrt(s));
    }
  }
  ctx.report("account profiles", A, A);
  return p;
}

}  // namespace ringscan
