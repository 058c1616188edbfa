// An owning device array with explicit 64-bit sizes; copies are explicit and synchronous.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "cuda_check.cuh"

namespace ringscan::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(int64_t n) : size_(n) {
    if (n > 0) RINGSCAN_CUDA_TRY(cudaMalloc(&data_, sizeof(T) * static_cast<size_t>(n)));
  }
  /// A device copy of `host` [n] (nothing for n = 0).
  DeviceBuffer(const T* host, int64_t n) : DeviceBuffer(n) {
    if (n > 0)
      RINGSCAN_CUDA_TRY(cudaMemcpy(data_, host, sizeof(T) * size_t(n), cudaMemcpyHostToDevice));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.data(), int64_t(host.size())) {}
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);  // no throw from a destructor; a failure here is sticky anyway
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    DeviceBuffer(std::move(other)).swap(*this);
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return size_; }
  /// Copies `host` [n] into the first n elements (n <= size()).
  void upload(const T* host, int64_t n) {
    if (n > 0)
      RINGSCAN_CUDA_TRY(cudaMemcpy(data_, host, sizeof(T) * size_t(n), cudaMemcpyHostToDevice));
  }
  /// Copies the first n elements back into `host` [n].
  void download(T* host, int64_t n) const {
    if (n > 0)
      RINGSCAN_CUDA_TRY(cudaMemcpy(host, data_, sizeof(T) * size_t(n), cudaMemcpyDeviceToHost));
  }

 private:
  void swap(DeviceBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }

  T* data_ = nullptr;
  int64_t size_ = 0;
};

/// Device memory as the portable stages (host/portable/) take it: owning buffers and
/// copies to the host.
struct DeviceMemory {
  template <class T>
  using Buffer = DeviceBuffer<T>;
  template <class T>
  static void to_host(const T* p, int64_t n, T* out) {
    if (n > 0) RINGSCAN_CUDA_TRY(cudaMemcpy(out, p, sizeof(T) * size_t(n), cudaMemcpyDeviceToHost));
  }
};

}  // namespace ringscan::cuda
