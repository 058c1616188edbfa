#include "ringscan/ring_scoring.hpp"

#include <algorithm>
#include <unordered_map>

#include "evidence_math.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

/// Shared prompt groups per member at which a cluster's sharing counts in full.
constexpr float kSharedBreadth = 3.0f;

}  // namespace

std::vector<Ring> score_rings(const CanonicalRequests& req, const PromptGroups& groups,
                              const EvidenceGraph& graph, const Clustering& clusters,
                              const DetectOptions& options, const Context& ctx) {
  const int64_t A = req.num_accounts, C = clusters.num_clusters;
  std::vector<std::vector<int64_t>> members(C);
  for (int64_t a = 0; a < A; ++a)
    if (clusters.label[a] >= 0) members[clusters.label[a]].push_back(a);

  std::vector<Ring> candidates;
  for (int64_t c = 0; c < C; ++c) {
    const auto& m = members[c];
    if (int64_t(m.size()) < options.min_ring_size) continue;
    Ring ring;
    ring.cluster = c;
    ring.size = int64_t(m.size());

    // Prompt groups as seen inside the cluster: how many members sent each.
    std::unordered_map<int64_t, int64_t> members_per_group;
    int64_t requests = 0, singletons = 0;
    for (int64_t a : m) {
      std::vector<int64_t> seen;
      for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
        ++requests;
        const int64_t grp = groups.group_of_request[r];
        if (grp < 0) {
          ++singletons;
          continue;
        }
        seen.push_back(grp);
      }
      std::sort(seen.begin(), seen.end());
      seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
      for (int64_t grp : seen) ++members_per_group[grp];
    }
    // Shared-prompt strength: the share of the cluster's requests in groups that two or more
    // members sent, times its breadth, the mean number of such groups per member (saturating
    // at kSharedBreadth). An operator's accounts draw many prompts from one pool; a company
    // team shares a document or two.
    int64_t shared_requests = 0, member_groups = 0;
    std::vector<int64_t> mine;
    for (int64_t a : m) {
      mine.clear();
      for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
        const int64_t grp = groups.group_of_request[r];
        if (grp < 0 || groups.common[grp] || members_per_group[grp] < 2) continue;
        ++shared_requests;
        mine.push_back(grp);
      }
      std::sort(mine.begin(), mine.end());
      member_groups += std::unique(mine.begin(), mine.end()) - mine.begin();
    }
    const float breadth = std::min(1.0f, float(member_groups) / float(m.size()) / kSharedBreadth);
    const float share = requests > 0 ? breadth * float(shared_requests) / float(requests) : 0.0f;

    // Mean signals over the cluster's internal edges, summed in CSR order (deterministic).
    double sync = 0, behaviour = 0, weight = 0;
    int64_t internal = 0;
    for (int64_t a : m)
      for (int64_t e = graph.offsets[a]; e < graph.offsets[a + 1]; ++e) {
        if (clusters.label[graph.neighbours[e]] != c) continue;
        sync += graph.evidence[e].synchrony;
        behaviour += graph.evidence[e].behaviour;
        weight += graph.evidence[e].weight;
        ++internal;
      }
    if (internal > 0) {
      ring.synchrony = float(sync / double(internal));
      ring.behaviour_tightness = float(behaviour / double(internal));
      ring.internal_edge_weight = float(weight / double(internal));
    }
    ring.prompt_diversity =
        requests > 0 ? float(singletons + int64_t(members_per_group.size())) / float(requests) : 1.0f;
    ring.shared_prompt_strength = share;
    ring.volume = float(requests);
    ring.score = ring_score(share, ring.synchrony, ring.behaviour_tightness, ring.prompt_diversity);
    if (ring.score < options.ring_threshold) continue;

    for (int64_t a : m) ring.members.push_back(req.account_id[a]);
    // Evidence for the report: the groups most members share, rarest first on ties.
    std::vector<std::pair<int64_t, int64_t>> top;  // (members, group)
    for (const auto& [grp, count] : members_per_group)
      if (count >= 2 && !groups.common[grp]) top.emplace_back(count, grp);
    std::sort(top.begin(), top.end(), [&](const auto& x, const auto& y) {
      if (x.first != y.first) return x.first > y.first;
      if (groups.idf[x.second] != groups.idf[y.second]) return groups.idf[x.second] > groups.idf[y.second];
      return x.second < y.second;
    });
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

}  // namespace ringscan
