// Union-find with canonical roots, shared by the CPU stages and (later) the CUDA kernels.
#pragma once
#include <cstdint>

#include "evidence_math.hpp"  // RINGSCAN_HD

namespace ringscan {

/// Root of x, halving the path on the way (serial use).
RINGSCAN_HD inline int64_t find_root(int64_t* parent, int64_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

/// Joins the sets of a and b; the smaller root becomes the root, so a component is always
/// named by its smallest member whatever order the unions come in.
RINGSCAN_HD inline void union_sets(int64_t* parent, int64_t a, int64_t b) {
  const int64_t ra = find_root(parent, a), rb = find_root(parent, b);
  if (ra < rb) parent[rb] = ra;
  else if (rb < ra) parent[ra] = rb;
}

}  // namespace ringscan
