// Faults and long runs: failures inside parallel regions, failed allocations, a full disk,
// SIGKILL at any moment, sizes past 2^31, and the memory budget. Every failure must give a
// clear error and a non-zero exit, and leave the previous result byte-identical.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "parallel.hpp"
#include "ringscan/error.hpp"
#include "ringscan/fault_injection.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/io.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/report.hpp"
#include "ringscan/sizes.hpp"

using namespace ringscan;
namespace fs = std::filesystem;
namespace fi = ringscan::testing;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

/// Disarms every fault when a test ends, whatever its outcome.
struct FaultGuard {
  FaultGuard() { fi::clear_fault_injection(); }
  ~FaultGuard() { fi::clear_fault_injection(); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Names in `dir` that look like temporary outputs (PATH.tmp.*).
std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos)
      out.push_back(e.path().filename().string());
  return out;
}

struct Child {
  int code = -1;     ///< exit status, or -signal when killed
  std::string output;  ///< stdout and stderr
};

/// Runs the ringscan CLI built with the fault hook (or `program`) with `args` (and
/// RINGSCAN_TEST_FAULT=fault when not empty); when kill_after is positive, SIGKILLs it after
/// that long if it is still running.
Child run_cli(const std::vector<std::string>& args, const std::string& log,
              const std::string& fault = "",
              std::chrono::microseconds kill_after = std::chrono::microseconds(0),
              const char* program = RINGSCAN_CLI_WITH_TEST_FAULTS) {
  // Everything the child needs is built before fork(): between fork and exec only
  // async-signal-safe calls (no malloc while other threads may hold its locks).
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::string(*e).rfind("RINGSCAN_TEST_FAULT=", 0) != 0) env.emplace_back(*e);
  if (!fault.empty()) env.push_back("RINGSCAN_TEST_FAULT=" + fault);
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  argv.push_back(const_cast<char*>(program));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execve(program, argv.data(), envp.data());
    _exit(127);
  }
  Child c;
  if (pid < 0) return c;
  if (kill_after.count() > 0) {
    std::this_thread::sleep_for(kill_after);
    kill(pid, SIGKILL);  // harmless if it has exited: not yet reaped, the pid is still ours
  }
  int status = 0;
  waitpid(pid, &status, 0);
  c.code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  c.output = slurp(log);
  return c;
}

GenerateOptions small_world(uint64_t seed, int64_t accounts = 300, int64_t dim = 16) {
  GenerateOptions g;
  g.accounts = accounts;
  g.dim = dim;
  g.seed = seed;
  return g;
}

Context test_context() {
  Context ctx;
  ctx.threads = 2;
  ctx.memory_budget = int64_t(8) << 30;
  return ctx;
}

/// A directory of its own per test, removed afterwards.
class Faults : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "ringscan_faults_" + std::to_string(getpid()) + "_" +
           info->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  /// Generates a small input file and returns its path.
  std::string input(const std::string& name, uint64_t seed, int64_t accounts = 300,
                    int64_t dim = 16) const {
    const std::string p = path(name);
    generate_dataset(p, small_world(seed, accounts, dim), test_context());
    return p;
  }
  std::string dir_;
};

/// Write checkpoints of the output that `ringscan detect` writes for `input` (its layout,
/// not its data, fixes them): the report's first write is the next one.
int64_t output_writes(const std::string& input, const std::string& scratch) {
  FaultGuard guard;
  const Context ctx = test_context();
  DetectionResult shape = detect_rings(load_dataset(input, ctx), DetectOptions{}, ctx);
  // What the CLI adds to the pipeline's result, so the output has the CLI's attributes.
  shape.stage_seconds.insert(shape.stage_seconds.begin(), {"load", 0.0});
  shape.statistics.emplace_back("peak_resident_bytes", 0.0);
  fi::set_fault_injection(fi::FaultKind::Write, int64_t(1) << 40);
  write_detection_output(scratch, shape);
  const int64_t writes = fi::fault_events(fi::FaultKind::Write);
  fs::remove(scratch);
  return writes;
}

