// End to end on generated data: canonical order through ring scoring. Items/s are requests.
#include "bench_common.hpp"
#include "ringscan/pipeline.hpp"

using namespace ringscan;

namespace {

void detect(benchmark::State& state, const bench::Config& c, int64_t accounts, Device device) {
  const auto& p = bench::prepared(c, accounts);
  DetectOptions o;
  o.device = device;
  for (auto _ : state) benchmark::DoNotOptimize(detect_rings(p.data, o, bench::bench_context()));
  state.SetItemsProcessed(state.iterations() * p.data.num_requests());
  state.SetBytesProcessed(state.iterations() * p.data.num_requests() * p.data.dim * 4);
}

void register_all(const bench::Config& c) {
  bench::register_sizes(c, "DetectRings/cpu", [](benchmark::State& s, const bench::Config& c, int64_t a) { detect(s, c, a, Device::Cpu); });
  // CUDA variants register only where a device is present.
  if (build_info().cuda_devices > 0)
    bench::register_sizes(c, "DetectRings/cuda", [](benchmark::State& s, const bench::Config& c, int64_t a) { detect(s, c, a, Device::Cuda); });
}

}  // namespace

RINGSCAN_BENCHMARK_MAIN(register_all)
