// A brute-force RowSearch on the host, in double: the reference the partitioned join is
// tested with on any machine, and the device's search is compared against where there is one;
// and rows shaped like prompts sent many times.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "evidence_math.hpp"
#include "partitioned_join.hpp"

namespace ringscan::testing {

class HostRowSearch final : public RowSearch {
 public:
  HostRowSearch(const float* x, int64_t n, int64_t d) : x_(x), n_(n), d_(d) {}

  RowNeighbours nearest_others(const int64_t* queries, int64_t nq, const int64_t* members,
                               int64_t m, float radius, int64_t cap) override {
    ++searches;
    work_.flop += 2.0 * double(nq) * double(m) * double(d_);
    RowNeighbours r;
    r.offsets.assign(nq + 1, 0);
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t q = queries ? queries[i] : i;
      std::vector<std::pair<double, int64_t>> hits;
      for (int64_t j = 0; j < m; ++j) {
        const int64_t other = members ? members[j] : j;
        if (other == q) continue;
        const double d2 = distance2(x_ + q * d_, x_ + other * d_);
        if (radius < 0 || d2 <= radius) hits.emplace_back(d2, other);
      }
      std::sort(hits.begin(), hits.end());
      hits.resize(std::min<int64_t>(int64_t(hits.size()), cap));
      for (auto [d2, other] : hits) {
        r.other.push_back(other);
        r.distance.push_back(float(d2));
      }
      r.offsets[i + 1] = int64_t(r.other.size());
    }
    return r;
  }

  void nearest_centroids(const float* centroids, int64_t k, int64_t probes, int64_t* cell,
                         float* dist2) override {
    for (int64_t r = 0; r < n_; ++r) {
      std::vector<std::pair<double, int64_t>> all(k);
      for (int64_t c = 0; c < k; ++c) all[c] = {distance2(x_ + r * d_, centroids + c * d_), c};
      std::partial_sort(all.begin(), all.begin() + probes, all.end());
      for (int64_t p = 0; p < probes; ++p) {
        cell[r * probes + p] = all[p].second;
        dist2[r * probes + p] = float(all[p].first);
      }
    }
  }

  int64_t searches = 0;  ///< calls of nearest_others

 private:
  double distance2(const float* a, const float* b) const {
    double s = 0;
    for (int64_t i = 0; i < d_; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    return s;
  }

  const float* x_;
  int64_t n_, d_;
};

/// `prompts` random unit directions in d dimensions, each sent `copies` times with a little
/// noise (cosine with its prompt about 0.98), rows in a shuffled order.
inline std::vector<float> noisy_copies(int64_t prompts, int64_t copies, int64_t d, uint64_t seed,
                                std::vector<int64_t>* prompt_of_row = nullptr) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centre(prompts * d);
  for (auto& v : centre) v = normal(rng);
  std::vector<int64_t> order(prompts * copies);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<float> x(order.size() * d);
  if (prompt_of_row) prompt_of_row->resize(order.size());
  for (std::size_t r = 0; r < order.size(); ++r) {
    const int64_t p = order[r] / copies;
    if (prompt_of_row) (*prompt_of_row)[r] = p;
    for (int64_t i = 0; i < d; ++i) x[r * d + i] = centre[p * d + i] + 0.12f * normal(rng);
    normalise_to_unit(&x[r * d], d);
  }
  return x;
}

/// The request index's filter: keeps a pair when the fp32 cosine of its unit rows in x
/// [.. x d] is at least tau, valued by that cosine.
inline JoinFilter cosine_at_least(const std::vector<float>& x, int64_t d, float tau) {
  return [&x, d, tau](int64_t q, int64_t other, float, float* sim) {
    *sim = dot_product(&x[q * d], &x[other * d], d);
    return *sim >= tau;
  };
}

}  // namespace ringscan::testing
