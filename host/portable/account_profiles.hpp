// Content profiles (the unit mean of each account's unit embeddings) as Thrust algorithms over
// raw arrays, instantiated for thrust::cuda by the CUDA backend and for thrust::omp by the CPU
// tests. Each component sums the account's requests in canonical order, as the CPU stage does,
// so both give the same bits.
#pragma once
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include <cstdint>

#include "evidence_math.hpp"

namespace ringscan::portable {

namespace detail {

/// One thread per (account, component): neighbouring threads read neighbouring components.
struct SumComponents {
  const int64_t* account_offsets;
  const float* unit_embeddings;
  int64_t dim;
  float* content;
  RINGSCAN_HD void operator()(int64_t k) const {
    const int64_t a = k / dim, i = k % dim;
    float s = 0;
    for (int64_t r = account_offsets[a]; r < account_offsets[a + 1]; ++r) s += unit_embeddings[r * dim + i];
    content[k] = s;
  }
};

struct NormaliseRow {
  float* content;
  int64_t dim;
  RINGSCAN_HD void operator()(int64_t a) const { normalise_to_unit(content + a * dim, dim); }
};

}  // namespace detail

/// content [A x D] from the embeddings [R x D] of requests grouped by account (offsets [A+1]).
template <class Policy>
void content_profiles(Policy&& policy, const int64_t* account_offsets, const float* unit_embeddings,
                      int64_t num_accounts, int64_t dim, float* content) {
  if (num_accounts == 0 || dim == 0) return;
  const thrust::counting_iterator<int64_t> first(0);
  thrust::for_each(policy, first, first + num_accounts * dim,
                   detail::SumComponents{account_offsets, unit_embeddings, dim, content});
  thrust::for_each(policy, first, first + num_accounts, detail::NormaliseRow{content, dim});
}

}  // namespace ringscan::portable
