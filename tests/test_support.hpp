// Helpers shared by the test files.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "ringscan/account_profiles.hpp"
#include "ringscan/dataset.hpp"
#include "ringscan/request_order.hpp"
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

/// The same canonical order: accounts, requests, times, per-account arrays, and the unit
/// rows bit for bit.
inline void expect_same_order(const CanonicalRequests& got, const CanonicalRequests& want) {
  EXPECT_EQ(got.account_row, want.account_row);
  EXPECT_EQ(got.request_row, want.request_row);
  EXPECT_EQ(got.request_owner, want.request_owner);
  EXPECT_EQ(got.account_offsets, want.account_offsets);
  EXPECT_EQ(got.time, want.time);
  EXPECT_EQ(got.features, want.features);
  ASSERT_EQ(got.unit_embeddings.size(), want.unit_embeddings.size());
  EXPECT_EQ(std::memcmp(got.unit_embeddings.data(), want.unit_embeddings.data(),
                        want.unit_embeddings.size() * sizeof(float)),
            0);
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
    if (!d.account_payment.empty()) p.account_payment[i] = d.account_payment[aperm[i]];
    if (!d.account_created.empty()) p.account_created[i] = d.account_created[aperm[i]];
    std::copy_n(d.features.data() + aperm[i] * d.feature_dim, d.feature_dim, p.features.data() + i * d.feature_dim);
    moved[aperm[i]] = i;
  }
  for (int64_t r = 0; r < d.num_requests(); ++r) {
    p.request_account[r] = moved[d.request_account[rperm[r]]];
    if (d.has_time()) p.request_time[r] = d.request_time[rperm[r]];
    std::copy_n(d.request_infra.begin() + rperm[r] * d.infra_dim, d.request_infra.empty() ? 0 : d.infra_dim,
                p.request_infra.begin() + r * d.infra_dim);
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

/// Same floats, bit for bit (NaN only where NaN).
inline void expect_same_floats(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    uint32_t g, w;
    std::memcpy(&g, &got[i], 4);
    std::memcpy(&w, &want[i], 4);
    ASSERT_EQ(g, w) << what << "[" << i << "]: " << got[i] << " against " << want[i];
  }
}

inline void expect_same_profiles(const AccountProfiles& got, const AccountProfiles& want) {
  EXPECT_EQ(got.num_accounts, want.num_accounts);
  EXPECT_EQ(got.feature_dim, want.feature_dim);
  expect_same_floats(got.content, want.content, "content");
  expect_same_floats(got.behaviour, want.behaviour, "behaviour");
  EXPECT_EQ(got.has_timing, want.has_timing);
  EXPECT_EQ(got.request_offsets, want.request_offsets);
  EXPECT_EQ(got.request_time, want.request_time);
  EXPECT_EQ(got.days, want.days);
  EXPECT_EQ(got.bucket_offsets, want.bucket_offsets);
  EXPECT_EQ(got.active_buckets, want.active_buckets);
  expect_same_floats(got.bucket_idf, want.bucket_idf, "bucket_idf");
  expect_same_floats(got.timing_norm, want.timing_norm, "timing_norm");
}

/// A small input written by hand: `requests[a]` holds account a's request times, `features`
/// its behaviour row.
inline CanonicalRequests handmade(const std::vector<std::vector<int64_t>>& requests,
                           const std::vector<std::vector<float>>& features) {
  Dataset d;
  d.dim = 4;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  for (std::size_t a = 0; a < requests.size(); ++a) {
    d.account_ids.push_back(int64_t(1000 + a));
    for (const int64_t t : requests[a]) {
      d.request_account.push_back(int64_t(a));
      d.request_time.push_back(t);
      for (int i = 0; i < 4; ++i) d.embeddings.push_back(normal(rng));
    }
    if (!features.empty()) d.features.insert(d.features.end(), features[a].begin(), features[a].end());
  }
  d.feature_dim = features.empty() ? 0 : int64_t(features[0].size());
  return canonical_requests(d, Context{});
}

/// Window of profile_edge_cases' times (seconds).
constexpr int64_t kEdgeCaseWindow = 900;

/// An input of the account profiles' edge cases. Features: constant (no information); 60% of
/// accounts at one value (MAD 0: the mean absolute deviation scales it); 25% at one value (a
/// common default, whose z is kept); spread values with signed zeros and an outlier past the
/// clip. Times around the epoch, some negative; account 3 has none, account 5 one, account 8
/// a burst.
inline CanonicalRequests profile_edge_cases() {
  const int64_t A = 40;
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<std::vector<float>> features(A);
  std::vector<std::vector<int64_t>> requests(A);
  for (int64_t a = 0; a < A; ++a) {
    features[a] = {3.0f, a < 24 ? 1.0f : uniform(rng), a % 4 == 0 ? 7.0f : 7.0f + uniform(rng),
                   a % 5 == 0 ? (a % 2 ? -0.0f : 0.0f) : (a == 7 ? 1e6f : uniform(rng))};
    const int64_t n = a == 3 ? 0 : a == 5 ? 1 : a == 8 ? 30 : 1 + a % 7;
    for (int64_t i = 0; i < n; ++i)
      requests[a].push_back(a == 8 ? -86400 * 3 + i : int64_t(rng() % 800000) - 400000);
  }
  return handmade(requests, features);
}

}  // namespace ringscan::testing
