#include "ringscan/account_profiles.hpp"

#include <algorithm>
#include <cmath>

#include "evidence_math.hpp"
#include "profile_rules.hpp"
#include "stage_variants.hpp"
#include "ringscan/error.hpp"
#include "parallel.hpp"
#include "ringscan/sizes.hpp"

namespace ringscan {
namespace {

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
std::vector<float> robust_z(const std::vector<float>& x, int64_t A, int64_t B) {
  std::vector<float> z(A * B, 0.0f);
  // Features are independent: one per iteration of a parallel loop.
  detail::parallel_for(B, 1, [&](int64_t f) {
    std::vector<float> column(A);
    for (int64_t a = 0; a < A; ++a) column[a] = x[a * B + f];
    const float med = canonical_zero(median_of(column));
    for (int64_t a = 0; a < A; ++a) column[a] = std::fabs(column[a] - med);
    float scale = mad_scale(median_of(column));
    if (!(scale > kMinRobustScale)) {
      std::vector<double> block_sums(scale_sum_blocks(A));
      for (int64_t b = 0; b < int64_t(block_sums.size()); ++b)
        block_sums[b] = deviation_block_sum(column.data(), A, b);
      scale = mean_absolute_scale(block_sums.data(), A);
    }
    if (!(scale > kMinRobustScale)) return;  // constant feature: carries no information
    for (int64_t a = 0; a < A; ++a) z[a * B + f] = robust_z_score(x[a * B + f], med, scale);
  });
  return z;
}

}  // namespace

void check_account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                            const Context& ctx) {
  RINGSCAN_EXPECTS(options.time_window_seconds >= 1, "--time-window must be at least 1 second");
  ctx.require_memory(size_from_double(double(req.num_accounts) * req.dim * 4 + double(req.num_requests) * 12),
                     "account profiles");
}

AccountProfiles account_profiles_frame(const CanonicalRequests& req, const DetectOptions& options,
                                       ActivitySpan* span) {
  AccountProfiles p;
  p.num_accounts = req.num_accounts;
  p.dim = req.dim;
  p.feature_dim = req.feature_dim;
  p.bucket_offsets.assign(req.num_accounts + 1, 0);
  p.timing_norm.assign(req.num_accounts, 0.0f);
  p.request_offsets = req.account_offsets;  // request counts: the shared-prompt evidence needs them
  if (!req.time.empty() && req.num_requests > 0) {
    p.has_timing = true;
    p.request_time = req.time;  // canonical order: by account, then time
    const auto [t0, t1] = std::minmax_element(req.time.begin(), req.time.end());
    *span = activity_span(*t0, *t1, options.time_window_seconds);
    p.days = span->days;
  }
  return p;
}

void account_content(const CanonicalRequests& req, const float* unit_rows, int64_t row_first, int64_t first,
                     int64_t last, float* out) {
  const int64_t D = req.dim;
  detail::parallel_for(last - first, 64, [&](int64_t i) {
    const int64_t a = first + i;
    float* v = out + i * D;
    std::fill(v, v + D, 0.0f);
    for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r)
      for (int64_t j = 0; j < D; ++j) v[j] += unit_rows[(r - row_first) * D + j];
    normalise_to_unit(v, D);
  });
}

AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                 const Context& ctx) {
  check_account_profiles(req, options, ctx);
  ThreadScope threads(ctx.threads);
  std::vector<float> content(req.num_accounts * req.dim);
  account_content(req, req.unit_embeddings.data(), 0, 0, req.num_accounts, content.data());
  return account_profiles(req, options, ctx, std::move(content));
}

AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                 const Context& ctx, std::vector<float> content) {
  const int64_t A = req.num_accounts;
  RINGSCAN_ASSERT(int64_t(content.size()) == A * req.dim, "account_profiles: content of every account");
  ThreadScope threads(ctx.threads);
  ActivitySpan span;
  AccountProfiles p = account_profiles_frame(req, options, &span);
  p.content = std::move(content);

  if (req.feature_dim > 0) p.behaviour = robust_z(req.features, A, req.feature_dim);

  if (p.has_timing) {
    const int64_t t0 = span.first, width = span.width, buckets = span.buckets;
    // Requests of an account are sorted by time, so its buckets come out ascending.
    std::vector<int64_t> count(A, 0);
    for (int64_t a = 0; a < A; ++a) {
      int64_t last = -1;
      for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
        const int64_t b = activity_bucket(req.time[r], t0, width);
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
        const int64_t b = activity_bucket(req.time[r], t0, width);
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
    for (int64_t b = 0; b < buckets; ++b) p.bucket_idf[b] = activity_bucket_idf(active_accounts, accounts_in_bucket[b]);
    for (int64_t a = 0; a < A; ++a)
      p.timing_norm[a] = activity_norm(p.active_buckets.data() + p.bucket_offsets[a],
                                       p.bucket_offsets[a + 1] - p.bucket_offsets[a], p.bucket_idf.data());
  }
  ctx.report("account profiles", A, A);
  return p;
}

}  // namespace ringscan
