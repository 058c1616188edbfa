// The portable (Thrust) stages the CUDA backend runs, instantiated here for thrust::omp and
// compared with the CPU stages: the GPU's algorithms are exercised on every machine.
#include <gtest/gtest.h>
#include <thrust/system/omp/execution_policy.h>

#include <random>
#include <vector>

#include "portable/components.hpp"
#include "portable/content_profiles.hpp"
#include "ringscan/account_index.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/request_order.hpp"
#include "test_support.hpp"

using namespace ringscan;

namespace {

Context two_threads() {
  Context ctx;
  ctx.threads = 2;
  return ctx;
}

Dataset generated(int64_t accounts, int64_t dim, uint64_t seed) {
  GenerateOptions gen;
  gen.accounts = accounts;
  gen.dim = dim;
  gen.seed = seed;
  return generate_in_memory(gen, two_threads());
}

/// Clusters of `g` by the portable stage on the OpenMP system.
Clustering portable_clusters(const EvidenceGraph& g, int64_t min_core_degree) {
  const int64_t A = g.num_accounts;
  std::vector<uint8_t> core(A);
  std::vector<int64_t> parent(A), root(A), size(A), first(A), start(A);
  Clustering c;
  c.label.assign(A, -2);
  const portable::GraphArrays graph{A, g.offsets.data(), g.neighbours.data(), g.evidence.data()};
  const portable::ComponentArrays w{core.data(), parent.data(), root.data(),
                                    size.data(), first.data(),  c.label.data()};
  portable::cluster_components(thrust::omp::par, graph, min_core_degree, w, start.data());
  c.num_clusters = A > 0 ? start[A - 1] : 0;
  return c;
}

/// A symmetric CSR graph with ascending rows over n accounts: m random edges with random
/// weights drawn from a few levels (so ties between a border's core neighbours occur), half
/// of them with shared-prompt evidence (the only edges a border account joins through).
EvidenceGraph random_graph(int64_t n, int64_t m, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::pair<int64_t, PairEvidence>>> adj(n);
  for (int64_t i = 0; i < m && n > 1; ++i) {
    const int64_t a = int64_t(rng() % uint64_t(n)), b = int64_t(rng() % uint64_t(n));
    if (a == b) continue;
    PairEvidence e;
    e.weight = 0.5f + 0.1f * float(rng() % 4);
    e.shared_prompts = rng() % 2 ? e.weight : 0.0f;
    adj[a].emplace_back(b, e);
    adj[b].emplace_back(a, e);
  }
  return ringscan::testing::graph_from_adjacency(std::move(adj));
}

}  // namespace

class PortableClusteringOfRandomGraphs : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(PortableClusteringOfRandomGraphs, GivesTheCpuStagesLabels) {
  const auto [n, m] = GetParam();
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const EvidenceGraph g = random_graph(n, m, seed);
    for (int64_t core_degree : {1, 2, 3}) {
      DetectOptions o;
      o.min_core_degree = core_degree;
      const Clustering cpu = cluster_accounts(g, o, two_threads());
      const Clustering twin = portable_clusters(g, core_degree);
      EXPECT_EQ(twin.num_clusters, cpu.num_clusters) << "n " << n << " seed " << seed;
      EXPECT_EQ(twin.label, cpu.label) << "n " << n << " seed " << seed;
    }
  }
}

// Sizes: empty, one account, sparse (many small components), dense (one giant component).
INSTANTIATE_TEST_SUITE_P(Sizes, PortableClusteringOfRandomGraphs,
                         ::testing::Values(std::make_tuple(0, 0), std::make_tuple(1, 0),
                                           std::make_tuple(50, 40), std::make_tuple(2000, 1500),
                                           std::make_tuple(2000, 20000)));

TEST(PortableClustering, GivesTheCpuStagesLabelsOnADetectionGraph) {
  const Context ctx = two_threads();
  const CanonicalRequests req = canonical_requests(generated(1500, 32, 77), ctx);
  DetectOptions o;
  const PromptGroups groups = prompt_groups(req, near_duplicate_pairs(req, o, ctx), o);
  const AccountProfiles prof = account_profiles(req, o, ctx);
  const EvidenceGraph g = evidence_graph(groups, prof, account_candidate_pairs(prof, o, ctx), o, ctx);
  ASSERT_GT(g.num_edges(), 0);
  const Clustering cpu = cluster_accounts(g, o, ctx);
  ASSERT_GT(cpu.num_clusters, 0);
  const Clustering twin = portable_clusters(g, o.min_core_degree);
  EXPECT_EQ(twin.num_clusters, cpu.num_clusters);
  EXPECT_EQ(twin.label, cpu.label);
}

TEST(PortableContentProfiles, AreTheCpuStagesBitForBit) {
  const Context ctx = two_threads();
  Dataset d = generated(700, 40, 78);
  // Accounts without requests keep a zero profile.
  d.account_ids.push_back(1'000'000'007);
  d.features.resize(d.features.size() + d.feature_dim, 0.0f);
  if (!d.labels.empty()) d.labels.push_back(-1);
  if (!d.account_payment.empty()) d.account_payment.push_back(0);
  const CanonicalRequests req = canonical_requests(d, ctx);
  const AccountProfiles cpu = account_profiles(req, DetectOptions{}, ctx);
  std::vector<float> twin(cpu.content.size(), -1.0f);
  portable::content_profiles(thrust::omp::par, req.account_offsets.data(), req.unit_embeddings.data(),
                             req.num_accounts, req.dim, twin.data());
  ASSERT_EQ(twin.size(), cpu.content.size());
  for (std::size_t i = 0; i < twin.size(); ++i) ASSERT_EQ(twin[i], cpu.content[i]) << "element " << i;
}
