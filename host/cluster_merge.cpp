// The clusters' refinement: clusters, and accounts outside any, merged on the evidence they
// carry together (clustering.hpp, merge_clusters).
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "evidence_math.hpp"
#include "parallel.hpp"
#include "prompt_pairs.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/error.hpp"
#include "ringscan/shared_infrastructure.hpp"
#include "ringscan/sizes.hpp"
#include "union_find.hpp"

namespace ringscan {
namespace {

/// Rounds of merging at most: each round's merged clusters carry more evidence the next.
constexpr int kMergeRounds = 4;
/// The pooled timelines of clusters are counted in episodes of at least a session (half an
/// hour without activity ends one, the usual inactivity timeout of a web session;
/// synchrony_surprise). Two hours ran an operator's bursts of the same afternoon into one.
constexpr int64_t kSessionGap = 1800;
/// Clusters of a round up to which every pair of them is judged (about 32,000 pairs), while
/// the timelines compared stay under kEveryPairRequests (each pair reads both clusters'
/// requests); beyond either, the pairs the account index links. Judging every pair selects
/// none, so none pays for a selection, and sub-groups of one ring that the index did not link
/// are still compared.
constexpr int64_t kEveryPairClusters = 256;
constexpr int64_t kEveryPairRequests = int64_t(1) << 27;
/// A group's (cluster, unit) pairs beyond which it proposes none (a group sent by hundreds of
/// clusters is no evidence for any two of them).
constexpr int64_t kMaxGroupUnitPairs = 4096;

/// The second test of a weak core without infrastructure, and of a light member joining a
/// cluster: `shared_requests` of the account's `requests` lie in the prompt groups it shares
/// with the set, and the set's accounts are `members` of those groups' `senders`, at least
/// `senders_share` of them.
bool traffic_owned(int64_t shared_requests, int64_t requests, int64_t members, int64_t senders,
                   double senders_share = kWeakCoreOwnSenders) {
  return double(shared_requests) >= kWeakCoreOwnTraffic * double(requests) &&
         double(members) >= senders_share * double(senders);
}

/// What one round works on: every cluster is a unit, every account outside a cluster too.
struct Units {
  int64_t count = 0, clusters = 0;
  std::vector<int64_t> of_account;        ///< [A]
  std::vector<int64_t> offsets, members;  ///< CSR: the accounts of each unit, ascending
};

Units make_units(const Clustering& clusters) {
  const int64_t A = int64_t(clusters.label.size());
  Units u;
  u.clusters = clusters.num_clusters;
  u.of_account.resize(A);
  int64_t next = u.clusters;
  for (int64_t a = 0; a < A; ++a) u.of_account[a] = clusters.label[a] >= 0 ? clusters.label[a] : next++;
  u.count = next;
  u.offsets.assign(u.count + 1, 0);
  for (int64_t a = 0; a < A; ++a) ++u.offsets[u.of_account[a] + 1];
  for (int64_t i = 0; i < u.count; ++i) u.offsets[i + 1] += u.offsets[i];
  u.members.resize(A);
  std::vector<int64_t> fill(u.offsets.begin(), u.offsets.end() - 1);
  for (int64_t a = 0; a < A; ++a) u.members[fill[u.of_account[a]]++] = a;
  return u;
}

/// The evidence groups each unit sent: (unit, group) entries with the number of the unit's
/// members that sent the group, sorted.
struct UnitGroup {
  int64_t unit, group, senders;
};

std::vector<UnitGroup> unit_groups(const Units& u, const CanonicalRequests& req, const PromptGroups& groups) {
  std::vector<std::pair<int64_t, int64_t>> entries;  // (unit, group), one per sending account
  std::vector<int64_t> mine;
  for (int64_t a = 0; a < req.num_accounts; ++a) {
    account_evidence_groups(req, groups, a, mine);
    for (int64_t g : mine) entries.emplace_back(u.of_account[a], g);
  }
  detail::parallel_sort(entries, std::less<std::pair<int64_t, int64_t>>());
  std::vector<UnitGroup> out;
  for (std::size_t i = 0; i < entries.size();) {
    std::size_t j = i;
    while (j < entries.size() && entries[j] == entries[i]) ++j;
    out.push_back({entries[i].first, entries[i].second, int64_t(j - i)});
    i = j;
  }
  return out;
}

/// A unit pair to judge: the groups both sent, and whether the account index linked them.
struct Candidate {
  int64_t u, v;
  int64_t shared;
  bool operator<(const Candidate& o) const { return u != o.u ? u < o.u : v < o.v; }
};

/// Times of the unit's coordinated requests, ascending: a cluster's requests in groups two
/// or more of its members sent (its cover traffic left out), an account's own requests.
std::vector<int64_t> coordinated_times(const Units& u, int64_t unit, const CanonicalRequests& req,
                                       const PromptGroups& groups, const std::vector<UnitGroup>& by_unit,
                                       const std::vector<int64_t>& unit_first_entry) {
  std::vector<int64_t> t;
  const bool cluster = unit < u.clusters;
  for (int64_t i = u.offsets[unit]; i < u.offsets[unit + 1]; ++i) {
    const int64_t a = u.members[i];
    for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
      if (cluster) {
        const int64_t g = groups.group_of_request[r];
        if (g < 0 || !groups.is_evidence(g)) continue;
        // The unit's entry for g (its entries are sorted by group).
        const auto begin = by_unit.begin() + unit_first_entry[unit], end = by_unit.begin() + unit_first_entry[unit + 1];
        const auto at = std::lower_bound(begin, end, g, [](const UnitGroup& e, int64_t key) { return e.group < key; });
        if (at == end || at->group != g || at->senders < 2) continue;
      }
      t.push_back(req.time[r]);
    }
  }
  std::sort(t.begin(), t.end());
  return t;
}

/// A unit's behaviour summary per feature: median rank, tie share there, and the median's
/// imprecision (the ranks' robust spread over the square root of the members).
struct BehaviourSummary {
  std::vector<float> median, tie, imprecision;
};

BehaviourSummary behaviour_summary(const Units& u, int64_t unit, const EvidenceCalibration& c) {
  const int64_t B = c.feature_dim;
  BehaviourSummary s;
  s.median.resize(B);
  s.tie.resize(B);
  s.imprecision.assign(B, 0.0f);
  const int64_t n = u.offsets[unit + 1] - u.offsets[unit];
  std::vector<std::pair<float, float>> ranks(n);  // (rank, tie share)
  std::vector<float> deviation(n);
  for (int64_t f = 0; f < B; ++f) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t a = u.members[u.offsets[unit] + i];
      ranks[i] = {c.feature_rank[a * B + f], c.feature_tie[a * B + f]};
    }
    if (c.categorical[f]) {
      // The most common value (ties: the lower rank).
      std::sort(ranks.begin(), ranks.end());
      int64_t best = 0;
      for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && ranks[j].first == ranks[i].first) ++j;
        if (j - i > best) {
          best = j - i;
          s.median[f] = ranks[i].first;
          s.tie[f] = ranks[i].second;
        }
        i = j;
      }
      continue;
    }
    std::nth_element(ranks.begin(), ranks.begin() + n / 2, ranks.end());
    s.median[f] = ranks[n / 2].first;
    s.tie[f] = ranks[n / 2].second;
    if (n < 2) continue;
    for (int64_t i = 0; i < n; ++i) deviation[i] = std::fabs(ranks[i].first - s.median[f]);
    std::nth_element(deviation.begin(), deviation.begin() + n / 2, deviation.end());
    s.imprecision[f] = float(1.4826 * deviation[n / 2] / std::sqrt(double(n)));
  }
  return s;
}

