#include "cublas_library.cuh"

#include <dlfcn.h>

#include <string>

#include "ringscan/error.hpp"

namespace ringscan::cuda {
namespace {

template <class Fn>
void resolve(void* handle, const char* name, Fn& fn) {
  fn = reinterpret_cast<Fn>(dlsym(handle, name));
  if (!fn) throw DeviceError(std::string("cuBLAS has no ") + name + ": " + dlerror());
}

CublasLibrary load() {
  const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  // The toolkit's library directory as found at build time, when the loader's path lacks it.
  if (!handle)
    handle = dlopen((std::string(RINGSCAN_CUDA_LIBRARY_DIR) + "/" + soname).c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    throw DeviceError("cannot load cuBLAS (" + soname + "), which the CUDA backend needs: " +
                      dlerror() + " (add the CUDA toolkit's library directory to LD_LIBRARY_PATH)");
  CublasLibrary l;
  resolve(handle, "cublasCreate_v2", l.create);
  resolve(handle, "cublasDestroy_v2", l.destroy);
  resolve(handle, "cublasSetStream_v2", l.set_stream);
  resolve(handle, "cublasSgemm_v2", l.sgemm);
  resolve(handle, "cublasGemmEx", l.gemm_ex);
  resolve(handle, "cublasGetStatusName", l.status_name);
  resolve(handle, "cublasGetStatusString", l.status_string);
  return l;  // the handle stays open for the life of the process
}

}  // namespace

const CublasLibrary& CublasLibrary::get() {
  static const CublasLibrary library = load();
  return library;
}

}  // namespace ringscan::cuda
