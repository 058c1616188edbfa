// Stage and end-to-end timings of the CPU backend on generated data (fixed seeds).
// Sizes are arguments: accounts (about 25 requests each), D = 128.
#include <benchmark/benchmark.h>

#include <map>

#include "ringscan/generate.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"

using namespace ringscan;

namespace {

const Dataset& data_for(int64_t accounts) {
  static std::map<int64_t, Dataset> cache;
  auto it = cache.find(accounts);
  if (it == cache.end()) {
    GenerateOptions g;
    g.accounts = accounts;
    g.dim = 128;
    g.seed = 42;
    it = cache.emplace(accounts, generate_in_memory(g, Context{})).first;
  }
  return it->second;
}

void BM_RequestIndex(benchmark::State& state) {
  const Dataset& d = data_for(state.range(0));
  const CanonicalRequests req = canonical_requests(d, Context{});
  for (auto _ : state) benchmark::DoNotOptimize(near_duplicate_pairs(req, DetectOptions{}, Context{}));
  state.SetItemsProcessed(state.iterations() * d.num_requests());
  state.SetBytesProcessed(state.iterations() * d.num_requests() * d.dim * 4);
}
BENCHMARK(BM_RequestIndex)->Arg(2000)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DetectEndToEnd(benchmark::State& state) {
  const Dataset& d = data_for(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(detect_rings(d, DetectOptions{}, Context{}));
  state.SetItemsProcessed(state.iterations() * d.num_requests());
  state.counters["accounts"] = double(d.num_accounts());
}
BENCHMARK(BM_DetectEndToEnd)->Arg(2000)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
