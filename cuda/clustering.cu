// Stage 6 on the GPU: the portable clustering (host/portable/components.hpp) on thrust::cuda.
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/system_error.h>

#include <string>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_buffer.cuh"
#include "portable/components.hpp"

namespace ringscan::cuda {

std::vector<int64_t> cluster_labels(const EvidenceGraph& graph, int64_t min_core_degree,
                                    int64_t* num_clusters) {
  const int64_t A = graph.num_accounts;
  std::vector<int64_t> label(A, -1);
  *num_clusters = 0;
  if (A == 0) return label;
  const DeviceBuffer<int64_t> offsets(graph.offsets), neighbours(graph.neighbours);
  const DeviceBuffer<PairEvidence> evidence(graph.evidence);
  DeviceBuffer<uint8_t> core(A);
  DeviceBuffer<int64_t> parent(A), root(A), size(A), first(A), labels(A), start(A);
  const portable::GraphArrays g{A, offsets.data(), neighbours.data(), evidence.data()};
  const portable::ComponentArrays w{core.data(), parent.data(), root.data(),
                                    size.data(), first.data(),  labels.data()};
  try {
    portable::cluster_components(thrust::cuda::par, g, min_core_degree, w, start.data());
  } catch (const thrust::system_error& e) {
    throw DeviceError(std::string("clustering on the device: ") + e.what());
  }
  RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
  labels.download(label.data(), A);
  RINGSCAN_CUDA_TRY(cudaMemcpy(num_clusters, start.data() + A - 1, sizeof(int64_t), cudaMemcpyDeviceToHost));
  return label;
}

}  // namespace ringscan::cuda
