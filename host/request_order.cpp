#include "ringscan/request_order.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "ringscan/error.hpp"
#include "parallel.hpp"
#include "stopwatch.hpp"
#include "unit_rows.hpp"

namespace ringscan {

int64_t canonical_requests_bytes(const Dataset& data) {
  const double R = double(data.num_requests()), A = double(data.num_accounts());
  const double bytes = R * double(data.dim) * 4 + R * 8 * (5 + double(data.infra_dim)) + A * 8 * 6 +
                       A * double(data.feature_dim) * 4;
  return bytes > 9e18 ? INT64_MAX : int64_t(bytes);
}

namespace {

/// Requests per block of the parallel loops over requests.
constexpr int64_t kRowBlock = 1024;

}  // namespace

std::vector<int64_t> order_accounts(const Dataset& data, CanonicalRequests& c) {
  const int64_t A = data.num_accounts();
  c.num_accounts = A;
  c.num_requests = data.num_requests();
  c.dim = data.dim;
  c.account_row.resize(A);
  std::iota(c.account_row.begin(), c.account_row.end(), 0);
  std::sort(c.account_row.begin(), c.account_row.end(),
            [&](int64_t x, int64_t y) { return data.account_ids[x] < data.account_ids[y]; });
  std::vector<int64_t> rank(A);
  c.account_id.resize(A);
  for (int64_t i = 0; i < A; ++i) {
    rank[c.account_row[i]] = i;
    c.account_id[i] = data.account_ids[c.account_row[i]];
  }
  return rank;
}

namespace {

/// request_row, request_owner and time of `c`: requests by (account rank, time, row).
void order_requests(const Dataset& data, const std::vector<int64_t>& rank, CanonicalRequests& c) {
  const int64_t R = data.num_requests();
  // Keys are sorted as a contiguous array; the embeddings are compared later, only inside
  // the rare runs of equal (account, time) (break_ties).
  const bool timed = data.has_time();
  struct Key {
    int64_t account, time, row;
  };
  std::vector<Key> keys(R);
  detail::parallel_for_blocks(R, kRowBlock, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      keys[r] = {rank[data.request_account[r]], timed ? data.request_time[r] : 0, r};
  });
  detail::parallel_sort(keys, [](const Key& x, const Key& y) {
    return x.account != y.account ? x.account < y.account
           : x.time != y.time     ? x.time < y.time
                                  : x.row < y.row;
  });
  // The keys hold each canonical request's row, account and time: read them in order.
  c.request_row.resize(R);
  c.request_owner.resize(R);
  if (timed) c.time.resize(R);
  detail::parallel_for_blocks(R, kRowBlock, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      c.request_row[r] = keys[r].row;
      c.request_owner[r] = keys[r].account;
      if (timed) c.time[r] = keys[r].time;
    }
  });
}

}  // namespace

void finish_bookkeeping(CanonicalRequests& c, const Dataset& data, const RawEmbedding& raw_row) {
  const int64_t A = c.num_accounts, R = c.num_requests;
  break_ties(c, 0, R, raw_row);
  c.account_offsets.assign(A + 1, 0);
  for (int64_t r = 0; r < R; ++r) ++c.account_offsets[c.request_owner[r] + 1];
  for (int64_t a = 0; a < A; ++a) c.account_offsets[a + 1] += c.account_offsets[a];

  c.feature_dim = data.feature_dim;
  c.feature_categorical = data.feature_categorical;
  c.feature_names = data.feature_names;
  if (data.has_features()) {
    const int64_t B = data.feature_dim;
    c.features.resize(A * B);
    for (int64_t a = 0; a < A; ++a)
      std::copy_n(&data.features[c.account_row[a] * B], B, &c.features[a * B]);
  }
  c.infra_dim = data.infra_dim;
  c.infra_names = data.infra_names;
  copy_request_tokens(c, data);
  for (auto [from, to] : {std::make_pair(&data.account_payment, &c.payment),
                          std::make_pair(&data.account_created, &c.created)})
    if (!from->empty()) {
      to->resize(A);
      for (int64_t a = 0; a < A; ++a) (*to)[a] = (*from)[c.account_row[a]];
    }
}

