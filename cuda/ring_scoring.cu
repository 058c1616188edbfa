// Stage 7 on the GPU: the clusters' ring tallies by the portable computation
// (host/portable/ring_tallies.hpp) on thrust::cuda; the signals, the score and the ring
// decision follow from them on the host (ring_signals.hpp), as for the CPU backend.
#include <thrust/system/cuda/execution_policy.h>

#include <string>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "thrust_errors.cuh"
#include "portable/ring_tallies.hpp"

namespace ringscan::cuda {

std::vector<ClusterTally> cluster_tallies(const CanonicalRequests& req, const PromptGroups& groups,
                                          const EvidenceGraph& graph, const Clustering& clusters,
                                          int64_t device_budget) {
  const int64_t R = req.num_requests, A = req.num_accounts;
  // Inputs; the (group, member) keys, their (group, cluster) keys, the distinct ones and
  // their counts, and the two sorts' scratch.
  const double need = double(A) * 24 + double(R) * (8 + 8 * 6) + double(groups.common.size()) +
                      double(graph.neighbours.size()) * (8 + sizeof(PairEvidence)) +
                      double(clusters.num_clusters) * sizeof(ClusterTally);
  require_device_memory(need, device_budget, "ring scoring on the device");
  const DeviceBuffer<int64_t> label(clusters.label), offsets(req.account_offsets),
      group(groups.group_of_request), graph_offsets(graph.offsets), neighbours(graph.neighbours);
  const DeviceBuffer<uint8_t> common(groups.common);
  const DeviceBuffer<PairEvidence> evidence(graph.evidence);
  const portable::TallyInputs in{A,
                                 clusters.num_clusters,
                                 groups.num_groups,
                                 label.data(),
                                 offsets.data(),
                                 group.data(),
                                 common.data(),
                                 graph_offsets.data(),
                                 neighbours.data(),
                                 evidence.data()};
  auto tallies = run_thrust("ring scoring on the device", [&] {
    return portable::build_cluster_tallies<DeviceMemory>(thrust::cuda::par, in, R);
  });
  RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
  return tallies;
}

}  // namespace ringscan::cuda
