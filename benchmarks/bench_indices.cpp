// The request index (near-duplicate prompts; exact and IVF variants) and the account index
// (kNN over profiles). Items/s are requests or accounts searched.
#include "bench_common.hpp"
#include "ringscan/backend.hpp"

using namespace ringscan;

namespace {

void request_index(benchmark::State& state, const bench::Config& c, int64_t accounts, bool exact) {
  const auto& p = bench::prepared(c, accounts);
  DetectOptions o;
  o.exact_request_limit = exact ? p.req.num_requests : 0;
  int64_t pairs = 0;
  for (auto _ : state) pairs = int64_t(near_duplicate_pairs(p.req, o, bench::bench_context()).size());
  state.SetItemsProcessed(state.iterations() * p.req.num_requests);
  state.SetBytesProcessed(state.iterations() * p.req.num_requests * p.req.dim * 4);
  state.counters["pairs"] = double(pairs);
}

void account_index(benchmark::State& state, const bench::Config& c, int64_t accounts, bool exact) {
  const auto& p = bench::prepared(c, accounts);
  DetectOptions o;
  o.exact_account_limit = exact ? p.profiles.num_accounts : 0;
  int64_t pairs = 0;
  for (auto _ : state) pairs = int64_t(account_candidate_pairs(p.profiles, o, bench::bench_context()).size());
  state.SetItemsProcessed(state.iterations() * p.profiles.num_accounts);
  state.counters["pairs"] = double(pairs);
}

/// `name`'s figure among the backend's statistics (0 when absent).
double backend_statistic(const Backend& backend, const std::string& name) {
  for (const auto& [key, value] : backend.statistics())
    if (key == name) return value;
  return 0;
}

/// The CUDA backend's joins (exact, or partitioned above 2^18 rows); `flop` is the inner-product
/// work its searches did per run, reported as a rate over the whole stage (selection, copies
/// and the host's verification included).
void request_index_cuda(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const auto& p = bench::prepared(c, accounts);
  auto backend = make_backend(Device::Cuda);
  int64_t pairs = 0;
  for (auto _ : state) pairs = int64_t(backend->near_duplicate_pairs(p.req, DetectOptions{}, bench::bench_context(), nullptr).size());
  state.SetItemsProcessed(state.iterations() * p.req.num_requests);
  state.counters["pairs"] = double(pairs);
  state.counters["flop"] =
      benchmark::Counter(backend_statistic(*backend, "request_index_device_flop") / double(state.iterations()),
                         benchmark::Counter::kIsIterationInvariantRate);
}

void account_index_cuda(benchmark::State& state, const bench::Config& c, int64_t accounts) {
  const auto& p = bench::prepared(c, accounts);
  auto backend = make_backend(Device::Cuda);
  int64_t pairs = 0;
  for (auto _ : state) pairs = int64_t(backend->account_candidate_pairs(p.profiles, DetectOptions{}, bench::bench_context()).size());
  state.SetItemsProcessed(state.iterations() * p.profiles.num_accounts);
  state.counters["pairs"] = double(pairs);
}

void register_all(const bench::Config& c) {
  // CUDA variants register only where a device is present.
  if (build_info().cuda_devices > 0) {
    bench::register_sizes(c, "RequestIndex/cuda", request_index_cuda);
    bench::register_sizes(c, "AccountIndex/cuda", account_index_cuda);
  }
  bench::register_sizes(c, "RequestIndex/exact", [](benchmark::State& s, const bench::Config& c, int64_t a) { request_index(s, c, a, true); });
  bench::register_sizes(c, "RequestIndex/ivf", [](benchmark::State& s, const bench::Config& c, int64_t a) { request_index(s, c, a, false); });
  bench::register_sizes(c, "AccountIndex/exact", [](benchmark::State& s, const bench::Config& c, int64_t a) { account_index(s, c, a, true); });
  bench::register_sizes(c, "AccountIndex/ivf", [](benchmark::State& s, const bench::Config& c, int64_t a) { account_index(s, c, a, false); });
}

}  // namespace

RINGSCAN_BENCHMARK_MAIN(register_all)
