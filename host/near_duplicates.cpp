#include "ringscan/near_duplicates.hpp"

#include <faiss/IndexFlat.h>
#include <faiss/Clustering.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "evidence_math.hpp"
#include "faiss_util.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

constexpr int64_t kQueryBatch = 8192;
constexpr int64_t kRangeBatch = 1024;
// Candidates are taken a little below the threshold, then verified exactly, so results do
// not depend on FAISS's (BLAS, thread-count dependent) rounding.
constexpr float kCandidateSlack = 0.02f;


/// Every `step`-th row: a sample that depends on the canonical order only.
std::vector<float> strided_sample(const float* x, int64_t n, int64_t d, int64_t want) {
  const int64_t step = std::max<int64_t>(1, n / std::max<int64_t>(1, want));
  std::vector<float> s;
  for (int64_t i = 0; i < n && int64_t(s.size()) < want * d; i += step)
    s.insert(s.end(), x + i * d, x + (i + 1) * d);
  return s;
}

}  // namespace

namespace {

/// Target number of members per leaf cell of the IVF partition.
constexpr int64_t kCellSize = 256;
/// Cells each query visits at each level (its nearest centroids).
constexpr int64_t kProbes = 2;

/// Members (stored in their nearest cell) and queries (visiting their kProbes nearest cells).
struct Partition {
  int64_t cells = 0;
  std::vector<int64_t> member_off, members, query_off, queries;
};

/// k-means over `members` (FAISS Clustering on a strided sample), then assignment.
Partition partition(const float* x, int64_t d, const std::vector<int64_t>& members,
                    const std::vector<int64_t>& queries, int64_t k, uint64_t seed) {
  const int64_t m = int64_t(members.size()), nq = int64_t(queries.size());
  const int64_t probes = std::min(kProbes, k);
  const int64_t want = std::min<int64_t>(m, 64 * k);
  const int64_t step = std::max<int64_t>(1, m / want);
  std::vector<float> sample;
  for (int64_t i = 0; i < m && int64_t(sample.size()) < want * d; i += step)
    sample.insert(sample.end(), x + members[i] * d, x + (members[i] + 1) * d);
  faiss::ClusteringParameters cp;
  cp.niter = 10;
  cp.max_points_per_centroid = 64;
  cp.seed = int(seed & 0x7fffffff);
  faiss::Clustering kmeans(d, k, cp);
  faiss::IndexFlatL2 quantizer(d);
  kmeans.train(int64_t(sample.size()) / d, sample.data(), quantizer);

  std::vector<int64_t> cell(nq * probes);
  std::vector<float> vecs(std::min(nq, kQueryBatch) * d), dist(std::min(nq, kQueryBatch) * probes);
  for (int64_t first = 0; first < nq; first += kQueryBatch) {
    const int64_t n = std::min(kQueryBatch, nq - first);
    for (int64_t i = 0; i < n; ++i) std::copy_n(x + queries[first + i] * d, d, &vecs[i * d]);
    quantizer.search(n, vecs.data(), probes, dist.data(),
                     reinterpret_cast<faiss::Index::idx_t*>(cell.data() + first * probes));
  }
  // Members are queries too (callers pass members as a subset of queries, in order), and
  // a member is stored in its nearest cell.
  std::vector<int64_t> member_cell(m);
  {
    int64_t j = 0;
    for (int64_t i = 0; i < nq && j < m; ++i)
      if (queries[i] == members[j]) member_cell[j++] = cell[i * probes];
    RINGSCAN_ASSERT(j == m, "partition: members must be a subsequence of queries");
  }
  Partition p;
  p.cells = k;
  p.member_off.assign(k + 1, 0);
  p.query_off.assign(k + 1, 0);
  for (int64_t j = 0; j < m; ++j) ++p.member_off[member_cell[j] + 1];
  for (int64_t i = 0; i < nq * probes; ++i) {
    RINGSCAN_ASSERT(cell[i] >= 0 && cell[i] < k, "request index assigned no cell");
    ++p.query_off[cell[i] + 1];
  }
  for (int64_t c = 0; c < k; ++c) {
    p.member_off[c + 1] += p.member_off[c];
    p.query_off[c + 1] += p.query_off[c];
  }
  p.members.resize(m);
  p.queries.resize(nq * probes);
  std::vector<int64_t> mf(p.member_off.begin(), p.member_off.end() - 1);
  std::vector<int64_t> qf(p.query_off.begin(), p.query_off.end() - 1);
  for (int64_t j = 0; j < m; ++j) p.members[mf[member_cell[j]]++] = members[j];
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t q = 0; q < probes; ++q) p.queries[qf[cell[i * probes + q]]++] = queries[i];
  return p;
}

}  // namespace

