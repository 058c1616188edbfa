#include "ringscan/account_index.hpp"

#include <faiss/VectorTransform.h>

#include <algorithm>
#include <cmath>

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

/// Appends (a, b) pairs, a < b, of each row of x [A x width] and its k nearest rows.
void append_knn_pairs(const SelfJoin& join, const std::vector<float>& x, int64_t A, int64_t width,
                      int64_t k, bool exact, const char* what, const Context& ctx,
                      std::vector<std::pair<int64_t, int64_t>>& pairs) {
  const auto keep_all = [](int64_t, int64_t, float, float*) { return true; };
  const auto found = join.run(x.data(), A, width, exact, -1.0f, k, keep_all, ctx, what);
  // The IVF join keeps k per visited cell; keep each account's k nearest overall (a pair
  // stays when either side keeps it, as in a kNN graph).
  std::vector<int64_t> off(A + 1, 0);
  for (const auto& p : found) {
    ++off[p.first + 1];
    ++off[p.second + 1];
  }
  for (int64_t a = 0; a < A; ++a) off[a + 1] += off[a];
  std::vector<std::pair<float, int64_t>> adj(off[A]);  // (distance, pair index)
  {
    std::vector<int64_t> fill(off.begin(), off.end() - 1);
    for (int64_t i = 0; i < int64_t(found.size()); ++i) {
      adj[fill[found[i].first]++] = {found[i].similarity, i};
      adj[fill[found[i].second]++] = {found[i].similarity, i};
    }
  }
  std::vector<uint8_t> keep(found.size(), 0);
  detail::parallel_for(A, 256, [&](int64_t a) {
    auto first = adj.begin() + off[a], last = adj.begin() + off[a + 1];
    if (last - first > k) std::partial_sort(first, first + k, last);
    for (auto it = first; it < std::min(last, first + k); ++it) {
#pragma omp atomic write
      keep[it->second] = 1;
    }
  });
  for (int64_t i = 0; i < int64_t(found.size()); ++i)
    if (keep[i]) pairs.emplace_back(found[i].first, found[i].second);
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
    append_knn_pairs(join, x, A, T + B, k, exact, "account index", ctx, pairs);
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
    append_knn_pairs(join, reduced, A, kContentIndexDim, k, exact, "account index", ctx, pairs);
  } else {
    append_knn_pairs(join, p.content, A, D, k, exact, "account index", ctx, pairs);
  }
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  return pairs;
}

}  // namespace ringscan