/// Whether `cluster` owns the traffic of account `a` (traffic_owned), from its entries. The
/// senders that other clusters hold ([G] `clustered` counts all clusters' senders) are other
/// rings', as in a weak core's test, not the prompt's public.
bool owns_traffic_of(int64_t cluster, int64_t a, const CanonicalRequests& req, const PromptGroups& groups,
                     const std::vector<UnitGroup>& by_unit, const std::vector<int64_t>& unit_first_entry,
                     const std::vector<int64_t>& clustered, double senders_share) {
  const auto begin = by_unit.begin() + unit_first_entry[cluster], end = by_unit.begin() + unit_first_entry[cluster + 1];
  std::vector<int64_t> sent, requests;
  account_evidence_groups(req, groups, a, sent, requests);
  int64_t shared_requests = 0, members = 0, senders = 0;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const auto at = std::lower_bound(begin, end, sent[i], [](const UnitGroup& e, int64_t key) { return e.group < key; });
    if (at == end || at->group != sent[i]) continue;
    shared_requests += requests[i];
    members += at->senders;
    senders += groups.accounts_in(sent[i]) - (clustered[sent[i]] - at->senders);
  }
  return traffic_owned(shared_requests, req.account_offsets[a + 1] - req.account_offsets[a], members, senders,
                       senders_share);
}

