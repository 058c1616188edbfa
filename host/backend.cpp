#include "ringscan/backend.hpp"

#include "ringscan/error.hpp"

namespace ringscan {

std::unique_ptr<Backend> make_cpu_backend();
#ifdef RINGSCAN_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend();
#endif

std::string cuda_backend_problem(const BuildInfo& info) {
  if (!info.cuda_compiled)
    return "this build has no CUDA backend (no nvcc was found at build time; rebuild with "
           "-DRINGSCAN_CUDA=ON)";
  if (info.cuda_devices == 0)
    return info.cuda_error.empty() ? "no CUDA device found"
                                   : "no CUDA device found: the CUDA runtime cannot start (" +
                                         info.cuda_error + ")";
  // The backend runs on the current device, the first visible one (CUDA_VISIBLE_DEVICES).
  const int arch = info.cuda_device_arch.empty() ? 0 : info.cuda_device_arch[0];
  if (arch == 0) return "the properties of CUDA device 0 could not be read";
  if (arch < info.cuda_min_arch)
    return "CUDA device 0 is sm_" + std::to_string(arch) + ", older than this build's kernels (sm_" +
           std::to_string(info.cuda_min_arch) + " and newer; rebuild with -DCMAKE_CUDA_ARCHITECTURES=" +
           std::to_string(arch) + ")";
  return "";
}

std::unique_ptr<Backend> make_backend(Device device) {
  if (device == Device::Cpu) return make_cpu_backend();
  const std::string problem = cuda_backend_problem(build_info());
  if (device == Device::Cuda && !problem.empty()) throw InvalidInput("--device cuda: " + problem);
#ifdef RINGSCAN_WITH_CUDA
  if (problem.empty()) return make_cuda_backend();
#endif
  return make_cpu_backend();  // Auto without a usable device
}

}  // namespace ringscan
