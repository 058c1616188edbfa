// The shared infrastructure stage's sort on the GPU: the portable construction
// (host/portable/shared_infrastructure.hpp) on thrust::cuda, every account's use of a token
// once, sorted by (kind, value, account); the host makes tokens of them.
#include <thrust/system/cuda/execution_policy.h>

#include <vector>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "thrust_errors.cuh"
#include "portable/shared_infrastructure.hpp"

namespace ringscan::cuda {

std::vector<TokenUse> token_uses(const CanonicalRequests& req, int64_t device_budget) {
  const int64_t R = req.num_requests, A = req.num_accounts, K = req.infra.empty() ? 0 : req.infra_dim;
  const int64_t tokens = R * K + (req.payment.empty() ? 0 : A);
  // The inputs, and per token its kind, value, account and the unique's values, with as much
  // again for the sort's scratch.
  require_device_memory(double(tokens) * 8 + double(R) * 8 + double(tokens) * 32 * 2, device_budget,
                        "shared infrastructure on the device");
  const DeviceBuffer<int64_t> infra(req.infra), owner(req.request_owner), payment(req.payment);
  std::vector<TokenUse> uses = run_thrust("shared infrastructure on the device", [&] {
    return portable::build_token_uses<DeviceMemory>(thrust::cuda::par, R, K, A, K > 0 ? infra.data() : nullptr,
                                                    owner.data(), req.payment.empty() ? nullptr : payment.data());
  });
  RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
  return uses;
}

}  // namespace ringscan::cuda
