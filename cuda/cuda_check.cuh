// The one way CUDA calls are checked: every call goes through RINGSCAN_CUDA_TRY, which
// throws ringscan::DeviceError with the file, the line and the call.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "ringscan/error.hpp"

namespace ringscan::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t error, const char* call, const char* file,
                                          int line) {
  std::string message = std::string("CUDA error ") + cudaGetErrorName(error) + " (" +
                        cudaGetErrorString(error) + ") in " + call + " at " + file + ":" +
                        std::to_string(line);
  // Errors such as an illegal address stick to the context: say so, the caller must stop.
  if (error == cudaErrorIllegalAddress || error == cudaErrorLaunchFailure ||
      error == cudaErrorHardwareStackError || error == cudaErrorIllegalInstruction ||
      error == cudaErrorMisalignedAddress)
    message += "; the device is unusable from here on and the process must end";
  throw DeviceError(message);
}

}  // namespace ringscan::cuda

#define RINGSCAN_CUDA_TRY(call)                                                      \
  do {                                                                               \
    const cudaError_t ringscan_cuda_status_ = (call);                                \
    if (ringscan_cuda_status_ != cudaSuccess)                                        \
      ::ringscan::cuda::throw_cuda_error(ringscan_cuda_status_, #call, __FILE__, __LINE__); \
  } while (0)