/// Whether half a cluster's members share a prompt group with another member.
bool held_by_prompts(const Units& u, int64_t unit, const CanonicalRequests& req, const PromptGroups& groups,
                     const std::vector<UnitGroup>& by_unit, const std::vector<int64_t>& unit_first_entry) {
  const int64_t n = u.offsets[unit + 1] - u.offsets[unit];
  int64_t sharing = 0;
  for (int64_t i = u.offsets[unit]; i < u.offsets[unit + 1]; ++i) {
    const int64_t a = u.members[i];
    bool shares = false;
    for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1] && !shares; ++r) {
      const int64_t g = groups.group_of_request[r];
      if (g < 0 || !groups.is_evidence(g)) continue;
      const auto begin = by_unit.begin() + unit_first_entry[unit], end = by_unit.begin() + unit_first_entry[unit + 1];
      const auto at = std::lower_bound(begin, end, g, [](const UnitGroup& e, int64_t key) { return e.group < key; });
      shares = at != end && at->group == g && at->senders >= 2;
    }
    sharing += shares;
  }
  return 2 * sharing >= n;
}

/// Renumbers labels 0..C-1 by smallest member (canonical accounts are sorted by id).
int64_t relabel_canonically(std::vector<int64_t>& label) {
  std::vector<int64_t> id(label.size(), -1);
  int64_t next = 0;
  for (auto& l : label) {
    if (l < 0) continue;
    if (id[l] < 0) id[l] = next++;
    l = id[l];
  }
  return next;
}

/// Bytes a round of merging may hold.
int64_t merge_memory(const CanonicalRequests& req, const std::vector<std::pair<int64_t, int64_t>>& account_pairs) {
  return size_from_double(double(req.num_requests) * 40 + double(req.num_accounts) * 64 +
                          double(account_pairs.size() + kEveryPairClusters * kEveryPairClusters / 2) * 24);
}

/// What one round of merging did.
struct RoundRecord {
  int64_t merges = 0;  ///< merges made
  int64_t joined = 0;  ///< of which light members joining a cluster
  float threshold = 0;  ///< the round's merge threshold
  /// When given: receives the pairs of clusters the round judged, with their evidence.
  std::vector<ClusterPairEvidence>* judged = nullptr;
};

