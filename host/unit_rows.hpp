// Embeddings scaled to unit length with the same bits on the host and the device: the order
// stage of either backend writes them, and every later stage compares them.
#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.hpp"

namespace ringscan {

/// 1 / |v| (0 for a zero vector). The squares (exact in double) are summed in four
/// interleaved partial sums: one running sum is a chain of dependent additions, which was
/// a tenth of the order stage's time on 10M requests.
RINGSCAN_HD inline float inverse_norm(const float* v, int64_t d) {
  double part[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= d; i += 4)
    for (int j = 0; j < 4; ++j) part[j] += double(v[i + j]) * v[i + j];
  for (; i < d; ++i) part[0] += double(v[i]) * v[i];
  const double s = (part[0] + part[1]) + (part[2] + part[3]);
  return s > 0 ? float(1.0 / sqrt(s)) : 0.0f;
}

}  // namespace ringscan