bool same_labels(const DetectionLabels& a, const DetectionLabels& b) {
  return a.account_ids == b.account_ids && a.cluster == b.cluster && a.ring == b.ring;
}

}  // namespace

// ---- sizes past 2^31, checked on synthetic sizes without allocating them ----

TEST(Sizes, IndexArithmeticIsSixtyFourBitPastTwoToTheThirtyOne) {
  const int64_t rows = int64_t(3) << 30;  // 3.2e9 requests
  EXPECT_EQ(element_offset(rows, 384), int64_t(3) * (int64_t(1) << 30) * 384);
  EXPECT_EQ(element_offset(rows, 384, 383), int64_t(3) * (int64_t(1) << 30) * 384 + 383);
  EXPECT_GT(element_offset(int64_t(1) << 31, 1), std::numeric_limits<int32_t>::max());
  // m (m - 1) / 2 past 2^31 and past 2^63 / 2 (where m * (m - 1) alone would overflow).
  EXPECT_EQ(pair_count(100000), int64_t(4999950000));
  EXPECT_EQ(pair_count(int64_t(1) << 32), (int64_t(1) << 31) * ((int64_t(1) << 32) - 1));
  EXPECT_EQ(pair_count(int64_t(3037000500)), int64_t(3037000500) / 2 * int64_t(3037000499));
  EXPECT_EQ(pair_count(kMaxSize), kMaxSize);
  EXPECT_EQ(pair_count(1), 0);
  EXPECT_EQ(saturating_multiply(int64_t(1) << 40, int64_t(1) << 30), kMaxSize);
  EXPECT_EQ(saturating_add(kMaxSize - 1, 5), kMaxSize);
  EXPECT_EQ(size_from_double(1e30), kMaxSize);
  EXPECT_EQ(size_from_double(-1.0), 0);
  EXPECT_EQ(checked_multiply(int64_t(1) << 31, 384 * 4, "embeddings"),
            (int64_t(1) << 31) * 1536);
  try {
    checked_multiply(int64_t(1) << 40, int64_t(1) << 30, "embeddings");
    FAIL() << "no exception";
  } catch (const BudgetExceeded& e) {
    EXPECT_NE(std::string(e.what()).find("embeddings"), std::string::npos) << e.what();
  }
}

TEST(Sizes, TheUpFrontEstimateHandlesBillionsOfRequestsAndSaturatesBeyond) {
  InputShape s;
  s.path = "huge.h5";
  s.num_requests = int64_t(3) << 30;
  s.num_accounts = int64_t(1) << 27;
  s.dim = 384;
  s.feature_dim = 8;
  const DetectOptions o;
  const int64_t bytes = estimate_detection_memory(s, o);
  // At least the embeddings (R x D x 4) and at most a few times that.
  EXPECT_GT(bytes, s.num_requests * 384 * 4);
  EXPECT_LT(bytes, s.num_requests * 384 * 4 * 3);
  s.num_requests *= 2;
  EXPECT_GT(estimate_detection_memory(s, o), bytes);
  s.num_requests = kMaxSize / 2;
  EXPECT_EQ(estimate_detection_memory(s, o), kMaxSize);
  Context ctx;
  ctx.memory_budget = int64_t(64) << 30;
  try {
    require_detection_memory(s, o, ctx);
    FAIL() << "no exception";
  } catch (const BudgetExceeded& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("huge.h5"), std::string::npos) << m;
    EXPECT_NE(m.find("estimated"), std::string::npos) << m;
    EXPECT_NE(m.find("64.00 GiB"), std::string::npos) << m;
  }
}

// ---- exceptions inside OpenMP regions ----