/// One round: the units' candidate pairs, their evidence, the merges. Returns the merged
/// clustering; `record` receives what the round did.
Clustering merge_round(const Clustering& clusters, const CanonicalRequests& req, const PromptGroups& groups,
                       const EvidenceCalibration& c, const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                       RoundRecord& record) {
  const int64_t A = req.num_accounts;
  const Units u = make_units(clusters);
  const std::vector<UnitGroup> by_unit = unit_groups(u, req, groups);
  std::vector<int64_t> unit_first_entry(u.count + 1, 0);
  for (const UnitGroup& e : by_unit) ++unit_first_entry[e.unit + 1];
  for (int64_t i = 0; i < u.count; ++i) unit_first_entry[i + 1] += unit_first_entry[i];

  // Distinct prompts (tries at sharing a group) and group mass of each unit: the senders of
  // its groups outside it.
  std::vector<int64_t> prompts(u.count, 0);
  for (int64_t a = 0; a < A; ++a) prompts[u.of_account[a]] += c.distinct_prompts[a];
  std::vector<double> mass(u.count, 0.0);
  for (const UnitGroup& e : by_unit) mass[e.unit] += double(groups.accounts_in(e.group) - e.senders);
  // Each group's senders that clusters hold.
  std::vector<int64_t> clustered(groups.num_groups, 0);
  for (const UnitGroup& e : by_unit)
    if (e.unit < u.clusters) clustered[e.group] += e.senders;

  // Candidates: units that sent a common group, one of them a cluster; every pair of
  // clusters, or where there are too many, the pairs the account index links.
  int64_t clustered_requests = 0;  // each cluster's are read by its C - 1 pairs
  for (int64_t i = 0; i < u.offsets[u.clusters]; ++i)
    clustered_requests += req.account_offsets[u.members[i] + 1] - req.account_offsets[u.members[i]];
  const bool every_cluster_pair =
      u.clusters <= kEveryPairClusters && (u.clusters - 1) * clustered_requests <= kEveryPairRequests;
  std::vector<Candidate> found;
  {
    std::vector<std::pair<int64_t, int64_t>> by_group;  // (group, unit)
    by_group.reserve(by_unit.size());
    for (const UnitGroup& e : by_unit) by_group.emplace_back(e.group, e.unit);
    detail::parallel_sort(by_group, std::less<std::pair<int64_t, int64_t>>());
    std::vector<int64_t> units;
    for (std::size_t i = 0; i < by_group.size();) {
      std::size_t j = i;
      units.clear();
      while (j < by_group.size() && by_group[j].first == by_group[i].first) units.push_back(by_group[j++].second);
      // Units are ascending: the clusters (ids below u.clusters) come first.
      const int64_t n = int64_t(units.size());
      const int64_t cl = std::lower_bound(units.begin(), units.end(), u.clusters) - units.begin();
      if (cl * n <= kMaxGroupUnitPairs)
        for (int64_t x = 0; x < cl; ++x)
          for (int64_t y = x + 1; y < n; ++y) found.push_back({units[x], units[y], 1});
      i = j;
    }
    if (every_cluster_pair) {
      for (int64_t x = 0; x < u.clusters; ++x)
        for (int64_t y = x + 1; y < u.clusters; ++y) found.push_back({x, y, 0});
    } else {
      for (const auto& [a, b] : account_pairs) {
        const int64_t ua = u.of_account[a], ub = u.of_account[b];
        if (ua != ub && ua < u.clusters && ub < u.clusters) found.push_back({std::min(ua, ub), std::max(ua, ub), 0});
      }
    }
  }
  detail::parallel_sort(found, std::less<Candidate>());
  std::vector<Candidate> candidates;
  for (std::size_t i = 0; i < found.size();) {
    std::size_t j = i;
    Candidate sum{found[i].u, found[i].v, 0};
    while (j < found.size() && found[j].u == sum.u && found[j].v == sum.v) sum.shared += found[j++].shared;
    candidates.push_back(sum);
    i = j;
  }
  found = {};

  // Per unit that takes part: coordinated times, behaviour summary, held by prompts.
  std::vector<int64_t> involved;
  for (const Candidate& k : candidates) {
    involved.push_back(k.u);
    involved.push_back(k.v);
  }
  std::sort(involved.begin(), involved.end());
  involved.erase(std::unique(involved.begin(), involved.end()), involved.end());
  const int64_t m = int64_t(involved.size());
  std::vector<std::vector<int64_t>> times(m);
  std::vector<BehaviourSummary> behaviour(m);
  std::vector<uint8_t> held(m, 0);
  const bool use_behaviour = c.behaviour_present && c.feature_dim > 0;
  detail::parallel_for(m, 16, [&](int64_t i) {
    const int64_t unit = involved[i];
    if (c.has_timing) times[i] = coordinated_times(u, unit, req, groups, by_unit, unit_first_entry);
    if (use_behaviour) behaviour[i] = behaviour_summary(u, unit, c);
    held[i] = unit < u.clusters && held_by_prompts(u, unit, req, groups, by_unit, unit_first_entry);
  });
  auto slot = [&](int64_t unit) { return std::lower_bound(involved.begin(), involved.end(), unit) - involved.begin(); };

  const TimingNull timing = c.has_timing ? timing_null(c.first_time, c.last_time) : TimingNull{};
  const EmpiricalNull behaviour_null{c.behaviour_null.values.data(), int64_t(c.behaviour_null.values.size()),
                                     c.behaviour_null.tail_start, c.behaviour_null.tail_scale,
                                     c.behaviour_null.tail_log_share};
  const int64_t B = c.feature_dim;
  // Each pair's evidence, or -1 where the pair is not judged; the threshold counts the
  // pairs judged (merge_threshold_nats).
  std::vector<float> evidence(candidates.size(), -1.0f);
  std::vector<float> joins(candidates.size(), 0.0f);  // a light member's shared-prompt evidence for its cluster
  detail::parallel_for(int64_t(candidates.size()), 64, [&](int64_t i) {
    const Candidate& k = candidates[i];
    const int64_t su = slot(k.u), sv = slot(k.v);
    // Without a shared prompt, only clusters that prompts hold together are joined: look-alikes
    // (teams, crowds) must not chain rings together through timing or behaviour.
    if (k.shared == 0 && !(held[su] && held[sv])) return;
    const float shared = shared_groups_surprise(float(k.shared), float(mass[k.u]), float(mass[k.v]),
                                                double(prompts[k.u]), double(prompts[k.v]), c.total_prompts);
    float sync = 0, alike = 0;
    if (c.has_timing)
      sync = synchrony_surprise(times[su].data(), int64_t(times[su].size()), times[sv].data(),
                                int64_t(times[sv].size()), timing, kSessionGap);
    if (use_behaviour) {
      double sum = 0;
      const BehaviourSummary &x = behaviour[su], &y = behaviour[sv];
      for (int64_t f = 0; f < B; ++f)
        if (c.feature_weight[f] > 0)
          sum += double(c.feature_weight[f]) * group_feature_surprise(x.median[f], x.tie[f], x.imprecision[f], y.median[f],
                                                                      y.imprecision[f], c.categorical[f] != 0);
      alike = null_surprise(float(sum), behaviour_null);
    }
    // Units are judged on prompts, timing and behaviour (not on shared infrastructure); units
    // that sent no common group on timing and behaviour alone, as an account pair is
    // (evaluate_pair).
    const int signals = c.signals - (c.has_infrastructure ? 1 : 0) - (k.shared == 0 ? 1 : 0);
    // A pair the account index linked pays for that choice, less the more member pairs could
    // have given the link; where every pair is judged, none was chosen.
    const float penalty =
        k.shared > 0 || every_cluster_pair
            ? 0.0f
            : unit_pair_index_penalty(c.index_penalty, u.offsets[k.u + 1] - u.offsets[k.u], u.offsets[k.v + 1] - u.offsets[k.v]);
    evidence[i] = edge_evidence(shared, sync, alike, signals, penalty);
    // A light member: a cluster and an account outside clusters (units are ascending).
    // One shared group is one coincidence: the cluster must hold most of its senders.
    if (k.u < u.clusters && k.v >= u.clusters && c.weak_edge_threshold > 0 &&
        shared >= c.weak_edge_threshold &&
        owns_traffic_of(k.u, u.members[u.offsets[k.v]], req, groups, by_unit, unit_first_entry, clustered,
                        k.shared >= kLightMemberGroups ? kWeakCoreOwnSenders : kLightMemberOneGroupSenders))
      joins[i] = shared;
  });

  const int64_t judged = std::count_if(evidence.begin(), evidence.end(), [](float e) { return e >= 0.0f; });
  const float threshold = merge_threshold_nats(judged, c.edge_threshold);
  record.threshold = threshold;
  if (record.judged != nullptr)
    for (std::size_t i = 0; i < candidates.size(); ++i)
      if (evidence[i] >= 0.0f && candidates[i].v < u.clusters)
        record.judged->push_back({candidates[i].u, candidates[i].v, evidence[i]});
  std::vector<uint8_t> merge(candidates.size(), 0);
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    merge[i] = evidence[i] >= 0.0f && evidence[i] >= threshold;
    if (merge[i]) joins[i] = 0.0f;
  }

  std::vector<int64_t> parent(u.count);
  std::iota(parent.begin(), parent.end(), 0);
  record.merges = 0;
  record.joined = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i)
    if (merge[i]) {
      union_sets(parent.data(), candidates[i].u, candidates[i].v);
      ++record.merges;
    }
  // Light members that no merge took join their likeliest cluster (ties: the smaller id).
  std::vector<std::pair<float, int64_t>> join(u.count, {0.0f, -1});
  for (std::size_t i = 0; i < candidates.size(); ++i)
    if (joins[i] > join[candidates[i].v].first) join[candidates[i].v] = {joins[i], candidates[i].u};
  for (int64_t v = u.clusters; v < u.count; ++v)
    if (join[v].second >= 0 && find_root(parent.data(), v) == v) {
      union_sets(parent.data(), join[v].second, v);
      ++record.merges;
      ++record.joined;
    }
  Clustering out;
  out.label.assign(A, -1);
  for (int64_t a = 0; a < A; ++a) {
    // Every merge joins a cluster, whose id is below every other unit's: the root of a merged
    // set is a cluster; an account outside clusters that merged into none stays outside.
    const int64_t root = find_root(parent.data(), u.of_account[a]);
    if (root < u.clusters) out.label[a] = root;
  }
  out.num_clusters = relabel_canonically(out.label);
  return out;
}

}  // namespace

