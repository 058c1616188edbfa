// The order stage's two large parts as Thrust algorithms over raw arrays: the requests sorted
// by (account, time, row), and the embeddings gathered into that order at unit length.
// Instantiated for thrust::cuda by the CUDA backend and for thrust::omp by the CPU tests,
// which compare them with the CPU stage; the accounts' order, the ties of (account, time)
// and the per-account arrays are the host's for both (request_order.hpp).
#pragma once
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>

#include <cstdint>

#include "host_device.hpp"
#include "unit_rows.hpp"

namespace ringscan::portable {

namespace detail {

/// key[i] = rank[account[row[i]]]: the canonical account of the i-th request so far.
struct AccountKey {
  const int64_t* rank;
  const int64_t* account;
  const int64_t* row;
  int64_t* key;
  RINGSCAN_HD void operator()(int64_t i) const { key[i] = rank[account[row[i]]]; }
};

/// time_out[i] = time[row[i]].
struct GatherTime {
  const int64_t* time;
  const int64_t* row;
  int64_t* out;
  RINGSCAN_HD void operator()(int64_t i) const { out[i] = time[row[i]]; }
};

/// scale[r] = 1 / |input row row[r]|, by the host's own function.
struct RowScale {
  const float* raw;
  const int64_t* row;
  int64_t D;
  float* scale;
  RINGSCAN_HD void operator()(int64_t r) const { scale[r] = inverse_norm(raw + row[r] * D, D); }
};

/// Element i of the unit rows: consecutive threads write consecutive floats of a row.
struct WriteUnitElement {
  const float* raw;
  const int64_t* row;
  const float* scale;
  int64_t D;
  float* unit;
  RINGSCAN_HD void operator()(int64_t i) const {
    const int64_t r = i / D;
    unit[i] = raw[row[r] * D + (i - r * D)] * scale[r];
  }
};

}  // namespace detail

/// The canonical order of R requests: row [R] (policy memory) gets the input rows ascending
/// by (rank[account[row]], time[row], row), owner [R] each one's canonical account, and
/// time_out [R] its time (time and time_out null for untimed requests). rank [A] maps input
/// account rows to canonical accounts; account [R] and time [R] are the requests' in input
/// order. Two stable radix passes (time, then account) leave equal keys in row order.
/// The sort's scratch is the policy's (on a device, about 16 bytes a request).
template <class Policy>
void sort_request_rows(Policy&& policy, int64_t R, const int64_t* rank, const int64_t* account, const int64_t* time,
                       int64_t* row, int64_t* owner, int64_t* time_out) {
  if (R == 0) return;
  thrust::sequence(policy, row, row + R);
  const thrust::counting_iterator<int64_t> zero(0);
  if (time != nullptr) {
    thrust::for_each(policy, zero, zero + R, detail::GatherTime{time, row, owner});
    thrust::stable_sort_by_key(policy, owner, owner + R, row);
  }
  thrust::for_each(policy, zero, zero + R, detail::AccountKey{rank, account, row, owner});
  thrust::stable_sort_by_key(policy, owner, owner + R, row);
  if (time != nullptr) thrust::for_each(policy, zero, zero + R, detail::GatherTime{time, row, time_out});
}

/// The input rows raw [R x D] in the order row [R], scaled to unit length with the bits of
/// the CPU stage's write_unit_row, `block` canonical rows at a time: each block goes to unit
/// [block x D] (scale [block] is scratch, both policy memory) and is handed to
/// deliver(first, count) before the next block overwrites it. With a block smaller than R,
/// a device holds the stored rows and one block of unit rows, not two whole arrays.
template <class Policy, class Deliver>
void unit_rows_in_order(Policy&& policy, int64_t R, int64_t D, const float* raw, const int64_t* row, int64_t block,
                        float* scale, float* unit, Deliver&& deliver) {
  if (R == 0 || D == 0) return;
  const thrust::counting_iterator<int64_t> zero(0);
  block = block < 1 ? 1 : block;
  for (int64_t first = 0; first < R; first += block) {
    const int64_t count = R - first < block ? R - first : block;
    thrust::for_each(policy, zero, zero + count, detail::RowScale{raw, row + first, D, scale});
    thrust::for_each(policy, zero, zero + count * D, detail::WriteUnitElement{raw, row + first, scale, D, unit});
    deliver(first, count);
  }
}

}  // namespace ringscan::portable
