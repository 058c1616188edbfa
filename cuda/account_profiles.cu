// Stage 3 on the GPU: the portable account profiles (host/portable/account_profiles.hpp) on
// thrust::cuda. Content is streamed over blocks of accounts, so that device memory is bounded
// by the block, not the input; behaviour and timing hold their inputs (A x B features; R times
// and owners) on the device at once.
#include <thrust/system/cuda/execution_policy.h>

#include <algorithm>
#include <string>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "staging.cuh"
#include "thrust_errors.cuh"
#include "portable/account_profiles.hpp"
#include "stage_variants.hpp"
#include "ringscan/error.hpp"

namespace ringscan::cuda {
namespace {

/// content [A x D], aggregated in blocks of accounts whose embeddings fit a quarter of the
/// budget.
std::vector<float> content_profiles(const CanonicalRequests& req, int64_t device_budget) {
  const int64_t A = req.num_accounts, D = req.dim;
  std::vector<float> content(A * D, 0.0f);
  if (A == 0 || D == 0) return content;
  // Requests per block: a quarter of the budget for their embeddings, at least one account.
  const int64_t block_requests = std::max<int64_t>(1, device_budget / 4 / (D * 4));
  int64_t largest = 0;
  for (int64_t a = 0; a < A; ++a)
    largest = std::max(largest, req.account_offsets[a + 1] - req.account_offsets[a]);
  if (largest > block_requests)
    throw BudgetExceeded("account profiles on the device: one account has " + std::to_string(largest) +
                         " requests, more than fit a quarter of the device memory budget of " +
                         format_size(device_budget) + " (raise --device-memory-budget)");
  std::vector<int64_t> offsets;
  for (int64_t a0 = 0; a0 < A;) {
    int64_t a1 = a0 + 1;
    while (a1 < A && req.account_offsets[a1 + 1] - req.account_offsets[a0] <= block_requests) ++a1;
    const int64_t r0 = req.account_offsets[a0], rows = req.account_offsets[a1] - r0;
    offsets.assign(req.account_offsets.begin() + a0, req.account_offsets.begin() + a1 + 1);
    for (auto& o : offsets) o -= r0;
    const DeviceBuffer<int64_t> device_offsets(offsets);
    // The block's rows through pinned chunks: a synchronous copy from pageable memory runs
    // at a fraction of the link's speed (and these are the whole embeddings, block by block).
    DeviceBuffer<float> embeddings(rows * D);
    upload_through_pinned(req.unit_embeddings.data() + r0 * D, rows * D, embeddings.data());
    DeviceBuffer<float> block((a1 - a0) * D);
    run_thrust("account profiles on the device", [&] {
      portable::content_profiles(thrust::cuda::par, device_offsets.data(), embeddings.data(),
                                 a1 - a0, D, block.data());
    });
    RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
    block.download(content.data() + a0 * D, (a1 - a0) * D);
    a0 = a1;
  }
  return content;
}

}  // namespace

AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                 int64_t device_budget) {
  const int64_t A = req.num_accounts, R = req.num_requests, B = req.feature_dim;
  ActivitySpan span;
  AccountProfiles p = account_profiles_frame(req, options, &span);
  p.content = content_profiles(req, device_budget);

  if (B > 0) {
    // Features and z-scores; column, sorted copy, the sort's scratch.
    require_device_memory(double(A) * B * 8 + double(A) * (4 + 4 + 8), device_budget,
                          "behaviour profiles on the device");
    const DeviceBuffer<float> features(req.features);
    run_thrust("behaviour profiles on the device", [&] {
      portable::behaviour_profiles<DeviceMemory>(thrust::cuda::par, features.data(), A, B, p.behaviour);
    });
  }

  if (p.has_timing) {
    require_device_memory(portable::timing_profiles_bytes(R, A, span.buckets), device_budget,
                          "timing profiles on the device");
    const DeviceBuffer<int64_t> offsets(req.account_offsets), owner(req.request_owner), time(req.time);
    run_thrust("timing profiles on the device", [&] {
      portable::timing_profiles<DeviceMemory>(thrust::cuda::par, R, A, offsets.data(), owner.data(),
                                              time.data(), span, p);
    });
  }
  return p;
}

}  // namespace ringscan::cuda
