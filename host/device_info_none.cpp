#include "ringscan/context.hpp"

namespace ringscan {

BuildInfo build_info() {
  BuildInfo info;
#ifdef RINGSCAN_FAISS_GPU
  info.faiss_gpu = true;
#endif
  return info;
}

}  // namespace ringscan
