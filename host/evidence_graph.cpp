#include "ringscan/evidence_graph.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "evidence_math.hpp"
#include "pair_evidence.hpp"
#include "prompt_pairs.hpp"
#include "stage_variants.hpp"
#include "ringscan/error.hpp"
#include "parallel.hpp"
#include "ringscan/sizes.hpp"

namespace ringscan {
namespace {

struct PromptPair {
  int64_t a, b;
  bool operator<(const PromptPair& o) const { return a != o.a ? a < o.a : b < o.b; }
};

}  // namespace

PairEvaluator host_pair_evaluator(const AccountProfiles& profiles, const EvidenceCalibration& calibration) {
  return [&profiles, &calibration](const int64_t* first, const int64_t* second, const float* shared, int64_t n,
                                   PairEvidence* out) {
    const ProfilesView view = host_view(profiles, calibration);
    detail::parallel_for(n, 1024, [&](int64_t c) { out[c] = evaluate_pair(view, first[c], second[c], shared[c]); });
  };
}

EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                             const EvidenceCalibration& calibration,
                             const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                             const DetectOptions&, const Context& ctx) {
  ThreadScope threads(ctx.threads);
  return evidence_graph(groups, profiles.num_accounts, account_pairs, edge_rule(calibration), ctx,
                        host_pair_evaluator(profiles, calibration));
}

int64_t shared_prompt_pairs(const PromptGroups& groups) {
  int64_t pairs = 0;
  for (int64_t grp = 0; grp < groups.num_groups; ++grp)
    if (groups.is_evidence(grp)) pairs = saturating_add(pairs, prompt_pairs_of_group(groups.accounts_in(grp)));
  return pairs;
}

EvidenceGraph evidence_graph(const PromptGroups& groups, int64_t A,
                             const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                             const EdgeRule& rule, const Context& ctx, const PairEvaluator& evaluate) {
  ThreadScope threads(ctx.threads);
  EvidenceGraph g;
  g.num_accounts = A;

  const int64_t expected = shared_prompt_pairs(groups);
  ctx.require_memory(size_from_double(double(expected) * sizeof(PromptPair) * 2 +
                             double(account_pairs.size()) * 16 * 2),
                     "evidence graph (" + std::to_string(expected) + " shared-prompt pairs)");

  std::vector<PromptPair> prompt_pairs;
  prompt_pairs.reserve(expected);
  std::vector<int64_t> order;
  for (int64_t grp = 0; grp < groups.num_groups; ++grp)
    if (groups.is_evidence(grp))
      for_each_group_pair(&groups.group_accounts[groups.account_offsets[grp]], groups.accounts_in(grp), grp, order,
                          [&](int64_t a, int64_t b) { prompt_pairs.push_back({a, b}); });
  detail::parallel_sort(prompt_pairs, std::less<PromptPair>());

  // Candidate pairs with the number of prompt groups they share, in (a, b) order.
  std::vector<int64_t> first, second;
  std::vector<float> shared;
  const std::size_t reserve = prompt_pairs.size() / 2 + account_pairs.size();
  first.reserve(reserve);
  second.reserve(reserve);
  shared.reserve(reserve);
  std::size_t i = 0, j = 0;
  while (i < prompt_pairs.size() || j < account_pairs.size()) {
    const bool take_prompt =
        j >= account_pairs.size() ||
        (i < prompt_pairs.size() &&
         std::make_pair(prompt_pairs[i].a, prompt_pairs[i].b) <= account_pairs[j]);
    const int64_t a = take_prompt ? prompt_pairs[i].a : account_pairs[j].first;
    const int64_t b = take_prompt ? prompt_pairs[i].b : account_pairs[j].second;
    int64_t count = 0;
    while (i < prompt_pairs.size() && prompt_pairs[i].a == a && prompt_pairs[i].b == b) {
      ++count;
      ++i;
    }
    while (j < account_pairs.size() && account_pairs[j].first == a && account_pairs[j].second == b) ++j;
    first.push_back(a);
    second.push_back(b);
    shared.push_back(float(count));
  }
  g.prompt_pairs = int64_t(prompt_pairs.size());
  prompt_pairs = {};
  const int64_t n = int64_t(first.size());
  g.candidate_pairs = n;

  std::vector<PairEvidence> evidence(n);
  evaluate(first.data(), second.data(), shared.data(), n, evidence.data());

  const auto kept = [&](int64_t c) { return rule.keeps(evidence[c]); };
  std::vector<int64_t> degree(A, 0);
  int64_t edges = 0;
  for (int64_t c = 0; c < n; ++c)
    if (kept(c)) {
      ++degree[first[c]];
      ++degree[second[c]];
      ++edges;
    }
  g.offsets.assign(A + 1, 0);
  for (int64_t a = 0; a < A; ++a) g.offsets[a + 1] = g.offsets[a] + degree[a];
  g.neighbours.resize(2 * edges);
  g.evidence.resize(2 * edges);
  std::vector<int64_t> fill(g.offsets.begin(), g.offsets.end() - 1);
  // Two passes keep each row ascending: neighbours below the row first, then above.
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t c = 0; c < n; ++c) {
      if (!kept(c)) continue;
      const int64_t row = pass == 0 ? second[c] : first[c];
      const int64_t col = pass == 0 ? first[c] : second[c];
      g.neighbours[fill[row]] = col;
      g.evidence[fill[row]++] = evidence[c];
    }
  ctx.report("evidence graph", n, n);
  return g;
}

namespace {

/// `graph` with the edges (a, b, evidence) that `keep` accepts (it must be symmetric).
template <class Keep>
EvidenceGraph kept_edges(const EvidenceGraph& graph, Keep&& keep) {
  EvidenceGraph g;
  g.num_accounts = graph.num_accounts;
  g.candidate_pairs = graph.candidate_pairs;
  g.prompt_pairs = graph.prompt_pairs;
  g.offsets.assign(graph.num_accounts + 1, 0);
  for (int64_t a = 0; a < graph.num_accounts; ++a) {
    for (int64_t e = graph.offsets[a]; e < graph.offsets[a + 1]; ++e)
      if (keep(a, graph.neighbours[e], graph.evidence[e])) {
        g.neighbours.push_back(graph.neighbours[e]);
        g.evidence.push_back(graph.evidence[e]);
      }
    g.offsets[a + 1] = int64_t(g.neighbours.size());
  }
  return g;
}

}  // namespace

EvidenceGraph without_accounts(const EvidenceGraph& graph, const std::vector<uint8_t>& drop, int64_t* removed) {
  EvidenceGraph g = kept_edges(graph, [&](int64_t a, int64_t b, const PairEvidence&) { return !drop[a] && !drop[b]; });
  *removed = graph.num_edges() - g.num_edges();
  return g;
}

EvidenceGraph strong_edges(const EvidenceGraph& graph, const EdgeRule& rule) {
  return kept_edges(graph, [&](int64_t, int64_t, const PairEvidence& e) { return rule.is_edge(e); });
}

}  // namespace ringscan