TEST(ParallelFor, RethrowsTheFirstExceptionAfterTheRegionWithItsType) {
  for (const int64_t chunk : {int64_t(0), int64_t(1), int64_t(64)}) {
    std::atomic<int64_t> ran{0};
    try {
      detail::parallel_for(100000, chunk, [&](int64_t i) {
        ++ran;
        if (i % 1000 == 7) throw BudgetExceeded("iteration " + std::to_string(i));
      });
      FAIL() << "no exception";
    } catch (const BudgetExceeded& e) {
      EXPECT_NE(std::string(e.what()).find("iteration"), std::string::npos);
    }
    EXPECT_LT(ran.load(), 100000) << "iterations after the failure are skipped";
  }
  EXPECT_THROW(detail::parallel_for(10, 0, [](int64_t) { throw std::bad_alloc(); }),
               std::bad_alloc);
  int64_t sum = 0;
  std::atomic<int64_t> total{0};
  detail::parallel_for(1000, 16, [&](int64_t i) { total += i; });
  for (int64_t i = 0; i < 1000; ++i) sum += i;
  EXPECT_EQ(total.load(), sum);
}

TEST(ParallelFor, AtomicMinKeepsTheSmallestIndex) {
  std::atomic<int64_t> first{1000000};
  detail::parallel_for(1000000, 0, [&](int64_t i) {
    if (i % 9973 == 0 && i > 0) detail::atomic_min(first, i);
  });
  EXPECT_EQ(first.load(), 9973);
}

// ---- fault injection through the library ----

TEST(FaultInjection, ParsesItsSpecificationAndRejectsBadOnes) {
  FaultGuard guard;
  fi::set_fault_injection(std::string("alloc:3,write:2"));
  EXPECT_THROW(fi::set_fault_injection(std::string("alloc")), InvalidInput);
  EXPECT_THROW(fi::set_fault_injection(std::string("disk:1")), InvalidInput);
  EXPECT_THROW(fi::set_fault_injection(std::string("write:0")), InvalidInput);
  EXPECT_THROW(fi::set_fault_injection(std::string("write:2x")), InvalidInput);
  fi::set_fault_injection(std::string(""));
  EXPECT_FALSE(detail::fault_due(fi::FaultKind::Write));
}

/// Runs detection once with `kind` armed beyond reach to count its events, then fails
/// events across the whole run in turn and checks the error that comes out.
template <class Check>
void fail_every_event(fi::FaultKind kind, int64_t limit, Check&& check) {
  FaultGuard guard;
  const Context ctx = test_context();
  const Dataset d = generate_in_memory(small_world(11, 150, 16), ctx);
  DetectOptions o;
  o.exact_request_limit = 1000;  // the IVF self-join too, with its parallel regions
  fi::set_fault_injection(kind, int64_t(1) << 40);
  const DetectionResult reference = detect_rings(d, o, ctx);
  const int64_t events = fi::fault_events(kind);
  ASSERT_GT(events, 2);
  // Every event when there are few, otherwise `limit` of them spread over the run.
  std::vector<int64_t> chosen;
  for (int64_t i = 0; i < std::min(events, limit); ++i)
    chosen.push_back(events <= limit ? i + 1 : 1 + i * (events - 1) / (limit - 1));
  for (const int64_t n : chosen) {
    fi::set_fault_injection(kind, n);
    try {
      detect_rings(d, o, ctx);
      ADD_FAILURE() << "no error at event " << n << " of " << events;
    } catch (const std::exception& e) {
      check(e, n);
    }
  }
  fi::clear_fault_injection();
  EXPECT_EQ(detect_rings(d, o, ctx).ring, reference.ring) << "a clean run after the faults";
}

TEST(FaultInjection, AFailedAllocationInAnyStageIsAnErrorNamingTheStage) {
  fail_every_event(fi::FaultKind::Allocation, 10, [](const std::exception& e, int64_t n) {
    const std::string m = e.what();
    EXPECT_NE(dynamic_cast<const InternalError*>(&e), nullptr) << n << ": " << m;
    EXPECT_NE(m.find("out of memory"), std::string::npos) << n << ": " << m;
  });
}

TEST(FaultInjection, AnExceptionInAnyParallelRegionComesOutAfterTheRegion) {
  fail_every_event(fi::FaultKind::ParallelRegion, 10, [](const std::exception& e, int64_t n) {
    const std::string m = e.what();
    EXPECT_NE(dynamic_cast<const InternalError*>(&e), nullptr) << n << ": " << m;
    EXPECT_NE(m.find("injected fault in a parallel region"), std::string::npos) << n << ": " << m;
  });
}

