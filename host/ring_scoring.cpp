#include "ringscan/ring_scoring.hpp"

#include <algorithm>
#include <unordered_map>

#include "parallel.hpp"
#include "ring_signals.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

/// Members of each cluster, ascending.
std::vector<std::vector<int64_t>> cluster_members(const Clustering& clusters) {
  std::vector<std::vector<int64_t>> members(clusters.num_clusters);
  for (int64_t a = 0; a < int64_t(clusters.label.size()); ++a)
    if (clusters.label[a] >= 0) members[clusters.label[a]].push_back(a);
  return members;
}

/// Prompt groups as seen inside a cluster: how many of its members sent each.
std::unordered_map<int64_t, int64_t> members_per_group(const CanonicalRequests& req,
                                                       const PromptGroups& groups,
                                                       const std::vector<int64_t>& members) {
  std::unordered_map<int64_t, int64_t> count;
  std::vector<int64_t> seen;
  for (int64_t a : members) {
    seen.clear();
    for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r)
      if (groups.group_of_request[r] >= 0) seen.push_back(groups.group_of_request[r]);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int64_t grp : seen) ++count[grp];
  }
  return count;
}

}  // namespace

std::vector<ClusterTally> cluster_tallies(const CanonicalRequests& req, const PromptGroups& groups,
                                          const EvidenceGraph& graph, const Clustering& clusters,
                                          const Context& ctx) {
  const int64_t C = clusters.num_clusters;
  const auto members = cluster_members(clusters);
  std::vector<ClusterTally> tallies(C);
  ThreadScope threads(ctx.threads);
  detail::parallel_for(C, 1, [&](int64_t c) {
    const auto& m = members[c];
    ClusterTally& t = tallies[c];
    t.size = int64_t(m.size());
    const auto per_group = members_per_group(req, groups, m);
    t.distinct_groups = int64_t(per_group.size());
    std::vector<int64_t> mine;
    for (int64_t a : m) {
      mine.clear();
      for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
        ++t.requests;
        const int64_t grp = groups.group_of_request[r];
        if (grp < 0) {
          ++t.singletons;
          continue;
        }
        if (groups.common[grp] || per_group.at(grp) < 2) continue;
        ++t.shared_requests;
        mine.push_back(grp);
      }
      std::sort(mine.begin(), mine.end());
      t.member_groups += std::unique(mine.begin(), mine.end()) - mine.begin();
      for (int64_t e = graph.offsets[a]; e < graph.offsets[a + 1]; ++e) {
        if (clusters.label[graph.neighbours[e]] != c) continue;
        ++t.internal_edges;
        t.synchrony += tally_units(graph.evidence[e].synchrony);
        t.behaviour += tally_units(graph.evidence[e].behaviour);
        t.weight += tally_units(graph.evidence[e].weight);
      }
    }
  });
  return tallies;
}

std::vector<Ring> rings_from_tallies(const CanonicalRequests& req, const PromptGroups& groups,
                                     const Clustering& clusters,
                                     const std::vector<ClusterTally>& tallies,
                                     const DetectOptions& options, const Context& ctx) {
  const int64_t C = clusters.num_clusters;
  RINGSCAN_ASSERT(int64_t(tallies.size()) == C, "ring scoring: one tally per cluster");
  const auto members = cluster_members(clusters);
  std::vector<Ring> candidates;
  for (int64_t c = 0; c < C; ++c) {
    const auto& m = members[c];
    if (tallies[c].size < options.min_ring_size) continue;
    const RingSignals s = ring_signals(tallies[c]);
    if (s.score < options.ring_threshold) continue;
    Ring ring;
    ring.cluster = c;
    ring.size = tallies[c].size;
    ring.score = s.score;
    ring.shared_prompt_strength = s.shared_prompt_strength;
    ring.synchrony = s.synchrony;
    ring.behaviour_tightness = s.behaviour_tightness;
    ring.internal_edge_weight = s.internal_edge_weight;
    ring.prompt_diversity = s.prompt_diversity;
    ring.volume = s.volume;
    for (int64_t a : m) ring.members.push_back(req.account_id[a]);
    // Evidence for the report: the groups most members share, rarest first on ties.
    std::vector<std::pair<int64_t, int64_t>> top;  // (members, group)
    for (const auto& [grp, count] : members_per_group(req, groups, m))
      if (count >= 2 && !groups.common[grp]) top.emplace_back(count, grp);
    std::sort(top.begin(), top.end(), [&](const auto& x, const auto& y) {
      if (x.first != y.first) return x.first > y.first;
      if (groups.idf[x.second] != groups.idf[y.second]) return groups.idf[x.second] > groups.idf[y.second];
      return x.second < y.second;
    });
    ring.shared_groups = int64_t(top.size());
    if (int64_t(top.size()) > options.report_examples) top.resize(options.report_examples);
    for (const auto& [count, grp] : top) {
      SharedPromptExample ex;
      ex.accounts_in_ring = count;
      ex.accounts_overall = groups.accounts_in(grp);
      ex.idf = groups.idf[grp];
      for (int64_t a : m) {
        for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1] && ex.request_rows.size() < 5; ++r)
          if (groups.group_of_request[r] == grp) {
            ex.request_rows.push_back(req.request_row[r]);
            break;
          }
        if (ex.request_rows.size() >= 5) break;
      }
      ring.examples.push_back(std::move(ex));
    }
    candidates.push_back(std::move(ring));
  }
  std::sort(candidates.begin(), candidates.end(), [](const Ring& x, const Ring& y) {
    if (x.score != y.score) return x.score > y.score;
    return x.cluster < y.cluster;
  });
  for (std::size_t i = 0; i < candidates.size(); ++i) candidates[i].id = int64_t(i);
  ctx.report("ring scoring", C, C);
  return candidates;
}

std::vector<Ring> score_rings(const CanonicalRequests& req, const PromptGroups& groups,
                              const EvidenceGraph& graph, const Clustering& clusters,
                              const DetectOptions& options, const Context& ctx) {
  return rings_from_tallies(req, groups, clusters, cluster_tallies(req, groups, graph, clusters, ctx),
                            options, ctx);
}

int64_t mark_seeds(const std::vector<int64_t>& seeds, std::vector<Ring>& rings) {
  std::vector<int64_t> sorted = seeds;
  std::sort(sorted.begin(), sorted.end());
  int64_t seeded = 0;
  for (Ring& r : rings) {
    r.seeds = 0;
    for (const int64_t id : r.members) r.seeds += std::binary_search(sorted.begin(), sorted.end(), id);
    seeded += r.seeds > 0;
  }
  return seeded;
}

}  // namespace ringscan
