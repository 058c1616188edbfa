// Stage 0: a canonical order of accounts and requests, so every later stage is independent
// of the order the input file happens to list them in.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/dataset.hpp"

namespace ringscan {

/// Requests grouped by account, accounts sorted by id, embeddings normalised.
struct CanonicalRequests {
  int64_t num_accounts = 0, num_requests = 0, dim = 0;
  std::vector<int64_t> account_row;      ///< [A] canonical account -> row in the input
  std::vector<int64_t> account_id;       ///< [A] canonical account -> id (ascending)
  std::vector<int64_t> request_row;      ///< [R] canonical request -> row in the input
  std::vector<int64_t> request_owner;    ///< [R] canonical request -> canonical account
  std::vector<int64_t> account_offsets;  ///< [A+1] requests of account a: [off[a], off[a+1])
  std::vector<float> unit_embeddings;    ///< [R x D] unit length (zero vectors stay zero)
  std::vector<int64_t> time;             ///< [R] unix seconds, or empty
  std::vector<float> features;           ///< [A x B] behaviour in canonical account order
  int64_t feature_dim = 0;
  std::vector<uint8_t> feature_categorical;  ///< [B] 1 for a categorical column, or empty
  std::vector<std::string> feature_names;    ///< [B] or empty
  int64_t infra_dim = 0;                 ///< K token kinds
  std::vector<int64_t> infra;            ///< [R x K] infrastructure tokens (0 = unknown), or empty
  std::vector<std::string> infra_names;  ///< [K]
  std::vector<int64_t> payment;          ///< [A] payment instrument (0 = unknown), or empty
  std::vector<int64_t> created;          ///< [A] sign-up time (0 = unknown), or empty
};

/// Bytes canonical_requests() allocates for `data` (for the memory budget).
int64_t canonical_requests_bytes(const Dataset& data);

/// Sorts accounts by id and requests by (account, time, embedding); normalises embeddings.
/// `host_seconds`, when given, is added the seconds spent in the parts that stay on the host
/// whichever backend orders the requests (order_accounts and finish_bookkeeping).
CanonicalRequests canonical_requests(const Dataset& data, const Context& ctx, double* host_seconds = nullptr);
/// The parts canonical_requests is made of, for a distributed run, whose processes each
/// hold some of the embeddings.
/// The stored embedding of an input row, or null where this process does not hold it.
using RawEmbedding = std::function<const float*(int64_t row)>;
/// Everything but the unit embeddings: accounts by id, requests by (account, time), ties of
/// those broken by break_ties with `raw_row`.
CanonicalRequests canonical_bookkeeping(const Dataset& data, const Context& ctx, const RawEmbedding& raw_row,
                                        double* host_seconds = nullptr);
/// The stored embedding of each input row of `data` (data.embeddings holds all of them).
RawEmbedding stored_row(const Dataset& data);
/// canonical_bookkeeping's first part: the counts, the accounts by id (account_row,
/// account_id). Returns each input account row's canonical account (its rank by id).
std::vector<int64_t> order_accounts(const Dataset& data, CanonicalRequests& c);
/// Its last part, once request_row, request_owner and time hold the requests by (account
/// rank, time, row): ties broken (break_ties), account offsets, the per-account arrays and the
/// tokens in canonical order.
void finish_bookkeeping(CanonicalRequests& c, const Dataset& data, const RawEmbedding& raw_row);
/// Orders the runs of equal (account, time) among canonical requests [first, last) by the
/// bytes of their stored embeddings (raw_row), leaving runs whose rows it lacks as they are.
void break_ties(CanonicalRequests& c, int64_t first, int64_t last, const RawEmbedding& raw_row);
/// c.infra: the request tokens of `data` in c's order (after break_ties).
void copy_request_tokens(CanonicalRequests& c, const Dataset& data);
/// dst [D] = src [D] scaled to unit length (a zero vector stays zero); dst may be src.
void write_unit_row(const float* src, float* dst, int64_t D);

/// The same, taking the embeddings of `data` over and reordering them in place (no copy);
/// `data.embeddings` is left empty.
CanonicalRequests canonical_requests(Dataset&& data, const Context& ctx, double* host_seconds = nullptr);

}  // namespace ringscan
