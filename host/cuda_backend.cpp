// The CUDA backend: each stage's compute-heavy part on the device (exact kNN and threshold
// joins by cuBLAS tiles and a fused selection kernel, content aggregation, pair evidence,
// clustering); the rest of each stage is the code the CPU backend runs (host/stage_variants.hpp).
#include <omp.h>

#include <memory>
#include <string>

#include "cuda_stages.hpp"
#include "parallel.hpp"
#include "ringscan/backend.hpp"
#include "ringscan/error.hpp"
#include "stage_variants.hpp"

namespace ringscan {
namespace {

/// The device's exact self-join, with ivf_self_join's contract: each row keeps its `cap`
/// nearest others (within `radius` when radius >= 0), filtered and valued by `accept`.
/// Threshold joins (the request index) run the GEMM on fp16 copies: every candidate is
/// verified by `accept` in fp32, and fp16 rounding (about 1e-3 in a cosine of unit vectors)
/// is far inside the candidate slack. kNN joins (the account index) stay in fp32, so the
/// neighbours chosen are those the CPU chooses.
SelfJoin device_self_join(int64_t device_budget) {
  SelfJoin join;
  join.always_exact = true;
  join.run = [device_budget](const float* x, int64_t n, int64_t d, bool, float radius, int64_t cap,
                             const JoinFilter& accept, const Context& ctx, const char* stage) {
    const cuda::RowNeighbours nb =
        cuda::nearest_rows(x, n, d, radius, cap, radius >= 0, device_budget, stage);
    std::vector<std::vector<RequestPair>> found(std::max(1, omp_get_max_threads()));
    detail::parallel_for(n, 1024, [&](int64_t q) {
      auto& out = found[omp_get_thread_num()];
      for (int64_t h = nb.offsets[q]; h < nb.offsets[q + 1]; ++h)
        append_accepted(q, nb.other[h], nb.distance[h], accept, out);
    });
    std::vector<RequestPair> pairs;
    for (auto& f : found) pairs.insert(pairs.end(), f.begin(), f.end());
    make_canonical(pairs);  // sorted: independent of the thread that found each pair
    ctx.report(stage, n, n);
    return pairs;
  };
  return join;
}

class CudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                                const DetectOptions& options, const Context& ctx,
                                                bool* exact) override {
    return ringscan::near_duplicate_pairs(req, options, ctx, exact, join(ctx));
  }
  AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                   const Context& ctx) override {
    AccountProfiles p = ringscan::account_profiles(req, options, ctx, false);
    p.content = cuda::content_profiles(req, cuda::device_memory_budget(ctx.device_memory_budget));
    return p;
  }
  std::vector<std::pair<int64_t, int64_t>> account_candidate_pairs(
      const AccountProfiles& profiles, const DetectOptions& options, const Context& ctx) override {
    return ringscan::account_candidate_pairs(profiles, options, ctx, join(ctx));
  }
  EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                               const std::vector<std::pair<int64_t, int64_t>>& pairs,
                               const DetectOptions& options, const Context& ctx) override {
    const PairEvaluator on_device = [options](const AccountProfiles& p, const int64_t* first,
                                              const int64_t* second, const float* idf, int64_t n,
                                              PairEvidence* out) {
      const auto evidence = cuda::evaluate_pairs(p, first, second, idf, n, options);
      std::copy(evidence.begin(), evidence.end(), out);
    };
    return ringscan::evidence_graph(groups, profiles, pairs, options, ctx, on_device);
  }
  Clustering cluster_accounts(const EvidenceGraph& graph, const DetectOptions& options,
                              const Context& ctx) override {
    RINGSCAN_EXPECTS(options.min_core_degree >= 1, "--min-core-degree must be >= 1");
    Clustering c;
    c.label = cuda::cluster_labels(graph, options.min_core_degree, &c.num_clusters);
    ctx.report("clustering", graph.num_accounts, graph.num_accounts);
    return c;
  }

 private:
  static SelfJoin join(const Context& ctx) {
    return device_self_join(cuda::device_memory_budget(ctx.device_memory_budget));
  }
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace ringscan
