// Wall-clock seconds since a start, for the stage timings.
#pragma once
#include <chrono>

namespace ringscan {

class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count(); }
  void restart() { started_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace ringscan
