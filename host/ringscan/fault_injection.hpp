// Test-only fault injection: makes the Nth budgeted allocation, the Nth write of an output
// writer or the Nth parallel region fail, so that tests can check that every failure comes
// out as a clean error with nothing lost. Disarmed unless a test (or the RINGSCAN_TEST_FAULT
// environment variable, read by the CLI) arms it; a disarmed check costs one atomic load.
#pragma once
#include <cstdint>
#include <string>

namespace ringscan::testing {

enum class FaultKind {
  Allocation,      ///< Context::require_memory throws std::bad_alloc (a failed allocation)
  Write,           ///< an output writer's write fails with ENOSPC (a full disk)
  ParallelRegion,  ///< an iteration inside an OpenMP parallel region throws InternalError
  KillAtWrite,     ///< the process raises SIGKILL at an output writer's write (kill tests)
  KillAtAllocation,  ///< the process raises SIGKILL at a budgeted allocation (a rank killed mid-run)
};

/// Arms `kind`: its `nth` (1-based) event from now on fails; 0 disarms it. Resets its count.
void set_fault_injection(FaultKind kind, int64_t nth);
/// Disarms every kind and resets the counts.
void clear_fault_injection();
/// Arms faults from text such as "alloc:3", "write:2,parallel:1", "kill-write:7", "kill-alloc:5" (the
/// RINGSCAN_TEST_FAULT format); empty text disarms; throws InvalidInput on bad text.
void set_fault_injection(const std::string& spec);
/// Events of `kind` counted since it was last armed or cleared (counted only while armed).
int64_t fault_events(FaultKind kind);

}  // namespace ringscan::testing

namespace ringscan::detail {
/// Counts one event of `kind`; true when it is the armed one that must fail (KillAtWrite
/// does not return: it kills the process).
bool fault_due(testing::FaultKind kind);
/// A write checkpoint of an output writer: fails with ENOSPC (InternalError naming `path`
/// and `what`) or kills the process when armed to.
void write_checkpoint(const std::string& path, const std::string& what);
}  // namespace ringscan::detail
