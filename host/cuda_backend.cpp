// The CUDA backend: each stage's compute-heavy part on the device (the requests' order and
// unit rows; kNN and threshold joins by cuBLAS tiles and a fused selection kernel, exact or
// over a k-means partition; prompt groups, the account profiles, the evidence graph,
// clustering, the merge's pair evidence, ring tallies); the rest of each stage is the code
// the CPU backend runs (host/stage_variants.hpp).
#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include "cuda_stages.hpp"
#include "partitioned_join.hpp"
#include "ringscan/backend.hpp"
#include "ringscan/error.hpp"
#include "ringscan/sizes.hpp"
#include "stage_variants.hpp"

namespace ringscan {
namespace {

/// The joins' work by stage name, accumulated over a detection.
using JoinWork = std::map<std::string, SearchWork>;

/// Cells of the device's partitioned join: large, so that each cell's search is one
/// efficient GEMM; two probes catch neighbours across cell boundaries.
constexpr PartitionShape kDevicePartition{8192, 2};

/// The device's self-join, with ivf_self_join's contract: each row keeps its `cap` nearest
/// others (within `radius` when radius >= 0), filtered and valued by `accept`. The rows are
/// copied to the device once; small inputs (or `exact`) are searched exactly, large ones
/// over a k-means partition (partitioned_self_join). Threshold joins (the request index)
/// run the GEMM on fp16 copies: every candidate is verified by `accept` in fp32, and fp16
/// rounding (about 1e-3 in a cosine of unit vectors) is far inside the candidate slack. kNN
/// joins (the account index) stay in fp32, so the neighbours chosen are those the CPU chooses.
/// The searches' work is added to `work` under the stage's name.
SelfJoin device_self_join(int64_t device_budget, std::shared_ptr<JoinWork> work) {
  SelfJoin join;
  join.exact_up_to = kDeviceExactJoinRows;
  join.full_dimension = true;
  join.run = [device_budget, work](const float* x, int64_t n, int64_t d, bool exact, float radius,
                                   int64_t cap, const JoinFilter& accept, const Context& ctx,
                                   const char* stage, const NeighbourTiers& tiers) {
    std::vector<RequestPair> pairs;
    if (n < 2 || cap < 1) return pairs;
    const auto search = cuda::make_row_search(x, n, d, radius >= 0, device_budget, stage);
    if (!exact && n > kDeviceExactJoinRows) {
      pairs = partitioned_self_join(*search, x, n, d, radius, cap, accept, kDevicePartition, ctx, stage, tiers);
    } else {
      // The search hands back every row's up-to-cap neighbours at once (distance, row, count).
      ctx.require_memory(size_from_double(double(n) * double(cap) * 12 + double(n) * 4),
                         std::string(stage) + " on the device, for its neighbour lists");
      append_neighbour_pairs(search->nearest_others(nullptr, n, nullptr, n, radius, cap), nullptr,
                             accept, pairs, tiers);
      make_canonical(pairs);  // sorted: independent of the thread that found each pair
      ctx.report(stage, n, n);
    }
    SearchWork& total = (*work)[stage];
    total.flop += search->work().flop;
    total.seconds += search->work().seconds;
    return pairs;
  };
  return join;
}

class CudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  CanonicalRequests canonical_requests(const Dataset& data, const Context& ctx, double* host_seconds) override {
    return cuda::canonical_requests(data, nullptr, ctx, device_budget(ctx), host_seconds);
  }
  CanonicalRequests canonical_requests(Dataset&& data, const Context& ctx, double* host_seconds) override {
    CanonicalRequests c = cuda::canonical_requests(data, &data.embeddings, ctx, device_budget(ctx), host_seconds);
    data.embeddings.clear();
    return c;
  }
  std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                                const DetectOptions& options, const Context& ctx,
                                                bool* exact) override {
    return ringscan::near_duplicate_pairs(req, options, ctx, exact, join(ctx));
  }
  PromptGroups prompt_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                             const DetectOptions& options, const Context& ctx) override {
    return cuda::prompt_groups(req, pairs, options, device_budget(ctx));
  }
  std::vector<TokenUse> token_uses(const CanonicalRequests& req, const Context& ctx) override {
    return cuda::token_uses(req, device_budget(ctx));
  }
  AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                   const Context& ctx) override {
    check_account_profiles(req, options, ctx);
    AccountProfiles p = cuda::account_profiles(req, options, device_budget(ctx));
    ctx.report("account profiles", req.num_accounts, req.num_accounts);
    return p;
  }
  std::vector<std::pair<int64_t, int64_t>> account_candidate_pairs(
      const AccountProfiles& profiles, const DetectOptions& options, const Context& ctx) override {
    return ringscan::account_candidate_pairs(profiles, options, ctx, join(ctx));
  }
  std::vector<ClusterTally> cluster_tallies(const CanonicalRequests& req, const PromptGroups& groups,
                                            const EvidenceGraph& graph, const Clustering& clusters,
                                            const Context& ctx) override {
    return cuda::cluster_tallies(req, groups, graph, clusters,
                                 device_budget(ctx));
  }
  /// Per join stage: the inner-product FLOP its device searches computed and their seconds.
  std::vector<std::pair<std::string, double>> statistics() const override {
    std::vector<std::pair<std::string, double>> figures;
    for (const auto& [stage, work] : *work_) {
      std::string key = stage;
      std::replace(key.begin(), key.end(), ' ', '_');
      figures.emplace_back(key + "_device_flop", work.flop);
      figures.emplace_back(key + "_device_seconds", work.seconds);
    }
    return figures;
  }
  EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                               const EvidenceCalibration& calibration,
                               const std::vector<std::pair<int64_t, int64_t>>& pairs,
                               const DetectOptions&, const Context& ctx) override {
    EvidenceGraph g = cuda::evidence_graph(groups, profiles, calibration, pairs, device_budget(ctx));
    ctx.report("evidence graph", g.candidate_pairs, g.candidate_pairs);
    return g;
  }
  Clustering cluster_accounts(const EvidenceGraph& graph, const DetectOptions& options,
                              const Context& ctx) override {
    RINGSCAN_EXPECTS(options.min_core_degree >= 1, "--min-core-degree must be >= 1");
    Clustering c;
    c.label = cuda::cluster_labels(graph, options.min_core_degree, device_budget(ctx), &c.num_clusters);
    ctx.report("clustering", graph.num_accounts, graph.num_accounts);
    return c;
  }

 private:
  /// The device memory the stages may hold: --device-memory-budget, or 90% of what is free.
  static int64_t device_budget(const Context& ctx) {
    return cuda::device_memory_budget(ctx.device_memory_budget);
  }
  SelfJoin join(const Context& ctx) const {
    return device_self_join(device_budget(ctx), work_);
  }

  std::shared_ptr<JoinWork> work_ = std::make_shared<JoinWork>();
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace ringscan
