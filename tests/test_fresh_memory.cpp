// Fresh memory mapped before it is written (host/fresh_memory.hpp): which pages, and that
// the vectors sized through it hold what std::vector::resize gives.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "fresh_memory.hpp"
#include "ringscan/context.hpp"

using namespace ringscan;

namespace {

size_t page_size() { return size_t(sysconf(_SC_PAGESIZE)); }

/// Whether each whole page inside [p, p + bytes) is resident (mincore); empty on failure.
std::vector<bool> resident_pages(const void* p, size_t bytes) {
  const uintptr_t page = page_size();
  const uintptr_t from = (uintptr_t(p) + page - 1) / page * page, to = (uintptr_t(p) + bytes) / page * page;
  if (to <= from) return {};
  std::vector<unsigned char> v((to - from) / page);
  if (mincore(reinterpret_cast<void*>(from), to - from, v.data()) != 0) return {};
  std::vector<bool> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = (v[i] & 1) != 0;
  return r;
}

/// A fresh private anonymous mapping of `pages` pages, unmapped at the end of its scope.
class FreshPages {
 public:
  explicit FreshPages(size_t pages) : bytes_(pages * page_size()) {
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<char*>(p);
    // Where transparent huge pages are "always", one write maps its whole 2 MiB.
    if (base_) madvise(base_, bytes_, MADV_NOHUGEPAGE);
  }
  ~FreshPages() {
    if (base_) munmap(base_, bytes_);
  }
  FreshPages(const FreshPages&) = delete;
  FreshPages& operator=(const FreshPages&) = delete;

  char* base() const { return base_; }
  /// Whether each page is resident.
  std::vector<bool> resident() const { return resident_pages(base_, bytes_); }

 private:
  size_t bytes_;
  char* base_ = nullptr;
};

/// Whether this kernel maps pages on MADV_POPULATE_WRITE (Linux 5.14; not every sandbox).
bool kernel_populates() {
#ifdef MADV_POPULATE_WRITE
  FreshPages probe(1);
  return probe.base() && madvise(probe.base(), page_size(), MADV_POPULATE_WRITE) == 0;
#else
  return false;
#endif
}

}  // namespace

TEST(PopulateForWriting, MapsEveryWholePageInsideTheRangeAndNoneOutsideIt) {
  if (!kernel_populates()) GTEST_SKIP() << "this kernel has no MADV_POPULATE_WRITE: nothing to map";
  // Over 20 MiB: three 8 MiB pieces, on three threads.
  const size_t page = page_size(), pages = (size_t(24) << 20) / page;
  FreshPages m(pages);
  ASSERT_NE(m.base(), nullptr);
  const ThreadScope threads(3);
  // From inside page 1 to inside the page before the last: pages 2 .. pages-3 are whole.
  char* from = m.base() + page + 100;
  char* to = m.base() + (pages - 2) * page + 50;
  detail::populate_for_writing(from, size_t(to - from));
  const std::vector<bool> resident = m.resident();
  ASSERT_EQ(resident.size(), pages);
  for (size_t i = 0; i < pages; ++i) {
    const bool whole_inside = i >= 2 && i + 2 < pages;
    EXPECT_EQ(resident[i], whole_inside) << "page " << i << " of " << pages;
  }
}

TEST(PopulateForWriting, IgnoresRangesWithoutAWholePage) {
  FreshPages m(2);
  ASSERT_NE(m.base(), nullptr);
  detail::populate_for_writing(m.base() + 1, page_size());  // straddles two pages
  detail::populate_for_writing(m.base(), 0);
  const std::vector<bool> resident = m.resident();
  ASSERT_EQ(resident.size(), 2u);
  EXPECT_FALSE(resident[0]);
  EXPECT_FALSE(resident[1]);
}

TEST(ResizePopulated, KeepsTheElementsAndValueInitialisesTheNewOnesAsResizeDoes) {
  const ThreadScope threads(2);
  std::vector<int64_t> v = {5, -7, 11};
  // Large enough for several pieces, so the mapping runs on the threads.
  const size_t n = (size_t(20) << 20) / sizeof(int64_t) + 3;
  detail::resize_populated(v, n);
  ASSERT_EQ(v.size(), n);
  EXPECT_EQ(v[0], 5);
  EXPECT_EQ(v[1], -7);
  EXPECT_EQ(v[2], 11);
  size_t nonzero = 0;
  for (size_t i = 3; i < n; ++i) nonzero += v[i] != 0;
  EXPECT_EQ(nonzero, 0u);
  // Growing within the capacity, then shrinking: as resize.
  v.resize(10);
  v[9] = 3;
  detail::resize_populated(v, 12);
  EXPECT_EQ(v, (std::vector<int64_t>{5, -7, 11, 0, 0, 0, 0, 0, 0, 3, 0, 0}));
  detail::resize_populated(v, 2);
  EXPECT_EQ(v, (std::vector<int64_t>{5, -7}));
}

TEST(PopulatedGrowth, MapsAheadOfTheBlocksAndGrowsAsResize) {
  if (!kernel_populates()) GTEST_SKIP() << "this kernel has no MADV_POPULATE_WRITE: nothing to map";
  const ThreadScope threads(2);
  const size_t n = (size_t(24) << 20) / sizeof(float), block = (size_t(1) << 20) / sizeof(float);
  const size_t ahead = (size_t(8) << 20) / sizeof(float);
  std::vector<float> v;
  v.reserve(n);
  detail::PopulatedGrowth<float> growth(v, ahead);
  growth.resize(block);
  // One block asked for, the next 8 MiB mapped: every page of them is resident already.
  const std::vector<bool> pages = resident_pages(v.data(), ahead * sizeof(float));
  ASSERT_FALSE(pages.empty());
  EXPECT_EQ(size_t(std::count(pages.begin(), pages.end(), true)), pages.size());
  for (size_t b = 0; b * block < n; ++b) {
    growth.resize(std::min(n, (b + 1) * block));
    for (size_t i = b * block; i < v.size(); ++i) v[i] = float(i);
  }
  ASSERT_EQ(v.size(), n);
  EXPECT_EQ(v.capacity(), n);  // never reallocated
  size_t wrong = 0;
  for (size_t i = 0; i < n; ++i) wrong += v[i] != float(i);
  EXPECT_EQ(wrong, 0u);
  // Past the reservation it still grows, as resize does.
  growth.resize(n + 5);
  EXPECT_EQ(v[n - 1], float(n - 1));
  EXPECT_EQ(v[n + 4], 0.0f);
}
