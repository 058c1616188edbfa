#include "cli/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace ringscan::cli {
namespace {

constexpr auto kBarInterval = std::chrono::milliseconds(100);  // ~10 redraws a second
constexpr auto kLineInterval = std::chrono::seconds(5);        // plain output stays short
constexpr int kBarWidth = 20;

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string format_duration(double s) {
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.2f s", s);
  } else if (s < 3600) {
    const int total = static_cast<int>(s + 0.5);
    std::snprintf(buf, sizeof buf, "%dm %02ds", total / 60, total % 60);
  } else {
    const int total = static_cast<int>(s / 60 + 0.5);
    std::snprintf(buf, sizeof buf, "%dh %02dm", total / 60, total % 60);
  }
  return buf;
}

}  // namespace

std::string format_count(int64_t n) {
  char buf[32];
  const double v = static_cast<double>(n);
  const double a = v < 0 ? -v : v;
  if (a < 1e3) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  else if (a < 1e6) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else if (a < 1e9) std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1fG", v / 1e9);
  return buf;
}

Progress::Progress(bool quiet, bool terminal, std::FILE* out)
    : quiet_(quiet), terminal_(terminal), out_(out) {}

Progress Progress::for_stderr(bool quiet) {
  // A "dumb" terminal (Emacs shells, some CI consoles) cannot redraw a line in place.
  const char* term = std::getenv("TERM");
  const bool dumb = term != nullptr && std::strcmp(term, "dumb") == 0;
  return Progress(quiet, isatty(STDERR_FILENO) != 0 && !dumb);
}

Progress::~Progress() {
  // Reached with a stage still open only when the job failed (the CLI calls finish() on
  // success): end the line without claiming the stage is done, so the error message that
  // follows starts on a line of its own.
  if (quiet_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_) return;
  if (terminal_) {
    std::fputs("\n", out_);
  } else {
    std::fprintf(out_, "[%s] stopped after %s\n", stage_.c_str(),
                 format_duration(seconds_between(start_, Clock::now())).c_str());
  }
  std::fflush(out_);
  active_ = false;
}

ProgressFn Progress::callback() {
  return [this](const std::string& stage, int64_t done, int64_t total) {
    report(stage, done, total);
  };
}

void Progress::report(const std::string& stage, int64_t done, int64_t total) {
  if (quiet_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = Clock::now();
  const bool complete = total > 0 && done >= total;
  if (!active_ || stage != stage_) {
    if (active_) close_stage_locked(now);
    active_ = true;
    stage_ = stage;
    start_ = now;
    done_ = done;
    total_ = total;
    completed_set_ = complete;
    completed_ = now;
    if (terminal_) {
      draw_bar_locked(now, false);
    } else {
      std::fprintf(out_, "[%s] started\n", stage_.c_str());
      std::fflush(out_);
    }
    last_output_ = now;
    return;
  }
  // Reports from several threads may arrive out of order; never move the bar backwards
  // within one total.
  if (total == total_) done = std::max(done, done_);
  done_ = done;
  total_ = total;
  if (complete) {
    if (!completed_set_) completed_ = now;
    completed_set_ = true;
  } else {
    completed_set_ = false;
  }
  if (terminal_) {
    if (now - last_output_ >= kBarInterval || complete) {
      draw_bar_locked(now, false);
      last_output_ = now;
    }
  } else if (now - last_output_ >= kLineInterval) {
    print_line_locked(now);
    last_output_ = now;
  }
}

void Progress::finish() {
  if (quiet_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (active_) close_stage_locked(Clock::now());
}

void Progress::close_stage_locked(Clock::time_point now) {
  const auto end = completed_set_ ? completed_ : now;
  if (terminal_) {
    draw_bar_locked(end, true);
  } else {
    std::fprintf(out_, "[%s] done in %s\n", stage_.c_str(),
                 format_duration(seconds_between(start_, end)).c_str());
    std::fflush(out_);
  }
  active_ = false;
}

void Progress::draw_bar_locked(Clock::time_point now, bool final_draw) {
  std::string line = "\r\x1b[K[" + stage_ + "] ";
  char buf[96];
  if (total_ > 0) {
    const double fraction =
        std::clamp(static_cast<double>(done_) / static_cast<double>(total_), 0.0, 1.0);
    const int filled = static_cast<int>(fraction * kBarWidth);
    for (int i = 0; i < kBarWidth; ++i) line += i < filled ? "\u2588" : "\u2591";
    std::snprintf(buf, sizeof buf, " %3d%% %s/%s", static_cast<int>(fraction * 100),
                  format_count(done_).c_str(), format_count(total_).c_str());
    line += buf;
  } else if (done_ > 0) {
    line += format_count(done_);  // indeterminate: a running count
  } else {
    line += "...";
  }
  const double elapsed = seconds_between(start_, now);
  if (final_draw) {
    line += "  done in " + format_duration(elapsed) + "\n";
  } else {
    std::snprintf(buf, sizeof buf, "  %.1fs", elapsed);
    line += buf;
  }
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
}

void Progress::print_line_locked(Clock::time_point now) {
  const std::string elapsed = format_duration(seconds_between(start_, now));
  if (total_ > 0) {
    const double pct = 100.0 * static_cast<double>(done_) / static_cast<double>(total_);
    std::fprintf(out_, "[%s] %.0f%% (%s/%s) after %s\n", stage_.c_str(), pct,
                 format_count(done_).c_str(), format_count(total_).c_str(), elapsed.c_str());
  } else {
    std::fprintf(out_, "[%s] %s after %s\n", stage_.c_str(), format_count(done_).c_str(),
                 elapsed.c_str());
  }
  std::fflush(out_);
}

}  // namespace ringscan::cli
