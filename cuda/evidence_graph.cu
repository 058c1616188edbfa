// Stage 5 on the GPU: the evidence of candidate account pairs. One thread per pair; the
// per-pair logic is evaluate_pair (host/pair_evidence.hpp), shared with the CPU stage.
#include <algorithm>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_buffer.cuh"
#include "pair_evidence.hpp"

namespace ringscan::cuda {
namespace {

constexpr int kThreads = 256;
// Pairs per launch: bounds the device memory of the pair arrays (about 48 MiB a batch).
constexpr int64_t kBatch = int64_t(1) << 20;

__global__ void evaluate_pairs_kernel(ProfilesView view, const int64_t* first,
                                      const int64_t* second, const float* idf, int64_t n,
                                      PairEvidence* out) {
  // 64-bit grid-stride loop: n may exceed 2^31 over the whole job.
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = evaluate_pair(view, first[i], second[i], idf[i]);
}

}  // namespace

std::vector<PairEvidence> evaluate_pairs(const AccountProfiles& profiles, const int64_t* first,
                                         const int64_t* second, const float* idf, int64_t n,
                                         const DetectOptions& options) {
  std::vector<PairEvidence> result(static_cast<size_t>(std::max<int64_t>(n, 0)));
  if (n <= 0) return result;
  const DeviceBuffer<float> content(profiles.content);
  const DeviceBuffer<float> behaviour(profiles.behaviour);
  const DeviceBuffer<float> common(profiles.behaviour_common);
  const DeviceBuffer<int64_t> offsets(profiles.request_offsets);
  const DeviceBuffer<int64_t> times(profiles.request_time);
  const DeviceBuffer<int32_t> tod(profiles.time_of_day);
  ProfilesView view = host_view(profiles, options);
  view.content = content.data();
  view.behaviour = behaviour.data();
  view.behaviour_common = profiles.behaviour_common.empty() ? nullptr : common.data();
  view.request_offsets = offsets.data();
  view.request_time = times.data();
  view.time_of_day = tod.data();

  for (int64_t start = 0; start < n; start += kBatch) {
    const int64_t m = std::min(kBatch, n - start);
    const DeviceBuffer<int64_t> a(first + start, m), b(second + start, m);
    const DeviceBuffer<float> w(idf + start, m);
    DeviceBuffer<PairEvidence> out(m);
    const int64_t blocks = std::min<int64_t>((m + kThreads - 1) / kThreads, 65535);
    evaluate_pairs_kernel<<<unsigned(blocks), kThreads>>>(view, a.data(), b.data(), w.data(), m,
                                                          out.data());
    RINGSCAN_CUDA_TRY(cudaGetLastError());
    RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
    out.download(result.data() + start, m);
  }
  return result;
}

}  // namespace ringscan::cuda
