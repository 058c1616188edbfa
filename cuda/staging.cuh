// Copies between pageable host memory and the device: page-locked staging chunks, filled or
// emptied on several host threads, copied asynchronously on streams of their own.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "cuda_check.cuh"

namespace ringscan::cuda {

/// Page-locked host memory for the staging chunks (copies from it run asynchronously).
class PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t bytes) { RINGSCAN_CUDA_TRY(cudaMallocHost(&data_, bytes)); }
  ~PinnedBuffer() { cudaFreeHost(data_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  float* data() { return static_cast<float*>(data_); }

 private:
  void* data_ = nullptr;
};

class Stream {
 public:
  Stream() { RINGSCAN_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

/// dst [n] = src [n], in slices on several host threads when the copy is large: one thread
/// fills (or empties) a pinned buffer far slower than the PCIe link moves it.
inline void copy_with_threads(const float* src, int64_t n, float* dst) {
  constexpr int64_t kSliceFloats = int64_t(1) << 20;  // 4 MiB a thread at least
  const int64_t cores = std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency()));
  const int64_t threads = std::min<int64_t>({n / kSliceFloats, 8, cores});
  if (threads <= 1) {
    std::copy_n(src, n, dst);
    return;
  }
  std::vector<std::thread> workers;
  const int64_t per = (n + threads - 1) / threads;
  for (int64_t t = 1; t < threads; ++t) {
    const int64_t begin = std::min(n, t * per), count = std::min(n, begin + per) - begin;
    workers.emplace_back([=] { std::copy_n(src + begin, count, dst + begin); });
  }
  std::copy_n(src, std::min(n, per), dst);
  for (auto& w : workers) w.join();
}

/// device [n] = host [n] (pageable) through two pinned chunks on two streams, so that filling
/// one chunk overlaps the copy of the other; returns when the copy is complete.
inline void upload_through_pinned(const float* host, int64_t n, float* device) {
  if (n <= 0) return;
  constexpr int64_t kChunkFloats = int64_t(4) << 20;  // 16 MiB
  const int64_t chunk = std::min(kChunkFloats, n);
  PinnedBuffer pinned[2] = {PinnedBuffer(sizeof(float) * size_t(chunk)), PinnedBuffer(sizeof(float) * size_t(chunk))};
  Stream streams[2];
  for (int64_t first = 0, k = 0; first < n; first += chunk, ++k) {
    const int s = int(k & 1);
    const int64_t count = std::min(chunk, n - first);
    // The chunk two steps back used this buffer: wait for its copy to finish.
    RINGSCAN_CUDA_TRY(cudaStreamSynchronize(streams[s].get()));
    copy_with_threads(host + first, count, pinned[s].data());
    RINGSCAN_CUDA_TRY(cudaMemcpyAsync(device + first, pinned[s].data(), sizeof(float) * size_t(count),
                                      cudaMemcpyHostToDevice, streams[s].get()));
  }
  for (auto& s : streams) RINGSCAN_CUDA_TRY(cudaStreamSynchronize(s.get()));
}

/// Downloads to pageable host memory through two pinned chunks on two streams, so that the
/// copy of one chunk from the device overlaps emptying the other. Its buffers serve every
/// download it makes (page-locking memory costs more than copying a chunk).
class PinnedDownload {
 public:
  static constexpr int64_t kChunkFloats = int64_t(4) << 20;  // 16 MiB

  /// Buffers for downloads of up to `largest` floats a chunk (at most kChunkFloats).
  explicit PinnedDownload(int64_t largest)
      : chunk_(std::max<int64_t>(1, std::min(kChunkFloats, largest))),
        pinned_{PinnedBuffer(sizeof(float) * size_t(chunk_)), PinnedBuffer(sizeof(float) * size_t(chunk_))} {}

  /// host [n] = device [n]; returns when complete.
  void operator()(const float* device, int64_t n, float* host) {
    if (n <= 0) return;
    // Chunk k goes to buffer k & 1; it is emptied once chunk k + 1 is on its way.
    auto empty = [&](int64_t k) {
      const int s = int(k & 1);
      const int64_t first = k * chunk_, count = std::min(chunk_, n - first);
      RINGSCAN_CUDA_TRY(cudaStreamSynchronize(streams_[s].get()));
      copy_with_threads(pinned_[s].data(), count, host + first);
    };
    const int64_t chunks = (n + chunk_ - 1) / chunk_;
    for (int64_t k = 0; k < chunks; ++k) {
      const int s = int(k & 1);
      const int64_t first = k * chunk_, count = std::min(chunk_, n - first);
      RINGSCAN_CUDA_TRY(cudaMemcpyAsync(pinned_[s].data(), device + first, sizeof(float) * size_t(count),
                                        cudaMemcpyDeviceToHost, streams_[s].get()));
      if (k > 0) empty(k - 1);
    }
    empty(chunks - 1);
  }

 private:
  int64_t chunk_;
  PinnedBuffer pinned_[2];
  Stream streams_[2];
};

}  // namespace ringscan::cuda
