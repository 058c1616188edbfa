#include "ringscan/request_order.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "random.hpp"
#include "ringscan/error.hpp"

namespace ringscan {

int64_t canonical_requests_bytes(const Dataset& data) {
  const double R = double(data.num_requests()), A = double(data.num_accounts());
  const double bytes = R * double(data.dim) * 4 + R * 8 * 5 + A * 8 * 4 +
                       A * double(data.feature_dim) * 4;
  return bytes > 9e18 ? INT64_MAX : int64_t(bytes);
}

namespace {
uint64_t embedding_hash(const float* v, int64_t d) {
  uint64_t h = 0x243f6a8885a308d3ULL;
  for (int64_t i = 0; i < d; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &v[i], 4);
    h = mix64(h ^ bits);
  }
  return h;
}
}  // namespace

CanonicalRequests canonical_requests(const Dataset& data, const Context& ctx) {
  ctx.require_memory(canonical_requests_bytes(data), data.source + ": canonical request order");
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
  // relative order cannot change any result.
  std::vector<uint64_t> hash(R);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; ++r) hash[r] = embedding_hash(&data.embeddings[r * D], D);
  const bool timed = data.has_time();
  c.request_row.resize(R);
  std::iota(c.request_row.begin(), c.request_row.end(), 0);
  std::sort(c.request_row.begin(), c.request_row.end(), [&](int64_t x, int64_t y) {
    const int64_t ax = rank[data.request_account[x]], ay = rank[data.request_account[y]];
    if (ax != ay) return ax < ay;
    if (timed && data.request_time[x] != data.request_time[y])
      return data.request_time[x] < data.request_time[y];
    if (hash[x] != hash[y]) return hash[x] < hash[y];
    return std::memcmp(&data.embeddings[x * D], &data.embeddings[y * D], size_t(D) * 4) < 0;
  });
  hash.clear();
  hash.shrink_to_fit();

  c.request_owner.resize(R);
  c.account_offsets.assign(A + 1, 0);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t a = rank[data.request_account[c.request_row[r]]];
    c.request_owner[r] = a;
    ++c.account_offsets[a + 1];
  }
  for (int64_t a = 0; a < A; ++a) c.account_offsets[a + 1] += c.account_offsets[a];

  c.unit_embeddings.resize(R * D);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; ++r) {
    const float* src = &data.embeddings[c.request_row[r] * D];
    float* dst = &c.unit_embeddings[r * D];
    double s = 0;
    for (int64_t i = 0; i < D; ++i) s += double(src[i]) * src[i];
    const float inv = s > 0 ? float(1.0 / std::sqrt(s)) : 0.0f;
    for (int64_t i = 0; i < D; ++i) dst[i] = src[i] * inv;
  }
  if (timed) {
    c.time.resize(R);
    for (int64_t r = 0; r < R; ++r) c.time[r] = data.request_time[c.request_row[r]];
  }
  c.feature_dim = data.feature_dim;
  if (data.has_features()) {
    const int64_t B = data.feature_dim;
    c.features.resize(A * B);
    for (int64_t a = 0; a < A; ++a)
      std::copy_n(&data.features[c.account_row[a] * B], B, &c.features[a * B]);
  }
  ctx.report("order", R, R);
  return c;
}

}  // namespace ringscan