TEST_F(Faults, AFullDiskAtAnyWriteLeavesThePreviousOutputsByteIdentical) {
  FaultGuard guard;
  const Context ctx = test_context();
  const DetectionResult r =
      detect_rings(generate_in_memory(small_world(12, 300, 16), ctx), DetectOptions{}, ctx);
  const std::string out = path("out.h5"), report = path("report.json");
  write_detection_output(out, r);
  write_file_atomically(report, "previous report\n");
  const std::string before_out = slurp(out), before_report = slurp(report);
  const std::string big_report(3 << 20, 'x');  // several pieces: the failure strikes mid-file

  fi::set_fault_injection(fi::FaultKind::Write, int64_t(1) << 40);
  write_detection_output(path("count.h5"), r);
  const int64_t writes = fi::fault_events(fi::FaultKind::Write);
  ASSERT_GT(writes, 10);
  fs::remove(path("count.h5"));
  for (int64_t n = 1; n <= writes; ++n) {
    fi::set_fault_injection(fi::FaultKind::Write, n);
    try {
      write_detection_output(out, r);
      ADD_FAILURE() << "no error at write " << n;
    } catch (const InternalError& e) {
      EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(out), std::string::npos) << e.what();
    }
    EXPECT_EQ(slurp(out), before_out) << "write " << n;
  }
  for (int64_t n = 1; n <= 4; ++n) {
    fi::set_fault_injection(fi::FaultKind::Write, n);
    EXPECT_THROW(write_file_atomically(report, big_report), InternalError) << n;
    EXPECT_EQ(slurp(report), before_report) << "write " << n;
  }
  EXPECT_TRUE(temporaries(dir_).empty());
}

// ---- stale temporaries ----

TEST_F(Faults, StaleTemporariesAreRemovedAndALiveRunsOneIsKept) {
  const std::string out = path("out.h5");
  // A killed writer of this version (unlocked), one of an older version whose process is
  // gone (PATH.tmp.<pid>), and a live writer's file, locked.
  std::ofstream(out + ".tmp.123.abc") << "partial";
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  std::ofstream(out + ".tmp." + std::to_string(gone)) << "partial";
  const std::string live = out + ".tmp.456.def";
  std::ofstream(live) << "being written";
  const int fd = ::open(live.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  std::ofstream(path("other.h5.tmp.1.abc")) << "another output's";
  std::ofstream(out + ".tmp.old") << "a user's file";  // not a name ringscan makes

  EXPECT_EQ(remove_stale_temporaries(out), 2);
  std::vector<std::string> left = temporaries(dir_);
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"other.h5.tmp.1.abc", "out.h5.tmp.456.def",
                                            "out.h5.tmp.old"}));
  write_file_atomically(out, "done\n");  // writing does the same clean-up
  EXPECT_EQ(slurp(out), "done\n");
  EXPECT_TRUE(fs::exists(live));
  ::close(fd);  // the live writer is gone now: its file is stale
  EXPECT_EQ(remove_stale_temporaries(out), 1);
  left = temporaries(dir_);
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"other.h5.tmp.1.abc", "out.h5.tmp.old"}));
}

// ---- the CLI under faults: exit codes, messages, nothing lost ----