namespace {

/// What the weak core's tests read of every account that may join it.
struct WeakCoreCandidates {
  std::vector<uint8_t> in;                        ///< [A] still a candidate
  std::vector<int64_t> group_offsets, groups;     ///< CSR: each candidate's evidence groups
  std::vector<int64_t> group_requests;            ///< aligned with groups: the candidate's requests in each
  std::vector<int64_t> requests;                  ///< [A] each candidate's requests
  std::vector<double> token_chance;               ///< [A] chance a random account shares a token with it
  std::vector<int64_t> clustered_senders;         ///< [G] senders of each group in a cluster already
  bool tokens = false;                            ///< the infrastructure test applies
};

/// One round of the weak core's tests over the candidates still in: the accounts that fail.
template <class WeakEdge>
std::vector<int64_t> failing_weak_core_tests(const WeakCoreCandidates& c, const EvidenceGraph& g,
                                             const SharedInfrastructure& infra, const PromptGroups& groups,
                                             float weak, const WeakEdge& weak_edge, std::vector<int64_t>& seen) {
  const int64_t A = int64_t(c.in.size());
  std::vector<int64_t> members_in_group(groups.num_groups, 0);
  int64_t size = 0;
  for (int64_t a = 0; a < A; ++a) {
    if (!c.in[a]) continue;
    ++size;
    for (int64_t i = c.group_offsets[a]; i < c.group_offsets[a + 1]; ++i) ++members_in_group[c.groups[i]];
  }
  std::vector<int64_t> out;
  std::fill(seen.begin(), seen.end(), -1);
  for (int64_t a = 0; a < A; ++a) {
    if (!c.in[a]) continue;
    int64_t degree = 0, partners = 0;
    for (int64_t e = g.offsets[a]; e < g.offsets[a + 1]; ++e) degree += c.in[g.neighbours[e]] && weak_edge(a, e);
    if (degree < kWeakCoreDegree) {
      out.push_back(a);
      continue;
    }
    if (!c.tokens) {
      // The groups a shares with other members; their senders that clusters hold already
      // are other rings' (a template two operators use), not a public's.
      int64_t shared_requests = 0, members = 0, senders = 0;
      for (int64_t i = c.group_offsets[a]; i < c.group_offsets[a + 1]; ++i) {
        const int64_t group = c.groups[i];
        if (members_in_group[group] < 2) continue;
        shared_requests += c.group_requests[i];
        members += members_in_group[group];
        senders += groups.accounts_in(group) - c.clustered_senders[group];
      }
      if (!traffic_owned(shared_requests, c.requests[a], members, senders)) out.push_back(a);
      continue;
    }
    // Other members that share an evidence token with a, against what its tokens' users give.
    for (int64_t i = infra.account_offsets[a]; i < infra.account_offsets[a + 1]; ++i) {
      const int64_t t = infra.account_tokens[i];
      for (int64_t j = infra.token_offsets[t]; j < infra.token_offsets[t + 1]; ++j) {
        const int64_t b = infra.token_accounts[j];
        if (b != a && c.in[b] && seen[b] != a) {
          seen[b] = a;
          ++partners;
        }
      }
    }
    const double expected = std::max(1e-12, double(size - 1) * c.token_chance[a]);
    const float tied = surprise_of(log_poisson_tail(double(partners), expected));
    if (tied < weak) out.push_back(a);
  }
  return out;
}

/// A weak core's component may hold the rings of several operators who fill one template,
/// none of them with the edges to make a cluster: their members are alike in prompts, and
/// only their timing tells them apart. Timing cores are the members joined by weak edges whose
/// synchrony alone reaches the weak threshold, `min_size` or more of them. A component with
/// two or more is cut around them: every other member goes, step by step outward, to the
/// core it shares the most co-activity with (then the most edge evidence). The cluster merge,
/// which pools each core's timeline, joins the cores of one ring again. `root` [A]: each
/// weak core member's component, replaced by its piece (-1 for a member no core reached).
/// Returns the number of components cut.
template <class WeakEdge>
int64_t split_at_timing_cores(std::vector<int64_t>& root, const EvidenceGraph& g, const std::vector<uint8_t>& in,
                              const WeakEdge& weak_edge, float weak, int64_t min_size) {
  const int64_t A = int64_t(root.size());
  std::vector<int64_t> parent(A);
  std::iota(parent.begin(), parent.end(), 0);
  for (int64_t a = 0; a < A; ++a)
    if (in[a])
      for (int64_t e = g.offsets[a]; e < g.offsets[a + 1]; ++e)
        if (in[g.neighbours[e]] && weak_edge(a, e) && g.evidence[e].synchrony >= weak)
          union_sets(parent.data(), a, g.neighbours[e]);
  std::vector<int64_t> size(A, 0);
  for (int64_t a = 0; a < A; ++a)
    if (in[a]) ++size[find_root(parent.data(), a)];
  // piece[a]: the timing core of a (named by its smallest member), -1 outside every core.
  std::vector<int64_t> piece(A, -1), cores(A, 0);
  for (int64_t a = 0; a < A; ++a)
    if (in[a] && size[find_root(parent.data(), a)] >= min_size) {
      piece[a] = find_root(parent.data(), a);
      if (piece[a] == a) ++cores[root[a]];
    }
  std::vector<int64_t> open;  // members of components to cut, outside every core
  for (int64_t a = 0; a < A; ++a)
    if (in[a] && cores[root[a]] >= 2 && piece[a] < 0) open.push_back(a);
  // Outward in steps, each decided on the previous step's pieces, so that the result does not
  // depend on the order of the accounts; ties go to the core with the smaller name.
  std::vector<std::pair<int64_t, int64_t>> taken;
  struct Pull {
    int64_t piece;
    double timing, evidence;
    bool operator<(const Pull& o) const { return piece < o.piece; }
  };
  std::vector<Pull> pulls;
  for (bool grew = true; grew;) {
    taken.clear();
    for (const int64_t a : open) {
      if (piece[a] >= 0) continue;
      pulls.clear();
      for (int64_t e = g.offsets[a]; e < g.offsets[a + 1]; ++e) {
        const int64_t b = g.neighbours[e];
        // A weak edge between members keeps to one component, and only members have pieces.
        if (piece[b] >= 0 && weak_edge(a, e))
          pulls.push_back({piece[b], g.evidence[e].synchrony, g.evidence[e].weight});
      }
      if (pulls.empty()) continue;
      std::stable_sort(pulls.begin(), pulls.end());
      int64_t choice = -1;
      std::pair<double, double> top{-1, -1};
      for (std::size_t i = 0; i < pulls.size();) {
        std::pair<double, double> sum{0, 0};
        std::size_t j = i;
        for (; j < pulls.size() && pulls[j].piece == pulls[i].piece; ++j) {
          sum.first += pulls[j].timing;
          sum.second += pulls[j].evidence;
        }
        if (sum > top) top = sum, choice = pulls[i].piece;
        i = j;
      }
      taken.emplace_back(a, choice);
    }
    for (const auto& [a, p] : taken) piece[a] = p;
    grew = !taken.empty();
  }
  int64_t cut = 0;
  for (int64_t a = 0; a < A; ++a) cut += in[a] && root[a] == a && cores[a] >= 2;
  for (int64_t a = 0; a < A; ++a)
    if (in[a] && cores[root[a]] >= 2) root[a] = piece[a];
  return cut;
}

}  // namespace

