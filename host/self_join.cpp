#include "self_join.hpp"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>

#include "faiss_util.hpp"
#include "parallel.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

constexpr int64_t kQueryBatch = 8192;
constexpr int64_t kRangeBatch = kJoinQueryBatch;

/// Target number of members per leaf cell of the IVF partition.
constexpr int64_t kCellSize = 256;
/// Cell representatives are joined exactly up to this many, by a nested IVF join above.
constexpr int64_t kExactRepresentatives = 20000;

/// Members (stored in their nearest cell) and queries (visiting their nearest cells).
struct Partition {
  int64_t cells = 0;
  std::vector<int64_t> member_off, members, query_off, queries;
};

/// Members (stored in their nearest cell) and queries (visiting their nearest cells), given
/// the nearest `probes` cells of every query (cell[i * probes + p]).
Partition partition_by_cells(const std::vector<int64_t>& members, const std::vector<int64_t>& queries,
                             const std::vector<int64_t>& cell, int64_t k, int64_t probes) {
  const int64_t m = int64_t(members.size()), nq = int64_t(queries.size());
  // Members are queries too (callers pass members as a subset of queries, in order), and
  // a member is stored in its nearest cell.
  std::vector<int64_t> member_cell(m);
  {
    int64_t j = 0;
    for (int64_t i = 0; i < nq && j < m; ++i)
      if (queries[i] == members[j]) member_cell[j++] = cell[i * probes];
    RINGSCAN_ASSERT(j == m, "partition: members must be a subsequence of queries");
  }
  CellLists stored = group_by_cell(member_cell.data(), members.data(), m, 1, 1, k);
  CellLists visiting = group_by_cell(cell.data(), queries.data(), nq, probes, probes, k);
  Partition p;
  p.cells = k;
  p.member_off = std::move(stored.offsets);
  p.members = std::move(stored.ids);
  p.query_off = std::move(visiting.offsets);
  p.queries = std::move(visiting.ids);
  return p;
}

/// Members' k-means centroids, then assignment of every query to its nearest cells.
Partition partition(const float* x, int64_t d, const std::vector<int64_t>& members,
                    const std::vector<int64_t>& queries, int64_t k, int64_t probes_wanted,
                    uint64_t seed) {
  const int64_t probes = std::min(probes_wanted, k);
  const std::vector<float> centroids = kmeans_centroids(x, d, members.data(), int64_t(members.size()), k, seed);
  const std::vector<int64_t> cell =
      nearest_cells(x, d, queries.data(), int64_t(queries.size()), centroids.data(), k, probes);
  return partition_by_cells(members, queries, cell, k, probes);
}

/// The member of a cell nearest to the cell's mean (ties: the first).
int64_t representative(const float* x, int64_t d, const int64_t* members, int64_t m) {
  RINGSCAN_ASSERT(m > 0, "representative of an empty cell");
  std::vector<double> mean(d, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < d; ++j) mean[j] += x[members[i] * d + j];
  for (auto& v : mean) v /= double(m);
  int64_t best = members[0];
  double best_d = INFINITY;
  for (int64_t i = 0; i < m; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += (x[members[i] * d + j] - mean[j]) * (x[members[i] * d + j] - mean[j]);
    if (s < best_d) {
      best_d = s;
      best = members[i];
    }
  }
  return best;
}

}  // namespace

CellLists group_by_cell(const int64_t* cell, const int64_t* ids, int64_t n, int64_t stride,
                        int64_t used, int64_t k) {
  CellLists lists;
  lists.offsets.assign(k + 1, 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t p = 0; p < used; ++p) {
      const int64_t c = cell[r * stride + p];
      RINGSCAN_ASSERT(c >= 0 && c < k, "join partition: a row was assigned no cell");
      ++lists.offsets[c + 1];
    }
  for (int64_t c = 0; c < k; ++c) lists.offsets[c + 1] += lists.offsets[c];
  lists.ids.resize(lists.offsets[k]);
  std::vector<int64_t> fill(lists.offsets.begin(), lists.offsets.end() - 1);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t p = 0; p < used; ++p) lists.ids[fill[cell[r * stride + p]]++] = ids ? ids[r] : r;
  return lists;
}

std::vector<int64_t> kmeans_sample_positions(int64_t m, int64_t k) {
  const int64_t want = std::min<int64_t>(m, 64 * k);
  const int64_t step = std::max<int64_t>(1, m / want);
  std::vector<int64_t> at;
  for (int64_t i = 0; i < m && int64_t(at.size()) < want; i += step) at.push_back(i);
  return at;
}

