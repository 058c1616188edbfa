// Account profiles as Thrust algorithms over raw arrays, instantiated for thrust::cuda by the
// CUDA backend and for thrust::omp by the CPU tests, which compare them with the CPU stage:
// - content (the unit mean of each account's unit embeddings): each component sums the
//   account's requests in canonical order, as the CPU stage does, so both give the same bits;
// - behaviour (robust z-scores per feature): medians by sorting each feature's column;
// - timing (each account's active buckets, their IDF and its norm): by a scan over bucket
//   changes and integer counts added atomically.
// The arithmetic of behaviour and timing is host/profile_rules.hpp's, which the CPU stage uses.
#pragma once
#include <thrust/copy.h>
#include <thrust/count.h>
#include <thrust/extrema.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/gather.h>
#include <thrust/iterator/constant_iterator.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sort.h>
#include <thrust/transform.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "components.hpp"
#include "evidence_math.hpp"
#include "profile_rules.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/error.hpp"

namespace ringscan::portable {

namespace detail {

/// One thread per (account, component): neighbouring threads read neighbouring components.
struct SumComponents {
  const int64_t* account_offsets;
  const float* unit_embeddings;
  int64_t dim;
  float* content;
  RINGSCAN_HD void operator()(int64_t k) const {
    const int64_t a = k / dim, i = k % dim;
    float s = 0;
    for (int64_t r = account_offsets[a]; r < account_offsets[a + 1]; ++r) s += unit_embeddings[r * dim + i];
    content[k] = s;
  }
};

struct NormaliseRow {
  float* content;
  int64_t dim;
  RINGSCAN_HD void operator()(int64_t a) const { normalise_to_unit(content + a * dim, dim); }
};

}  // namespace detail

/// content [A x D] from the embeddings [R x D] of requests grouped by account (offsets [A+1]).
template <class Policy>
void content_profiles(Policy&& policy, const int64_t* account_offsets, const float* unit_embeddings,
                      int64_t num_accounts, int64_t dim, float* content) {
  if (num_accounts == 0 || dim == 0) return;
  const thrust::counting_iterator<int64_t> first(0);
  thrust::for_each(policy, first, first + num_accounts * dim,
                   detail::SumComponents{account_offsets, unit_embeddings, dim, content});
  thrust::for_each(policy, first, first + num_accounts, detail::NormaliseRow{content, dim});
}

namespace detail {

struct FeatureColumn {
  const float* features;
  int64_t feature_dim, feature;
  RINGSCAN_HD float operator()(int64_t a) const { return features[a * feature_dim + feature]; }
};

struct AbsoluteDeviation {
  float median;
  RINGSCAN_HD float operator()(float x) const { return fabsf(x - median); }
};

/// The fallback scale's block sums, one thread per block, each in account order.
struct DeviationBlockSum {
  const float* absolute_deviation;
  int64_t n;
  RINGSCAN_HD double operator()(int64_t b) const { return deviation_block_sum(absolute_deviation, n, b); }
};

/// One thread: the block sums added in order, as the CPU does.
struct MeanAbsoluteScale {
  const double* block_sums;
  int64_t n;
  float* scale;
  RINGSCAN_HD void operator()(int64_t) const { *scale = mean_absolute_scale(block_sums, n); }
};

struct ZScore {
  const float* features;
  int64_t feature_dim, feature;
  float median, scale;
  float* z;
  RINGSCAN_HD void operator()(int64_t a) const {
    const int64_t k = a * feature_dim + feature;
    z[k] = robust_z_score(features[k], median, scale);
  }
};

/// Whether request r opens an active bucket of its account: its first request, or the first
/// in a later bucket (an account's requests are sorted by time).
struct OpensBucket {
  const int64_t* account_offsets;
  const int64_t* request_owner;
  const int64_t* time;
  int64_t t0, width;
  RINGSCAN_HD int64_t operator()(int64_t r) const {
    return r == account_offsets[request_owner[r]] ||
                   activity_bucket(time[r], t0, width) != activity_bucket(time[r - 1], t0, width)
               ? 1
               : 0;
  }
};

/// Writes each opened bucket at its place (the scan of openings before it) and counts the
/// accounts active in it; integer counts, so the order threads add in does not matter.
struct RecordBucket {
  const int64_t* place;  ///< [R + 1] openings before each request: r opens one where it grows
  const int64_t* time;
  int64_t t0, width;
  int32_t* active_buckets;
  int64_t* accounts_in_bucket;
  RINGSCAN_HD void operator()(int64_t r) const {
    if (place[r + 1] == place[r]) return;
    const int64_t b = activity_bucket(time[r], t0, width);
    active_buckets[place[r]] = int32_t(b);
    AtomicIndex(accounts_in_bucket[b]).fetch_add(1, ::cuda::memory_order_relaxed);
  }
};

struct HasBuckets {
  const int64_t* bucket_offsets;
  RINGSCAN_HD bool operator()(int64_t a) const { return bucket_offsets[a + 1] > bucket_offsets[a]; }
};

struct WeighBucket {
  int64_t active_accounts;
  RINGSCAN_HD float operator()(int64_t accounts_in_bucket) const {
    return activity_bucket_idf(active_accounts, accounts_in_bucket);
  }
};

struct ActivityNorm {
  const int64_t* bucket_offsets;
  const int32_t* active_buckets;
  const float* bucket_idf;
  RINGSCAN_HD float operator()(int64_t a) const {
    return activity_norm(active_buckets + bucket_offsets[a], bucket_offsets[a + 1] - bucket_offsets[a],
                         bucket_idf);
  }
};

}  // namespace detail

/// The CPU stage's behaviour profiles: the robust z-scores [A x B] of the features [A x B]
/// (policy memory) into z (host, resized). Policy memory: about 8 A B + 16 A bytes, the
/// inputs included.
template <class Memory, class Policy>
void behaviour_profiles(Policy&& policy, const float* features, int64_t A, int64_t B, std::vector<float>& z) {
  using F32 = typename Memory::template Buffer<float>;
  z.assign(A * B, 0.0f);
  if (A == 0 || B == 0) return;
  const thrust::counting_iterator<int64_t> zero(0);
  F32 device_z(A * B), column(A), sorted(A), one(1);
  typename Memory::template Buffer<double> block_sums(scale_sum_blocks(A));
  thrust::fill(policy, device_z.data(), device_z.data() + A * B, 0.0f);
  for (int64_t f = 0; f < B; ++f) {
    thrust::transform(policy, zero, zero + A, column.data(), detail::FeatureColumn{features, B, f});
    thrust::copy(policy, column.data(), column.data() + A, sorted.data());
    thrust::sort(policy, sorted.data(), sorted.data() + A);
    float median = 0, deviation = 0;
    Memory::to_host(sorted.data() + A / 2, 1, &median);  // the upper median, as nth_element's
    median = canonical_zero(median);
    thrust::transform(policy, column.data(), column.data() + A, column.data(),
                      detail::AbsoluteDeviation{median});
    thrust::copy(policy, column.data(), column.data() + A, sorted.data());
    thrust::sort(policy, sorted.data(), sorted.data() + A);
    Memory::to_host(sorted.data() + A / 2, 1, &deviation);
    float scale = mad_scale(deviation);
    if (!(scale > kMinRobustScale)) {
      thrust::transform(policy, zero, zero + scale_sum_blocks(A), block_sums.data(),
                        detail::DeviationBlockSum{column.data(), A});
      thrust::for_each(policy, zero, zero + 1, detail::MeanAbsoluteScale{block_sums.data(), A, one.data()});
      Memory::to_host(one.data(), 1, &scale);
    }
    if (!(scale > kMinRobustScale)) continue;  // constant feature: carries no information
    thrust::for_each(policy, zero, zero + A, detail::ZScore{features, B, f, median, scale, device_z.data()});
  }
  Memory::to_host(device_z.data(), A * B, z.data());
}

/// Policy memory of timing_profiles for R requests of A accounts over `buckets` buckets,
/// the inputs included.
inline double timing_profiles_bytes(int64_t R, int64_t A, int64_t buckets) {
  return double(R) * (8 + 8 + 8 + 8 + 4) + double(A + 1) * 16 + double(A) * 4 + double(buckets) * 12;
}

/// The CPU stage's timing profiles of R >= 1 canonical requests of A accounts (grouped by
/// ascending owner, each account's by time) whose times span `span`: the inputs
/// account_offsets [A+1], request_owner [R] and time [R] are in policy memory; fills p's
/// bucket_offsets, active_buckets, bucket_idf and timing_norm (host). Policy memory:
/// timing_profiles_bytes.
template <class Memory, class Policy>
void timing_profiles(Policy&& policy, int64_t R, int64_t A, const int64_t* account_offsets,
                     const int64_t* request_owner, const int64_t* time, const ActivitySpan& span,
                     AccountProfiles& p) {
  using I64 = typename Memory::template Buffer<int64_t>;
  RINGSCAN_EXPECTS(R >= 1 && A >= 1, "timing profiles: no requests");
  const thrust::counting_iterator<int64_t> zero(0);

  I64 place(R + 1), bucket_offsets(A + 1), accounts_in_bucket(span.buckets);
  thrust::fill(policy, place.data(), place.data() + 1, int64_t(0));
  const auto openings = thrust::make_transform_iterator(
      zero, detail::OpensBucket{account_offsets, request_owner, time, span.first, span.width});
  thrust::inclusive_scan(policy, openings, openings + R, place.data() + 1);
  thrust::gather(policy, account_offsets, account_offsets + A + 1, place.data(), bucket_offsets.data());
  int64_t entries = 0;
  Memory::to_host(place.data() + R, 1, &entries);
  typename Memory::template Buffer<int32_t> active_buckets(entries);
  thrust::fill(policy, accounts_in_bucket.data(), accounts_in_bucket.data() + span.buckets, int64_t(0));
  thrust::for_each(policy, zero, zero + R,
                   detail::RecordBucket{place.data(), time, span.first, span.width, active_buckets.data(),
                                        accounts_in_bucket.data()});
  const int64_t active_accounts = thrust::count_if(policy, zero, zero + A, detail::HasBuckets{bucket_offsets.data()});
  typename Memory::template Buffer<float> bucket_idf(span.buckets), norm(A);
  thrust::transform(policy, accounts_in_bucket.data(), accounts_in_bucket.data() + span.buckets,
                    bucket_idf.data(), detail::WeighBucket{active_accounts});
  thrust::transform(policy, zero, zero + A, norm.data(),
                    detail::ActivityNorm{bucket_offsets.data(), active_buckets.data(), bucket_idf.data()});
  p.bucket_offsets.resize(A + 1);
  p.active_buckets.resize(entries);
  p.bucket_idf.resize(span.buckets);
  p.timing_norm.resize(A);
  Memory::to_host(bucket_offsets.data(), A + 1, p.bucket_offsets.data());
  Memory::to_host(active_buckets.data(), entries, p.active_buckets.data());
  Memory::to_host(bucket_idf.data(), span.buckets, p.bucket_idf.data());
  Memory::to_host(norm.data(), A, p.timing_norm.data());
}

}  // namespace ringscan::portable
