#include <memory>
#include <utility>

#include "ringscan/backend.hpp"

namespace ringscan {
namespace {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  CanonicalRequests canonical_requests(const Dataset& data, const Context& ctx, double* host_seconds) override {
    return ringscan::canonical_requests(data, ctx, host_seconds);
  }
  CanonicalRequests canonical_requests(Dataset&& data, const Context& ctx, double* host_seconds) override {
    return ringscan::canonical_requests(std::move(data), ctx, host_seconds);
  }
  std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                                const DetectOptions& options, const Context& ctx,
                                                bool* exact) override {
    return ringscan::near_duplicate_pairs(req, options, ctx, exact);
  }
  PromptGroups prompt_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                             const DetectOptions& options, const Context&) override {
    return ringscan::prompt_groups(req, pairs, options);
  }
  std::vector<TokenUse> token_uses(const CanonicalRequests& req, const Context& ctx) override {
    return ringscan::token_uses(req, ctx);
  }
  AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                   const Context& ctx) override {
    return ringscan::account_profiles(req, options, ctx);
  }
  std::vector<std::pair<int64_t, int64_t>> account_candidate_pairs(
      const AccountProfiles& profiles, const DetectOptions& options, const Context& ctx) override {
    return ringscan::account_candidate_pairs(profiles, options, ctx);
  }
  EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                               const EvidenceCalibration& calibration,
                               const std::vector<std::pair<int64_t, int64_t>>& pairs,
                               const DetectOptions& options, const Context& ctx) override {
    return ringscan::evidence_graph(groups, profiles, calibration, pairs, options, ctx);
  }
  Clustering cluster_accounts(const EvidenceGraph& graph, const DetectOptions& options,
                              const Context& ctx) override {
    return ringscan::cluster_accounts(graph, options, ctx);
  }
  std::vector<ClusterTally> cluster_tallies(const CanonicalRequests& req, const PromptGroups& groups,
                                            const EvidenceGraph& graph, const Clustering& clusters,
                                            const Context& ctx) override {
    return ringscan::cluster_tallies(req, groups, graph, clusters, ctx);
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace ringscan
