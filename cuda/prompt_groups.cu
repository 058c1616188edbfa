// Prompt groups on the GPU: the portable construction (host/portable/prompt_groups.hpp) on
// thrust::cuda: concurrent union-find over the verified pairs, canonical group ids by a scan,
// each group's distinct accounts by a sort of (group, account) keys, IDF per group.
#include <thrust/system/cuda/execution_policy.h>

#include <string>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "thrust_errors.cuh"
#include "portable/prompt_groups.hpp"

namespace ringscan::cuda {

PromptGroups prompt_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                           const DetectOptions& options, int64_t device_budget) {
  const int64_t R = req.num_requests, P = int64_t(pairs.size());
  // Owners and pairs; parent, scan, group and key arrays, the paired flags and the sort's
  // scratch; the outputs: up to R accounts and (groups have two requests or more) R / 2
  // groups' offsets, IDF and common flags.
  const double need = double(R) * (8 + 8 * 4 + 1 + 8 + 8) + double(R) / 2 * (8 + 4 + 1) +
                      double(P) * sizeof(RequestPair);
  require_device_memory(need, device_budget, "prompt groups on the device");
  const DeviceBuffer<int64_t> owner(req.request_owner);
  const DeviceBuffer<RequestPair> device_pairs(pairs);
  PromptGroups g = run_thrust("prompt groups on the device", [&] {
    return portable::build_prompt_groups<DeviceMemory>(
        thrust::cuda::par, R, req.num_accounts, owner.data(), device_pairs.data(), P,
        common_group_accounts(req.num_accounts, options.max_prompt_share));
  });
  RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
  return g;
}

}  // namespace ringscan::cuda
