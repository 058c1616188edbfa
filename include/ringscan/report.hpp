// The JSON report written beside the output: rings ranked by score with their evidence.
#pragma once
#include <string>

#include "ringscan/result.hpp"

namespace ringscan {

/// A value computed in float32 (or any double a float holds exactly) as the double of the
/// float's shortest decimal form, for JSON: 0.94533, not 0.9453299641609192. Other values
/// are returned as they are.
double json_number(double value);

/// Serialises rings (ranked), members, per-signal evidence, parameters and timings as JSON.
std::string report_json(const DetectionResult& result, int indent = 2);

}  // namespace ringscan
