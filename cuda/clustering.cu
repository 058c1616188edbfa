// Stage 6 on the GPU: the portable clustering (host/portable/components.hpp) on thrust::cuda.
#include <thrust/system/cuda/execution_policy.h>

#include <string>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "thrust_errors.cuh"
#include "portable/components.hpp"

namespace ringscan::cuda {

std::vector<int64_t> cluster_labels(const EvidenceGraph& graph, int64_t min_core_degree,
                                    int64_t device_budget, int64_t* num_clusters) {
  const int64_t A = graph.num_accounts, E = int64_t(graph.neighbours.size());
  std::vector<int64_t> label(A, -1);
  *num_clusters = 0;
  if (A == 0) return label;
  // The CSR graph, the core flags and seven arrays per account, and the scan's scratch.
  require_device_memory(double(A) * (8 + 1 + 7 * 8 + 8) + double(E) * (8 + sizeof(PairEvidence)),
                        device_budget, "clustering on the device");
  const DeviceBuffer<int64_t> offsets(graph.offsets), neighbours(graph.neighbours);
  const DeviceBuffer<PairEvidence> evidence(graph.evidence);
  DeviceBuffer<uint8_t> core(A);
  DeviceBuffer<int64_t> parent(A), root(A), size(A), first(A), labels(A), start(A);
  const portable::GraphArrays g{A, offsets.data(), neighbours.data(), evidence.data()};
  const portable::ComponentArrays w{core.data(), parent.data(), root.data(),
                                    size.data(), first.data(),  labels.data()};
  run_thrust("clustering on the device", [&] {
    portable::cluster_components(thrust::cuda::par, g, min_core_degree, w, start.data());
  });
  RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
  labels.download(label.data(), A);
  RINGSCAN_CUDA_TRY(cudaMemcpy(num_clusters, start.data() + A - 1, sizeof(int64_t), cudaMemcpyDeviceToHost));
  return label;
}

}  // namespace ringscan::cuda
