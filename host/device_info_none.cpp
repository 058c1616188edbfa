#include "ringscan/context.hpp"

namespace ringscan {

BuildInfo build_info() { return BuildInfo{}; }

}  // namespace ringscan
