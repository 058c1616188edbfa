// Helpers shared by the test files.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "ringscan/dataset.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/near_duplicates.hpp"

namespace ringscan::testing {

/// Every field of two prompt groupings equal; IDF within `idf_relative` of b's (0: equal).
inline void expect_same_groups(const PromptGroups& a, const PromptGroups& b, float idf_relative = 0) {
  EXPECT_EQ(a.num_groups, b.num_groups);
  EXPECT_EQ(a.near_duplicate_pairs, b.near_duplicate_pairs);
  EXPECT_EQ(a.group_of_request, b.group_of_request);
  EXPECT_EQ(a.account_offsets, b.account_offsets);
  EXPECT_EQ(a.group_accounts, b.group_accounts);
  EXPECT_EQ(a.common, b.common);
  ASSERT_EQ(a.idf.size(), b.idf.size());
  for (std::size_t i = 0; i < b.idf.size(); ++i) EXPECT_NEAR(a.idf[i], b.idf[i], idf_relative * b.idf[i]) << "group " << i;
}

/// `d` with its requests and its accounts in a random order (fixed by `seed`); new_row[i] is
/// where the input's account row i went.
inline Dataset permuted(const Dataset& d, uint64_t seed, std::vector<int64_t>* new_row = nullptr) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> rperm(d.num_requests()), aperm(d.num_accounts()), moved(d.num_accounts());
  std::iota(rperm.begin(), rperm.end(), 0);
  std::iota(aperm.begin(), aperm.end(), 0);
  std::shuffle(rperm.begin(), rperm.end(), rng);
  std::shuffle(aperm.begin(), aperm.end(), rng);
  Dataset p = d;
  for (int64_t i = 0; i < d.num_accounts(); ++i) {
    p.account_ids[i] = d.account_ids[aperm[i]];
    if (!d.labels.empty()) p.labels[i] = d.labels[aperm[i]];
    std::copy_n(&d.features[aperm[i] * d.feature_dim], d.feature_dim, &p.features[i * d.feature_dim]);
    moved[aperm[i]] = i;
  }
  for (int64_t r = 0; r < d.num_requests(); ++r) {
    p.request_account[r] = moved[d.request_account[rperm[r]]];
    if (d.has_time()) p.request_time[r] = d.request_time[rperm[r]];
    std::copy_n(&d.embeddings[rperm[r] * d.dim], d.dim, &p.embeddings[r * d.dim]);
  }
  if (new_row) *new_row = std::move(moved);
  return p;
}

/// A symmetric CSR evidence graph from adjacency lists of (neighbour, evidence): rows sorted,
/// repeated neighbours dropped (the first kept). The caller lists both directions.
inline EvidenceGraph graph_from_adjacency(std::vector<std::vector<std::pair<int64_t, PairEvidence>>> adj) {
  EvidenceGraph g;
  g.num_accounts = int64_t(adj.size());
  g.offsets.assign(adj.size() + 1, 0);
  for (std::size_t a = 0; a < adj.size(); ++a) {
    std::stable_sort(adj[a].begin(), adj[a].end(), [](auto& x, auto& y) { return x.first < y.first; });
    adj[a].erase(std::unique(adj[a].begin(), adj[a].end(),
                             [](auto& x, auto& y) { return x.first == y.first; }),
                 adj[a].end());
    g.offsets[a + 1] = g.offsets[a] + int64_t(adj[a].size());
    for (const auto& [b, e] : adj[a]) {
      g.neighbours.push_back(b);
      g.evidence.push_back(e);
    }
  }
  return g;
}

}  // namespace ringscan::testing
