#include "ringscan/request_order.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "ringscan/error.hpp"
#include "parallel.hpp"

namespace ringscan {

int64_t canonical_requests_bytes(const Dataset& data) {
  const double R = double(data.num_requests()), A = double(data.num_accounts());
  const double bytes = R * double(data.dim) * 4 + R * 8 * 5 + A * 8 * 4 +
                       A * double(data.feature_dim) * 4;
  return bytes > 9e18 ? INT64_MAX : int64_t(bytes);
}

namespace {

/// Requests per block of the parallel loops over requests.
constexpr int64_t kRowBlock = 1024;

/// Everything but the embeddings; `data.embeddings` is read for tie-breaks only.
CanonicalRequests canonical_order(const Dataset& data, const Context& ctx) {
  ThreadScope threads(ctx.threads);
  CanonicalRequests c;
  const int64_t A = data.num_accounts(), R = data.num_requests(), D = data.dim;
  c.num_accounts = A;
  c.num_requests = R;
  c.dim = D;

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

  // Order requests by (account, time, embedding): ties left are identical requests, whose
  // relative order cannot change any result. Keys are sorted as a contiguous array; the
  // embeddings are compared only inside the rare runs of equal (account, time).
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
  auto by_embedding = [&](const Key& x, const Key& y) {
    return std::memcmp(&data.embeddings[x.row * D], &data.embeddings[y.row * D], size_t(D) * 4) < 0;
  };
  for (int64_t i = 0; i < R;) {
    int64_t j = i + 1;
    while (j < R && keys[j].account == keys[i].account && keys[j].time == keys[i].time) ++j;
    if (j - i > 1) std::sort(keys.begin() + i, keys.begin() + j, by_embedding);
    i = j;
  }
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
  keys = {};
  c.account_offsets.assign(A + 1, 0);
  for (int64_t r = 0; r < R; ++r) ++c.account_offsets[c.request_owner[r] + 1];
  for (int64_t a = 0; a < A; ++a) c.account_offsets[a + 1] += c.account_offsets[a];

  c.feature_dim = data.feature_dim;
  if (data.has_features()) {
    const int64_t B = data.feature_dim;
    c.features.resize(A * B);
    for (int64_t a = 0; a < A; ++a)
      std::copy_n(&data.features[c.account_row[a] * B], B, &c.features[a * B]);
  }
  return c;
}

float inverse_norm(const float* v, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += double(v[i]) * v[i];
  return s > 0 ? float(1.0 / std::sqrt(s)) : 0.0f;
}

/// The rows of `embeddings` [R x D] in canonical order, scaled to unit length: each output
/// row written by one thread, which also touches its pages first.
std::vector<float> unit_rows_in_order(const float* embeddings, const std::vector<int64_t>& request_row,
                                     int64_t D) {
  const int64_t R = int64_t(request_row.size());
  std::vector<float> unit(R * D);
  detail::parallel_for_blocks(R, kRowBlock, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* src = embeddings + request_row[r] * D;
      const float inv = inverse_norm(src, D);
      float* dst = &unit[r * D];
      for (int64_t i = 0; i < D; ++i) dst[i] = src[i] * inv;
    }
  });
  return unit;
}

/// Reorders the rows of `emb` [R x D] in place by following each cycle of the permutation
/// (row r takes input row request_row[r]) and scales them to unit length; no second copy.
void reorder_rows_in_place(std::vector<float>& emb, const std::vector<int64_t>& request_row,
                           int64_t D) {
  const int64_t R = int64_t(request_row.size());
  std::vector<float> held(D);
  std::vector<uint8_t> placed(R, 0);
  // The walk is one thread's chain of random row reads: prefetching the row two steps ahead
  // overlaps their memory latency (0.3-0.6 s instead of 0.5-0.8 s for 1M x 256 here).
  const auto prefetch_row = [&](int64_t r) {
    const char* p = reinterpret_cast<const char*>(&emb[r * D]);
    for (int64_t b = 0; b < D * int64_t(sizeof(float)); b += 64) __builtin_prefetch(p + b);
  };
  for (int64_t start = 0; start < R; ++start) {
    if (placed[start]) continue;
    placed[start] = 1;
    if (request_row[start] == start) continue;
    std::copy_n(&emb[start * D], D, held.data());
    int64_t at = start, ahead = request_row[request_row[start]];
    for (;;) {
      const int64_t from = request_row[at];
      ahead = request_row[ahead];
      prefetch_row(ahead);
      if (from == start) {
        std::copy_n(held.data(), D, &emb[at * D]);
        break;
      }
      std::copy_n(&emb[from * D], D, &emb[at * D]);
      placed[from] = 1;
      at = from;
    }
  }
  detail::parallel_for_blocks(R, kRowBlock, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* v = &emb[r * D];
      const float inv = inverse_norm(v, D);
      for (int64_t i = 0; i < D; ++i) v[i] *= inv;
    }
  });
}

}  // namespace

CanonicalRequests canonical_requests(const Dataset& data, const Context& ctx) {
  ctx.require_memory(canonical_requests_bytes(data), data.source + ": canonical request order");
  CanonicalRequests c = canonical_order(data, ctx);
  ThreadScope threads(ctx.threads);
  c.unit_embeddings = unit_rows_in_order(data.embeddings.data(), c.request_row, c.dim);
  ctx.report("order", c.num_requests, c.num_requests);
  return c;
}

CanonicalRequests canonical_requests(Dataset&& data, const Context& ctx) {
  // The embeddings are reordered in place: no second copy of the largest array (touching
  // fresh memory is also what costs most time here).
  ctx.require_memory(canonical_requests_bytes(data) - data.num_requests() * data.dim * 4,
                     data.source + ": canonical request order");
  CanonicalRequests c = canonical_order(data, ctx);
  ThreadScope threads(ctx.threads);
  c.unit_embeddings = std::move(data.embeddings);
  data.embeddings.clear();
  reorder_rows_in_place(c.unit_embeddings, c.request_row, c.dim);
  ctx.report("order", c.num_requests, c.num_requests);
  return c;
}

}  // namespace ringscan
