// The JSON report written beside the output: rings ranked by score with their evidence.
#pragma once
#include <string>

#include "ringscan/result.hpp"

namespace ringscan {

/// Serialises rings (ranked), members, per-signal evidence, parameters and timings as JSON.
std::string report_json(const DetectionResult& result, int indent = 2);

}  // namespace ringscan
