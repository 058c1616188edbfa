#include "ringscan/clustering.hpp"

#include <algorithm>
#include <numeric>

#include "ringscan/error.hpp"
#include "clustering_rules.hpp"
#include "union_find.hpp"
#include "parallel.hpp"

namespace ringscan {

Clustering cluster_accounts(const EvidenceGraph& g, const DetectOptions& options,
                            const Context& ctx) {
  RINGSCAN_EXPECTS(options.min_core_degree >= 1, "--min-core-degree must be >= 1");
  const int64_t A = g.num_accounts;
  Clustering c;
  c.label.assign(A, -1);
  std::vector<uint8_t> core(A);
  for (int64_t a = 0; a < A; ++a) core[a] = is_core_account(g.offsets.data(), a, options.min_core_degree);

  // Union-find over core-core edges; the smaller account becomes the root, so the root of a
  // component is its smallest member whatever order edges are visited in.
  std::vector<int64_t> parent(A);
  std::iota(parent.begin(), parent.end(), 0);
  for (int64_t a = 0; a < A; ++a) {
    if (!core[a]) continue;
    for (int64_t e = g.offsets[a]; e < g.offsets[a + 1]; ++e) {
      const int64_t b = g.neighbours[e];
      if (b <= a || !core[b]) continue;
      union_sets(parent.data(), a, b);
    }
  }
  // Border accounts join the core neighbour of their strongest shared-prompt edge (ties: the
  // smaller account).
  std::vector<int64_t> root(A, -1);
  for (int64_t a = 0; a < A; ++a) {
    if (core[a]) {
      root[a] = find_root(parent.data(), a);
      continue;
    }
    const int64_t best = strongest_core_neighbour(g.offsets.data(), g.neighbours.data(),
                                                  g.evidence.data(), core.data(), a);
    if (best >= 0) root[a] = find_root(parent.data(), best);
  }
  // Components of two or more accounts become clusters, numbered by smallest member (canonical
  // accounts are sorted by id, so this is the order of smallest account id).
  c.num_clusters = label_components(root, 2, 0, c.label);
  ctx.report("clustering", A, A);
  return c;
}

int64_t label_components(const std::vector<int64_t>& root, int64_t min_size, int64_t first_label,
                         std::vector<int64_t>& label) {
  const int64_t A = int64_t(root.size());
  std::vector<int64_t> size(A, 0);
  for (int64_t a = 0; a < A; ++a)
    if (root[a] >= 0) ++size[root[a]];
  std::vector<int64_t> id_of_root(A, -1);
  int64_t next = first_label;
  for (int64_t a = 0; a < A; ++a) {
    const int64_t r = root[a];
    if (r < 0 || size[r] < min_size) continue;
    if (id_of_root[r] < 0) id_of_root[r] = next++;
    label[a] = id_of_root[r];
  }
  return next;
}

}  // namespace ringscan
