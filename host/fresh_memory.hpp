// Fresh memory mapped in parallel before it is written. The kernel maps (and zeroes) a new
// page at its first write, one fault at a time, on the thread that writes. On this project's
// virtual machines, whose memory the host backs as it is first used, that ran at 0.6 to 1.6
// GB/s: most of the time of loading 10M requests (10.7 GB of embeddings; docs/benchmarks.md).
// MADV_POPULATE_WRITE (Linux 5.14) maps a whole range in one call, several times faster, and
// calls on disjoint ranges run in parallel.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "parallel.hpp"

namespace ringscan::detail {

/// Maps the whole pages inside [p, p + bytes) writable now, in 8 MiB pieces on the OpenMP
/// threads, so that the writes which follow take no page faults. Only a hint: where the
/// kernel lacks it (before Linux 5.14, some sandboxes) or memory is short, the call does
/// nothing and the writes fault the pages in, as they would without it.
inline void populate_for_writing(void* p, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  constexpr uintptr_t kPiece = uintptr_t(8) << 20;  // a multiple of any page size
  const auto page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (uintptr_t(p) + page - 1) / page * page;
  const uintptr_t end = (uintptr_t(p) + bytes) / page * page;
  if (end <= first) return;
  parallel_for(int64_t((end - first + kPiece - 1) / kPiece), 1, [&](int64_t i) {
    const uintptr_t at = first + uintptr_t(i) * kPiece;
    // Its failure is not an error: the pages are then faulted in by the writes.
    (void)madvise(reinterpret_cast<void*>(at), std::min(kPiece, end - at), MADV_POPULATE_WRITE);
  });
#else
  (void)p;
  (void)bytes;
#endif
}

/// v.resize(n) (new elements value-initialised, as always), the memory of the new elements
/// mapped first by populate_for_writing. Throws what reserve and resize throw.
template <class T>
void resize_populated(std::vector<T>& v, size_t n) {
  if (n <= v.size()) {
    v.resize(n);
    return;
  }
  v.reserve(n);
  // The storage of elements [size, n) is the allocation's, not yet any element's.
  populate_for_writing(reinterpret_cast<char*>(v.data()) + v.size() * sizeof(T), (n - v.size()) * sizeof(T));
  v.resize(n);
}

/// Grows a vector, reserved to its final size, block by block, the pages ahead of its
/// elements mapped `ahead` elements at a time whenever a block passes those mapped so far:
/// all the threads at once on large pieces, where one small block's pages would keep one or
/// two of them busy.
template <class T>
class PopulatedGrowth {
 public:
  PopulatedGrowth(std::vector<T>& v, size_t ahead) : v_(v), ahead_(ahead), mapped_(v.size()) {}
  /// v.resize(n), value-initialising the new elements.
  void resize(size_t n) {
    if (n > v_.capacity()) {  // past the reservation: the storage moves
      resize_populated(v_, n);
      mapped_ = n;
      return;
    }
    if (n > mapped_) {
      const size_t to = std::min(v_.capacity(), std::max(n, mapped_ + ahead_));
      populate_for_writing(reinterpret_cast<char*>(v_.data()) + mapped_ * sizeof(T), (to - mapped_) * sizeof(T));
      mapped_ = to;
    }
    v_.resize(n);
  }

 private:
  std::vector<T>& v_;
  size_t ahead_, mapped_;
};

}  // namespace ringscan::detail
