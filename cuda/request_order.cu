// The order stage on the GPU: the requests sorted by (account, time, row) by two radix passes,
// and the embeddings gathered into that order at unit length (the portable construction,
// host/portable/request_order.hpp, on thrust::cuda). The accounts' order, the ties of
// (account, time) and the per-account arrays stay the host's, as in the CPU stage.
#include <thrust/system/cuda/execution_policy.h>

#include <algorithm>
#include <vector>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "staging.cuh"
#include "stopwatch.hpp"
#include "thrust_errors.cuh"
#include "portable/request_order.hpp"

namespace ringscan::cuda {
namespace {

/// Floats of unit rows the device writes at a time at most (256 MiB): beside the stored rows
/// it holds one block, not a second whole array (15 GB for 10M requests of 384 dimensions).
constexpr int64_t kUnitBlockFloats = int64_t(64) << 20;

}  // namespace

CanonicalRequests canonical_requests(const Dataset& data, std::vector<float>* reuse, const Context& ctx,
                                     int64_t device_budget, double* host_seconds) {
  const int64_t A = data.num_accounts(), R = data.num_requests(), D = data.dim;
  ctx.require_memory(canonical_requests_bytes(data) - (reuse != nullptr ? R * D * 4 : 0),
                     data.source + ": canonical request order");
  // The sort: accounts, times, ranks, rows, keys, times out and the radix sort's scratch
  // (keys and rows again); then the stored rows and the order, and blocks of unit rows with
  // their scales, as many rows a block as the budget leaves room for (up to 256 MiB).
  const double sort_bytes = double(R) * 8 * 8 + double(A) * 8;
  require_device_memory(sort_bytes, device_budget, "request order on the device");
  const int64_t block =
      R == 0 ? 0
             : batch_within_budget(device_budget, double(R) * (double(D) * 4 + 8), D * 4 + 4,
                                   std::min<int64_t>(R, std::max<int64_t>(1, kUnitBlockFloats / std::max<int64_t>(D, 1))),
                                   1, "request order on the device");
  ThreadScope threads(ctx.threads);
  CanonicalRequests c;
  Stopwatch host;
  const std::vector<int64_t> rank = order_accounts(data, c);
  double seconds = host.seconds();
  const bool timed = data.has_time();
  {
    const DeviceBuffer<int64_t> account_rank(rank), account(data.request_account), time(data.request_time);
    DeviceBuffer<int64_t> row(R), owner(R), time_out(timed ? R : 0);
    run_thrust("request order on the device", [&] {
      portable::sort_request_rows(thrust::cuda::par, R, account_rank.data(), account.data(),
                                  timed ? time.data() : nullptr, row.data(), owner.data(),
                                  timed ? time_out.data() : nullptr);
    });
    c.request_row.resize(R);
    c.request_owner.resize(R);
    row.download(c.request_row.data(), R);
    owner.download(c.request_owner.data(), R);
    if (timed) {
      c.time.resize(R);
      time_out.download(c.time.data(), R);
    }
  }
  host.restart();
  finish_bookkeeping(c, data, stored_row(data));
  seconds += host.seconds();
  if (host_seconds != nullptr) *host_seconds += seconds;
  {
    DeviceBuffer<float> raw(R * D), unit(block * D), scale(block);
    upload_through_pinned(data.embeddings.data(), R * D, raw.data());
    const DeviceBuffer<int64_t> row(c.request_row);  // ties broken
    // The stored rows are on the device: their host array may take the unit rows.
    if (reuse != nullptr) c.unit_embeddings = std::move(*reuse);
    c.unit_embeddings.resize(size_t(R * D));
    PinnedDownload download(block * D);
    run_thrust("request order on the device", [&] {
      portable::unit_rows_in_order(thrust::cuda::par, R, D, raw.data(), row.data(), block, scale.data(), unit.data(),
                                   [&](int64_t first, int64_t count) {
                                     download(unit.data(), count * D, c.unit_embeddings.data() + first * D);
                                   });
    });
  }
  ctx.report("order", R, R);
  return c;
}

}  // namespace ringscan::cuda
