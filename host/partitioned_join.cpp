#include "partitioned_join.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "faiss_util.hpp"
#include "parallel.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

constexpr uint64_t kPartitionSeed = 4321;

}  // namespace

void append_neighbour_pairs(const RowNeighbours& found, const int64_t* queries,
                            const JoinFilter& accept, std::vector<RequestPair>& pairs,
                            const NeighbourTiers& tiers) {
  const int64_t nq = int64_t(found.offsets.size()) - 1;
  std::vector<std::vector<RequestPair>> per_thread(std::max(1, omp_get_max_threads()));
  detail::parallel_for(nq, 1024, [&](int64_t i) {
    auto& out = per_thread[omp_get_thread_num()];
    const int64_t q = queries ? queries[i] : i;
    int64_t far_seen = 0;
    for (int64_t h = found.offsets[i]; h < found.offsets[i + 1]; ++h)
      if (tiers.keep(found.distance[h], far_seen)) append_accepted(q, found.other[h], found.distance[h], accept, out);
  });
  for (auto& f : per_thread) pairs.insert(pairs.end(), f.begin(), f.end());
}

std::vector<RequestPair> partitioned_self_join(RowSearch& search, const float* x, int64_t n,
                                               int64_t d, float radius, int64_t cap,
                                               const JoinFilter& accept, PartitionShape shape,
                                               const Context& ctx, const char* stage,
                                               const NeighbourTiers& tiers) {
  std::vector<RequestPair> pairs;
  if (n < 2 || cap < 1) return pairs;
  RINGSCAN_EXPECTS(shape.cell_rows >= 1 && shape.probes >= 1, "partitioned join: bad shape");
  const int64_t k = std::clamp<int64_t>(n / shape.cell_rows, 1, 65536);
  const int64_t probes = std::min(shape.probes, k);
  std::vector<float> centroids;
  faiss_call(stage, [&] { centroids = kmeans_centroids(x, d, nullptr, n, k, kPartitionSeed); });
  std::vector<int64_t> cell(n * probes);
  std::vector<float> dist2(n * probes);
  search.nearest_centroids(centroids.data(), k, probes, cell.data(), dist2.data());
  const CellLists members = group_by_cell(cell.data(), nullptr, n, probes, 1, k);
  const CellLists queries = group_by_cell(cell.data(), nullptr, n, probes, probes, k);

  int64_t done = 0;
  for (int64_t c = 0; c < k; ++c) {
    const int64_t m = members.offsets[c + 1] - members.offsets[c];
    const int64_t nq = queries.offsets[c + 1] - queries.offsets[c];
    if (m == 0 || nq == 0) continue;
    const int64_t* qids = &queries.ids[queries.offsets[c]];
    const RowNeighbours found =
        search.nearest_others(qids, nq, &members.ids[members.offsets[c]], m, radius, cap);
    append_neighbour_pairs(found, qids, accept, pairs, tiers);
    done += m;
    ctx.report(stage, done, n);
  }
  if (radius >= 0 && k > 1) {
    // Representative of a cell: its member nearest the centroid (ties: the lowest row).
    std::vector<int64_t> rep(k, -1);
    for (int64_t c = 0; c < k; ++c)
      for (int64_t i = members.offsets[c]; i < members.offsets[c + 1]; ++i) {
        const int64_t r = members.ids[i];
        if (rep[c] < 0 || dist2[r * probes] < dist2[rep[c] * probes]) rep[c] = r;
      }
    rep.erase(std::remove(rep.begin(), rep.end(), int64_t(-1)), rep.end());
    const RowNeighbours found = search.nearest_others(rep.data(), int64_t(rep.size()), rep.data(),
                                                      int64_t(rep.size()), radius, cap);
    append_neighbour_pairs(found, rep.data(), accept, pairs, tiers);
  }
  make_canonical(pairs);
  return pairs;
}

}  // namespace ringscan
