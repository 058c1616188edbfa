// 64-bit size and index arithmetic: every count, offset and byte size that could pass 2^31
// goes through these (int * int index products are how large inputs get corrupted).
#pragma once
#include <cstdint>
#include <limits>
#include <string>

#include "ringscan/error.hpp"

namespace ringscan {

constexpr int64_t kMaxSize = std::numeric_limits<int64_t>::max();

/// a * b for non-negative sizes, saturating at kMaxSize instead of overflowing.
constexpr int64_t saturating_multiply(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? kMaxSize : r;
}

/// a + b for non-negative sizes, saturating at kMaxSize.
constexpr int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? kMaxSize : r;
}

/// A byte count computed in double precision as an int64, saturating at kMaxSize (a plain
/// conversion of a double beyond 2^63 is undefined behaviour).
constexpr int64_t size_from_double(double bytes) {
  return !(bytes > 0) ? 0 : bytes >= 9.2e18 ? kMaxSize : int64_t(bytes);
}

/// a * b; throws BudgetExceeded naming `what` when the product overflows 64 bits.
inline int64_t checked_multiply(int64_t a, int64_t b, const std::string& what) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r))
    throw BudgetExceeded(what + ": " + std::to_string(a) + " x " + std::to_string(b) +
                         " overflows a 64-bit size");
  return r;
}

/// Offset of element [row, col] of a row-major [rows x dim] array, in elements (64-bit
/// whatever the types the caller holds the row and width in).
constexpr int64_t element_offset(int64_t row, int64_t dim, int64_t col = 0) {
  return row * dim + col;
}

/// Unordered pairs among m items, m (m - 1) / 2, saturating at kMaxSize.
constexpr int64_t pair_count(int64_t m) {
  return m < 2 ? 0 : saturating_multiply(m % 2 == 0 ? m / 2 : m, m % 2 == 0 ? m - 1 : (m - 1) / 2);
}

}  // namespace ringscan
