// The shared infrastructure stage's sort as Thrust algorithms over raw arrays: every
// (kind, value, account) of the requests' tokens and the accounts' payment instruments, once,
// ascending. Instantiated for thrust::cuda by the CUDA backend and for thrust::omp by the
// CPU tests, which compare it with the CPU stage's token_uses; the linear pass that makes
// tokens of the sorted uses (shared_infrastructure) is the host's for both.
#pragma once
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/zip_iterator.h>
#include <thrust/sort.h>
#include <thrust/tuple.h>
#include <thrust/unique.h>

#include <cstdint>
#include <vector>

#include "evidence_math.hpp"  // RINGSCAN_HD
#include "ringscan/error.hpp"
#include "ringscan/shared_infrastructure.hpp"

namespace ringscan::portable {

namespace detail {

/// Entry i < R K: request i / K's token of kind i % K; entry R K + a: account a's payment
/// instrument (kind K). Unknown tokens (0) become (INT64_MAX, 0, 0), sorted last and made
/// one entry by the unique.
struct WriteTokenUse {
  const int64_t* infra;
  const int64_t* owner;
  const int64_t* payment;
  int64_t K, request_tokens;  ///< K: the token columns (payment's kind); request_tokens: R K
  int64_t* kind;
  int64_t* value;
  int64_t* account;
  RINGSCAN_HD void operator()(int64_t i) const {
    int64_t k, v, a;
    if (i < request_tokens) {  // only when K > 0
      k = i % K;
      v = infra[i];
      a = owner[i / K];
    } else {
      k = K;
      v = payment[i - request_tokens];
      a = i - request_tokens;
    }
    const bool known = v != 0;
    kind[i] = known ? k : INT64_MAX;
    value[i] = known ? v : 0;
    account[i] = known ? a : 0;
  }
};

}  // namespace detail

/// token_uses of R requests with K token columns `infra` [R x K] (null when K = 0), owned by
/// request_owner [R], and A accounts' payment instruments `payment` [A] (null when none),
/// all in the policy's memory. Memory::Buffer<T>(n) and Memory::to_host(p, n, out) as for
/// build_evidence_graph. Policy memory: 32 bytes per token.
template <class Memory, class Policy>
std::vector<TokenUse> build_token_uses(Policy&& policy, int64_t R, int64_t K, int64_t A, const int64_t* infra,
                                       const int64_t* request_owner, const int64_t* payment) {
  using I64 = typename Memory::template Buffer<int64_t>;
  RINGSCAN_EXPECTS(K == 0 || R <= INT64_MAX / K, "shared infrastructure: too many requests x token kinds");
  const int64_t request_tokens = infra != nullptr ? R * K : 0;
  const int64_t N = request_tokens + (payment != nullptr ? A : 0);
  if (N == 0) return {};
  I64 kind(N), value(N), account(N), scratch(N);
  const thrust::counting_iterator<int64_t> zero(0);
  thrust::for_each(policy, zero, zero + N,
                   detail::WriteTokenUse{infra, request_owner, payment, K, request_tokens, kind.data(),
                                         value.data(), account.data()});
  auto first = thrust::make_zip_iterator(thrust::make_tuple(kind.data(), value.data(), account.data()));
  thrust::sort(policy, first, first + N);
  // By unique_by_key (the scratch as its values): Thrust's CUDA unique counts in 32 bits,
  // its unique_by_key in 64.
  int64_t M = int64_t(thrust::unique_by_key(policy, first, first + N, scratch.data()).first - first);
  int64_t last_kind = 0;
  Memory::to_host(kind.data() + M - 1, 1, &last_kind);
  if (last_kind == INT64_MAX) --M;
  std::vector<int64_t> k(M), v(M), a(M);
  Memory::to_host(kind.data(), M, k.data());
  Memory::to_host(value.data(), M, v.data());
  Memory::to_host(account.data(), M, a.data());
  std::vector<TokenUse> uses(M);
  for (int64_t i = 0; i < M; ++i) uses[i] = {k[i], v[i], a[i]};
  return uses;
}

}  // namespace ringscan::portable
