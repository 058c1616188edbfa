#include "ringscan/shared_infrastructure.hpp"

#include <algorithm>
#include <functional>
#include <string>

#include "parallel.hpp"
#include "prompt_pairs.hpp"
#include "ringscan/error.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/sizes.hpp"

namespace ringscan {
namespace {

/// The allowed tokens as (kind index, value), sorted; kinds the input lacks are left out.
std::vector<std::pair<int64_t, int64_t>> allowed_tokens(const std::vector<std::string>& kind_names,
                                                        const Allowlist& allow) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& [kind, value] : allow.tokens) {
    const auto at = std::find(kind_names.begin(), kind_names.end(), kind);
    if (at != kind_names.end()) out.emplace_back(at - kind_names.begin(), value);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// The token kinds of `req`: its infrastructure columns (default names when a Dataset built
/// by hand left them unnamed), then "payment" when it has payment instruments.
std::vector<std::string> token_kinds(const CanonicalRequests& req) {
  const int64_t K = req.infra.empty() ? 0 : req.infra_dim;
  std::vector<std::string> kinds = int64_t(req.infra_names.size()) == K ? req.infra_names : default_infra_names(K);
  if (!req.payment.empty()) kinds.push_back("payment");
  return kinds;
}

}  // namespace

std::string allowlist_note(const Allowlist& allow, const SharedInfrastructure& infra) {
  int64_t unmatched = 0;
  for (const auto& token : allow.tokens)
    unmatched += std::find(infra.kind_names.begin(), infra.kind_names.end(), token.first) == infra.kind_names.end();
  if (unmatched == 0) return "";
  std::string kinds;
  for (const auto& n : infra.kind_names) kinds += (kinds.empty() ? "" : ", ") + n;
  return "allowlist: " + std::to_string(unmatched) + " of its tokens are of kinds this input does not have (its kinds: " +
         (kinds.empty() ? "none" : kinds) + ")";
}

std::vector<uint8_t> allowed_accounts(const CanonicalRequests& req, const Allowlist& allow) {
  const int64_t A = req.num_accounts, K = req.infra.empty() ? 0 : req.infra_dim;
  std::vector<uint8_t> out(A, 0);
  for (const int64_t id : allow.accounts) {
    const auto at = std::lower_bound(req.account_id.begin(), req.account_id.end(), id);
    if (at != req.account_id.end() && *at == id) out[at - req.account_id.begin()] = 1;
  }
  const auto tokens = allowed_tokens(token_kinds(req), allow);
  if (tokens.empty()) return out;
  auto allowed = [&](int64_t kind, int64_t value) {
    return std::binary_search(tokens.begin(), tokens.end(), std::make_pair(kind, value));
  };
  for (int64_t r = 0; r < req.num_requests; ++r)
    for (int64_t k = 0; k < K; ++k)
      if (allowed(k, req.infra[r * K + k])) out[req.request_owner[r]] = 1;
  for (int64_t a = 0; a < int64_t(req.payment.size()); ++a)
    if (allowed(K, req.payment[a])) out[a] = 1;
  return out;
}

int64_t proposing_token_users(const DetectOptions& options) {
  return std::max<int64_t>(2, 2 * int64_t(options.account_neighbours) + 1);
}

std::vector<TokenUse> token_uses(const CanonicalRequests& req, const Context& ctx) {
  const int64_t A = req.num_accounts, R = req.num_requests, K = req.infra.empty() ? 0 : req.infra_dim;
  ctx.require_memory(size_from_double(double(R) * double(K) * sizeof(TokenUse) * 2 + double(A) * 48),
                     "shared infrastructure (" + std::to_string(R * K) + " request tokens)");
  ThreadScope threads(ctx.threads);
  std::vector<TokenUse> uses;
  uses.reserve(size_t(R * K + (req.payment.empty() ? 0 : A)));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k)
      if (const int64_t v = req.infra[r * K + k]; v != 0) uses.push_back({k, v, req.request_owner[r]});
  if (!req.payment.empty())
    for (int64_t a = 0; a < A; ++a)
      if (req.payment[a] != 0) uses.push_back({K, req.payment[a], a});
  detail::parallel_sort(uses, std::less<TokenUse>());
  uses.erase(std::unique(uses.begin(), uses.end()), uses.end());
  return uses;
}

SharedInfrastructure shared_infrastructure(const CanonicalRequests& req, const DetectOptions& options,
                                           const Context& ctx) {
  return shared_infrastructure(req, token_kinds(req).empty() ? std::vector<TokenUse>{} : token_uses(req, ctx), options,
                               ctx);
}