CanonicalRequests canonical_bookkeeping(const Dataset& data, const Context& ctx, const RawEmbedding& raw_row,
                                        double* host_seconds) {
  ThreadScope threads(ctx.threads);
  CanonicalRequests c;
  Stopwatch host;
  const std::vector<int64_t> rank = order_accounts(data, c);
  double seconds = host.seconds();
  order_requests(data, rank, c);
  host.restart();
  finish_bookkeeping(c, data, raw_row);
  if (host_seconds != nullptr) *host_seconds += seconds + host.seconds();
  return c;
}

void break_ties(CanonicalRequests& c, int64_t first, int64_t last, const RawEmbedding& raw_row) {
  // Runs of equal (account, time) are ordered by their stored embeddings' bytes; ties left
  // are identical requests, whose relative order cannot change any result. Rows whose
  // embedding is not at hand (another process holds it) keep their order.
  const size_t bytes = size_t(c.dim) * sizeof(float);
  const bool timed = !c.time.empty();
  auto same_key = [&](int64_t x, int64_t y) {
    return c.request_owner[x] == c.request_owner[y] && (!timed || c.time[x] == c.time[y]);
  };
  for (int64_t i = first; i < last;) {
    int64_t j = i + 1;
    while (j < last && same_key(i, j)) ++j;
    if (j - i > 1 && raw_row(c.request_row[i]) != nullptr)
      std::sort(c.request_row.begin() + i, c.request_row.begin() + j, [&](int64_t x, int64_t y) {
        return std::memcmp(raw_row(x), raw_row(y), bytes) < 0;
      });
    i = j;
  }
}

void copy_request_tokens(CanonicalRequests& c, const Dataset& data) {
  c.infra.clear();
  if (data.request_infra.empty()) return;
  const int64_t K = data.infra_dim, R = c.num_requests;
  c.infra.resize(R * K);
  detail::parallel_for_blocks(R, kRowBlock, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) std::copy_n(&data.request_infra[c.request_row[r] * K], K, &c.infra[r * K]);
  });
}

void write_unit_row(const float* src, float* dst, int64_t D) {
  const float inv = inverse_norm(src, D);
  for (int64_t i = 0; i < D; ++i) dst[i] = src[i] * inv;
}

namespace {

/// The rows of `embeddings` [R x D] in canonical order, scaled to unit length.
std::vector<float> unit_rows_in_order(const float* embeddings, const std::vector<int64_t>& request_row,
                                      int64_t D) {
  const int64_t R = int64_t(request_row.size());
  std::vector<float> unit(R * D);
  detail::parallel_for_blocks(R, kRowBlock, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) write_unit_row(embeddings + request_row[r] * D, &unit[r * D], D);
  });
  return unit;
}

/// Cycles of a permutation longer than this many positions are cut into segments that
/// threads move independently.
constexpr int64_t kSegmentRows = 4096;

/// A run of positions along one cycle of the permutation: first, request_row[first], ...
/// (`length` of them); the row its last position takes is the first row of segment `next`.
struct CycleSegment {
  int64_t first, length, next;
};

/// Moves the rows of one segment along its cycle: each position takes the row of the next
/// position, the last one takes `last` (the next segment's first row, saved before it moved).
void move_segment(float* emb, const std::vector<int64_t>& request_row, int64_t D,
                  const CycleSegment& s, const float* last) {
  int64_t at = s.first;
  for (int64_t j = 0; j + 1 < s.length; ++j) {
    const int64_t from = request_row[at];
    std::copy_n(emb + from * D, D, emb + at * D);
    at = from;
  }
  std::copy_n(last, D, emb + at * D);
}

