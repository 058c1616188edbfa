// The one way CUDA and cuBLAS calls are checked: every call goes through RINGSCAN_CUDA_TRY,
// which throws ringscan::DeviceError with the file, the line and the call.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cublas_library.cuh"

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

[[noreturn]] inline void throw_cuda_error(cublasStatus_t status, const char* call, const char* file,
                                          int line) {
  const CublasLibrary& cublas = CublasLibrary::get();
  throw DeviceError(std::string("cuBLAS error ") + cublas.status_name(status) + " (" +
                    cublas.status_string(status) + ") in " + call + " at " + file + ":" +
                    std::to_string(line));
}

inline bool failed(cudaError_t status) { return status != cudaSuccess; }
inline bool failed(cublasStatus_t status) { return status != CUBLAS_STATUS_SUCCESS; }

}  // namespace ringscan::cuda

#define RINGSCAN_CUDA_TRY(call)                                                      \
  do {                                                                               \
    const auto ringscan_cuda_status_ = (call);                                       \
    if (::ringscan::cuda::failed(ringscan_cuda_status_))                             \
      ::ringscan::cuda::throw_cuda_error(ringscan_cuda_status_, #call, __FILE__, __LINE__); \
  } while (0)
