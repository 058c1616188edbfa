// The reader's streaming entry point, for the isolated reader (not part of the public API).
#pragma once
#include <cstdint>
#include <string>

#include "ringscan/io.hpp"

namespace ringscan::detail {

/// Rows [first, first + count) of the embeddings, stored from byte `offset` of the file.
struct RowExtent {
  int64_t first, count, offset;
};

/// Index of the first NaN or infinity among n values (floats, or float16 bits), or n, on
/// the calling thread: a branch-free scan of the exponent bits, then a search where one is.
int64_t first_non_finite_in_block(const float* values, int64_t n);
int64_t first_non_finite_in_block(const uint16_t* values, int64_t n);

/// What the reader says of a NaN or infinity `value` at `row`, `column` of a dataset.
std::string non_finite_problem(float value, int64_t row, int64_t column);

/// Receives validated embedding rows as load_streaming reads them, in blocks it provides.
/// A sink that takes float16 gets the rows of a float16 file as stored (IEEE binary16 bits,
/// checked finite) and converts them itself; otherwise, and for other files, floats.
class EmbeddingSink {
 public:
  virtual ~EmbeddingSink() = default;
  /// Whether the rows of a float16 file come as their stored bits.
  virtual bool takes_float16() const { return false; }
  /// The most rows of width `dim` one block holds, at `value_bytes` (4, or 2 for float16
  /// bits) a value (>= 1; may throw InvalidInput).
  virtual int64_t rows_per_block(int64_t dim, int64_t value_bytes) = 0;
  /// Called once, after the memory check and before the first rows: the shape [rows x dim]
  /// and the bytes of a value.
  virtual void begin(int64_t rows, int64_t dim, int64_t value_bytes) = 0;
  /// Where to read rows [first, first + count) to: [count x dim] values.
  virtual void* block(int64_t first, int64_t count) = 0;
  /// Rows [first, first + count), read into block(first, count) and found finite.
  virtual void rows(int64_t first, int64_t count) = 0;
  /// Whether rows the file stores as they would be read (no filter, little-endian float32,
  /// or float16 when takes_float16) may come as where they lie instead of as values.
  virtual bool takes_extents() const { return false; }
  /// `rows` lie at their offset of the file, row after row, as stored: neither read nor checked (the sink reads and checks them). After begin, before
  /// any rows, covering every row in order, when takes_extents and the file allows.
  virtual void extent(const RowExtent& rows) { (void)rows; }
};

/// As load_dataset, but the embeddings go to `sink` block by block (the reader holds none
/// of them) and the returned Dataset's `embeddings` stays empty.
Dataset load_streaming(const std::string& path, const Context& ctx, const LoadOptions& options,
                       EmbeddingSink& sink);

}  // namespace ringscan::detail
