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

/// Accounts above which a prompt group is common (not evidence): max(64, share * A).
int64_t common_group_accounts(int64_t num_accounts, float max_prompt_share);

/// Groups pairs into prompt groups (connected components) and weights them.
PromptGroups prompt_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                           const DetectOptions& options);

}  // namespace ringscan