std::vector<float> kmeans_on_sample(const float* sample, int64_t n, int64_t d, int64_t k, uint64_t seed) {
  SerialBlasScope serial_blas;  // as nearest_cells: the same centroids on any process
  faiss::ClusteringParameters cp;
  cp.niter = 10;
  cp.max_points_per_centroid = 64;
  cp.seed = int(seed & 0x7fffffff);
  faiss::Clustering kmeans(d, k, cp);
  faiss::IndexFlatL2 quantizer(d);
  kmeans.train(n, sample, quantizer);
  return std::vector<float>(kmeans.centroids.begin(), kmeans.centroids.end());
}

std::vector<float> kmeans_centroids(const float* x, int64_t d, const int64_t* rows, int64_t m,
                                    int64_t k, uint64_t seed) {
  RINGSCAN_ASSERT(k >= 1 && m >= k, "kmeans_centroids: need at least k rows");
  const std::vector<int64_t> at = kmeans_sample_positions(m, k);
  std::vector<float> sample(at.size() * d);
  for (std::size_t i = 0; i < at.size(); ++i) {
    const int64_t r = rows ? rows[at[i]] : at[i];
    std::copy_n(x + r * d, d, &sample[i * d]);
  }
  return kmeans_on_sample(sample.data(), int64_t(at.size()), d, k, seed);
}

std::vector<int64_t> nearest_cells(const float* x, int64_t d, const int64_t* rows, int64_t n,
                                   const float* centroids, int64_t k, int64_t probes) {
  faiss::IndexFlatL2 quantizer(d);
  quantizer.add(k, centroids);
  std::vector<int64_t> cell(n * probes);
  // Every batch searched is full, short ones padded with copies of their first row: FAISS
  // computes the distances of a few queries without BLAS, and OpenBLAS small products with
  // other kernels, both rounded differently, so a row's cells would otherwise depend on how
  // many rows share its batch (a distributed join's batches start elsewhere than one
  // process's). Searched with single-threaded BLAS, whose split of a product is fixed.
  SerialBlasScope serial_blas;
  const int64_t rows_per_batch = kQueryBatch;
  std::vector<float> vecs(rows_per_batch * d), dist(rows_per_batch * probes);
  std::vector<int64_t> found(rows_per_batch * probes);
  for (int64_t first = 0; first < n; first += kQueryBatch) {
    const int64_t b = std::min(kQueryBatch, n - first);
    for (int64_t i = 0; i < rows_per_batch; ++i) {
      const int64_t at = first + (i < b ? i : 0);
      std::copy_n(x + (rows ? rows[at] : at) * d, d, &vecs[i * d]);
    }
    quantizer.search(rows_per_batch, vecs.data(), probes, dist.data(), reinterpret_cast<faiss::Index::idx_t*>(found.data()));
    std::copy_n(found.data(), b * probes, cell.data() + first * probes);
  }
  return cell;
}

int64_t top_level_cells(int64_t n) {
  return std::clamp<int64_t>(int64_t(std::sqrt(double(n) / kCellSize)), 2, 4096);
}

bool joins_in_one_cell(int64_t n, bool exact) { return exact || n <= 2 * kCellSize; }

void CellJoin::operator()(const int64_t* members, int64_t m, const int64_t* qids_all, int64_t nq,
                          std::vector<RequestPair>& out) const {
  if (m == 0 || nq == 0) return;
  std::vector<float> member_vecs(m * dr), query_vecs(std::min(kRangeBatch, nq) * dr);
  for (int64_t i = 0; i < m; ++i) std::copy_n(vectors + members[i] * dr, dr, &member_vecs[i * dr]);
  std::unique_ptr<faiss::IndexFlatL2> index;
  const int64_t k = std::min<int64_t>(cap + 1, m);
  // With tiers the radius is wide and most of a cell lies within it: the nearest cap + 1
  // by FAISS's heap search cost less than collecting every member in range (measured on
  // 100,000 generated accounts: 34 s instead of 40 s), and give the same neighbours.
  const bool nearest = radius < 0 || tiers.near >= 0;
  if (nearest) {
    index = std::make_unique<faiss::IndexFlatL2>(dr);
    index->add(m, member_vecs.data());
  }
  std::vector<std::pair<float, int64_t>> hits;
  std::vector<float> dist;
  std::vector<int64_t> label;
  for (int64_t first = 0; first < nq; first += kRangeBatch) {
    const int64_t n = std::min(kRangeBatch, nq - first);
    const int64_t* qids = qids_all + first;
    for (int64_t i = 0; i < n; ++i) std::copy_n(vectors + qids[i] * dr, dr, &query_vecs[i * dr]);
    faiss::RangeSearchResult result(n, radius >= 0);
    if (!nearest) {
      faiss::range_search_L2sqr(query_vecs.data(), member_vecs.data(), dr, n, m, radius, &result);
    } else {
      dist.resize(n * k);
      label.resize(n * k);
      index->search(n, query_vecs.data(), k, dist.data(), reinterpret_cast<faiss::Index::idx_t*>(label.data()));
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t q = qids[i];
      hits.clear();
      if (!nearest) {
        for (size_t h = result.lims[i]; h < result.lims[i + 1]; ++h)
          hits.emplace_back(result.distances[h], result.labels[h]);
      } else {
        for (int64_t j = 0; j < k; ++j)
          if (radius < 0 || dist[i * k + j] <= radius) hits.emplace_back(dist[i * k + j], label[i * k + j]);
      }
      // Labels are checked defensively: FAISS can return -1 or out-of-range ids.
      hits.erase(std::remove_if(hits.begin(), hits.end(),
                                [&](const auto& h) { return h.second < 0 || h.second >= m || members[h.second] == q; }),
                 hits.end());
      if (int64_t(hits.size()) > cap) {
        std::partial_sort(hits.begin(), hits.begin() + cap, hits.end());
        hits.resize(cap);
      } else if (tiers.near >= 0) {
        std::sort(hits.begin(), hits.end());
      }
      int64_t far_seen = 0;
      for (const auto& [d2, l] : hits)
        if (tiers.keep(d2, far_seen)) append_accepted(q, members[l], d2, accept, out);
    }
  }
}

