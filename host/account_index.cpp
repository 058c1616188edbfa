#include "ringscan/account_index.hpp"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>

#include <algorithm>
#include <cmath>

#include "faiss_util.hpp"
#include "random.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

// Relative weights of timing and behaviour in the coordination index vectors. Timing leads:
// synchronised accounts are what the prompt evidence cannot find (split rings, broad pools).
constexpr float kTimingWeight = 1.0f;
constexpr float kBehaviourWeight = 0.5f;
constexpr int64_t kExactAccountLimit = 20000;
constexpr int64_t kBatch = 8192;

}  // namespace

namespace {

/// Appends (a, b) pairs, a < b, from a k-nearest-neighbour search of `x` [A x width] in itself.
void append_knn_pairs(const std::vector<float>& x, int64_t A, int64_t width, int64_t k,
                      const char* what, const Context& ctx,
                      std::vector<std::pair<int64_t, int64_t>>& pairs) {
  std::unique_ptr<faiss::Index> index;
  std::unique_ptr<faiss::IndexFlatIP> quantizer;
  faiss_call(what, [&] {
    if (A <= kExactAccountLimit) {
      index = std::make_unique<faiss::IndexFlatIP>(width);
    } else {
      const int64_t nlist = std::clamp<int64_t>(int64_t(2 * std::sqrt(double(A))), 16, 1 << 15);
      quantizer = std::make_unique<faiss::IndexFlatIP>(width);
      auto ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer.get(), width, nlist,
                                                       faiss::METRIC_INNER_PRODUCT);
      ivf->cp.niter = 10;
      ivf->cp.max_points_per_centroid = 64;
      ivf->cp.seed = 4321;
      const int64_t step = std::max<int64_t>(1, A / (nlist * 64));
      std::vector<float> sample;
      for (int64_t a = 0; a < A; a += step) sample.insert(sample.end(), &x[a * width], &x[(a + 1) * width]);
      ivf->train(int64_t(sample.size()) / width, sample.data());
      ivf->nprobe = 12;
      index = std::move(ivf);
    }
    index->add(A, x.data());
  });
  std::vector<float> dist(kBatch * k);
  std::vector<int64_t> label(kBatch * k);
  for (int64_t first = 0; first < A; first += kBatch) {
    const int64_t n = std::min(kBatch, A - first);
    faiss_call(what, [&] {
      index->search(n, &x[first * width], k, dist.data(),
                    reinterpret_cast<faiss::Index::idx_t*>(label.data()));
    });
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t other = label[i * k + j], self = first + i;
        if (other < 0 || other >= A || other == self) continue;  // FAISS may return -1
        pairs.emplace_back(std::min(self, other), std::max(self, other));
      }
    ctx.report("account index", first + n, A);
  }
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> account_candidate_pairs(const AccountProfiles& p,
                                                                 const DetectOptions& options,
                                                                 const Context& ctx) {
  const int64_t A = p.num_accounts, D = p.dim, B = p.feature_dim;
  RINGSCAN_EXPECTS(options.account_neighbours >= 0, "--account-neighbours must be >= 0");
  std::vector<std::pair<int64_t, int64_t>> pairs;
  if (A < 2 || options.account_neighbours == 0) return pairs;
  const int64_t T = p.has_timing ? kTimingSketchDim : 0;
  const int64_t k = std::min<int64_t>(options.account_neighbours + 1, A);
  ctx.require_memory(int64_t(double(A) * std::max(T + B, D) * 4 * 2 + double(A) * k * 24),
                     "account index");
  ThreadScope threads(ctx.threads);

  // Two indices: content profiles, and coordination profiles (a signed hashing sketch of the
  // IDF-weighted activity, whose inner products approximate the timing cosine, plus behaviour).
  // They are kept apart so that accounts of one operator working different capabilities
  // (different content) still meet as neighbours through timing and behaviour.
  if (T + B > 0) {
    std::vector<float> x(A * (T + B), 0.0f);
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t a = 0; a < A; ++a) {
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
    }
    append_knn_pairs(x, A, T + B, k, "the coordination index", ctx, pairs);
  }
  append_knn_pairs(p.content, A, D, k, "the content index", ctx, pairs);
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  return pairs;
}

}  // namespace ringscan
