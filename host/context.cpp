#include "ringscan/context.hpp"

#include <cstdlib>
#include <fstream>
#include <omp.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <new>

#include "ringscan/error.hpp"
#include "ringscan/fault_injection.hpp"

namespace ringscan {

Device parse_device(const std::string& text) {
  if (text == "auto") return Device::Auto;
  if (text == "cpu") return Device::Cpu;
  if (text == "cuda") return Device::Cuda;
  throw InvalidInput("unknown device '" + text + "' (expected auto, cpu or cuda)");
}

const char* device_name(Device device) {
  switch (device) {
    case Device::Auto: return "auto";
    case Device::Cpu: return "cpu";
    case Device::Cuda: return "cuda";
  }
  return "?";
}

int64_t parse_size(const std::string& text) {
  std::size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw InvalidInput("invalid size '" + text + "' (expected e.g. 512M, 8G, 1.5GiB)");
  }
  std::string unit = text.substr(pos);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
  if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();
  double scale = 1;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "K") scale = 1024.0;
  else if (unit == "M") scale = 1024.0 * 1024;
  else if (unit == "G") scale = 1024.0 * 1024 * 1024;
  else if (unit == "T") scale = 1024.0 * 1024 * 1024 * 1024;
  else throw InvalidInput("invalid size unit in '" + text + "' (use K, M, G or T)");
  const double bytes = value * scale;
  if (!(bytes > 0) || !std::isfinite(bytes) || bytes > 9.0e18)
    throw InvalidInput("invalid size '" + text + "': must be positive");
  return static_cast<int64_t>(bytes);
}

std::string format_size(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

int64_t Context::default_memory_budget() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return int64_t{8} << 30;
  return static_cast<int64_t>(static_cast<double>(pages) * page * 0.8);
}

void Context::require_memory(int64_t bytes, const std::string& what) const {
  // Every budgeted allocation passes here first: the test hook makes the Nth one fail.
  detail::fault_due(testing::FaultKind::KillAtAllocation);
  if (detail::fault_due(testing::FaultKind::Allocation)) throw std::bad_alloc();
  if (memory_budget > 0 && bytes > memory_budget)
    throw BudgetExceeded(what + " needs about " + format_size(bytes) +
                         ", more than the memory budget of " + format_size(memory_budget) +
                         " (raise --memory-budget or split the input)");
}

ThreadScope::ThreadScope(int threads) : previous_(omp_get_max_threads()) {
  if (threads > 0) omp_set_num_threads(threads);
}
ThreadScope::~ThreadScope() { omp_set_num_threads(previous_); }

int64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;  // "VmHWM: N kB"
  return 0;
}

}  // namespace ringscan
