// Stage 4: FAISS kNN over account profiles: candidate pairs for behaviour/timing evidence.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "ringscan/account_profiles.hpp"
#include "ringscan/context.hpp"
#include "ringscan/pipeline.hpp"

namespace ringscan {

/// Width of the timing sketch in the account index vectors.
constexpr int64_t kTimingSketchDim = 64;

/// Candidate account pairs (first < second, canonical accounts), sorted and unique.
std::vector<std::pair<int64_t, int64_t>> account_candidate_pairs(const AccountProfiles& profiles,
                                                                 const DetectOptions& options,
                                                                 const Context& ctx);

}  // namespace ringscan