int64_t leaf_cells(int64_t members) { return members / kCellSize; }

void join_leaf(const CellJoin& join, const int64_t* members, int64_t m, const int64_t* queries, int64_t nq,
               std::vector<RequestPair>& out, std::vector<int64_t>& representatives) {
  join(members, m, queries, nq, out);
  // All rows identical (one prompt sent by everyone) leave the other cells empty.
  if (m > 0) representatives.push_back(representative(join.vectors, join.dr, members, m));
}

void join_top_cell(const CellJoin& join, const std::vector<int64_t>& m, const std::vector<int64_t>& q, int64_t c,
                   std::vector<RequestPair>& out, std::vector<int64_t>& representatives) {
  // Queries hold members; both ascending (built in request order) as partition() needs.
  const int64_t sub = leaf_cells(int64_t(m.size()));
  if (sub < 2) {
    join_leaf(join, m.data(), int64_t(m.size()), q.data(), int64_t(q.size()), out, representatives);
    return;
  }
  const Partition p = partition(join.vectors, join.dr, m, q, sub, kLeafProbes, kTopLevelSeed + uint64_t(c));
  for (int64_t s = 0; s < p.cells; ++s)
    join_leaf(join, &p.members[p.member_off[s]], p.member_off[s + 1] - p.member_off[s], &p.queries[p.query_off[s]],
              p.query_off[s + 1] - p.query_off[s], out, representatives);
}

void join_representatives(const float* rep_vectors, const std::vector<int64_t>& reps, const CellJoin& join,
                          const Context& ctx, const char* stage, std::vector<RequestPair>& pairs) {
  const JoinFilter mapped = [&](int64_t a, int64_t b, float d2, float* value) {
    return join.accept(reps[a], reps[b], d2, value);
  };
  const int64_t n = int64_t(reps.size());
  for (RequestPair p : ivf_self_join(rep_vectors, n, join.dr, n <= kExactRepresentatives, join.radius, join.cap,
                                     mapped, ctx, stage, join.tiers)) {
    p.first = reps[p.first];
    p.second = reps[p.second];
    if (p.first > p.second) std::swap(p.first, p.second);
    pairs.push_back(p);
  }
}

std::vector<RequestPair> ivf_self_join(const float* vectors, int64_t R, int64_t dr, bool exact,
                                       float radius, int64_t cap, const JoinFilter& accept,
                                       const Context& ctx, const char* stage, const NeighbourTiers& tiers) {
  std::vector<RequestPair> pairs = ivf_self_join_share(vectors, R, dr, exact, radius, cap, accept, ctx, stage, tiers, 0, 1);
  make_canonical(pairs);
  return pairs;
}

