// The shared library's own translation unit: its code is the static library's, linked whole
// (CMakeLists.txt, ringscan_shared); this unit only gives the target a source of its own.
#include "ringscan/context.hpp"
