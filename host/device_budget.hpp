// The one way the device stages refuse work that would pass the device memory budget.
#pragma once
#include <cstdint>
#include <string>

#include "ringscan/context.hpp"
#include "ringscan/error.hpp"

namespace ringscan {

/// Throws BudgetExceeded when `bytes` of device memory exceed `budget` (0: no bound), naming
/// what needs them ("prompt groups on the device") and how to get past it.
inline void require_device_memory(double bytes, int64_t budget, const std::string& what) {
  if (budget <= 0 || bytes <= double(budget)) return;
  throw BudgetExceeded(what + " needs about " + format_size(int64_t(bytes)) +
                       ", more than the device memory budget of " + format_size(budget) +
                       " (raise --device-memory-budget, or run on the CPU)");
}

/// Items per batch of a device stage that streams items through fixed buffers: as many as
/// the budget leaves after the `held` bytes the stage keeps, at most `most` and at least
/// `least` (BudgetExceeded when not even `least` fit). A small budget means more batches,
/// not a refusal, as long as a batch of `least` fits.
inline int64_t batch_within_budget(int64_t budget, double held, int64_t bytes_per_item, int64_t most,
                                   int64_t least, const std::string& what) {
  require_device_memory(held + double(least) * double(bytes_per_item), budget, what);
  if (budget <= 0) return most;
  const double room = (double(budget) - held) / double(bytes_per_item);
  return room >= double(most) ? most : room <= double(least) ? least : int64_t(room);
}

}  // namespace ringscan
