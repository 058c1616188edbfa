// Per-stage progress on stderr for the CLI: a live bar on a terminal, plain lines in logs.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#include "ringscan/context.hpp"

namespace ringscan::cli {

/// Renders the stage reports of a Context (stage, done, total).
///
/// A stage starts when a new stage name is reported and ends when another stage starts or
/// finish() is called; its duration runs to its last completion report (done == total),
/// so that idle time between stages is not charged to it.
///  - terminal: one bar line per stage, redrawn at most ~10 times a second, e.g.
///    "[load] ████████░░░░  80% 1.2M/1.5M  3.4s"
///  - otherwise (a log file, a pipe): "[load] started", at most one progress line every
///    5 s, and "[load] done in 3.42 s".
/// Thread-safe: stages may report from OpenMP worker threads.
class Progress {
 public:
  /// `terminal`: whether `out` is a terminal (isatty); `quiet` prints nothing at all.
  Progress(bool quiet, bool terminal, std::FILE* out = stderr);
  /// Progress on stderr, a bar when stderr is a terminal.
  static Progress for_stderr(bool quiet);
  /// Ends an open stage's line without calling it done (the job failed).
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// The callback to put in Context::progress; it refers to this object, which must
  /// outlive every use of it.
  ProgressFn callback();
  /// Reports one event directly (what the callback does).
  void report(const std::string& stage, int64_t done, int64_t total);
  /// Ends the current stage as done; call on success before printing results.
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  void close_stage_locked(Clock::time_point now);
  void draw_bar_locked(Clock::time_point now, bool final_draw);
  void print_line_locked(Clock::time_point now);

  bool quiet_;
  bool terminal_;
  std::FILE* out_;
  std::mutex mutex_;
  bool active_ = false;
  std::string stage_;
  int64_t done_ = 0, total_ = 0;
  Clock::time_point start_{}, completed_{}, last_output_{};
  bool completed_set_ = false;
};

/// "999", "15.3k", "1.2M", "3.4G": counts for people.
std::string format_count(int64_t n);

}  // namespace ringscan::cli
