// Prompt groups on the GPU: the portable construction (host/portable/prompt_groups.hpp) on
// thrust::cuda: concurrent union-find over the verified pairs, canonical group ids by a scan,
// each group's distinct accounts by a sort of (group, account) keys, IDF per group.
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/system_error.h>

#include <string>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "portable/prompt_groups.hpp"

namespace ringscan::cuda {

PromptGroups prompt_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                           const DetectOptions& options, int64_t device_budget) {
  const int64_t R = req.num_requests, P = int64_t(pairs.size());
  // Owners and pairs, then parent, scan, group and key arrays and the sort's scratch.
  const double need = double(R) * (8 + 8 * 4 + 1 + 8) + double(P) * sizeof(RequestPair);
  require_device_memory(need, device_budget, "prompt groups on the device");
  const DeviceBuffer<int64_t> owner(req.request_owner);
  const DeviceBuffer<RequestPair> device_pairs(pairs);
  try {
    PromptGroups g = portable::build_prompt_groups<DeviceMemory>(
        thrust::cuda::par, R, req.num_accounts, owner.data(), device_pairs.data(), P,
        common_group_accounts(req.num_accounts, options.max_prompt_share));
    RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
    return g;
  } catch (const thrust::system_error& e) {
    throw DeviceError(std::string("prompt groups on the device: ") + e.what());
  }
}

}  // namespace ringscan::cuda
