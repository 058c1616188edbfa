#include "ringscan/account_index.hpp"

#include <faiss/VectorTransform.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

#include "faiss_util.hpp"
#include "random.hpp"
#include "self_join.hpp"
#include "stage_variants.hpp"
#include "ringscan/error.hpp"
#include "parallel.hpp"
#include "ringscan/sizes.hpp"

namespace ringscan {
namespace {

// Relative weights of timing and behaviour in the coordination index vectors. Timing leads:
// synchronised accounts are what the prompt evidence cannot find (split rings, broad pools).
constexpr float kTimingWeight = 1.0f;
constexpr float kBehaviourWeight = 0.5f;
constexpr int64_t kContentIndexDim = 64;

}  // namespace

namespace {

using AccountPairs = std::vector<std::pair<int64_t, int64_t>>;

/// The pairs of `found` (a join's output: first < second, sorted, unique) that either of its
/// accounts keeps among its k nearest, in found's order (a kNN graph: the join keeps k per
/// visited cell, this keeps k overall). An account's pairs are its run of found as `first`
/// and, gathered by a counting sort, those where it is `second`. They are ranked by
/// (distance, other account), which among equal distances is found's order: what is kept
/// does not depend on the order in which threads gather them.
AccountPairs nearest_per_account(const std::vector<RequestPair>& found, int64_t A, int64_t k) {
  const int64_t F = int64_t(found.size());
  constexpr int64_t kPairBlock = int64_t(1) << 14;
  std::vector<int64_t> first_off(A + 1, 0), second_off(A + 1, 0);
  detail::parallel_for_blocks(F, kPairBlock, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
#pragma omp atomic
      ++first_off[found[i].first + 1];
#pragma omp atomic
      ++second_off[found[i].second + 1];
    }
  });
  for (int64_t a = 0; a < A; ++a) {
    first_off[a + 1] += first_off[a];
    second_off[a + 1] += second_off[a];
  }
  std::vector<int64_t> as_second(F);  // pair indices, grouped by their second account
  {
    std::vector<int64_t> fill(second_off.begin(), second_off.end() - 1);
    detail::parallel_for_blocks(F, kPairBlock, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        int64_t at;
#pragma omp atomic capture
        at = fill[found[i].second]++;
        as_second[at] = i;
      }
    });
  }
  struct Candidate {
    float distance;
    int64_t other, pair;
    bool operator<(const Candidate& c) const {
      return distance != c.distance ? distance < c.distance : other < c.other;
    }
  };
  std::vector<uint8_t> keep(F, 0);
  detail::parallel_for_blocks(A, 256, [&](int64_t b, int64_t e) {
    std::vector<Candidate> list;
    for (int64_t a = b; a < e; ++a) {
      list.clear();
      for (int64_t i = first_off[a]; i < first_off[a + 1]; ++i)
        list.push_back({found[i].similarity, found[i].second, i});
      for (int64_t j = second_off[a]; j < second_off[a + 1]; ++j) {
        const RequestPair& f = found[as_second[j]];
        list.push_back({f.similarity, f.first, as_second[j]});
      }
      const int64_t kept = std::min<int64_t>(k, int64_t(list.size()));
      if (int64_t(list.size()) > k) std::partial_sort(list.begin(), list.begin() + k, list.end());
      for (int64_t i = 0; i < kept; ++i) {
#pragma omp atomic write
        keep[list[i].pair] = 1;
      }
    }
  });
  // The kept pairs in found's order: each block's count, then the blocks fill their places.
  const int64_t blocks = (F + kPairBlock - 1) / kPairBlock;
  std::vector<int64_t> place(blocks + 1, 0);
  detail::parallel_for_blocks(F, kPairBlock, [&](int64_t b, int64_t e) {
    place[b / kPairBlock + 1] = std::count(keep.begin() + b, keep.begin() + e, uint8_t(1));
  });
  std::partial_sum(place.begin(), place.end(), place.begin());
  AccountPairs pairs(place[blocks]);
  detail::parallel_for_blocks(F, kPairBlock, [&](int64_t b, int64_t e) {
    int64_t at = place[b / kPairBlock];
    for (int64_t i = b; i < e; ++i)
      if (keep[i]) pairs[at++] = {found[i].first, found[i].second};
  });
  return pairs;
}

