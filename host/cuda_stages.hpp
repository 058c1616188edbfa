// Entry points of the CUDA stages, callable from plain C++ (no CUDA types here). Declared
// only in builds with CUDA (RINGSCAN_WITH_CUDA); they throw DeviceError on CUDA failures.
#pragma once
#include <cstdint>
#include <vector>

#include "ringscan/account_profiles.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/pipeline.hpp"

namespace ringscan::cuda {

/// Evidence of the account pairs (first[i], second[i]) with summed IDF idf[i], i < n,
/// computed on the current device by the same evaluate_pair the CPU stage uses.
/// Synchronous; device memory O(profiles + n).
std::vector<PairEvidence> evaluate_pairs(const AccountProfiles& profiles, const int64_t* first,
                                         const int64_t* second, const float* idf, int64_t n,
                                         const DetectOptions& options);

/// The bytes of device memory the CUDA stages may use: `requested` when positive (checked
/// against the free memory), else 90% of the device's free memory.
int64_t device_memory_budget(int64_t requested);

/// Content profiles [A x D] of canonical requests, aggregated on the device in blocks of
/// accounts whose embeddings fit a quarter of `device_budget`. Bit-identical to the CPU's.
std::vector<float> content_profiles(const CanonicalRequests& req, int64_t device_budget);

/// Canonical cluster labels of `graph` (the CPU stage's rule), computed on the device.
std::vector<int64_t> cluster_labels(const EvidenceGraph& graph, int64_t min_core_degree,
                                    int64_t* num_clusters);

/// The nearest other rows of each row of a matrix, in CSR form.
struct RowNeighbours {
  std::vector<int64_t> offsets;  ///< [n+1]
  std::vector<int64_t> other;    ///< rows, ascending by (distance, row) within each query
  std::vector<float> distance;   ///< squared L2 distances (from the GEMM: fp16 inputs round)
};

/// For every row q of x [n x d] (host memory): its up to `cap` (<= 2048) nearest other rows
/// by squared L2 distance, only those within `radius` when radius >= 0. Exact search on the
/// current device: cuBLAS GEMM tiles (fp16 inputs with fp32 accumulation when `half_inputs`)
/// and a fused selection kernel. Device memory stays within `device_budget` bytes (the score
/// tile shrinks to fit); throws BudgetExceeded when even the smallest tile does not fit.
RowNeighbours nearest_rows(const float* x, int64_t n, int64_t d, float radius, int64_t cap,
                           bool half_inputs, int64_t device_budget, const char* stage);

}  // namespace ringscan::cuda