SharedInfrastructure shared_infrastructure(const CanonicalRequests& req, const std::vector<TokenUse>& uses,
                                           const DetectOptions& options, const Context& ctx) {
  SharedInfrastructure s;
  s.proposing_users = proposing_token_users(options);
  const int64_t A = req.num_accounts;
  s.num_accounts = A;
  s.kind_names = token_kinds(req);
  if (!s.present()) return s;
  const auto allowed = allowed_tokens(s.kind_names, options.allow);

  // Tokens of two or more accounts.
  const int64_t common = common_group_accounts(A, options.max_prompt_share);
  s.token_offsets.push_back(0);
  for (std::size_t i = 0; i < uses.size();) {
    std::size_t j = i;
    while (j < uses.size() && uses[j].kind == uses[i].kind && uses[j].value == uses[i].value) ++j;
    if (j - i >= 2) {
      s.token_kind.push_back(int32_t(uses[i].kind));
      s.token_value.push_back(uses[i].value);
      for (std::size_t k = i; k < j; ++k) s.token_accounts.push_back(uses[k].account);
      s.token_offsets.push_back(int64_t(s.token_accounts.size()));
      s.common.push_back(int64_t(j - i) > common ? 1 : 0);
      s.token_users.push_back(int32_t(std::min<std::size_t>(j - i, INT32_MAX)));
      s.allowed.push_back(std::binary_search(allowed.begin(), allowed.end(), std::make_pair(uses[i].kind, uses[i].value)));
    }
    i = j;
  }
  s.num_tokens = int64_t(s.token_kind.size());

  // Per account: its evidence tokens, ascending.
  s.account_offsets.assign(A + 1, 0);
  std::vector<uint8_t> kind_seen(s.kind_names.size(), 0);
  for (int64_t t = 0; t < s.num_tokens; ++t) {
    if (!s.is_evidence(t)) continue;
    ++s.evidence_tokens;
    kind_seen[s.token_kind[t]] = 1;
    for (int64_t i = s.token_offsets[t]; i < s.token_offsets[t + 1]; ++i) ++s.account_offsets[s.token_accounts[i] + 1];
  }
  s.evidence_kinds = int(std::count(kind_seen.begin(), kind_seen.end(), 1));
  for (int64_t a = 0; a < A; ++a) s.account_offsets[a + 1] += s.account_offsets[a];
  s.account_tokens.resize(s.account_offsets[A]);
  std::vector<int64_t> fill(s.account_offsets.begin(), s.account_offsets.end() - 1);
  for (int64_t t = 0; t < s.num_tokens; ++t)  // tokens ascending: each account's list is too
    if (s.is_evidence(t))
      for (int64_t i = s.token_offsets[t]; i < s.token_offsets[t + 1]; ++i)
        s.account_tokens[fill[s.token_accounts[i]]++] = t;
  ctx.report("shared infrastructure", 1, 1);
  return s;
}

std::vector<std::pair<int64_t, int64_t>> infrastructure_pairs(const SharedInfrastructure& s, const Context& ctx) {
  std::vector<std::pair<int64_t, int64_t>> pairs;
  int64_t expected = 0;
  auto proposes = [&](int64_t t) { return s.is_evidence(t) && s.accounts_of(t) <= s.proposing_users; };
  for (int64_t t = 0; t < s.num_tokens; ++t)
    if (proposes(t)) expected = saturating_add(expected, prompt_pairs_of_group(s.accounts_of(t)));
  ctx.require_memory(size_from_double(double(expected) * 16 * 2),
                     "shared infrastructure (" + std::to_string(expected) + " account pairs)");
  ThreadScope threads(ctx.threads);
  pairs.reserve(size_t(expected));
  std::vector<int64_t> order;
  for (int64_t t = 0; t < s.num_tokens; ++t)
    if (proposes(t))
      for_each_group_pair(&s.token_accounts[s.token_offsets[t]], s.accounts_of(t), t, order,
                          [&](int64_t a, int64_t b) { pairs.emplace_back(a, b); });
  detail::parallel_sort(pairs, std::less<std::pair<int64_t, int64_t>>());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  return pairs;
}

void describe_ring_infrastructure(const SharedInfrastructure& infra, const CanonicalRequests& req, int64_t examples,
                                  std::vector<Ring>& rings) {
  for (Ring& ring : rings) {
    std::vector<int64_t> tokens;  // one entry per (member, evidence token)
    for (const int64_t id : ring.members) {
      const int64_t a = std::lower_bound(req.account_id.begin(), req.account_id.end(), id) - req.account_id.begin();
      if (!req.created.empty() && req.created[a] != 0) {
        ring.sign_up_first = ring.sign_up_first == 0 ? req.created[a] : std::min(ring.sign_up_first, req.created[a]);
        ring.sign_up_last = std::max(ring.sign_up_last, req.created[a]);
      }
      if (infra.account_offsets.empty()) continue;
      tokens.insert(tokens.end(), infra.account_tokens.begin() + infra.account_offsets[a],
                    infra.account_tokens.begin() + infra.account_offsets[a + 1]);
    }
    std::sort(tokens.begin(), tokens.end());
    std::vector<std::pair<int64_t, int64_t>> order;  // (members, token)
    for (std::size_t i = 0; i < tokens.size();) {
      std::size_t j = i;
      while (j < tokens.size() && tokens[j] == tokens[i]) ++j;
      if (j - i >= 2) order.emplace_back(int64_t(j - i), tokens[i]);
      i = j;
    }
    std::sort(order.begin(), order.end(), [&](const auto& x, const auto& y) {
      if (x.first != y.first) return x.first > y.first;
      if (infra.token_users[x.second] != infra.token_users[y.second])
        return infra.token_users[x.second] < infra.token_users[y.second];
      return x.second < y.second;
    });
    for (std::size_t k = 0; k < order.size() && int64_t(k) < examples; ++k) {
      const int64_t t = order[k].second;
      ring.shared_tokens.push_back({infra.kind_names[infra.token_kind[t]], infra.token_value[t], order[k].first,
                                    infra.accounts_of(t)});
    }
  }
}

std::vector<std::pair<int64_t, int64_t>> pair_union(const std::vector<std::pair<int64_t, int64_t>>& x,
                                                    const std::vector<std::pair<int64_t, int64_t>>& y) {
  std::vector<std::pair<int64_t, int64_t>> out;
  out.reserve(x.size() + y.size());
  std::set_union(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(out));
  return out;
}

}  // namespace ringscan