/// The pairs (a < b, sorted) of each row of x [A x width] and its k nearest rows.
AccountPairs knn_pairs(const SelfJoin& join, const std::vector<float>& x, int64_t A, int64_t width,
                       int64_t k, bool exact, const char* what, const Context& ctx) {
  const auto keep_all = [](int64_t, int64_t, float, float*) { return true; };
  return nearest_per_account(join.run(x.data(), A, width, exact, -1.0f, k, keep_all, ctx, what, NeighbourTiers{}), A, k);
}

/// The union of two sorted, duplicate-free pair lists, sorted.
AccountPairs sorted_union(const AccountPairs& x, const AccountPairs& y) {
  AccountPairs u;
  u.reserve(x.size() + y.size());
  std::set_union(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(u));
  return u;
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> account_candidate_pairs(const AccountProfiles& p,
                                                                 const DetectOptions& options,
                                                                 const Context& ctx) {
  return account_candidate_pairs(p, options, ctx, host_self_join());
}

std::vector<std::pair<int64_t, int64_t>> account_candidate_pairs(const AccountProfiles& p,
                                                                 const DetectOptions& options,
                                                                 const Context& ctx,
                                                                 const SelfJoin& join) {
  const int64_t A = p.num_accounts, D = p.dim, B = p.feature_dim;
  RINGSCAN_EXPECTS(options.account_neighbours >= 0, "--account-neighbours must be >= 0");
  std::vector<std::pair<int64_t, int64_t>> pairs;
  if (A < 2 || options.account_neighbours == 0) return pairs;
  const int64_t T = p.has_timing ? kTimingSketchDim : 0;
  const int64_t k = std::min<int64_t>(options.account_neighbours, A - 1);
  ctx.require_memory(size_from_double(double(A) * std::max(T + B, D) * 4 * 2 + double(A) * k * 24),
                     "account index");
  ThreadScope threads(ctx.threads);
  SerialBlasScope serial_blas;
  const bool exact = A <= std::max(join.exact_up_to, options.exact_account_limit);

  // Two indices: content profiles, and coordination profiles (a signed hashing sketch of the
  // IDF-weighted activity, whose inner products approximate the timing cosine, plus behaviour).
  // They are kept apart so that accounts of one operator working different capabilities
  // (different content) still meet as neighbours through timing and behaviour.
  if (T + B > 0) {
    std::vector<float> x(A * (T + B), 0.0f);
    detail::parallel_for(A, 256, [&](int64_t a) {
      float* v = &x[a * (T + B)];
      if (T > 0 && p.timing_norm[a] > 0) {
        for (int64_t i = p.bucket_offsets[a]; i < p.bucket_offsets[a + 1]; ++i) {
          const uint64_t h = mix64(uint64_t(p.active_buckets[i]));
          v[h % T] += (h >> 63 ? -1.0f : 1.0f) * p.bucket_idf[p.active_buckets[i]] * kTimingWeight /
                      p.timing_norm[a];
        }
      }
      if (B > 0) {
        const float scale = kBehaviourWeight / (4.0f * std::sqrt(float(B)));
        for (int64_t f = 0; f < B; ++f) v[T + f] = scale * p.behaviour[a * B + f];
      }
    });
    pairs = knn_pairs(join, x, A, T + B, k, exact, "account index", ctx);
  }
  if (D > kContentIndexDim && !exact && !join.full_dimension) {
    // Large inputs: content profiles projected by PCA first; the pairs are only candidates,
    // their content similarity is computed later in full dimension.
    std::vector<float> reduced(A * kContentIndexDim);
    faiss_call("projecting content profiles", [&] {
      faiss::PCAMatrix pca(D, kContentIndexDim, 0.0f, false);
      const int64_t step = std::max<int64_t>(1, A / 65536);
      std::vector<float> sample;
      for (int64_t a = 0; a < A; a += step) sample.insert(sample.end(), &p.content[a * D], &p.content[(a + 1) * D]);
      pca.train(int64_t(sample.size()) / D, sample.data());
      pca.apply_noalloc(A, p.content.data(), reduced.data());
    });
    return sorted_union(pairs, knn_pairs(join, reduced, A, kContentIndexDim, k, exact, "account index", ctx));
  }
  return sorted_union(pairs, knn_pairs(join, p.content, A, D, k, exact, "account index", ctx));
}

}  // namespace ringscan
