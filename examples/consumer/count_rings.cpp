// Detects rings with the installed library: in an input file when one is given, else in
// generated traffic, and prints what it found. Uses the public headers only.
#include <cstdio>
#include <exception>
#include <string>

#include "ringscan/error.hpp"
#include "ringscan/evaluate.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/io.hpp"
#include "ringscan/pipeline.hpp"

int main(int argc, char** argv) {
  try {
    ringscan::Context ctx;
    ctx.threads = 2;
    ringscan::Dataset data;
    if (argc > 1) {
      data = ringscan::load_dataset(argv[1], ctx);
    } else {
      ringscan::GenerateOptions g;
      g.accounts = 2000;
      g.dim = 32;
      g.seed = 7;
      data = ringscan::generate_in_memory(g, ctx);
    }
    const std::vector<int64_t> truth = data.labels;
    ringscan::DetectOptions options;
    options.device = ringscan::Device::Cpu;
    const ringscan::DetectionResult result = ringscan::detect_rings(data, options, ctx);
    std::printf("%zu rings among %zu accounts\n", result.rings.size(), result.account_ids.size());
    if (!truth.empty()) {
      const ringscan::Evaluation e = ringscan::evaluate_rings(result.ring, truth);
      std::printf("ring recall %.2f, account precision %.3f\n", e.ring_recall, e.account_precision);
      if (result.rings.empty() || e.ring_recall < 0.9) return 1;
    }
    return 0;
  } catch (const ringscan::InvalidInput& e) {
    std::fprintf(stderr, "count_rings: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "count_rings: %s\n", e.what());
    return 1;
  }
}