Clustering with_weak_cores(Clustering clusters, const EvidenceGraph& g, const CanonicalRequests& req,
                           const PromptGroups& groups, const SharedInfrastructure& infra,
                           const EvidenceCalibration& calibration, const DetectOptions& options, int64_t* found,
                           int64_t* cut) {
  *found = 0;
  if (cut != nullptr) *cut = 0;
  const float weak = calibration.weak_edge_threshold;
  if (!(weak > 0)) return clusters;
  const int64_t A = int64_t(clusters.label.size());
  const auto weak_edge = [&](int64_t a, int64_t e) {
    return clusters.label[a] < 0 && clusters.label[g.neighbours[e]] < 0 && g.evidence[e].shared_prompts >= weak;
  };
  // Candidates: the accounts outside clusters with a weak edge.
  WeakCoreCandidates c;
  c.in.assign(A, 0);
  c.group_offsets.assign(A + 1, 0);
  c.token_chance.assign(A, 0.0);
  c.requests.assign(A, 0);
  c.tokens = infra.present() && !infra.account_offsets.empty();
  std::vector<int64_t> mine, mine_requests;
  for (int64_t a = 0; a < A; ++a) {
    for (int64_t e = g.offsets[a]; e < g.offsets[a + 1] && !c.in[a]; ++e) c.in[a] = weak_edge(a, e);
    if (c.in[a]) {
      account_evidence_groups(req, groups, a, mine, mine_requests);
      c.groups.insert(c.groups.end(), mine.begin(), mine.end());
      c.group_requests.insert(c.group_requests.end(), mine_requests.begin(), mine_requests.end());
      c.requests[a] = req.account_offsets[a + 1] - req.account_offsets[a];
      if (c.tokens)
        for (int64_t i = infra.account_offsets[a]; i < infra.account_offsets[a + 1]; ++i)
          c.token_chance[a] +=
              double(infra.accounts_of(infra.account_tokens[i]) - 1) / double(std::max<int64_t>(1, A - 1));
    }
    c.group_offsets[a + 1] = int64_t(c.groups.size());
  }
  c.clustered_senders.assign(groups.num_groups, 0);
  if (!c.tokens)
    for (int64_t a = 0; a < A; ++a)
      if (clusters.label[a] >= 0) {
        account_evidence_groups(req, groups, a, mine);
        for (const int64_t group : mine) ++c.clustered_senders[group];
      }
  // Peel, until none fails, the members that fail one of the tests.
  std::vector<int64_t> seen(A, -1);
  for (std::vector<int64_t> out = failing_weak_core_tests(c, g, infra, groups, weak, weak_edge, seen); !out.empty();
       out = failing_weak_core_tests(c, g, infra, groups, weak, weak_edge, seen))
    for (const int64_t a : out) c.in[a] = 0;

  // The core's components of min_ring_size or more become clusters.
  std::vector<int64_t> parent(A);
  std::iota(parent.begin(), parent.end(), 0);
  for (int64_t a = 0; a < A; ++a)
    if (c.in[a])
      for (int64_t e = g.offsets[a]; e < g.offsets[a + 1]; ++e)
        if (c.in[g.neighbours[e]] && weak_edge(a, e)) union_sets(parent.data(), a, g.neighbours[e]);
  std::vector<int64_t> root(A, -1);
  for (int64_t a = 0; a < A; ++a)
    if (c.in[a]) root[a] = find_root(parent.data(), a);
  if (calibration.has_timing) {
    const int64_t n = split_at_timing_cores(root, g, c.in, weak_edge, weak, std::max<int64_t>(3, options.min_ring_size));
    if (cut != nullptr) *cut = n;
  }
  const int64_t before = clusters.num_clusters;
  clusters.num_clusters =
      label_components(root, std::max<int64_t>(2, options.min_ring_size), clusters.num_clusters, clusters.label);
  *found = clusters.num_clusters - before;
  clusters.num_clusters = relabel_canonically(clusters.label);
  return clusters;
}