TEST_F(Faults, CliFailuresExitNonZeroAndLeaveThePreviousResultByteIdentical) {
  const std::string in = input("in.h5", 21, 120, 8);
  const std::string out = path("out.h5"), report = path("report.json"), log = path("log");
  const std::vector<std::string> detect = {"detect", "-q", in, "-o", out, "--report", report,
                                           "--threads", "2"};
  ASSERT_EQ(run_cli(detect, log).code, 0) << slurp(log);
  const std::string before_out = slurp(out), before_report = slurp(report);
  const int64_t report_write = output_writes(in, path("count.h5")) + 1;
  struct Case {
    std::string fault;
    int code;
    std::string message;
  };
  const Case cases[] = {
      {"write:1", 1, "No space left on device"},   // first attribute of the output
      {"write:30", 1, "No space left on device"},  // mid-way through the output
      {"alloc:1", 1, "out of memory"},              // the loader's, in the reader process
      {"alloc:3", 1, "out of memory"},              // a stage's
      {"parallel:1", 1, "injected fault in a parallel region"},
      {"parallel:9", 1, "injected fault in a parallel region"},
      {"write:" + std::to_string(report_write), 1, "No space left on device"},  // the report
  };
  for (const Case& c : cases) {
    const Child r = run_cli(detect, log, c.fault);
    EXPECT_EQ(r.code, c.code) << c.fault << ": " << r.output;
    EXPECT_NE(r.output.find("ringscan: error: "), std::string::npos) << c.fault << ": " << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.fault << ": " << r.output;
    // The output is already new when the report fails: both are complete results.
    if (c.message != "No space left on device" || c.fault == cases[0].fault ||
        c.fault == cases[1].fault)
      EXPECT_EQ(slurp(out), before_out) << c.fault;
    EXPECT_EQ(slurp(report), before_report) << c.fault;
    EXPECT_TRUE(temporaries(dir_).empty()) << c.fault;
  }
  // A bad specification is invalid usage.
  EXPECT_EQ(run_cli(detect, log, "disk:1").code, 2);
}

TEST_F(Faults, TheInstalledCommandIgnoresTheFaultHookInItsEnvironment) {
  const std::string in = input("in.h5", 22, 120, 8);
  const std::string out = path("hookless.h5"), log = path("log");
  const std::vector<std::string> detect = {"detect", "-q", in, "-o", out, "--threads", "2"};
  // The test build's command obeys the hook; the installed one runs as if it were unset.
  EXPECT_EQ(run_cli(detect, log, "write:1").code, 1) << slurp(log);
  const Child r = run_cli(detect, log, "write:1", std::chrono::microseconds(0), RINGSCAN_CLI);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(access(out.c_str(), F_OK), 0);
}

