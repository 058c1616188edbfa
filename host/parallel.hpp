// OpenMP loops that never let an exception escape the parallel region (that would call
// std::terminate): every iteration runs under a capture, the first exception is kept, the
// remaining iterations are skipped and the exception is rethrown, unchanged, after the
// region (FAISS learnt this the hard way: #4427). Every parallel loop in host/ goes through
// these helpers.
#pragma once
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <vector>

#include "ringscan/error.hpp"
#include "ringscan/fault_injection.hpp"

namespace ringscan::detail {

/// Keeps the first exception thrown by any thread of a parallel region.
class ExceptionCapture {
 public:
  /// Runs f() unless an earlier call failed; an exception is captured, never propagated.
  template <class F>
  void run(F&& f) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      f();
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true);
    }
  }
  /// Rethrows the captured exception, if any; call after the parallel region.
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr error_;
};

/// The iteration of a parallel loop of n iterations at which an armed ParallelRegion fault
/// throws (the middle one), or -1.
inline int64_t parallel_fault_iteration(int64_t n) {
  return n > 0 && fault_due(testing::FaultKind::ParallelRegion) ? n / 2 : -1;
}

/// body(i) for i in [0, n) on the OpenMP threads; chunk 0: static schedule, otherwise
/// dynamic with that chunk. The first exception of any iteration is rethrown afterwards.
template <class Body>
void parallel_for(int64_t n, int64_t chunk, Body&& body) {
  ExceptionCapture capture;
  const int64_t fail_at = parallel_fault_iteration(n);
  auto step = [&](int64_t i) {
    capture.run([&] {
      if (i == fail_at) throw InternalError("injected fault in a parallel region");
      body(i);
    });
  };
  if (chunk <= 0) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) step(i);
  } else {
#pragma omp parallel for schedule(dynamic, chunk)
    for (int64_t i = 0; i < n; ++i) step(i);
  }
  capture.rethrow();
}

/// body(begin, end) over [0, n) in blocks of `block` iterations (the last one shorter), on
/// the OpenMP threads. For elementwise loops over arrays: the per-index exception capture of
/// parallel_for would keep the compiler from vectorising them.
template <class Body>
void parallel_for_blocks(int64_t n, int64_t block, Body&& body) {
  if (n <= 0) return;
  const int64_t blocks = (n + block - 1) / block;
  parallel_for(blocks, 0, [&](int64_t b) { body(b * block, std::min(n, (b + 1) * block)); });
}

/// Sorts v by `less`, a strict order under which equal elements are interchangeable (so the
/// result does not depend on the thread count): chunks sorted on the OpenMP threads, then
/// merged pairwise in rounds, through parallel_for. Small inputs: std::sort. Extra memory:
/// one copy of v.
template <class T, class Less>
void parallel_sort(std::vector<T>& v, Less less) {
  const int64_t n = int64_t(v.size());
  const int threads = omp_get_max_threads();
  if (n < (int64_t(1) << 20) || threads < 2) {
    std::sort(v.begin(), v.end(), less);
    return;
  }
  int64_t chunks = 1;
  while (chunks < 2 * threads && chunks < 64) chunks *= 2;
  auto bound = [&](int64_t c) { return n * c / chunks; };
  parallel_for(chunks, 1, [&](int64_t c) { std::sort(v.begin() + bound(c), v.begin() + bound(c + 1), less); });
  std::vector<T> merged(v.size());
  for (int64_t width = 1; width < chunks; width *= 2) {
    parallel_for(chunks / (2 * width), 1, [&](int64_t m) {
      const int64_t lo = bound(2 * m * width), mid = bound((2 * m + 1) * width), hi = bound((2 * m + 2) * width);
      std::merge(v.begin() + lo, v.begin() + mid, v.begin() + mid, v.begin() + hi, merged.begin() + lo, less);
    });
    v.swap(merged);
  }
}

/// Lowers `target` to `value` if smaller (the first failing index of a parallel scan).
inline void atomic_min(std::atomic<int64_t>& target, int64_t value) {
  int64_t seen = target.load(std::memory_order_relaxed);
  while (value < seen && !target.compare_exchange_weak(seen, value)) {
  }
}

}  // namespace ringscan::detail
