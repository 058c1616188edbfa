// Device discovery for `--version` and `--device auto`. A machine without a driver or device
// reports zero devices; that is not an error.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "ringscan/context.hpp"

namespace ringscan {

BuildInfo build_info() {
  BuildInfo info;
  info.cuda_compiled = true;
#ifdef RINGSCAN_FAISS_GPU
  info.faiss_gpu = true;
#endif
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the non-sticky error left by a missing driver
    return info;
  }
  info.cuda_devices = count;
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s%d: %s (sm_%d%d, %.0f GiB)", d ? "; " : "", d, prop.name,
                  prop.major, prop.minor, double(prop.totalGlobalMem) / (1024.0 * 1024 * 1024));
    info.cuda_device_names += buf;
  }
  return info;
}

}  // namespace ringscan