TEST_F(Faults, KilledAtAnyMomentTheOutputsAreThePreviousOrTheNewCompleteResult) {
  // The previous result comes from another input, so previous and new results differ.
  const std::string old_in = input("old.h5", 31, 120, 8), in = input("in.h5", 32, 120, 8);
  const std::string out = path("out.h5"), report = path("report.json"), log = path("log");
  auto detect = [&](const std::string& input, const std::string& o, const std::string& r) {
    return std::vector<std::string>{"detect", "-q", input, "-o", o, "--report", r, "--threads", "2"};
  };
  ASSERT_EQ(run_cli(detect(old_in, out, report), log).code, 0) << slurp(log);
  const std::string old_out = slurp(out), old_report = slurp(report);
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(run_cli(detect(in, path("new.h5"), path("new.json")), log).code, 0) << slurp(log);
  const auto duration = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  const DetectionLabels new_labels = read_detection_labels(path("new.h5"));
  ASSERT_FALSE(same_labels(new_labels, read_detection_labels(out)));
  const auto new_rings = nlohmann::json::parse(slurp(path("new.json")))["rings"];

  int previous = 0, replaced = 0, killed = 0;
  auto check = [&](const std::string& what) {
    const std::string now_out = slurp(out), now_report = slurp(report);
    if (now_out == old_out) {
      ++previous;
    } else {
      ++replaced;
      EXPECT_TRUE(same_labels(read_detection_labels(out), new_labels)) << what;
    }
    if (now_report != old_report) {
      const auto j = nlohmann::json::parse(now_report, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << what << ": partial report";
      EXPECT_EQ(j["rings"], new_rings) << what;
    }
    // Restore the previous result for the next round.
    std::ofstream(out, std::ios::binary) << old_out;
    std::ofstream(report, std::ios::binary) << old_report;
  };
  // SIGKILL at delays spread over the whole run (fixed seed)...
  std::mt19937 rng(20261129);
  std::uniform_int_distribution<int64_t> delay(1, duration.count() * 11 / 10);
  for (int i = 0; i < 12; ++i) {
    const auto after = std::chrono::microseconds(delay(rng));
    const Child r = run_cli(detect(in, out, report), log, "", after);
    killed += r.code == -SIGKILL;
    check("kill after " + std::to_string(after.count()) + " us");
  }
  // ... and at the writer's own steps: every attribute, dataset, flush, fsync and rename of
  // the output and of the report (the process raises SIGKILL at its Nth write).
  const int64_t w = output_writes(in, path("count.h5"));
  // Kill points are the write checkpoints: the output's attributes and datasets, its flush
  // (w - 2), fsync (w - 1) and rename (w), just after its rename (w + 1); then the report's
  // write (w + 2), fsync, rename and just after its rename (w + 5).
  for (const int64_t n : {int64_t(1), w / 4, w / 2, w * 3 / 4, w - 2, w - 1, w, w + 1, w + 2,
                          w + 3, w + 4, w + 5}) {
    const Child r = run_cli(detect(in, out, report), log, "kill-write:" + std::to_string(n));
    EXPECT_TRUE(r.code == -SIGKILL || r.code == 0) << n << ": " << r.output;
    killed += r.code == -SIGKILL;
    check("kill at write " + std::to_string(n));
  }
  // The writer's kill points alone give 7 previous results (up to the rename) and 5 new ones
  // (after it); the timed kills add to either, depending on how fast this machine runs.
  EXPECT_GT(killed, 12);
  EXPECT_GE(previous, 7);
  EXPECT_GE(replaced, 5);
  // The next successful run cleans up what the killed ones left.
  ASSERT_EQ(run_cli(detect(in, out, report), log).code, 0) << slurp(log);
  EXPECT_TRUE(same_labels(read_detection_labels(out), new_labels));
  std::vector<std::string> left = temporaries(dir_);
  EXPECT_TRUE(left.empty()) << left.front();
}

// ---- memory budget ----

TEST_F(Faults, DetectStaysWithinItsBudgetAndTheEstimateIsClose) {
  if (kSanitized) GTEST_SKIP() << "peak RSS under AddressSanitizer is not the program's";
  // Large enough for the IVF request index (R > 5000) and for the data to outweigh the
  // process itself, small enough to take a second.
  const std::string in = input("in.h5", 41, 2000, 64);
  const int64_t estimate = estimate_detection_memory(read_input_shape(in), DetectOptions{});
  // The CPU backend, whatever the machine: the estimate is of its memory. A CUDA run adds the
  // driver's and cuBLAS's resident memory (over 100 MB), which at this size is most of it.
  const Child r = run_cli({"detect", "-q", in, "-o", path("out.h5"), "--threads", "2", "--device", "cpu",
                           "--memory-budget", std::to_string(estimate), "--report", path("report.json")},
                          path("log"));
  ASSERT_EQ(r.code, 0) << r.output;
  // The child's own peak (VmHWM, which exec resets), from its report: wait4's ru_maxrss
  // would include this test process's memory at fork.
  const std::string report = slurp(path("report.json"));
  const std::size_t at = report.find("\"peak_resident_bytes\":");
  ASSERT_NE(at, std::string::npos) << report;
  const int64_t peak = int64_t(std::atof(report.c_str() + at + 22));
  ASSERT_GT(peak, 0);
  // The budget holds, with 5% slack for the allocator; and the estimate is not so far above
  // the real peak that it would refuse jobs that fit.
  EXPECT_LE(peak, estimate + estimate / 20) << "peak " << peak << ", estimate " << estimate;
  EXPECT_GE(peak, estimate * 6 / 10) << "peak " << peak << ", estimate " << estimate;
}

TEST_F(Faults, AJobThatCannotFitIsRefusedUpFrontWithTheEstimate) {
  const std::string in = input("in.h5", 42);
  const int64_t estimate = estimate_detection_memory(read_input_shape(in), DetectOptions{});
  const std::string out = path("out.h5");
  std::ofstream(out) << "previous";
  const Child r = run_cli({"detect", "-q", in, "-o", out, "--memory-budget",
                           std::to_string(estimate - 1)},
                          path("log"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("estimated " + format_size(estimate)), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("memory budget of " + format_size(estimate - 1)), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("[load]"), std::string::npos) << "refused before loading";
  EXPECT_EQ(slurp(out), "previous");
  EXPECT_TRUE(temporaries(dir_).empty());
}
