#include <memory>

#include "ringscan/backend.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                                const DetectOptions& options, const Context& ctx,
                                                bool* exact) override {
    return ringscan::near_duplicate_pairs(req, options, ctx, exact);
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
                               const std::vector<std::pair<int64_t, int64_t>>& pairs,
                               const DetectOptions& options, const Context& ctx) override {
    return ringscan::evidence_graph(groups, profiles, pairs, options, ctx);
  }
  Clustering cluster_accounts(const EvidenceGraph& graph, const DetectOptions& options,
                              const Context& ctx) override {
    return ringscan::cluster_accounts(graph, options, ctx);
  }
};

}  // namespace

std::unique_ptr<Backend> make_backend(Device device) {
  if (device == Device::Cuda) {
    const BuildInfo info = build_info();
    throw InvalidInput(std::string("--device cuda: CUDA backend not compiled in") +
                       (info.cuda_compiled ? " (this build has CUDA device support, but the CUDA "
                                             "pipeline stages are not implemented yet)"
                                           : ""));
  }
  // Auto: the CUDA stages do not exist yet, so every device choice resolves to the CPU.
  return std::make_unique<CpuBackend>();
}

}  // namespace ringscan
