// Entry points of the CUDA stages, callable from plain C++ (no CUDA types here). Declared
// only in builds with CUDA (RINGSCAN_WITH_CUDA); they throw DeviceError on CUDA failures.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "partitioned_join.hpp"

#include "ringscan/account_profiles.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/evidence_calibration.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/ring_scoring.hpp"

namespace ringscan::cuda {

/// Evaluates account pairs on the current device by the same evaluate_pair the CPU stage
/// uses, against profiles and calibration copied to the device once, when the object is made.
class DevicePairEvaluator {
 public:
  /// Copies the profiles and calibration to the device; BudgetExceeded when they and the
  /// smallest batch of pairs (1,024) would pass `device_budget` bytes.
  DevicePairEvaluator(const AccountProfiles& profiles, const EvidenceCalibration& calibration,
                      int64_t device_budget);
  ~DevicePairEvaluator();
  DevicePairEvaluator(const DevicePairEvaluator&) = delete;
  DevicePairEvaluator& operator=(const DevicePairEvaluator&) = delete;
  /// out[i] (host memory) = evidence of (first[i], second[i]), which share shared[i] prompt
  /// groups, i < n; the pairs are copied over in batches. Synchronous.
  void evaluate(const int64_t* first, const int64_t* second, const float* shared, int64_t n,
                PairEvidence* out) const;
  /// Pairs per batch: up to 2^20, fewer when the budget leaves less room.
  int64_t batch() const;
  /// Device bytes the evaluator holds besides its batch: the profiles and the calibration.
  static int64_t profile_bytes(const AccountProfiles& profiles, const EvidenceCalibration& calibration);
  /// Device bytes per pair of a batch.
  static int64_t bytes_per_pair();

 private:
  struct Profiles;
  std::unique_ptr<Profiles> profiles_;
};

/// Evidence of the account pairs (first[i], second[i]) sharing shared[i] groups, i < n
/// (a DevicePairEvaluator made for the call). Device memory O(profiles + batch).
std::vector<PairEvidence> evaluate_pairs(const AccountProfiles& profiles, const EvidenceCalibration& calibration,
                                         const int64_t* first, const int64_t* second, const float* shared, int64_t n,
                                         int64_t device_budget);

/// The CPU stage's canonical_requests of `data`, its requests sorted and its embeddings
/// gathered and scaled on the current device within `device_budget` bytes (BudgetExceeded
/// beyond); bit-identical to the CPU's. With `reuse` (data.embeddings itself) the unit rows
/// take over the stored rows' host array. `host_seconds` as for canonical_requests.
CanonicalRequests canonical_requests(const Dataset& data, std::vector<float>* reuse, const Context& ctx,
                                     int64_t device_budget, double* host_seconds);

/// The CPU stage's prompt groups of `req` from its verified pairs, built on the current device
/// within `device_budget` bytes (BudgetExceeded beyond). Identical to the CPU stage's.
PromptGroups prompt_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                           const DetectOptions& options, int64_t device_budget);

/// The CPU stage's token_uses of `req` (shared_infrastructure.hpp), sorted on the current
/// device within `device_budget` bytes (BudgetExceeded beyond). Identical to the CPU's.
std::vector<TokenUse> token_uses(const CanonicalRequests& req, int64_t device_budget);

/// The evidence graph of the CPU stage (candidates from shared prompts and `account_pairs`,
/// their evidence, the symmetric CSR of the edges), built on the current device within
/// `device_budget` bytes (BudgetExceeded beyond). Identical to the CPU stage's graph.
EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                             const EvidenceCalibration& calibration,
                             const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                             int64_t device_budget);

/// The ring tallies of the clusters (the CPU's cluster_tallies), computed on the current
/// device within `device_budget` bytes (BudgetExceeded beyond). Identical to the CPU's.
std::vector<ClusterTally> cluster_tallies(const CanonicalRequests& req, const PromptGroups& groups,
                                          const EvidenceGraph& graph, const Clustering& clusters,
                                          int64_t device_budget);

/// The bytes of device memory the CUDA stages may use: `requested` when positive (checked
/// against the free memory), else 90% of the device's free memory.
int64_t device_memory_budget(int64_t requested);

/// The CPU stage's account profiles of canonical requests, computed on the device within
/// `device_budget` bytes (BudgetExceeded beyond): content in blocks of accounts whose
/// embeddings fit a quarter of the budget, behaviour and timing at once. Bit-identical to the
/// CPU's.
AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                 int64_t device_budget);

/// Canonical cluster labels of `graph` (the CPU stage's rule), computed on the device.
std::vector<int64_t> cluster_labels(const EvidenceGraph& graph, int64_t min_core_degree,
                                    int64_t device_budget, int64_t* num_clusters);

/// The rows of x [n x d] (host memory) copied to the current device (as fp16 when
/// `half_inputs`, GEMMs then accumulating in fp32), for searches among them: exact search by
/// cuBLAS GEMM tiles and a fused selection kernel, subsets gathered by id. Device memory stays
/// within `device_budget` bytes (score tiles shrink to fit); throws BudgetExceeded when the
/// rows or the smallest tile do not fit. Neighbours per query: at most 2048.
std::unique_ptr<RowSearch> make_row_search(const float* x, int64_t n, int64_t d, bool half_inputs,
                                           int64_t device_budget, const char* stage);

/// For every row of x: its up to `cap` nearest other rows, within `radius` when radius >= 0
/// (exact; make_row_search(...)->nearest_others over all rows).
RowNeighbours nearest_rows(const float* x, int64_t n, int64_t d, float radius, int64_t cap,
                           bool half_inputs, int64_t device_budget, const char* stage);

}  // namespace ringscan::cuda
