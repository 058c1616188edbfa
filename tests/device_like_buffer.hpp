// Device memory as the CPU tests hold it: what the portable stages and TiledRowSearch take as
// their Buffer on the host. It has DeviceBuffer's interface (data(), size()) and no more, it
// starts as garbage as cudaMalloc's memory does (zeros would hide a read before the first
// write), and its bytes are counted, so a test can hold a search to its budget.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

namespace ringscan::testing {

/// Bytes of DeviceLikeBuffer memory held now, and the most held at once since reset().
struct DeviceLikeBytes {
  static inline int64_t live = 0, peak = 0;
  static void add(int64_t bytes) {
    live += bytes;
    peak = std::max(peak, live);
  }
  static void reset() { peak = live; }
};

template <class T>
class DeviceLikeBuffer {
 public:
  static_assert(std::is_trivially_copyable_v<T>, "poisoned as bytes");
  DeviceLikeBuffer() = default;
  explicit DeviceLikeBuffer(int64_t n) : data_(static_cast<size_t>(n)) {
    if (n > 0) std::memset(static_cast<void*>(data_.data()), 0xA5, sizeof(T) * static_cast<size_t>(n));
    DeviceLikeBytes::add(bytes());
  }
  DeviceLikeBuffer(DeviceLikeBuffer&& other) noexcept : data_(std::move(other.data_)) { other.data_.clear(); }
  DeviceLikeBuffer& operator=(DeviceLikeBuffer&& other) noexcept {
    DeviceLikeBytes::add(-bytes());
    data_ = std::move(other.data_);
    other.data_.clear();
    return *this;
  }
  ~DeviceLikeBuffer() { DeviceLikeBytes::add(-bytes()); }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  int64_t size() const { return int64_t(data_.size()); }

 private:
  int64_t bytes() const { return int64_t(sizeof(T) * data_.size()); }
  std::vector<T> data_;
};

}  // namespace ringscan::testing
