// cuBLAS, loaded when the CUDA backend first needs it rather than linked. Linking it costs
// every ringscan process about 200 MB of resident memory at start-up (libcublasLt's
// relocations), CPU-only runs included; loaded on demand, only GPU runs pay.
#pragma once
#include <cublas_v2.h>

namespace ringscan::cuda {

/// The cuBLAS entry points the CUDA stages call, resolved from the shared library.
struct CublasLibrary {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                          const float*, const float*, int, const float*, int, const float*,
                          float*, int) = nullptr;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType, int, const void*,
                            cudaDataType, int, const void*, void*, cudaDataType, int,
                            cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  const char* (*status_name)(cublasStatus_t) = nullptr;
  const char* (*status_string)(cublasStatus_t) = nullptr;

  /// The library, loaded once (thread-safe); throws DeviceError when it cannot be.
  static const CublasLibrary& get();
};

}  // namespace ringscan::cuda
