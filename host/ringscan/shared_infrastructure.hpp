// Stage 3c: infrastructure tokens (IP ranges, ASNs, client fingerprints, API keys) and payment
// instruments that accounts share, and the account pairs they propose as candidates.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/result.hpp"

namespace ringscan {

/// The tokens two or more accounts use, and each account's evidence tokens.
/// A token is a (kind, value) with value != 0: a column of /requests/infra, or the payment
/// instrument of /accounts/payment (kind "payment").
struct SharedInfrastructure {
  int64_t num_accounts = 0;
  std::vector<std::string> kind_names;   ///< [K'] the columns of /requests/infra, then "payment"
  // Tokens used by two or more accounts, ascending by (kind, value).
  int64_t num_tokens = 0;
  std::vector<int32_t> token_kind;       ///< [T]
  std::vector<int64_t> token_value;      ///< [T]
  std::vector<int64_t> token_offsets;    ///< [T+1] CSR over token_accounts
  std::vector<int64_t> token_accounts;   ///< canonical accounts of each token, ascending
  std::vector<int32_t> token_users;      ///< [T] accounts of each token
  std::vector<uint8_t> common;           ///< [T] 1 when too widely used to be evidence
  // Per account: its evidence tokens (ids into the above, ascending: kinds are contiguous).
  std::vector<int64_t> account_offsets;  ///< [A+1] CSR over account_tokens (empty when absent)
  std::vector<int64_t> account_tokens;
  std::vector<uint8_t> allowed;          ///< [T] 1 for a token of options.allow (never evidence)
  int64_t evidence_tokens = 0;           ///< tokens that are evidence
  int evidence_kinds = 0;                ///< kinds with an evidence token
  int64_t proposing_users = 0;           ///< tokens of at most this many accounts propose candidates

  bool present() const { return !kind_names.empty(); }
  int64_t accounts_of(int64_t t) const { return token_offsets[t + 1] - token_offsets[t]; }
  bool is_evidence(int64_t t) const { return accounts_of(t) >= 2 && !common[t] && !allowed[t]; }
};

/// One account's use of a token: kind (a column of /requests/infra, or K for payment), value.
struct TokenUse {
  int64_t kind = 0, value = 0, account = 0;
  bool operator<(const TokenUse& o) const {
    return kind != o.kind ? kind < o.kind : value != o.value ? value < o.value : account < o.account;
  }
  bool operator==(const TokenUse& o) const { return kind == o.kind && value == o.value && account == o.account; }
};

/// Every (kind, value, account) of `req` with a known token (value != 0), once, ascending:
/// the stage's sort, which the CUDA backend runs on the device (portable/shared_infrastructure.hpp).
std::vector<TokenUse> token_uses(const CanonicalRequests& req, const Context& ctx);

/// The shared tokens of `req` (its infrastructure columns and payment instruments) from its
/// token uses. A token used by more than max(64, options.max_prompt_share * A) accounts is
/// common, as a prompt group is: it proposes no pairs and counts for nothing. Deterministic.
SharedInfrastructure shared_infrastructure(const CanonicalRequests& req, const std::vector<TokenUse>& uses,
                                           const DetectOptions& options, const Context& ctx);

/// The same, with the uses sorted on the host.
SharedInfrastructure shared_infrastructure(const CanonicalRequests& req, const DetectOptions& options,
                                           const Context& ctx);

/// Accounts a token may have and still propose its pairs as candidates: 2k + 1 for k =
/// options.account_neighbours, so that it proposes no more neighbours per account than the
/// account index does, and a pair it proposes is as selective a choice.
int64_t proposing_token_users(const DetectOptions& options);

/// A note when some of the allowlist's tokens are of kinds `infra` does not have; else empty.
std::string allowlist_note(const Allowlist& allow, const SharedInfrastructure& infra);

/// 1 for each canonical account of `req` on the allowlist, or that used one of its tokens.
std::vector<uint8_t> allowed_accounts(const CanonicalRequests& req, const Allowlist& allow);

/// Account pairs (a < b, ascending, unique) that share a token of 2 to proposing_users
/// accounts.
std::vector<std::pair<int64_t, int64_t>> infrastructure_pairs(const SharedInfrastructure& infra,
                                                              const Context& ctx);

/// Adds to each ring the evidence tokens its members share (most members first, then the
/// rarest; at most `examples`) and the span of its members' known sign-up times.
void describe_ring_infrastructure(const SharedInfrastructure& infra, const CanonicalRequests& req, int64_t examples,
                                  std::vector<Ring>& rings);

/// The sorted union of two sorted lists of unique pairs.
std::vector<std::pair<int64_t, int64_t>> pair_union(const std::vector<std::pair<int64_t, int64_t>>& x,
                                                    const std::vector<std::pair<int64_t, int64_t>>& y);

}  // namespace ringscan
