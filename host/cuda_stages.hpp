// Entry points of the CUDA stages, callable from plain C++ (no CUDA types here). Declared
// only in builds with CUDA (RINGSCAN_WITH_CUDA); they throw DeviceError on CUDA failures.
#pragma once
#include <cstdint>
#include <vector>

#include "ringscan/account_profiles.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/pipeline.hpp"

namespace ringscan::cuda {

/// Evidence of the account pairs (first[i], second[i]) with summed IDF idf[i], i < n,
/// computed on the current device by the same evaluate_pair the CPU stage uses.
/// Synchronous; device memory O(profiles + n).
std::vector<PairEvidence> evaluate_pairs(const AccountProfiles& profiles, const int64_t* first,
                                         const int64_t* second, const float* idf, int64_t n,
                                         const DetectOptions& options);

}  // namespace ringscan::cuda
