// The one way the device stages run Thrust algorithms: their failures come out as ringscan
// errors naming the stage. A failed launch or copy is a thrust::system_error; a failed
// allocation of Thrust's scratch memory is a thrust bad_alloc (a std::bad_alloc, which the
// pipeline would otherwise report as the host running out of memory).
#pragma once
#include <thrust/system/detail/bad_alloc.h>
#include <thrust/system_error.h>

#include <string>

#include "ringscan/error.hpp"

namespace ringscan::cuda {

template <class Run>
auto run_thrust(const std::string& stage, Run&& run) -> decltype(run()) {
  try {
    return run();
  } catch (const thrust::system::detail::bad_alloc& e) {
    throw BudgetExceeded(stage + ": out of device memory (" + e.what() +
                         "); lower --device-memory-budget to leave room for other processes "
                         "on the device, or run on the CPU");
  } catch (const thrust::system_error& e) {
    throw DeviceError(stage + ": " + e.what());
  }
}

}  // namespace ringscan::cuda