std::vector<RequestPair> ivf_self_join_share(const float* vectors, int64_t R, int64_t dr, bool exact, float radius,
                                             int64_t cap, const JoinFilter& accept, const Context& ctx,
                                             const char* stage, const NeighbourTiers& tiers, int part, int parts) {
  RINGSCAN_EXPECTS(parts >= 1 && part >= 0 && part < parts, "a share of a self-join is one of its parts");
  RINGSCAN_EXPECTS(parts == 1 || radius < 0, "a self-join is shared out in kNN mode only");
  std::vector<RequestPair> pairs;
  if (R < 2 || cap < 1) return pairs;
  ThreadScope threads(ctx.threads);
  // Work is split across OpenMP threads here, each calling BLAS serially: OpenBLAS's own
  // thread pool fights OpenMP's (measured: slower than serial BLAS on two cores).
  SerialBlasScope serial_blas;
  // Per cell, radius mode: every member within the radius of each query, by FAISS's BLAS
  // range search (a threshold, not a top-k heap), of which each query keeps its `cap`
  // closest: a prompt pasted by thousands of accounts yields a connected neighbourhood, not
  // millions of pairs. kNN mode: FAISS flat search for the cap + 1 nearest (self included).
  const CellJoin join_cell{vectors, dr, radius, cap, accept, tiers};

  std::vector<int64_t> all(R);
  std::iota(all.begin(), all.end(), 0);
  if (joins_in_one_cell(R, exact)) {
    if (part != 0) return pairs;  // one cell is one share
    // One cell: the queries are split into blocks searched in parallel.
    const int64_t blocks = std::min<int64_t>((R + kRangeBatch - 1) / kRangeBatch, 4 * omp_get_max_threads());
    const int64_t per_block = (R + blocks - 1) / blocks;
    std::vector<std::vector<RequestPair>> found(blocks);
    faiss_call(stage, [&] {
      detail::parallel_for(blocks, 1, [&](int64_t b) {
        const int64_t first = b * per_block, n = std::min(per_block, R - first);
        if (n > 0) join_cell(all.data(), R, all.data() + first, n, found[b]);
      });
    });
    for (auto& f : found) pairs.insert(pairs.end(), f.begin(), f.end());
    ctx.report(stage, R, R);
  } else {
    const int64_t top = top_level_cells(R);
    Partition level1;
    faiss_call(stage, [&] { level1 = partition(vectors, dr, all, all, top, kTopLevelProbes, kTopLevelSeed); });
    all = {};
    // Top-level cells in parallel (largest first), each refined and joined by one thread;
    // FAISS's own parallel loops run serially when nested. Results are gathered per cell
    // and sorted at the end, so they do not depend on scheduling.
    std::vector<std::vector<RequestPair>> found(top);
    std::vector<std::vector<int64_t>> representatives(top);
    std::vector<int64_t> order(top);
    std::iota(order.begin(), order.end(), 0);
    auto cost = [&](int64_t c) {
      return (level1.member_off[c + 1] - level1.member_off[c]) * (level1.query_off[c + 1] - level1.query_off[c]);
    };
    std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
      return cost(x) != cost(y) ? cost(x) > cost(y) : x < y;
    });
    int64_t done = 0;
    faiss_call(stage, [&] {
      detail::parallel_for(top, 1, [&](int64_t oc) {
        if (oc % parts != part) return;  // another share's cell
        const int64_t c = order[oc];
        std::vector<int64_t> m(level1.members.begin() + level1.member_off[c], level1.members.begin() + level1.member_off[c + 1]);
        std::vector<int64_t> q(level1.queries.begin() + level1.query_off[c], level1.queries.begin() + level1.query_off[c + 1]);
        join_top_cell(join_cell, m, q, c, found[c], representatives[c]);
        int64_t now;
#pragma omp atomic capture
        now = done += level1.member_off[c + 1] - level1.member_off[c];
        if (omp_get_thread_num() == 0) ctx.report(stage, now, R);
      });
    });
    for (auto& f : found) pairs.insert(pairs.end(), f.begin(), f.end());
    found = {};
    if (radius >= 0) {
      // A blob of near-identical rows (a prompt pasted by thousands) is larger than a cell,
      // so k-means cuts it into many cells whose members never meet. Their representatives
      // (the member nearest each cell's mean) lie inside the blob and are near each other:
      // joining them links the pieces, so the blob stays one prompt group.
      std::vector<int64_t> reps;
      for (const auto& r : representatives) reps.insert(reps.end(), r.begin(), r.end());
      std::vector<float> rep_vectors(reps.size() * dr);
      for (std::size_t i = 0; i < reps.size(); ++i) std::copy_n(vectors + reps[i] * dr, dr, &rep_vectors[i * dr]);
      join_representatives(rep_vectors.data(), reps, join_cell, ctx, stage, pairs);
    }
    ctx.report(stage, R, R);
  }
  return pairs;
}

void make_canonical(std::vector<RequestPair>& pairs) {
  // A pair found from both ends may carry two values (a search's distances differ in their
  // rounding); the smaller is kept, so the result does not depend on the sort's order of
  // equal keys, which for the parallel sort depends on the thread count.
  const auto before = [](const RequestPair& a, const RequestPair& b) {
    if (a.first != b.first) return a.first < b.first;
    if (a.second != b.second) return a.second < b.second;
    return a.similarity < b.similarity;
  };
  // Tens of millions of pairs at 10M requests: a serial sort would take seconds.
  detail::parallel_sort(pairs, before);
  pairs.erase(std::unique(pairs.begin(), pairs.end(),
                          [](const RequestPair& a, const RequestPair& b) {
                            return a.first == b.first && a.second == b.second;
                          }),
              pairs.end());
}

SelfJoin host_self_join() {
  SelfJoin join;
  join.run = ivf_self_join;
  return join;
}

}  // namespace ringscan
