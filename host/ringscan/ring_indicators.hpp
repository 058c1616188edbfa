// Indicators of the reported rings, and the matching of an input against known ones
// (include/ringscan/indicators.hpp).
#pragma once
#include <cstdint>
#include <vector>

#include "ringscan/clustering.hpp"
#include "ringscan/context.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/result.hpp"
#include "ringscan/shared_infrastructure.hpp"

namespace ringscan {

/// Every ring's indicators: its prompt exemplars (per evidence group two or more members
/// sent), its rare tokens, its active span and its sign-up span.
Indicators ring_indicators(const CanonicalRequests& req, const PromptGroups& groups, const SharedInfrastructure& infra,
                           const Clustering& clusters, const std::vector<Ring>& rings, const Context& ctx);

/// [A] canonical order: how each account of `req` matched `known`. A request matches a
/// prompt at cosine `similarity` or more; an account matches a ring's indicators with two
/// such requests, or one and one of its tokens (a token alone is what the other customers of
/// a proxy service share, a prompt alone what a public template's users send). The ring
/// with the most hits wins (ties: the first in the file). InvalidInput when the prompts'
/// width is not the input's.
std::vector<IndicatorMatch> match_indicators(const CanonicalRequests& req, const Indicators& known, float similarity,
                                             const std::string& source, const Context& ctx);

}  // namespace ringscan
