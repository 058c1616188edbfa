// HDF5 loading: a generated file per size (float32 and float16 embeddings), read and
// validated by load_dataset, in this process and (LoadDatasetIsolated, as the CLI reads)
// in a child process. Bytes/s counts the bytes of the file.
#include <sys/stat.h>
#include <unistd.h>

#include "bench_common.hpp"
#include "ringscan/io.hpp"

using namespace ringscan;

namespace {

std::string file_for(const bench::Config& c, int64_t accounts, bool float16) {
  const std::string path = "/tmp/ringscan-bench-" + std::to_string(getpid()) + "-" +
                           std::to_string(accounts) + (float16 ? "-f16" : "-f32") + ".h5";
  if (access(path.c_str(), F_OK) != 0) {
    GenerateOptions g;
    g.accounts = accounts;
    g.dim = c.dim;
    g.seed = c.seed;
    g.float16 = float16;
    generate_dataset(path, g, bench::bench_context());
  }
  return path;
}

void load(benchmark::State& state, const bench::Config& c, int64_t accounts, bool float16, bool isolated) {
  const std::string path = file_for(c, accounts, float16);
  struct stat st {};
  stat(path.c_str(), &st);
  int64_t requests = 0;
  for (auto _ : state) {
    const Dataset d = isolated ? load_dataset_isolated(path, bench::bench_context())
                               : load_dataset(path, bench::bench_context());
    requests = d.num_requests();
    benchmark::DoNotOptimize(d.embeddings.data());
  }
  state.SetBytesProcessed(state.iterations() * int64_t(st.st_size));
  state.SetItemsProcessed(state.iterations() * requests);
  unlink(path.c_str());
}

void register_all(const bench::Config& c) {
  for (const bool isolated : {false, true})
    for (const bool float16 : {false, true})
      bench::register_sizes(c, std::string(isolated ? "LoadDatasetIsolated/" : "LoadDataset/") +
                                   (float16 ? "float16" : "float32"),
                            [float16, isolated](benchmark::State& s, const bench::Config& c, int64_t a) {
                              load(s, c, a, float16, isolated);
                            });
}

}  // namespace

RINGSCAN_BENCHMARK_MAIN(register_all)
