// The stages with their compute-heavy parts supplied by the caller: the CPU backend passes the
// host implementations, the CUDA backend its device ones. Everything else in a stage (candidate
// generation, filters, CSR assembly) is the same code for both backends.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "profile_rules.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/evidence_calibration.hpp"
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

/// Fills out[i] with the evidence of accounts (first[i], second[i]), which share
/// shared_groups[i] prompt groups (host memory; the profiles and calibration are bound).
using PairEvaluator = std::function<void(const int64_t* first, const int64_t* second,
                                         const float* shared_groups, int64_t n, PairEvidence* out)>;

/// The CPU's evaluator: evaluate_pair over OpenMP threads.
PairEvaluator host_pair_evaluator(const AccountProfiles& profiles, const EvidenceCalibration& calibration);

/// The evidence graph over A accounts with the candidates' evidence computed by `evaluate`.
EvidenceGraph evidence_graph(const PromptGroups& groups, int64_t num_accounts,
                             const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                             const EdgeRule& rule, const Context& ctx, const PairEvaluator& evaluate);

/// Account profiles with what every backend sets alike: their sizes, zero timing norms and
/// bucket offsets (what an input without times keeps) and, where the requests have times,
/// has_timing, the request times by account, and their span (days, into *span). Throws
/// InvalidInput when the span has too many buckets for --time-window.
AccountProfiles account_profiles_frame(const CanonicalRequests& req, const DetectOptions& options,
                                       ActivitySpan* span);

/// The account profiles stage's checks of its options and of the host memory its outputs take
/// (BudgetExceeded), whichever backend computes them.
void check_account_profiles(const CanonicalRequests& req, const DetectOptions& options,
                            const Context& ctx);

}  // namespace ringscan
