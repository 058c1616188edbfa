// Writes the fuzzer's generated seed corpus into a directory: small valid input files, a
// detection output, and the damaged copies of tests/corrupt_corpus.hpp (fixed seed).
//   make_seed_corpus DIR
#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>

#include "corrupt_corpus.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/io.hpp"
#include "ringscan/pipeline.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seed_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  try {
    const ringscan::Context ctx;
    ringscan::GenerateOptions o;
    o.accounts = 20;
    o.dim = 4;
    o.requests_per_account = 4;
    o.seed = 77;
    for (const bool half : {false, true}) {
      o.float16 = half;
      ringscan::generate_dataset(dir + (half ? "/valid-float16.h5" : "/valid-float32.h5"), o, ctx);
    }
    // Infrastructure tokens, payment instruments and sign-up times.
    o.float16 = false;
    o.infrastructure = true;
    ringscan::generate_dataset(dir + "/valid-infra.h5", o, ctx);
    o.infrastructure = false;
    ringscan::write_detection_output(
        dir + "/detection-output.h5",
        ringscan::detect_rings(ringscan::load_dataset(dir + "/valid-float32.h5", ctx), {}, ctx));
    if (!ringscan::testing::write_compact_input(dir + "/valid-compact.h5"))
      throw std::runtime_error("cannot write " + dir + "/valid-compact.h5");
    const std::string valid = ringscan::testing::file_bytes(dir + "/valid-compact.h5");
    for (const auto& f : ringscan::testing::corrupt_corpus(valid, 24, 48, 20260))
      std::ofstream(dir + "/" + f.name, std::ios::binary) << f.bytes;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_seed_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
