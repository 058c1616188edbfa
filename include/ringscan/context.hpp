// The resources handle every stage receives: threads, memory budget, progress reporting.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ringscan {

enum class Device { Auto, Cpu, Cuda };

/// Parses "auto" | "cpu" | "cuda"; throws InvalidInput otherwise.
Device parse_device(const std::string& text);
const char* device_name(Device device);

/// Progress of a stage: `done` of `total` units (total 0: indeterminate).
using ProgressFn = std::function<void(const std::string& stage, int64_t done, int64_t total)>;

/// Parses a size such as "8G", "512M", "1.5GiB", "1000000" (bytes); throws InvalidInput.
int64_t parse_size(const std::string& text);
/// Formats a byte count for people ("1.50 GiB").
std::string format_size(int64_t bytes);

/// Execution resources passed explicitly to every stage (no globals).
struct Context {
  /// OpenMP threads for CPU stages (0: the OpenMP default).
  int threads = 0;
  /// Upper bound on the bytes the job may hold at once; checked before allocating.
  int64_t memory_budget = 0;
  /// Upper bound on the device memory the CUDA stages may hold (0: 90% of what is free).
  int64_t device_memory_budget = 0;
  /// Called at stage boundaries and periodically inside long stages; may be empty.
  ProgressFn progress;

  /// Default budget: 80% of the machine's physical memory.
  static int64_t default_memory_budget();
  void report(const std::string& stage, int64_t done, int64_t total) const {
    if (progress) progress(stage, done, total);
  }
  /// Throws BudgetExceeded naming `what` when `bytes` exceeds the budget.
  void require_memory(int64_t bytes, const std::string& what) const;
};

/// The peak resident memory of this process image (Linux VmHWM, reset by exec: unlike
/// getrusage's ru_maxrss it does not include the parent's memory at fork); 0 if unknown.
int64_t peak_resident_bytes();

/// Sets the OpenMP thread count for the scope of the object and restores it afterwards.
class ThreadScope {
 public:
  explicit ThreadScope(int threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
};

/// Backends compiled into this build and devices found at run time, for `--version`.
struct BuildInfo {
  bool cuda_compiled = false;   ///< the CUDA backend is built in
  bool faiss_gpu = false;       ///< the FAISS found at build time has GPU indices
  int cuda_min_arch = 0;        ///< oldest compute capability the kernels run on (80: sm_80); 0 unknown
  int cuda_devices = 0;
  std::vector<int> cuda_device_arch;  ///< compute capability of each device (90: sm_90)
  std::string cuda_device_names;  // "0: NVIDIA H200 (sm_90, 139 GiB); ..."
  /// Why the CUDA runtime found no device although a driver is installed (a driver older
  /// than the runtime, say); empty when it found them, or on a machine without a driver.
  std::string cuda_error;
};
BuildInfo build_info();

}  // namespace ringscan
