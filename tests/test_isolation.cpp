// Untrusted input: the isolated reader (a child process parses the file) returns what the
// in-process reader returns, and crashes, hangs and damaged files end as clean errors.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "corrupt_corpus.hpp"
#include "isolated_reader.hpp"
#include "ringscan/error.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/io.hpp"
#include "ringscan/pipeline.hpp"

namespace ringscan {
namespace {

namespace fs = std::filesystem;
using testing::corrupt_corpus;
using testing::file_bytes;

/// A fresh directory per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "ringscan_isolation_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

  /// Writes a small generated input file (with labels and roles) and returns its path.
  std::string generated(const std::string& name, bool float16, int64_t accounts = 300) const {
    GenerateOptions o;
    o.accounts = accounts;
    o.dim = 16;
    o.seed = 77;
    o.float16 = float16;
    generate_dataset(file(name), o, Context{});
    return file(name);
  }

  std::string dir_;
};

class IsolatedReader : public TempDirTest {};
class UntrustedInput : public TempDirTest {};

void expect_same(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(std::tie(a.source, a.accounts_derived, a.dim, a.feature_dim, a.feature_names),
            std::tie(b.source, b.accounts_derived, b.dim, b.feature_dim, b.feature_names));
  EXPECT_EQ(std::tie(a.account_ids, a.request_account, a.request_time, a.labels, a.request_infra,
                     a.account_payment),
            std::tie(b.account_ids, b.request_account, b.request_time, b.labels, b.request_infra,
                     b.account_payment));
  // Bit for bit: the same reader produced both.
  EXPECT_EQ(std::tie(a.embeddings, a.features), std::tie(b.embeddings, b.features));
}

TEST_F(IsolatedReader, ReturnsExactlyTheDatasetOfTheInProcessReader) {
  for (const bool float16 : {false, true}) {
    const std::string path = generated(float16 ? "half.h5" : "single.h5", float16);
    for (const bool labels : {false, true}) {
      LoadOptions options;
      options.load_labels = labels;
      options.chunk_rows = 1000;  // several embedding frames
      const Context ctx;
      const Dataset in_process = load_dataset(path, ctx, options);
      ASSERT_GT(in_process.num_requests(), 2000);
      expect_same(load_dataset_isolated(path, ctx, options), in_process);
    }
  }
}

/// Overwrites one stored value of /requests/embedding with `bits` in the file's own type
/// (float16 here), so that no conversion touches it.
void store_embedding_bits(const std::string& path, hsize_t row, hsize_t column, uint16_t bits) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, "/requests/embedding", H5P_DEFAULT);
  const hid_t type = H5Dget_type(d), space = H5Dget_space(d);
  ASSERT_EQ(H5Tget_size(type), 2u);
  const hsize_t at[2] = {row, column}, one[2] = {1, 1};
  H5Sselect_hyperslab(space, H5S_SELECT_SET, at, nullptr, one, nullptr);
  const hid_t memory = H5Screate_simple(2, one, nullptr);
  EXPECT_GE(H5Dwrite(d, type, memory, space, H5P_DEFAULT, &bits), 0);
  for (const hid_t s : {memory, space}) H5Sclose(s);
  H5Tclose(type);
  H5Dclose(d);
  H5Fclose(f);
}

TEST_F(IsolatedReader, RefusesNanAndInfinityInFloat16EmbeddingsNamingRowAndColumnAsTheInProcessReaderDoes) {
  // The child checks float16 rows as stored and the parent converts them: a bad value must
  // still be named, in any frame, as the in-process reader (which converts first) names it.
  const std::string path = generated("half.h5", true);
  LoadOptions options;
  options.chunk_rows = 1000;  // several embedding frames
  const Context ctx;
  for (const auto& [row, column, bits, what] :
       {std::tuple<hsize_t, hsize_t, uint16_t, std::string>{2345, 5, 0x7e00, "NaN"},
        {1001, 15, 0x7c00, "Inf"},
        {700, 0, 0xfc00, "-Inf"}}) {
    store_embedding_bits(path, row, column, bits);
    const std::string expected = "/requests/embedding: contains " + what + " at row " + std::to_string(row) +
                                 ", column " + std::to_string(column);
    for (const bool isolated : {false, true}) {
      try {
        if (isolated)
          load_dataset_isolated(path, ctx, options);
        else
          load_dataset(path, ctx, options);
        ADD_FAILURE() << "loaded " << path << " with " << what << " at row " << row;
      } catch (const InvalidInput& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
      }
    }
  }
}

