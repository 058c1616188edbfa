// One interface per pipeline stage, implemented by each backend (CPU now, CUDA next).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ringscan/account_index.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/context.hpp"
#include "ringscan/evidence_calibration.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/ring_scoring.hpp"
#include "ringscan/shared_infrastructure.hpp"

namespace ringscan {

/// Rows up to which the CUDA backend's joins (request and account indices) are exact; above,
/// they run over a k-means partition. At 2^18 rows an exact fp32 kNN join of D=256 is about
/// 3.5e13 FLOP, under a second on one GPU.
constexpr int64_t kDeviceExactJoinRows = int64_t(1) << 18;

/// The compute-heavy stages of detection. Loading and scoring stay on the host.
class Backend {
 public:
  virtual ~Backend() = default;
  /// "cpu" or "cuda".
  virtual const char* name() const = 0;
  /// The canonical order (request_order.hpp) of `data`, by copy or taking its embeddings over
  /// (`data.embeddings` left empty); `host_seconds` as for ringscan::canonical_requests.
  virtual CanonicalRequests canonical_requests(const Dataset& data, const Context& ctx, double* host_seconds) = 0;
  virtual CanonicalRequests canonical_requests(Dataset&& data, const Context& ctx, double* host_seconds) = 0;
  virtual std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                                        const DetectOptions& options,
                                                        const Context& ctx, bool* exact) = 0;
  virtual PromptGroups prompt_groups(const CanonicalRequests& req,
                                     const std::vector<RequestPair>& pairs,
                                     const DetectOptions& options, const Context& ctx) = 0;
  /// Every account's use of a token once, ascending (shared_infrastructure.hpp).
  virtual std::vector<TokenUse> token_uses(const CanonicalRequests& req, const Context& ctx) = 0;
  virtual AccountProfiles account_profiles(const CanonicalRequests& req,
                                           const DetectOptions& options, const Context& ctx) = 0;
  virtual std::vector<std::pair<int64_t, int64_t>> account_candidate_pairs(
      const AccountProfiles& profiles, const DetectOptions& options, const Context& ctx) = 0;
  virtual EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                                       const EvidenceCalibration& calibration,
                                       const std::vector<std::pair<int64_t, int64_t>>& pairs,
                                       const DetectOptions& options, const Context& ctx) = 0;
  virtual Clustering cluster_accounts(const EvidenceGraph& graph, const DetectOptions& options,
                                      const Context& ctx) = 0;
  virtual std::vector<ClusterTally> cluster_tallies(const CanonicalRequests& req,
                                                    const PromptGroups& groups,
                                                    const EvidenceGraph& graph,
                                                    const Clustering& clusters,
                                                    const Context& ctx) = 0;
  /// Figures the backend gathered while running the stages (the CUDA backend: its joins'
  /// inner-product FLOP and search seconds), added to the detection's statistics.
  virtual std::vector<std::pair<std::string, double>> statistics() const { return {}; }
};

/// Why the CUDA backend cannot run here, from `info` (build_info()): not compiled in, no
/// device, a runtime that cannot start, or a first device (the one it runs on) older than
/// the build's kernels. Empty when it can run.
std::string cuda_backend_problem(const BuildInfo& info);

/// The backend for `device`: Auto picks CUDA when cuda_backend_problem is empty, else the
/// CPU. Throws InvalidInput when `Cuda` is asked for and cannot run.
std::unique_ptr<Backend> make_backend(Device device);

}  // namespace ringscan
