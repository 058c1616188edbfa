// End to end on generated data: canonical order through ring scoring. Items/s are requests.
#include "bench_common.hpp"
#include "ringscan/pipeline.hpp"

using namespace ringscan;

namespace {

void detect(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const auto& p = bench::prepared(c, accounts);
  for (auto _ : state) benchmark::DoNotOptimize(detect_rings(p.data, DetectOptions{}, bench::bench_context()));
  state.SetItemsProcessed(state.iterations() * p.data.num_requests());
  state.SetBytesProcessed(state.iterations() * p.data.num_requests() * p.data.dim * 4);
}

void register_all(const bench::Config& c) { bench::register_sizes(c, "DetectRings", detect); }

}  // namespace

RINGSCAN_BENCHMARK_MAIN(register_all)
