// libFuzzer target over ringscan's HDF5 loader (in process): the input bytes are an HDF5
// file, written to a temporary file (tmpfs under fuzz/run_fuzz.sh), read by load_dataset,
// read_truth_labels and read_detection_labels. InvalidInput (BudgetExceeded included) is
// the expected answer to a bad file; any other exception, and any sanitizer report in
// ringscan's code, is a bug. Crashes inside libhdf5 itself are what the CLI's isolated
// reader exists for; fuzz/run_fuzz.sh tells them apart (see docs/reliability.md).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ringscan/context.hpp"
#include "ringscan/error.hpp"
#include "ringscan/io.hpp"

namespace {

/// A path naming a file in $TMPDIR (fuzz/run_fuzz.sh puts it on tmpfs) whose content is
/// replaced on each call. HDF5 resolves the real path of what it opens, so a memfd's
/// /proc/self/fd path does not do; an input that crashes the process leaves this file behind,
/// so the run's own directory holds it.
const std::string& file_with(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir && *dir ? dir : "/tmp") + "/ringscan-fuzz-" +
                    std::to_string(getpid()) + ".h5";
    static const std::string removed_at_exit = p;
    std::atexit([] { unlink(removed_at_exit.c_str()); });
    return p;
  }();
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || (size > 0 && write(fd, data, size) != static_cast<ssize_t>(size))) std::abort();
  close(fd);
  return path;
}

template <class Fn>
void expect_valid_or_invalid_input(Fn&& read) {
  try {
    read();
  } catch (const ringscan::InvalidInput& e) {
    if (std::getenv("FUZZ_LOADER_VERBOSE") != nullptr) std::fprintf(stderr, "%s\n", e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = file_with(data, size);
  ringscan::Context ctx;
  ctx.threads = 1;
  ctx.memory_budget = int64_t{256} << 20;  // declared shapes beyond this are refused unread
  ringscan::LoadOptions options;
  options.load_labels = true;
  options.chunk_rows = 64;  // several hyperslabs even for small inputs
  expect_valid_or_invalid_input([&] { ringscan::load_dataset(path, ctx, options); });
  expect_valid_or_invalid_input([&] { ringscan::read_truth_labels(path, ctx); });
  expect_valid_or_invalid_input([&] { ringscan::read_detection_labels(path); });
  return 0;
}
