// Indicators of the reported rings, and the matching of an input against known ones
// (include/ringscan/indicators.hpp).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ringscan/clustering.hpp"
#include "ringscan/context.hpp"
#include "ringscan/indicators.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/result.hpp"
#include "ringscan/shared_infrastructure.hpp"

namespace ringscan {

/// Rows of canonical requests, unit length: `requests` (ascending, distinct) -> their rows,
/// one after another. A distributed run fetches them from the ranks that hold them.
using RequestRows = std::function<std::vector<float>(const std::vector<int64_t>& requests)>;

/// Every ring's indicators: its prompt exemplars (per evidence group two or more members
/// sent), its rare tokens, its active span and its sign-up span. The exemplars' rows come
/// from `rows`, or, without it, from req.unit_embeddings.
Indicators ring_indicators(const CanonicalRequests& req, const PromptGroups& groups, const SharedInfrastructure& infra,
                           const Clustering& clusters, const std::vector<Ring>& rings, const Context& ctx,
                           const RequestRows& rows = {});

/// (canonical account, index of the ring in `known`) of each known prompt hit: a request at
/// cosine `similarity` or more from one of the prompts.
using PromptHits = std::vector<std::pair<int64_t, int64_t>>;

/// The prompt hits of canonical requests [first, first + count), whose unit rows are `rows`
/// (count x dim). A request's hit does not depend on which requests share its call: the
/// requests are compared in batches on a fixed grid of canonical indices, each full, with
/// single-threaded BLAS, so ranks that each hold some of the requests find one process's hits.
PromptHits indicator_prompt_hits(const float* rows, int64_t first, int64_t count, int64_t dim,
                                 const std::vector<int64_t>& request_owner, const Indicators& known, float similarity,
                                 const Context& ctx);

/// [A] canonical order: how each account of `req` matched `known`. A request matches a
/// prompt at cosine `similarity` or more; an account matches a ring's indicators with two
/// such requests, or one and one of its tokens (a token alone is what the other customers of
/// a proxy service share, a prompt alone what a public template's users send). The ring
/// with the most hits wins (ties: the first in the file). InvalidInput when the prompts'
/// width is not the input's. The prompt hits are `prompt_hits` when given (every request's,
/// found where its row is), otherwise found here from req.unit_embeddings.
std::vector<IndicatorMatch> match_indicators(const CanonicalRequests& req, const Indicators& known, float similarity,
                                             const std::string& source, const Context& ctx,
                                             const PromptHits* prompt_hits = nullptr);

}  // namespace ringscan
