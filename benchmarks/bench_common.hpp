// Shared set-up of the stage benchmarks: generated data (fixed seed) by size, the results of
// the stages before the one measured, and sizes from the command line:
//   bench_x [--accounts=2000,10000] [--dim=128] [Google Benchmark flags]
#pragma once
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ringscan/account_index.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/request_order.hpp"

namespace ringscan::bench {

struct Config {
  std::vector<int64_t> accounts = {2000, 10000};
  int64_t dim = 128;
  uint64_t seed = 42;
};

/// Takes --accounts=a,b,... and --dim=D out of argv (the rest goes to Google Benchmark).
inline Config parse_config(int& argc, char** argv) {
  Config c;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--accounts=", 0) == 0) {
      c.accounts.clear();
      std::string list = arg.substr(11);
      for (std::size_t at = 0; at <= list.size();) {
        const std::size_t comma = list.find(',', at);
        c.accounts.push_back(std::atoll(list.substr(at, comma - at).c_str()));
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
    } else if (arg.rfind("--dim=", 0) == 0) {
      c.dim = std::atoll(arg.c_str() + 6);
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return c;
}

inline Context bench_context() {
  Context ctx;
  ctx.memory_budget = Context::default_memory_budget();
  return ctx;
}

/// Generated data and every stage's result before clustering, computed once per size.
struct Prepared {
  Dataset data;
  CanonicalRequests req;
  PromptGroups groups;
  AccountProfiles profiles;
  std::vector<std::pair<int64_t, int64_t>> account_pairs;
  EvidenceCalibration calibration;
  EvidenceGraph graph;
  Clustering clusters;
};

inline const Prepared& prepared(const Config& c, int64_t accounts) {
  static std::map<int64_t, std::unique_ptr<Prepared>> cache;
  auto& slot = cache[accounts];
  if (!slot) {
    const Context ctx = bench_context();
    const DetectOptions o;
    slot = std::make_unique<Prepared>();
    GenerateOptions g;
    g.accounts = accounts;
    g.dim = c.dim;
    g.seed = c.seed;
    slot->data = generate_in_memory(g, ctx);
    slot->req = canonical_requests(slot->data, ctx);
    slot->groups = prompt_groups(slot->req, near_duplicate_pairs(slot->req, o, ctx), o);
    slot->profiles = account_profiles(slot->req, o, ctx);
    slot->account_pairs = account_candidate_pairs(slot->profiles, o, ctx);
    slot->calibration = calibrate_evidence(slot->req, slot->groups, slot->profiles, o, ctx);
    slot->graph = evidence_graph(slot->groups, slot->profiles, slot->calibration, slot->account_pairs, o, ctx);
    slot->clusters = cluster_accounts(slot->graph, o, ctx);
  }
  return *slot;
}

/// Registers `fn` once per configured size, named name/accounts.
template <class Fn>
void register_sizes(const Config& c, const std::string& name, Fn fn) {
  for (int64_t a : c.accounts)
    benchmark::RegisterBenchmark((name + "/" + std::to_string(a)).c_str(),
                                 [fn, c, a](benchmark::State& s) { fn(s, c, a); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

}  // namespace ringscan::bench

/// main() of a stage benchmark: `register_all(config)` registers its benchmarks.
#define RINGSCAN_BENCHMARK_MAIN(register_all)                          \
  int main(int argc, char** argv) {                                    \
    const ringscan::bench::Config config = ringscan::bench::parse_config(argc, argv); \
    register_all(config);                                              \
    benchmark::Initialize(&argc, argv);                                \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;  \
    benchmark::RunSpecifiedBenchmarks();                               \
    benchmark::Shutdown();                                             \
    return 0;                                                          \
  }
