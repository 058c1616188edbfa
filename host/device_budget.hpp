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

}  // namespace ringscan
