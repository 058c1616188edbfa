// The reader's streaming entry point, for the isolated reader (not part of the public API).
#pragma once
#include <cstdint>
#include <string>

#include "ringscan/io.hpp"

namespace ringscan::detail {

/// Receives validated embedding rows as load_streaming reads them.
class EmbeddingSink {
 public:
  virtual ~EmbeddingSink() = default;
  /// Called once, after the memory check and before the first rows: the shape [rows x dim].
  virtual void begin(int64_t rows, int64_t dim) = 0;
  /// Rows [first, first + count) of the embeddings, [count x dim] floats, finite.
  virtual void rows(int64_t first, int64_t count, const float* block) = 0;
};

/// As load_dataset, but the embeddings go to `sink` chunk by chunk (one chunk held at a
/// time) and the returned Dataset's `embeddings` stays empty.
Dataset load_streaming(const std::string& path, const Context& ctx, const LoadOptions& options,
                       EmbeddingSink& sink);

}  // namespace ringscan::detail
