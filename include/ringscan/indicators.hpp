// Shareable indicators of reported rings (`detect --indicators-out`), and their matching
// against another input (`detect --indicators-in`): how providers exchange what they know of
// a campaign. The format is documented in docs/indicators.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ringscan/result.hpp"

namespace ringscan {

/// Writes `indicators` as JSON (docs/indicators.md), atomically.
void write_indicators(const std::string& path, const Indicators& indicators);

/// Reads an indicators file. InvalidInput naming the file and the field for anything
/// malformed (a wrong format name or version, a prompt of the wrong width or with a
/// non-finite value, a token of value 0, a file too large for `memory_budget` bytes).
Indicators read_indicators(const std::string& path, int64_t memory_budget);

/// InvalidInput, naming `source`, when the prompts of `known` are not `dim` wide (indicators
/// of another embedding model): checked before an input is read.
void check_indicator_width(const Indicators& known, int64_t dim, const std::string& source);

}  // namespace ringscan