/// Reorders the rows of `emb` [R x D] in place (row r takes input row request_row[r]); no
/// second copy of the rows. One thread walks the cycles of the permutation by their indices
/// only; the rows move in parallel: short cycles one per task, long ones (a random order is
/// mostly one cycle) cut into segments of kSegmentRows, each segment's first row saved before
/// any moves since the segment before it reads it last.
void reorder_rows_in_place(std::vector<float>& emb, const std::vector<int64_t>& request_row,
                           int64_t D) {
  const int64_t R = int64_t(request_row.size());
  std::vector<uint8_t> visited(R, 0);
  std::vector<CycleSegment> long_cycles, short_cycles, cycle;
  for (int64_t start = 0; start < R; ++start) {
    if (visited[start] || request_row[start] == start) continue;
    cycle.clear();
    for (int64_t p = start; cycle.empty() || p != start;) {
      CycleSegment s{p, 0, 0};
      do {
        visited[p] = 1;
        ++s.length;
        p = request_row[p];
      } while (p != start && s.length < kSegmentRows);
      cycle.push_back(s);
    }
    if (cycle.size() == 1) {  // the whole cycle: moved by one task with its own saved row
      short_cycles.push_back(cycle[0]);
      continue;
    }
    const int64_t first = int64_t(long_cycles.size()), n = int64_t(cycle.size());
    for (int64_t k = 0; k < n; ++k) {
      cycle[k].next = first + (k + 1) % n;
      long_cycles.push_back(cycle[k]);
    }
  }

  float* rows = emb.data();
  const int64_t L = int64_t(long_cycles.size());
  std::vector<float> saved(L * D);
  detail::parallel_for(L, 0, [&](int64_t k) {
    std::copy_n(rows + long_cycles[k].first * D, D, &saved[k * D]);
  });
  detail::parallel_for(L, 1, [&](int64_t k) {
    move_segment(rows, request_row, D, long_cycles[k], &saved[long_cycles[k].next * D]);
  });
  detail::parallel_for_blocks(int64_t(short_cycles.size()), kRowBlock, [&](int64_t b, int64_t e) {
    std::vector<float> held(D);
    for (int64_t i = b; i < e; ++i) {
      std::copy_n(rows + short_cycles[i].first * D, D, held.data());
      move_segment(rows, request_row, D, short_cycles[i], held.data());
    }
  });
}

}  // namespace

RawEmbedding stored_row(const Dataset& data) {
  return [&data](int64_t row) { return data.embeddings.data() + row * data.dim; };
}

CanonicalRequests canonical_requests(const Dataset& data, const Context& ctx, double* host_seconds) {
  ctx.require_memory(canonical_requests_bytes(data), data.source + ": canonical request order");
  CanonicalRequests c = canonical_bookkeeping(data, ctx, stored_row(data), host_seconds);
  ThreadScope threads(ctx.threads);
  c.unit_embeddings = unit_rows_in_order(data.embeddings.data(), c.request_row, c.dim);
  ctx.report("order", c.num_requests, c.num_requests);
  return c;
}

CanonicalRequests canonical_requests(Dataset&& data, const Context& ctx, double* host_seconds) {
  // The embeddings are reordered in place: no second copy of the largest array (touching
  // fresh memory is also what costs most time here).
  ctx.require_memory(canonical_requests_bytes(data) - data.num_requests() * data.dim * 4,
                     data.source + ": canonical request order");
  CanonicalRequests c = canonical_bookkeeping(data, ctx, stored_row(data), host_seconds);
  ThreadScope threads(ctx.threads);
  c.unit_embeddings = std::move(data.embeddings);
  data.embeddings.clear();
  reorder_rows_in_place(c.unit_embeddings, c.request_row, c.dim);
  float* rows = c.unit_embeddings.data();
  detail::parallel_for_blocks(c.num_requests, kRowBlock, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) write_unit_row(rows + r * c.dim, rows + r * c.dim, c.dim);
  });
  ctx.report("order", c.num_requests, c.num_requests);
  return c;
}

}  // namespace ringscan