std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                              const DetectOptions& options, const Context& ctx,
                                              bool* exact_index) {
  const int64_t R = req.num_requests, D = req.dim;
  const float tau = options.duplicate_similarity;
  RINGSCAN_EXPECTS(tau > 0 && tau <= 1, "--duplicate-similarity must be in (0, 1]");
  RINGSCAN_EXPECTS(options.duplicate_neighbours >= 1, "--duplicate-neighbours must be >= 1");
  std::vector<RequestPair> pairs;
  if (exact_index) *exact_index = true;
  if (R < 2) return pairs;
  ThreadScope threads(ctx.threads);
  SerialBlasScope serial_blas;
  const bool exact = R <= options.exact_request_limit || D <= 8;
  if (exact_index) *exact_index = exact;

  // Large inputs: an IVF self-join. Requests are projected by PCA (orthonormal rows, so
  // projected distances are lower bounds of true ones and a radius test there loses no true
  // near-duplicate), partitioned by two levels of k-means into cells of about kCellSize,
  // stored in their nearest cell and matched against the cells of their kProbes nearest
  // centroids (at each level) by exact FAISS flat search (BLAS) per cell. Small inputs: one
  // cell, full dimension: exact search.
  const int64_t dr = exact ? D : std::min<int64_t>(std::max<int64_t>(options.reduced_dim, 8), D);
  ctx.require_memory(int64_t(double(R) * dr * 4 * (exact ? 0 : 1) + double(R) * 8 * 16 +
                             double(kQueryBatch) * options.duplicate_neighbours * 24 * 4),
                     "request index");
  const float* base = req.unit_embeddings.data();
  std::vector<float> reduced;
  if (!exact) {
    faiss_call("projecting requests for the request index", [&] {
      faiss::PCAMatrix pca(D, dr, 0.0f, false);
      auto sample = strided_sample(base, R, D, std::min<int64_t>(R, 65536));
      pca.train(int64_t(sample.size()) / D, sample.data());
      reduced.resize(R * dr);
      const int64_t batches = (R + kQueryBatch - 1) / kQueryBatch;
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t b = 0; b < batches; ++b) {
        const int64_t first = b * kQueryBatch, n = std::min(kQueryBatch, R - first);
        pca.apply_noalloc(n, base + first * D, reduced.data() + first * dr);
      }
    });
  }
  const float* vectors = exact ? base : reduced.data();

  // Candidates are taken a little inside the radius / below the similarity, then verified
  // exactly in full dimension, so results do not depend on BLAS rounding.
  const float radius = 2.0f * (1.0f - tau) + kCandidateSlack;
  // Per cell: every member within the radius of each query, by FAISS's BLAS range search
  // (a threshold, not a top-k heap: cheaper, as the near-duplicate test is a threshold).
  // Each query keeps its `cap` closest, so a prompt pasted by thousands of accounts yields a
  // connected neighbourhood, not millions of pairs.
  const int64_t cap = options.duplicate_neighbours;
  auto join_cell = [&](const int64_t* members, int64_t m, const int64_t* qids_all, int64_t nq,
                       std::vector<RequestPair>& out) {
    if (m == 0 || nq == 0) return;
    std::vector<float> member_vecs(m * dr), query_vecs(std::min(kRangeBatch, nq) * dr);
    for (int64_t i = 0; i < m; ++i) std::copy_n(vectors + members[i] * dr, dr, &member_vecs[i * dr]);
    std::vector<std::pair<float, int64_t>> hits;
    for (int64_t first = 0; first < nq; first += kRangeBatch) {
      const int64_t n = std::min(kRangeBatch, nq - first);
      const int64_t* qids = qids_all + first;
      for (int64_t i = 0; i < n; ++i) std::copy_n(vectors + qids[i] * dr, dr, &query_vecs[i * dr]);
      faiss::RangeSearchResult result(n);
      if (exact)
        faiss::range_search_inner_product(query_vecs.data(), member_vecs.data(), dr, n, m,
                                          tau - kCandidateSlack, &result);
      else
        faiss::range_search_L2sqr(query_vecs.data(), member_vecs.data(), dr, n, m, radius, &result);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t q = qids[i];
        hits.clear();
        for (size_t h = result.lims[i]; h < result.lims[i + 1]; ++h) {
          const int64_t l = result.labels[h];
          // Labels are checked defensively: FAISS can return -1 or out-of-range ids.
          if (l < 0 || l >= m || members[l] == q) continue;
          hits.emplace_back(exact ? -result.distances[h] : result.distances[h], l);
        }
        if (int64_t(hits.size()) > cap) {
          std::partial_sort(hits.begin(), hits.begin() + cap, hits.end());
          hits.resize(cap);
        }
        for (const auto& [d, l] : hits) {
          const int64_t other = members[l];
          const float sim = dot_product(base + q * D, base + other * D, D);
          if (sim >= tau) out.push_back({std::min(q, other), std::max(q, other), sim});
        }
      }
    }
  };

  std::vector<int64_t> all(R);
  std::iota(all.begin(), all.end(), 0);
  if (exact || R <= 2 * kCellSize) {
    faiss_call("searching the request index", [&] { join_cell(all.data(), R, all.data(), R, pairs); });
    ctx.report("request index", R, R);
  } else {
    const int64_t top = std::clamp<int64_t>(int64_t(std::sqrt(double(R) / kCellSize)), 2, 4096);
    Partition level1;
    faiss_call("partitioning the request index", [&] { level1 = partition(vectors, dr, all, all, top, 1234); });
    all = {};
    // Top-level cells in parallel (largest first), each refined and joined by one thread;
    // FAISS's own parallel loops run serially when nested. Results are gathered per cell
    // and sorted at the end, so they do not depend on scheduling.
    std::vector<std::vector<RequestPair>> found(top);
    std::vector<std::string> errors(top);
    std::vector<int64_t> order(top);
    std::iota(order.begin(), order.end(), 0);
    auto cost = [&](int64_t c) {
      return (level1.member_off[c + 1] - level1.member_off[c]) * (level1.query_off[c + 1] - level1.query_off[c]);
    };
    std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
      return cost(x) != cost(y) ? cost(x) > cost(y) : x < y;
    });
    int64_t done = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t oc = 0; oc < top; ++oc) {
      const int64_t c = order[oc];
      try {
        std::vector<int64_t> m(level1.members.begin() + level1.member_off[c], level1.members.begin() + level1.member_off[c + 1]);
        std::vector<int64_t> q(level1.queries.begin() + level1.query_off[c], level1.queries.begin() + level1.query_off[c + 1]);
        // Queries hold members; both ascending (built in request order) as partition() needs.
        const int64_t sub = int64_t(m.size()) / kCellSize;
        if (sub < 2) {
          join_cell(m.data(), int64_t(m.size()), q.data(), int64_t(q.size()), found[c]);
        } else {
          const Partition p = partition(vectors, dr, m, q, sub, 1234 + uint64_t(c));
          for (int64_t s = 0; s < p.cells; ++s)
            join_cell(&p.members[p.member_off[s]], p.member_off[s + 1] - p.member_off[s],
                      &p.queries[p.query_off[s]], p.query_off[s + 1] - p.query_off[s], found[c]);
        }
      } catch (const faiss::FaissException& e) {
        errors[c] = e.what();  // rethrown after the parallel region
      } catch (const std::exception& e) {
        errors[c] = e.what();
      }
      int64_t now;
#pragma omp atomic capture
      now = done += level1.member_off[c + 1] - level1.member_off[c];
      if (omp_get_thread_num() == 0) ctx.report("request index", now, R);
    }
    for (const auto& e : errors)
      if (!e.empty()) throw InternalError("request index: " + e);
    for (auto& f : found) pairs.insert(pairs.end(), f.begin(), f.end());
    ctx.report("request index", R, R);
  }
  std::sort(pairs.begin(), pairs.end(), [](const RequestPair& a, const RequestPair& b) {
    return a.first != b.first ? a.first < b.first : a.second < b.second;
  });
  pairs.erase(std::unique(pairs.begin(), pairs.end(),
                          [](const RequestPair& a, const RequestPair& b) {
                            return a.first == b.first && a.second == b.second;
                          }),
              pairs.end());
  return pairs;
}

