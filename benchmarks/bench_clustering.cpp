// Clustering (core test and union-find) with the cluster merge, and ring scoring.
// Items/s are accounts.
#include "bench_common.hpp"
#include "ringscan/backend.hpp"
#include "ringscan/ring_scoring.hpp"

using namespace ringscan;

namespace {

void clustering(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const auto& p = bench::prepared(c, accounts);
  const DetectOptions o;
  const Context ctx = bench::bench_context();
  for (auto _ : state)
    benchmark::DoNotOptimize(
        merge_clusters(cluster_accounts(p.graph, o, ctx), p.req, p.groups, p.calibration, p.account_pairs, o, ctx));
  state.SetItemsProcessed(state.iterations() * p.profiles.num_accounts);
  state.counters["edges"] = double(p.graph.num_edges());
}

void clustering_cuda(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const auto& p = bench::prepared(c, accounts);
  auto backend = make_backend(Device::Cuda);
  for (auto _ : state) benchmark::DoNotOptimize(backend->cluster_accounts(p.graph, DetectOptions{}, bench::bench_context()));
  state.SetItemsProcessed(state.iterations() * p.profiles.num_accounts);
  state.counters["edges"] = double(p.graph.num_edges());
}

void scoring(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const auto& p = bench::prepared(c, accounts);
  const DetectOptions o;
  size_t rings = 0;
  for (auto _ : state) rings = score_rings(p.req, p.groups, p.graph, p.clusters, o, bench::bench_context()).size();
  state.SetItemsProcessed(state.iterations() * p.profiles.num_accounts);
  state.counters["rings"] = double(rings);
}

void register_all(const bench::Config& c) {
  bench::register_sizes(c, "Clustering", clustering);
  bench::register_sizes(c, "RingScoring", scoring);
  // CUDA variants register only where a device is present (components only, no merge).
  if (build_info().cuda_devices > 0) bench::register_sizes(c, "Components/cuda", clustering_cuda);
}

}  // namespace

RINGSCAN_BENCHMARK_MAIN(register_all)
