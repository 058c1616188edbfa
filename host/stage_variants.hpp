// The stages with their compute-heavy parts supplied by the caller: the CPU backend passes the
// host implementations, the CUDA backend its device ones. Everything else in a stage (candidate
// generation, filters, CSR assembly) is the same code for both backends.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "ringscan/account_profiles.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/near_duplicates.hpp"
#include "self_join.hpp"

namespace ringscan {

std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                              const DetectOptions& options, const Context& ctx,
                                              bool* exact_index, const SelfJoin& join);

std::vector<std::pair<int64_t, int64_t>> account_candidate_pairs(const AccountProfiles& profiles,
                                                                 const DetectOptions& options,
                                                                 const Context& ctx,
                                                                 const SelfJoin& join);

/// Fills out[i] with the evidence of accounts (first[i], second[i]) with summed IDF idf[i].
using PairEvaluator = std::function<void(const AccountProfiles& profiles, const int64_t* first,
                                         const int64_t* second, const float* idf, int64_t n,
                                         PairEvidence* out)>;

/// The CPU's evaluator: evaluate_pair over OpenMP threads.
PairEvaluator host_pair_evaluator(const DetectOptions& options);

EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                             const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                             const DetectOptions& options, const Context& ctx,
                             const PairEvaluator& evaluate);

/// The cluster merge with the member pairs' evidence computed by `evaluate`.
Clustering merge_coordinated_clusters(const Clustering& clusters, const CanonicalRequests& req,
                                      const PromptGroups& groups, const AccountProfiles& profiles,
                                      const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                                      const DetectOptions& options, const Context& ctx,
                                      const PairEvaluator& evaluate);

/// Account profiles; with `with_content` false, `content` is left empty for the caller to
/// fill (the CUDA backend aggregates it on the device).
AccountProfiles account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                                 const Context& ctx, bool with_content);

}  // namespace ringscan