namespace {
int64_t find_root(std::vector<int64_t>& parent, int64_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}
}  // namespace

int64_t common_group_accounts(int64_t num_accounts, float max_prompt_share) {
  return std::max<int64_t>(64, int64_t(double(max_prompt_share) * double(num_accounts)));
}

PromptGroups prompt_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                           const DetectOptions& options) {
  const int64_t R = req.num_requests, A = req.num_accounts;
  PromptGroups g;
  g.near_duplicate_pairs = int64_t(pairs.size());
  g.group_of_request.assign(R, -1);
  std::vector<int64_t> parent(R);
  std::iota(parent.begin(), parent.end(), 0);
  std::vector<uint8_t> paired(R, 0);
  for (const auto& p : pairs) {
    const int64_t a = find_root(parent, p.first), b = find_root(parent, p.second);
    paired[p.first] = paired[p.second] = 1;
    // The smaller index becomes the root: components are named canonically.
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
  std::vector<int64_t> group_of_root(R, -1);
  for (int64_t r = 0; r < R; ++r) {
    if (!paired[r]) continue;
    const int64_t root = find_root(parent, r);
    if (group_of_root[root] < 0) group_of_root[root] = g.num_groups++;
    g.group_of_request[r] = group_of_root[root];
  }
  // Distinct accounts per group: requests are ordered by account, so a group's accounts
  // arrive ascending and a repeat is always the last one seen.
  std::vector<int64_t> last(g.num_groups, -1), count(g.num_groups, 0);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t grp = g.group_of_request[r];
    if (grp >= 0 && last[grp] != req.request_owner[r]) {
      last[grp] = req.request_owner[r];
      ++count[grp];
    }
  }
  g.account_offsets.assign(g.num_groups + 1, 0);
  for (int64_t i = 0; i < g.num_groups; ++i) g.account_offsets[i + 1] = g.account_offsets[i] + count[i];
  g.group_accounts.resize(g.account_offsets.back());
  std::fill(last.begin(), last.end(), -1);
  std::vector<int64_t> fill(g.account_offsets.begin(), g.account_offsets.end() - 1);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t grp = g.group_of_request[r];
    if (grp >= 0 && last[grp] != req.request_owner[r]) {
      last[grp] = req.request_owner[r];
      g.group_accounts[fill[grp]++] = req.request_owner[r];
    }
  }
  const int64_t common = common_group_accounts(A, options.max_prompt_share);
  g.idf.resize(g.num_groups);
  g.common.resize(g.num_groups);
  for (int64_t i = 0; i < g.num_groups; ++i) {
    g.idf[i] = float(std::log(double(A) / double(count[i])));
    g.common[i] = count[i] > common;
  }
  return g;
}

}  // namespace ringscan