TEST_F(IsolatedReader, ReadsTheEmbeddingsOfAShareOfTheRequestsAsTheWholeLoadHoldsThem) {
  for (const bool float16 : {false, true}) {
    const std::string path = generated(float16 ? "half.h5" : "single.h5", float16);
    const Context ctx;
    LoadOptions all;
    all.chunk_rows = 1000;
    const Dataset whole = load_dataset(path, ctx, all);
    const int64_t R = whole.num_requests(), D = whole.dim;
    for (const bool only : {false, true}) {
      LoadOptions share = all;
      share.embedding_first = R / 3 + 17;  // across chunk boundaries
      share.embedding_rows = R / 3;
      share.embeddings_only = only;
      for (const bool isolated : {false, true}) {
        const Dataset d = isolated ? load_dataset_isolated(path, ctx, share) : load_dataset(path, ctx, share);
        EXPECT_EQ(d.embedding_first, share.embedding_first);
        ASSERT_EQ(int64_t(d.embeddings.size()), share.embedding_rows * D);
        EXPECT_TRUE(std::equal(d.embeddings.begin(), d.embeddings.end(), whole.embeddings.begin() + share.embedding_first * D));
        // Every other dataset whole, or none of them.
        EXPECT_EQ(d.request_account, only ? std::vector<int64_t>{} : whole.request_account);
        EXPECT_EQ(d.account_ids, only ? std::vector<int64_t>{} : whole.account_ids);
      }
    }
    LoadOptions past = all;
    past.embedding_first = R - 5;
    past.embedding_rows = 10;
    EXPECT_THROW(load_dataset(path, ctx, past), InvalidInput);
    EXPECT_THROW(load_dataset_isolated(path, ctx, past), InvalidInput);
  }
}

