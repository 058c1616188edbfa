#include "ringscan/error.hpp"

#include <string>

namespace ringscan::detail {

void throw_invalid_input(const std::string& message) { throw InvalidInput(message); }

void throw_internal(const char* file, int line, const char* condition,
                    const std::string& message) {
  throw InternalError(std::string("internal error at ") + file + ":" + std::to_string(line) +
                      ": (" + condition + ") " + message);
}

}  // namespace ringscan::detail
