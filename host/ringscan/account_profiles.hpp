// Stage 3: per-account profiles: content, behaviour (robust z-scores) and timing activity.
#pragma once
#include <cstdint>
#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"

namespace ringscan {

struct AccountProfiles {
  int64_t num_accounts = 0, dim = 0, feature_dim = 0;
  std::vector<float> content;            ///< [A x D] unit mean of the account's unit embeddings
  std::vector<float> behaviour;          ///< [A x B] robust z-scores, clipped to +-8
  std::vector<int64_t> request_offsets;  ///< [A+1] requests of each account (CSR over request_time)
  std::vector<int64_t> request_time;     ///< request times of each account, ascending
  int64_t days = 0;                      ///< whole days the requests span (>= 1)
  std::vector<int64_t> bucket_offsets;   ///< [A+1] CSR over active_buckets (width 2 windows)
  std::vector<int32_t> active_buckets;   ///< time buckets the account was active in, ascending
  std::vector<float> bucket_idf;         ///< [T] ln(active accounts / accounts active in bucket)
  std::vector<float> timing_norm;        ///< [A] sqrt(sum of idf^2 over the account's buckets)
  bool has_timing = false;
};

AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                 const Context& ctx);
/// The same with the content profiles given (a distributed run computes them where the
/// embeddings are); `req` needs no embeddings.
AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                 const Context& ctx, std::vector<float> content);
/// Content profiles of canonical accounts [first, last) into out [(last - first) x D], their
/// unit rows held from canonical request `row_first` on in unit_rows.
void account_content(const CanonicalRequests& req, const float* unit_rows, int64_t row_first, int64_t first,
                     int64_t last, float* out);

}  // namespace ringscan