/// Rewrites /requests/embedding of `path` with the creation properties `create` (its values
/// and stored type unchanged).
void restore_embeddings(const std::string& path, hid_t create) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, "/requests/embedding", H5P_DEFAULT);
  const hid_t type = H5Dget_type(d);
  hsize_t dims[2];
  const hid_t space = H5Dget_space(d);
  H5Sget_simple_extent_dims(space, dims, nullptr);
  std::vector<char> values(dims[0] * dims[1] * H5Tget_size(type));
  ASSERT_GE(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  H5Dclose(d);
  ASSERT_GE(H5Ldelete(f, "/requests/embedding", H5P_DEFAULT), 0);
  const hid_t fixed = H5Screate_simple(2, dims, nullptr);
  const hid_t rewritten = H5Dcreate2(f, "/requests/embedding", type, fixed, H5P_DEFAULT, create, H5P_DEFAULT);
  ASSERT_GE(rewritten, 0);
  EXPECT_GE(H5Dwrite(rewritten, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  H5Dclose(rewritten);
  for (const hid_t x : {fixed, space}) H5Sclose(x);
  H5Tclose(type);
  H5Fclose(f);
}

TEST_F(IsolatedReader, ReadsEmbeddingsStoredAsUsedFromTheFileAndOthersThroughTheChildAlike) {
  // Rows stored as they are used (no filter, whole rows) the parent reads itself from where
  // the child found them; compressed rows, or chunks that split rows, come through the
  // child. Either way the dataset is the in-process reader's, bit for bit, whole or a share.
  struct Layout {
    const char* name;
    bool in_place;
    std::function<void(hid_t create, hsize_t dim)> set;
  };
  const std::vector<Layout> layouts = {
      {"as generated (chunks of whole rows)", true, nullptr},
      {"contiguous", true, [](hid_t create, hsize_t) { H5Pset_layout(create, H5D_CONTIGUOUS); }},
      {"chunks of 7 rows", true,
       [](hid_t create, hsize_t dim) {
         const hsize_t chunk[2] = {7, dim};
         H5Pset_chunk(create, 2, chunk);
       }},
      {"compressed", false,
       [](hid_t create, hsize_t dim) {
         const hsize_t chunk[2] = {64, dim};
         H5Pset_chunk(create, 2, chunk);
         H5Pset_deflate(create, 1);
       }},
      {"chunks that split rows", false,
       [](hid_t create, hsize_t dim) {
         const hsize_t chunk[2] = {64, dim / 2};
         H5Pset_chunk(create, 2, chunk);
       }},
  };
  for (const bool float16 : {false, true})
    for (const Layout& layout : layouts) {
      const std::string what = std::string(float16 ? "float16, " : "float32, ") + layout.name;
      const std::string path = generated(float16 ? "half.h5" : "single.h5", float16);
      if (layout.set) {
        const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
        layout.set(create, 16);
        restore_embeddings(path, create);
        H5Pclose(create);
      }
      const Context ctx;
      LoadOptions all;
      all.chunk_rows = 1000;
      const Dataset in_process = load_dataset(path, ctx, all);
      const int64_t R = in_process.num_requests(), D = in_process.dim;
      const int64_t before = detail::embedding_rows_read_by_parent();
      expect_same(load_dataset_isolated(path, ctx, all), in_process);
      EXPECT_EQ(detail::embedding_rows_read_by_parent() - before, layout.in_place ? R : 0) << what;
      LoadOptions share = all;
      share.embedding_first = R / 3 + 5;
      share.embedding_rows = R / 3;
      const Dataset part = load_dataset_isolated(path, ctx, share);
      ASSERT_EQ(int64_t(part.embeddings.size()), share.embedding_rows * D) << what;
      EXPECT_TRUE(std::equal(part.embeddings.begin(), part.embeddings.end(),
                             in_process.embeddings.begin() + share.embedding_first * D))
          << what;
    }
}

TEST_F(IsolatedReader, RefusesRowsPastTheEndOfTheFileAndNamesNanAndInfinityByRowAndColumn) {
  // What the parent reads from the file itself it bounds by the file as it is now (it may
  // have changed since the child read its layout) and checks as the reader does.
  const int64_t dim = 3;
  std::vector<float> singles(4 * dim, 0.5f);
  singles[2 * dim + 1] = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint16_t> halves(4 * dim, 0x3800);  // 0.5
  halves[3 * dim + 2] = 0xfc00;                   // -Inf
  const std::string single_path = file("singles.bin"), half_path = file("halves.bin");
  std::ofstream(single_path, std::ios::binary).write(reinterpret_cast<const char*>(singles.data()), singles.size() * 4);
  std::ofstream(half_path, std::ios::binary).write(reinterpret_cast<const char*>(halves.data()), halves.size() * 2);
  std::vector<float> out(4 * dim);
  const auto refusal = [&](const std::string& path, std::vector<detail::RowExtent> extents, int64_t bytes) {
    try {
      detail::read_embedding_extents(path, extents, 100, dim, bytes, out.data());
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": /requests/embedding: "), std::string::npos) << e.what();
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // Two extents, the second starting mid-file: the rows are numbered from the share's first.
  EXPECT_NE(refusal(single_path, {{0, 2, 0}, {2, 2, 2 * dim * 4}}, 4).find("contains NaN at row 102, column 1"),
            std::string::npos);
  EXPECT_NE(refusal(half_path, {{0, 4, 0}}, 2).find("contains -Inf at row 103, column 2"), std::string::npos);
  EXPECT_NE(refusal(half_path, {{0, 4, 2}}, 2).find("beyond the end of the file"), std::string::npos);
  EXPECT_NE(refusal(file("missing.bin"), {{0, 1, 0}}, 4).find("cannot open"), std::string::npos);
  // Within bounds and finite: the values, converted.
  halves[3 * dim + 2] = 0x3c00;  // 1.0
  std::ofstream(half_path, std::ios::binary).write(reinterpret_cast<const char*>(halves.data()), halves.size() * 2);
  detail::read_embedding_extents(half_path, {{0, 4, 0}}, 0, dim, 2, out.data());
  EXPECT_EQ(out[3 * dim + 2], 1.0f);
  EXPECT_EQ(out[0], 0.5f);
}

TEST_F(IsolatedReader, ReturnsTheSameSummaryTruthAndDetectionLabelsAsTheInProcessReaders) {
  const std::string path = generated("in.h5", false);
  const Context ctx;
  const InputSummary a = describe_input(path, ctx), b = describe_input_isolated(path, ctx);
  EXPECT_EQ(std::tie(a.num_requests, a.num_accounts, a.feature_names, a.time_min, a.time_max,
                     a.labelled_accounts, a.zero_norm_embeddings, a.memory_bytes),
            std::tie(b.num_requests, b.num_accounts, b.feature_names, b.time_min, b.time_max,
                     b.labelled_accounts, b.zero_norm_embeddings, b.memory_bytes));
  ASSERT_EQ(a.datasets.size(), b.datasets.size());
  for (size_t i = 0; i < a.datasets.size(); ++i) {
    EXPECT_EQ(a.datasets[i].name, b.datasets[i].name);
    EXPECT_EQ(a.datasets[i].shape, b.datasets[i].shape);
  }
  const TruthLabels t1 = read_truth_labels(path, ctx), t2 = read_truth_labels_isolated(path, ctx);
  EXPECT_EQ(std::tie(t1.account_ids, t1.label, t1.role), std::tie(t2.account_ids, t2.label, t2.role));
  write_detection_output(file("out.h5"), detect_rings(load_dataset(path, ctx), {}, ctx));
  const DetectionLabels d1 = read_detection_labels(file("out.h5"));
  const DetectionLabels d2 = read_detection_labels_isolated(file("out.h5"), ctx);
  EXPECT_EQ(std::tie(d1.account_ids, d1.cluster, d1.ring), std::tie(d2.account_ids, d2.cluster, d2.ring));
}

TEST_F(IsolatedReader, ForwardsTheChildsProgressToTheCallersContext) {
  const std::string path = generated("in.h5", false);
  Context ctx;
  int64_t last = -1, total = 0;
  ctx.progress = [&](const std::string& stage, int64_t done, int64_t of) {
    EXPECT_EQ(stage, "load");
    last = done;
    total = of;
  };
  LoadOptions options;
  options.chunk_rows = 1000;
  const Dataset d = load_dataset_isolated(path, ctx, options);
  EXPECT_EQ(last, d.num_requests());
  EXPECT_EQ(total, d.num_requests());
}

TEST_F(IsolatedReader, PassesTheReadersErrorsOnWithTheirKindAndMessage) {
  const Context ctx;
  try {
    load_dataset_isolated(file("missing.h5"), ctx);
    ADD_FAILURE() << "no exception";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(file("missing.h5") + ": cannot open"), std::string::npos)
        << e.what();
  }
  const std::string path = generated("in.h5", false);
  Context small;
  small.memory_budget = 1000;
  EXPECT_THROW(load_dataset_isolated(path, small), BudgetExceeded);
  EXPECT_THROW(describe_input_isolated(path, small), BudgetExceeded);
}

/// Runs `child` through run_isolated and returns the InvalidInput message it ends with.
std::string failure_of(const std::function<void(const isolation::ChildChannel&)>& child,
                       double timeout = 0) {
  try {
    isolation::run_isolated(
        "file.h5", Context{}, IsolationLimits{timeout},
        [&](const isolation::ChildChannel& c, const Context&) { child(c); },
        [](isolation::FrameType, uint64_t, isolation::ParentChannel&) { return true; });
  } catch (const InvalidInput& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InvalidInput";
  return "";
}

TEST_F(IsolatedReader, TurnsACrashOfTheChildIntoInvalidInputNamingFileAndSignal) {
  const std::string message = failure_of([](const isolation::ChildChannel&) { std::abort(); });
  EXPECT_NE(message.find("file.h5: the HDF5 library crashed while reading this file (SIGABRT"),
            std::string::npos)
      << message;
}

TEST_F(IsolatedReader, KillsAChildThatRunsPastTheTimeLimit) {
  const auto started = std::chrono::steady_clock::now();
  const std::string message = failure_of(
      [](const isolation::ChildChannel&) { std::this_thread::sleep_for(std::chrono::hours(1)); },
      0.5);
  EXPECT_NE(message.find("file.h5: reading timed out after 0.5 s"), std::string::npos) << message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST_F(IsolatedReader, TurnsAChildThatEndsWithoutAResultIntoInvalidInput) {
  const std::string message = failure_of([](const isolation::ChildChannel&) { _exit(7); });
  EXPECT_NE(message.find("exit status 7 before sending a result"), std::string::npos) << message;
}

TEST_F(IsolatedReader, RejectsAMalformedReplyFromTheChild) {
  // A child whose memory the HDF5 library corrupted may send anything; here a frame longer
  // than any progress report.
  const std::string message = failure_of([](const isolation::ChildChannel& c) {
    c.send(isolation::FrameType::Progress, std::string(70000, 'x'));
  });
  EXPECT_NE(message.find("file.h5: the reader process sent a malformed reply"), std::string::npos)
      << message;
}

TEST_F(IsolatedReader, SurvivesAcknowledgingAChildThatHasAlreadyExited) {
  // The child may exit right after its last block; acknowledging that block must not raise
  // SIGPIPE in the caller.
  try {
    isolation::run_isolated(
        "file.h5", Context{}, IsolationLimits{},
        [](const isolation::ChildChannel& c, const Context&) {
          c.send(isolation::FrameType::Raw, "x");
          _exit(0);
        },
        [](isolation::FrameType, uint64_t size, isolation::ParentChannel& channel) {
          channel.read_payload(size);
          std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the child is gone
          channel.ack();
          return false;
        });
    ADD_FAILURE() << "no InvalidInput";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("before sending a result"), std::string::npos)
        << e.what();
  }
}

// --- The CLI on damaged and hostile files -----------------------------------------------

/// What one run of the CLI did, in a working directory of its own.
struct CliRun {
  int code = -1;  ///< exit status; 128 + N when killed by signal N, 124 when it timed out
  std::string out, err;
  std::set<std::string> left;  ///< files in the working directory besides stdout and stderr
};

CliRun run_cli(const std::string& work, const std::string& args) {
  fs::create_directories(work);
  // The CLI's own limit (--read-timeout) is 10 s; timeout(1) only catches a CLI that hangs.
  const std::string cmd = "cd '" + work + "' && timeout -k 5 60 " + RINGSCAN_CLI + " " + args +
                          " --read-timeout 10 -q >stdout.txt 2>stderr.txt";
  const int status = std::system(cmd.c_str());
  CliRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = file_bytes(work + "/stdout.txt");
  r.err = file_bytes(work + "/stderr.txt");
  for (const auto& entry : fs::directory_iterator(work)) {
    const std::string name = entry.path().filename();
    if (name != "stdout.txt" && name != "stderr.txt") r.left.insert(name);
  }
  fs::remove_all(work);
  return r;
}

/// Expects a clean failure: exit 2, one error line naming the file, nothing written.
void expect_clean_failure(const CliRun& r, const std::string& input, const std::string& what) {
  EXPECT_EQ(r.code, 2) << what << "\n" << r.err;
  EXPECT_NE(r.err.find("ringscan: error: "), std::string::npos) << what << "\n" << r.err;
  EXPECT_NE(r.err.find(fs::path(input).filename().string()), std::string::npos) << what;
  EXPECT_EQ(r.out, "") << what;
  EXPECT_TRUE(r.left.empty()) << what << ": left " << *r.left.begin();
}

TEST_F(UntrustedInput, EveryCveReproducerMakesInfoAndDetectExitTwoWithoutCrashOrOutput) {
  const fs::path cves = RINGSCAN_CVE_DIR;
  if (!fs::is_directory(cves))
    GTEST_SKIP() << "no HDF5 CVE reproducers at " << cves
                 << " (set the CMake cache variable RINGSCAN_CVE_DIR): nothing to check";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(cves)) {
    if (!entry.is_regular_file()) continue;
    const std::string input = entry.path().string();
    ++files;
    expect_clean_failure(run_cli(file("work"), "info '" + input + "'"), input, "info " + input);
    expect_clean_failure(run_cli(file("work"), "detect '" + input + "' -o out.h5 --report r.json"),
                         input, "detect " + input);
  }
  EXPECT_GT(files, 100);
}

TEST_F(UntrustedInput, TruncatedAndBitFlippedFilesGiveACleanErrorOrAValidResult) {
  // A truncated file must fail cleanly. A flipped bit may land in array data and leave a
  // valid file: then info and detect succeed and detect writes exactly its outputs. Either
  // way: no crash, no hang, no partial or temporary file, and an error names the file.
  ASSERT_TRUE(testing::write_compact_input(file("valid.h5")));
  const std::string valid = file_bytes(file("valid.h5"));
  ASSERT_FALSE(valid.empty());
  int failed = 0, loaded = 0;
  for (const auto& damaged : corrupt_corpus(valid, 24, 48, 20260)) {
    const std::string input = file(damaged.name);
    std::ofstream(input, std::ios::binary) << damaged.bytes;
    const CliRun info = run_cli(file("work"), "info '" + input + "'");
    const CliRun detect = run_cli(file("work"), "detect '" + input + "' -o out.h5 --report r.json");
    if (info.code == 0) {
      ++loaded;
      EXPECT_NE(info.out.find("valid ringscan input"), std::string::npos) << damaged.name;
      EXPECT_EQ(detect.code, 0) << damaged.name << "\n" << detect.err;
      EXPECT_EQ(detect.left, (std::set<std::string>{"out.h5", "r.json"})) << damaged.name;
    } else {
      ++failed;
      expect_clean_failure(info, input, "info " + damaged.name);
      // detect never reads /accounts/label and /accounts/role: a flip there fails info only.
      if (detect.code != 0)
        expect_clean_failure(detect, input, "detect " + damaged.name);
      else
        EXPECT_EQ(detect.left, (std::set<std::string>{"out.h5", "r.json"})) << damaged.name;
    }
    if (damaged.name.rfind("truncated", 0) == 0) EXPECT_NE(info.code, 0) << damaged.name;
    fs::remove(input);
  }
  std::cout << "damaged files: " << failed << " rejected, " << loaded << " still valid\n";
}

}  // namespace
}  // namespace ringscan