Clustering without_accounts(Clustering clusters, const std::vector<uint8_t>& drop) {
  std::vector<int64_t> size(clusters.num_clusters, 0);
  for (std::size_t a = 0; a < clusters.label.size(); ++a) {
    if (drop[a]) clusters.label[a] = -1;
    if (clusters.label[a] >= 0) ++size[clusters.label[a]];
  }
  for (auto& l : clusters.label)
    if (l >= 0 && size[l] < 2) l = -1;
  clusters.num_clusters = relabel_canonically(clusters.label);
  return clusters;
}

Clustering merge_clusters(const Clustering& clusters, const CanonicalRequests& req, const PromptGroups& groups,
                          const EvidenceCalibration& calibration,
                          const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                          const DetectOptions& options, const Context& ctx, MergeSummary* summary) {
  MergeSummary done;
  done.first_threshold = calibration.edge_threshold;
  if (!options.merge_clusters || clusters.num_clusters == 0) {
    if (summary != nullptr) *summary = done;
    return clusters;
  }
  ThreadScope threads(ctx.threads);
  ctx.require_memory(merge_memory(req, account_pairs), "cluster merge");
  Clustering current = clusters;
  for (int round = 0; round < kMergeRounds; ++round) {
    RoundRecord record;
    current = merge_round(current, req, groups, calibration, account_pairs, record);
    if (round == 0) done.first_threshold = record.threshold;
    done.light_members += record.joined;
    if (record.merges == 0) break;
  }
  if (summary != nullptr) *summary = done;
  return current;
}

std::vector<ClusterPairEvidence> judged_cluster_pairs(const Clustering& clusters, const CanonicalRequests& req,
                                                      const PromptGroups& groups, const EvidenceCalibration& calibration,
                                                      const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                                                      const Context& ctx) {
  std::vector<ClusterPairEvidence> judged;
  if (clusters.num_clusters == 0) return judged;
  ThreadScope threads(ctx.threads);
  ctx.require_memory(merge_memory(req, account_pairs), "cluster merge");
  RoundRecord record;
  record.judged = &judged;
  merge_round(clusters, req, groups, calibration, account_pairs, record);
  return judged;
}

}  // namespace ringscan
