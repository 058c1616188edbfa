// The container of the arrays with a value per request and dimension (the embeddings):
// gigabytes at scale, always filled right after they are sized.
#pragma once
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace ringscan {

/// std::allocator, except that resize() leaves new elements default-initialised (for float:
/// not written). A zero fill of a 10 GB array is one serial pass over it, and the thread that
/// first touches a page pays its fault: the parallel loops that fill the array should be the
/// ones to touch it.
/// Only for arrays whose every element is written before it is read.
template <class T>
class LargeArrayAllocator : public std::allocator<T> {
 public:
  template <class U>
  struct rebind {
    using other = LargeArrayAllocator<U>;
  };
  LargeArrayAllocator() = default;
  template <class U>
  LargeArrayAllocator(const LargeArrayAllocator<U>&) noexcept {}

  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible<U>::value) {
    ::new (static_cast<void*>(p)) U;  // default-initialisation: no fill for trivial types
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

/// A std::vector with LargeArrayAllocator.
template <class T>
using LargeArray = std::vector<T, LargeArrayAllocator<T>>;

}  // namespace ringscan
