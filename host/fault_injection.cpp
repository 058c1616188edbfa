#include "ringscan/fault_injection.hpp"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "ringscan/error.hpp"

namespace ringscan {
namespace {

constexpr int kKinds = 5;

// Process-wide on purpose: a test hook that reaches allocation and write sites deep inside
// the library without threading a parameter through every stage. Disarmed in production.
struct Armed {
  std::atomic<int64_t> nth{0};
  std::atomic<int64_t> count{0};
};
Armed g_faults[kKinds];
std::atomic<bool> g_any_armed{false};

Armed& slot(testing::FaultKind kind) { return g_faults[static_cast<int>(kind)]; }

void update_any_armed() {
  bool any = false;
  for (const Armed& a : g_faults) any = any || a.nth.load() > 0;
  g_any_armed.store(any);
}

}  // namespace

namespace testing {

void set_fault_injection(FaultKind kind, int64_t nth) {
  slot(kind).count.store(0);
  slot(kind).nth.store(nth > 0 ? nth : 0);
  update_any_armed();
}

void clear_fault_injection() {
  for (int k = 0; k < kKinds; ++k) set_fault_injection(static_cast<FaultKind>(k), 0);
}

void set_fault_injection(const std::string& spec) {
  clear_fault_injection();
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    const std::string item = spec.substr(start, end - start);
    start = end + 1;
    const size_t colon = item.find(':');
    const std::string name = item.substr(0, colon);
    int64_t nth = 0;
    try {
      size_t used = 0;
      nth = colon == std::string::npos ? -1 : std::stoll(item.substr(colon + 1), &used);
      if (colon != std::string::npos && used != item.size() - colon - 1) nth = -1;
    } catch (const std::exception&) {
      nth = -1;
    }
    FaultKind kind;
    if (name == "alloc") kind = FaultKind::Allocation;
    else if (name == "write") kind = FaultKind::Write;
    else if (name == "parallel") kind = FaultKind::ParallelRegion;
    else if (name == "kill-write") kind = FaultKind::KillAtWrite;
    else if (name == "kill-alloc") kind = FaultKind::KillAtAllocation;
    else nth = -1;
    if (nth < 1)
      throw InvalidInput("invalid fault injection '" + item +
                         "' (expected alloc:N, write:N, parallel:N, kill-write:N or kill-alloc:N, N >= 1)");
    set_fault_injection(kind, nth);
  }
}

int64_t fault_events(FaultKind kind) { return slot(kind).count.load(); }

}  // namespace testing

namespace detail {

bool fault_due(testing::FaultKind kind) {
  if (!g_any_armed.load(std::memory_order_relaxed)) return false;
  Armed& a = slot(kind);
  const int64_t nth = a.nth.load();
  if (nth == 0) return false;
  if (a.count.fetch_add(1) + 1 != nth) return false;
  if (kind == testing::FaultKind::KillAtWrite || kind == testing::FaultKind::KillAtAllocation) ::raise(SIGKILL);
  return true;
}

void write_checkpoint(const std::string& path, const std::string& what) {
  fault_due(testing::FaultKind::KillAtWrite);
  if (fault_due(testing::FaultKind::Write))
    throw InternalError(path + ": " + what + ": " + std::strerror(ENOSPC) +
                        " (injected fault)");
}

}  // namespace detail
}  // namespace ringscan
