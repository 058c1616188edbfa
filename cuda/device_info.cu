// Device discovery for `--version` and `--device auto`. A machine without a driver or device
// reports zero devices; that is not an error.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "ringscan/context.hpp"
#include "ringscan/error.hpp"

namespace ringscan {

namespace {

/// "13.0" from CUDA's version number 13000.
std::string cuda_version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

}  // namespace

BuildInfo build_info() {
  BuildInfo info;
  info.cuda_compiled = true;
  info.cuda_min_arch = RINGSCAN_CUDA_MIN_ARCH;
#ifdef RINGSCAN_FAISS_GPU
  info.faiss_gpu = true;
#endif
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);  // 0: no driver installed, a machine without a GPU
  cudaRuntimeGetVersion(&runtime);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the non-sticky error
    // Without a driver the runtime also says "insufficient driver": no GPU, not a fault.
    if (driver > 0 && status != cudaErrorNoDevice)
      info.cuda_error = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status) +
                        "; the driver supports CUDA " + cuda_version(driver) + ", this build's runtime is " +
                        cuda_version(runtime);
    return info;
  }
  info.cuda_devices = count;
  info.cuda_device_arch.assign(size_t(count), 0);
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    info.cuda_device_arch[size_t(d)] = prop.major * 10 + prop.minor;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s%d: %s (sm_%d%d, %.0f GiB)", d ? "; " : "", d, prop.name,
                  prop.major, prop.minor, double(prop.totalGlobalMem) / (1024.0 * 1024 * 1024));
    info.cuda_device_names += buf;
  }
  return info;
}

namespace cuda {

int64_t device_memory_budget(int64_t requested) {
  size_t free_bytes = 0, total_bytes = 0;
  RINGSCAN_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
  const int64_t usable = int64_t(double(free_bytes) * 0.9);
  if (requested <= 0) {
    if (usable <= 0) throw BudgetExceeded("no free memory on the device (other processes hold it all)");
    return usable;
  }
  if (requested > int64_t(free_bytes))
    throw BudgetExceeded("--device-memory-budget " + format_size(requested) + " is more than the " +
                         format_size(int64_t(free_bytes)) + " free on the device");
  return requested;
}

}  // namespace cuda

}  // namespace ringscan
