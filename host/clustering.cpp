#include "ringscan/clustering.hpp"

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "ringscan/error.hpp"
#include "clustering_rules.hpp"
#include "pair_evidence.hpp"
#include "union_find.hpp"
#include "parallel.hpp"
#include "stage_variants.hpp"

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
  std::vector<int64_t> size(A, 0);
  for (int64_t a = 0; a < A; ++a)
    if (root[a] >= 0) ++size[root[a]];
  std::vector<int64_t> id_of_root(A, -1);
  for (int64_t a = 0; a < A; ++a) {
    const int64_t r = root[a];
    if (r < 0 || size[r] < 2) continue;
    if (id_of_root[r] < 0) id_of_root[r] = c.num_clusters++;
    c.label[a] = id_of_root[r];
  }
  ctx.report("clustering", A, A);
  return c;
}

namespace {

/// Member pairs evaluated per call of the evaluator in the cluster merge (bounds memory).
constexpr int64_t kMergeBatch = int64_t(1) << 21;

/// Renumbers labels 0..C-1 by smallest member (canonical accounts are sorted by id).
int64_t relabel_canonically(std::vector<int64_t>& label, int64_t old_count) {
  std::vector<int64_t> id(old_count, -1);
  int64_t next = 0;
  for (auto& l : label) {
    if (l < 0) continue;
    if (id[l] < 0) id[l] = next++;
    l = id[l];
  }
  return next;
}

}  // namespace

Clustering merge_coordinated_clusters(const Clustering& clusters, const CanonicalRequests& req,
                                      const PromptGroups& groups, const AccountProfiles& profiles,
                                      const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                                      const DetectOptions& options, const Context& ctx) {
  return merge_coordinated_clusters(clusters, req, groups, profiles, account_pairs, options, ctx,
                                    host_pair_evaluator(options));
}

Clustering merge_coordinated_clusters(const Clustering& clusters, const CanonicalRequests& req,
                                      const PromptGroups& groups, const AccountProfiles& profiles,
                                      const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                                      const DetectOptions& options, const Context& ctx,
                                      const PairEvaluator& evaluate) {
  const int64_t C = clusters.num_clusters, B = profiles.feature_dim;
  if (C < 2 || !profiles.has_timing || B == 0 || options.merge_threshold >= 1.0f) return clusters;
  ThreadScope threads(ctx.threads);
  std::vector<std::vector<int64_t>> sample(C);
  for (int64_t a = 0; a < profiles.num_accounts; ++a) {
    const int64_t c = clusters.label[a];
    if (c >= 0 && int64_t(sample[c].size()) < kMergeSample) sample[c].push_back(a);
  }
  // A cluster is held together by prompts when half its members sent a prompt group that
  // another member of the cluster also sent.
  std::vector<int64_t> size(C, 0), sharing(C, 0);
  {
    std::unordered_map<int64_t, int64_t> first_sender;  // (cluster, group) -> first member
    std::vector<uint8_t> shares(profiles.num_accounts, 0);
    for (int64_t a = 0; a < profiles.num_accounts; ++a) {
      const int64_t c = clusters.label[a];
      if (c < 0) continue;
      ++size[c];
      for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
        const int64_t g = groups.group_of_request[r];
        if (g < 0 || !groups.is_evidence(g)) continue;
        const auto [it, fresh] = first_sender.emplace(g * C + c, a);
        if (!fresh && it->second != a) shares[a] = shares[it->second] = 1;
      }
    }
    for (int64_t a = 0; a < profiles.num_accounts; ++a)
      if (clusters.label[a] >= 0) sharing[clusters.label[a]] += shares[a];
  }
  auto held_by_prompts = [&](int64_t c) { return 2 * sharing[c] >= size[c]; };
  std::vector<std::pair<int64_t, int64_t>> linked;
  for (const auto& [a, b] : account_pairs) {
    const int64_t ca = clusters.label[a], cb = clusters.label[b];
    if (ca >= 0 && cb >= 0 && ca != cb && held_by_prompts(ca) && held_by_prompts(cb))
      linked.emplace_back(std::min(ca, cb), std::max(ca, cb));
  }
  std::sort(linked.begin(), linked.end());
  linked.erase(std::unique(linked.begin(), linked.end()), linked.end());

  // The member pairs of linked clusters are evaluated in batches of about kMergeBatch (by the
  // backend's evaluator), then averaged per cluster pair in member order.
  std::vector<uint8_t> merge(linked.size(), 0);
  const int64_t n = int64_t(linked.size());
  std::vector<int64_t> first, second;
  std::vector<PairEvidence> evidence;
  for (int64_t begin = 0; begin < n;) {
    first.clear();
    second.clear();
    int64_t end = begin;
    for (; end < n && (end == begin || int64_t(first.size()) < kMergeBatch); ++end)
      for (int64_t a : sample[linked[end].first])
        for (int64_t b : sample[linked[end].second]) {
          first.push_back(a);
          second.push_back(b);
        }
    const std::vector<float> no_idf(first.size(), 0.0f);
    evidence.resize(first.size());
    evaluate(profiles, first.data(), second.data(), no_idf.data(), int64_t(first.size()), evidence.data());
    for (int64_t i = begin, at = 0; i < end; ++i) {
      const int64_t pairs = int64_t(sample[linked[i].first].size() * sample[linked[i].second].size());
      double sync = 0, behaviour = 0;
      for (int64_t k = at; k < at + pairs; ++k) {
        sync += evidence[k].synchrony;
        behaviour += evidence[k].behaviour;
      }
      at += pairs;
      const double s = std::min(1.0, sync / double(pairs) / kMergeSynchronyScale);
      merge[i] = std::min(s, behaviour / double(pairs)) >= options.merge_threshold;
    }
    begin = end;
  }
  std::vector<int64_t> parent(C);
  std::iota(parent.begin(), parent.end(), 0);
  for (int64_t i = 0; i < n; ++i) {
    if (!merge[i]) continue;
    union_sets(parent.data(), linked[i].first, linked[i].second);
  }
  Clustering merged = clusters;
  for (auto& l : merged.label)
    if (l >= 0) l = find_root(parent.data(), l);
  merged.num_clusters = relabel_canonically(merged.label, C);
  return merged;
}

}  // namespace ringscan
