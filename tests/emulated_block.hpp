// A CUDA thread block emulated on the host, so that the CPU tests run the device's block-level
// code (host/portable/nearest_selection.hpp) as the kernel does: `threads` std::threads run the
// same body concurrently, sync() is __syncthreads (a barrier) and claim() is an atomicAdd on a
// counter in shared memory. Races between threads of a round are real here, as on the device.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace ringscan::testing {

class EmulatedBlock {
 public:
  /// What the threads of one block share: the barrier's state.
  struct Shared {
    explicit Shared(int n) : threads(n) {}
    std::mutex mutex;
    std::condition_variable released;
    const int threads;
    int waiting = 0;
    int64_t generation = 0;
  };

  EmulatedBlock(Shared& shared, int thread) : shared_(shared), thread_(thread) {}
  int thread() const { return thread_; }
  int size() const { return shared_.threads; }
  /// Waits until every thread of the block has reached a sync(); what each wrote before is
  /// visible to all after (the mutex orders it).
  void sync() const {
    std::unique_lock<std::mutex> lock(shared_.mutex);
    const int64_t generation = shared_.generation;
    if (++shared_.waiting == shared_.threads) {
      shared_.waiting = 0;
      ++shared_.generation;
      shared_.released.notify_all();
    } else {
      shared_.released.wait(lock, [&] { return shared_.generation != generation; });
    }
  }
  /// counter++, atomically and relaxed as atomicAdd is (no ordering between the threads that
  /// a sanitizer could mistake for a barrier); returns the old value.
  int claim(int& counter) const { return __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); }

 private:
  Shared& shared_;
  int thread_;
};

/// Runs body(block) on every thread of one emulated block of `threads`; returns when all
/// have. The body must reach the same sync() calls on every thread, as on the device.
template <class Body>
void run_emulated_block(int threads, const Body& body) {
  EmulatedBlock::Shared shared(threads);
  if (threads == 1) {  // no thread to race with: run it here
    body(EmulatedBlock(shared, 0));
    return;
  }
  std::vector<std::thread> running;
  running.reserve(size_t(threads));
  for (int t = 0; t < threads; ++t)
    running.emplace_back([&shared, &body, t] { body(EmulatedBlock(shared, t)); });
  for (auto& thread : running) thread.join();
}

}  // namespace ringscan::testing
