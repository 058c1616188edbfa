// Calls into FAISS with its exceptions turned into ringscan errors, and BLAS threading control.
#pragma once
#include <faiss/impl/FaissException.h>

#include <string>

#include "ringscan/error.hpp"

// OpenBLAS's own thread pool fights OpenMP's spinning threads for the same cores; ringscan
// parallelises around BLAS calls itself. Weak, so other BLAS implementations link too.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads(void) __attribute__((weak));

namespace ringscan {

template <class F>
void faiss_call(const char* what, F&& f) {
  try {
    f();
  } catch (const faiss::FaissException& e) {
    throw InternalError(std::string("FAISS failed in ") + what + ": " + e.what());
  }
}

/// Single-threaded BLAS for the scope of the object (OpenBLAS only; a no-op otherwise).
class SerialBlasScope {
 public:
  SerialBlasScope() {
    if (openblas_get_num_threads && openblas_set_num_threads) {
      previous_ = openblas_get_num_threads();
      openblas_set_num_threads(1);
    }
  }
  ~SerialBlasScope() {
    if (previous_ > 0 && openblas_set_num_threads) openblas_set_num_threads(previous_);
  }
  SerialBlasScope(const SerialBlasScope&) = delete;
  SerialBlasScope& operator=(const SerialBlasScope&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace ringscan
