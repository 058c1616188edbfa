// Stage 2: near-duplicate prompts across accounts (FAISS request index) grouped into prompt
// groups, each weighted by how rare it is among accounts (IDF).
#pragma once
#include <cstdint>
#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"

namespace ringscan {

/// One pair of near-duplicate requests (canonical request indices, first < second).
struct RequestPair {
  int64_t first = 0, second = 0;
  float similarity = 0;
};

/// Connected groups of near-duplicate requests.
struct PromptGroups {
  int64_t num_groups = 0;
  std::vector<int64_t> group_of_request;  ///< [R] group id, -1 if the prompt has no near-duplicate
  std::vector<int64_t> account_offsets;   ///< [G+1] CSR over group_accounts
  std::vector<int64_t> group_accounts;    ///< distinct canonical accounts of each group, ascending
  std::vector<float> idf;                 ///< [G] ln(A / accounts in group)
  std::vector<uint8_t> common;            ///< [G] 1 when too widely shared to be evidence
  int64_t near_duplicate_pairs = 0;       ///< verified pairs found by the index

  int64_t accounts_in(int64_t g) const { return account_offsets[g + 1] - account_offsets[g]; }
  /// A group counts as evidence when >= 2 accounts sent it and it is not common.
  bool is_evidence(int64_t g) const { return accounts_in(g) >= 2 && !common[g]; }
};

/// Verified near-duplicate pairs (cosine >= options.duplicate_similarity) from the FAISS index.
std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                              const DetectOptions& options, const Context& ctx,
                                              bool* exact_index = nullptr);

/// The evidence groups canonical account `a` sent, each once, ascending, into `out`.
void account_evidence_groups(const CanonicalRequests& req, const PromptGroups& groups, int64_t a,
                             std::vector<int64_t>& out);
/// The same, with the account's requests in each group in `requests` (aligned with `out`).
void account_evidence_groups(const CanonicalRequests& req, const PromptGroups& groups, int64_t a,
                             std::vector<int64_t>& out, std::vector<int64_t>& requests);

/// Each canonical account's distinct prompts [A]: the prompt groups (of any kind) it sent,
/// each once, plus its prompts that fall in no group.
std::vector<int64_t> distinct_prompts(const CanonicalRequests& req, const PromptGroups& groups);

/// Accounts above which a prompt group is common (not evidence): max(64, share * A).
int64_t common_group_accounts(int64_t num_accounts, float max_prompt_share);

/// What unrelated prompts look like to the file's embedding model: percentiles of the cosine
/// of random pairs of requests from different accounts.
struct BackgroundSimilarity {
  int64_t pairs = 0;  ///< pairs sampled (0: too few requests or accounts to sample)
  float median = 0;   ///< 50th percentile
  float upper = 0;    ///< 99th percentile
};
BackgroundSimilarity background_similarity(const CanonicalRequests& req);
/// The pairs of canonical requests background_similarity measures (from the bookkeeping
/// alone: the same pairs for any order of the input, and on every process of a distributed
/// run), and the percentiles of their cosines (in any order).
std::vector<std::pair<int64_t, int64_t>> background_pairs(const CanonicalRequests& req);
BackgroundSimilarity background_from_cosines(std::vector<float> cosines);

/// Where similarities are measured from: the cosine of the median unrelated pair of this
/// file, when above 0 (0 when nothing was sampled). Sentence models are anisotropic: their
/// unrelated texts sit at 0.1-0.4, some at 0.7-0.8, rather than at 0.
float background_offset(const BackgroundSimilarity& bg);

/// The cosine that `similarity`, on the background's scale (0 where the median unrelated pair
/// sits, 1 for identical prompts), is in this file: m + similarity (1 - m), m the offset.
/// The options' --duplicate-similarity and --template-similarity are on that scale, so that
/// an embedding model whose every vector shares a common direction needs no other values.
float on_background_scale(const BackgroundSimilarity& bg, float similarity);

/// The floor of the template groups from the background: three background scales (the spread
/// from the median to the 99th percentile over 2.326) above the median, at least half-way
/// from the offset to the near-duplicate cosine and at most that cosine itself (cosines of
/// this file: on_background_scale).
float estimated_template_similarity(const BackgroundSimilarity& bg, float duplicate_similarity);

/// True when unrelated prompts come close to the near-duplicate cosine (the background's
/// 99th percentile at 0.7 or above on the background's scale): the embedding model may need
/// a higher one.
bool crowded_background(const BackgroundSimilarity& bg);

/// The lowest cosine the request index must find pairs at: the near-duplicate cosine, or the
/// template floor below it (options.template_similarity when > 0).
float join_similarity(const DetectOptions& options);

/// The pairs that link prompts into groups: every near-duplicate pair (cosine at or above
/// options.duplicate_similarity), and, among requests no other account sent a near-duplicate
/// of, the pairs inside template groups: components, at a cosine between the template floor
/// (options.template_similarity, > 0) and the near-duplicate cosine, that are rare and stable.
/// The levels of the template search are `scale` (1 - background_offset) times 0.05 apart.
std::vector<RequestPair> prompt_links(const CanonicalRequests& req, std::vector<RequestPair> pairs,
                                      const DetectOptions& options, float scale = 1.0f);

/// Groups pairs into prompt groups (connected components) and weights them.
PromptGroups prompt_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                           const DetectOptions& options);

}  // namespace ringscan
