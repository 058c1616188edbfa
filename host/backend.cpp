#include "ringscan/backend.hpp"

#include "ringscan/error.hpp"

namespace ringscan {

std::unique_ptr<Backend> make_cpu_backend();
#ifdef RINGSCAN_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend();
#endif

std::unique_ptr<Backend> make_backend(Device device) {
  if (device == Device::Cpu) return make_cpu_backend();
  const BuildInfo info = build_info();
  if (device == Device::Cuda) {
    if (!info.cuda_compiled)
      throw InvalidInput("--device cuda: this build has no CUDA backend (no nvcc was found at build "
                         "time; rebuild with -DRINGSCAN_CUDA=ON)");
    if (info.cuda_devices == 0) throw InvalidInput("--device cuda: no CUDA device found");
  }
#ifdef RINGSCAN_WITH_CUDA
  if (info.cuda_devices > 0) return make_cuda_backend();
#endif
  return make_cpu_backend();  // Auto without a usable device
}

}  // namespace ringscan
