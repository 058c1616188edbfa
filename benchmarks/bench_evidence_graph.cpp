// The evidence graph: every candidate pair evaluated and fused, on the CPU and (where a CUDA
// device is present) on the GPU, whole and the per-pair evaluation alone. Items/s are
// candidate pairs. Also the shared infrastructure that proposes candidates (items/s:
// request tokens), on generated files with infrastructure, and its sort on the device.
#include <map>

#include "bench_common.hpp"
#include "ringscan/shared_infrastructure.hpp"

#ifdef RINGSCAN_WITH_CUDA
#include "cuda_stages.hpp"
#endif

using namespace ringscan;

namespace {

void cpu(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const auto& p = bench::prepared(c, accounts);
  int64_t candidates = 0;
  for (auto _ : state) {
    const EvidenceGraph g =
        evidence_graph(p.groups, p.profiles, p.calibration, p.account_pairs, DetectOptions{}, bench::bench_context());
    candidates = g.candidate_pairs;
  }
  state.SetItemsProcessed(state.iterations() * candidates);
}

/// Requests of a generated file with infrastructure, built once per size.
const CanonicalRequests& with_infrastructure(const bench::Config& c, int64_t accounts) {
  static std::map<int64_t, CanonicalRequests> built;
  auto it = built.find(accounts);
  if (it == built.end()) {
    const Context ctx = bench::bench_context();
    GenerateOptions g;
    g.accounts = accounts;
    g.dim = c.dim;
    g.seed = c.seed;
    g.infrastructure = true;
    it = built.emplace(accounts, canonical_requests(generate_in_memory(g, ctx), ctx)).first;
  }
  return it->second;
}

/// The tokens two or more accounts used and the candidate pairs they propose.
void infrastructure(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const Context ctx = bench::bench_context();
  const CanonicalRequests& req = with_infrastructure(c, accounts);
  int64_t pairs = 0;
  for (auto _ : state) {
    const SharedInfrastructure s = shared_infrastructure(req, DetectOptions{}, ctx);
    pairs = int64_t(infrastructure_pairs(s, ctx).size());
  }
  state.counters["pairs"] = double(pairs);
  state.SetItemsProcessed(state.iterations() * int64_t(req.infra.size()));
}

#ifdef RINGSCAN_WITH_CUDA
void gpu_pairs(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const auto& p = bench::prepared(c, accounts);
  std::vector<int64_t> a, b;
  for (const auto& [x, y] : p.account_pairs) {
    a.push_back(x);
    b.push_back(y);
  }
  const std::vector<float> shared(a.size(), 0.0f);
  for (auto _ : state)
    benchmark::DoNotOptimize(cuda::evaluate_pairs(p.profiles, p.calibration, a.data(), b.data(), shared.data(),
                                                  int64_t(a.size()), cuda::device_memory_budget(0)));
  state.SetItemsProcessed(state.iterations() * int64_t(a.size()));
}

/// The shared infrastructure's sort on the device (items/s: request tokens), against the
/// CPU's token_uses in SharedInfrastructure/cpu.
void gpu_token_uses(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const CanonicalRequests& req = with_infrastructure(c, accounts);
  const int64_t budget = cuda::device_memory_budget(0);
  for (auto _ : state) benchmark::DoNotOptimize(cuda::token_uses(req, budget));
  state.SetItemsProcessed(state.iterations() * int64_t(req.infra.size()));
}

/// The whole construction on the device: candidates, sort/reduce-by-key, evidence, CSR.
void gpu_graph(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const auto& p = bench::prepared(c, accounts);
  const int64_t budget = cuda::device_memory_budget(0);
  int64_t candidates = 0;
  for (auto _ : state)
    candidates = cuda::evidence_graph(p.groups, p.profiles, p.calibration, p.account_pairs, budget).candidate_pairs;
  state.SetItemsProcessed(state.iterations() * candidates);
}
#endif

void register_all(const bench::Config& c) {
  bench::register_sizes(c, "EvidenceGraph/cpu", cpu);
  bench::register_sizes(c, "SharedInfrastructure/cpu", infrastructure);
#ifdef RINGSCAN_WITH_CUDA
  // CUDA variants register only where a device is present.
  if (build_info().cuda_devices > 0) {
    bench::register_sizes(c, "EvaluatePairs/cuda", gpu_pairs);
    bench::register_sizes(c, "EvidenceGraph/cuda", gpu_graph);
    bench::register_sizes(c, "TokenUses/cuda", gpu_token_uses);
  }
#endif
}

}  // namespace

RINGSCAN_BENCHMARK_MAIN(register_all)
