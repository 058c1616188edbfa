// Prompt groups' weights and which account pairs a shared prompt group contributes to the
// evidence graph: shared by the CPU stages and the portable (Thrust) stages the CUDA backend
// runs.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "host_device.hpp"
#include "portable_math.hpp"
#include "random.hpp"

namespace ringscan {

/// IDF weight of a prompt group sent by `count` of the A accounts: ln(A / count).
RINGSCAN_HD inline float prompt_group_idf(int64_t num_accounts, int64_t count) {
  return float(portable_log(double(num_accounts) / double(count)));
}

/// Groups of up to this many accounts contribute all their pairs; larger ones link each
/// account to its next kSampledLinks accounts in a per-group hashed order, which keeps the
/// group connected while bounding its pairs at kSampledLinks per account.
constexpr int64_t kAllPairsLimit = 256;
constexpr int64_t kSampledLinks = 32;

/// Pairs a group of m accounts contributes.
RINGSCAN_HD inline int64_t prompt_pairs_of_group(int64_t m) {
  return m <= kAllPairsLimit ? (m < 2 ? 0 : m * (m - 1) / 2) : m * kSampledLinks;
}

/// Whether a group of m accounts is linked in hashed order (else in its ascending order).
RINGSCAN_HD inline bool sampled_group(int64_t m) { return m > kAllPairsLimit; }

/// Sort key of `account` in the hashed order of group g (ties: the account).
RINGSCAN_HD inline uint64_t hashed_order_key(int64_t account, int64_t g) {
  return mix64(uint64_t(account) ^ mix64(uint64_t(g)));
}

/// The t-th pair (t < prompt_pairs_of_group(m)) of a group whose m accounts are `ordered`
/// (ascending, or in hashed order when sampled): *a < *b.
RINGSCAN_HD inline void prompt_pair(const int64_t* ordered, int64_t m, int64_t t, int64_t* a,
                                    int64_t* b) {
  int64_t x, y;
  if (!sampled_group(m)) {
    // Row i of the upper triangle starts at i m - i (i + 1) / 2: invert, then correct the
    // floating-point estimate.
    const double w = double(2 * m - 1);
    int64_t i = int64_t((w - sqrt(w * w - 8.0 * double(t))) / 2.0);
    if (i < 0) i = 0;
    while (i > 0 && i * m - i * (i + 1) / 2 > t) --i;
    while ((i + 1) * m - (i + 1) * (i + 2) / 2 <= t) ++i;
    const int64_t j = t - (i * m - i * (i + 1) / 2) + i + 1;
    x = ordered[i];
    y = ordered[j];
  } else {
    const int64_t i = t / kSampledLinks, s = t % kSampledLinks + 1;
    x = ordered[i];
    y = ordered[(i + s) % m];
  }
  *a = x < y ? x : y;
  *b = x < y ? y : x;
}

/// Calls emit(a, b) for every pair that group g of m accounts `acc` (ascending) contributes,
/// in its hashed order when the group is sampled; `order` is scratch. Host only.
template <class Emit>
void for_each_group_pair(const int64_t* acc, int64_t m, int64_t g, std::vector<int64_t>& order, Emit&& emit) {
  if (sampled_group(m)) {
    order.assign(acc, acc + m);
    std::sort(order.begin(), order.end(), [g](int64_t x, int64_t y) {
      const uint64_t hx = hashed_order_key(x, g), hy = hashed_order_key(y, g);
      return hx != hy ? hx < hy : x < y;
    });
    acc = order.data();
  }
  for (int64_t t = 0, n = prompt_pairs_of_group(m); t < n; ++t) {
    int64_t a, b;
    prompt_pair(acc, m, t, &a, &b);
    emit(a, b);
  }
}

}  // namespace ringscan
