// The processes of a distributed detection (MPI ranks, one per node or GPU) and the
// collectives its stages exchange data with. A build without MPI, or a process started
// alone, has no group: detect then runs in one process as usual.
#pragma once
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace ringscan {

using Bytes = std::vector<char>;

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// parts[i] goes to rank i; returns what each rank sent this one, by rank.
  virtual std::vector<Bytes> all_to_all(std::vector<Bytes> parts) = 0;
  /// Every rank's part, by rank, on every rank.
  virtual std::vector<Bytes> all_gather(const Bytes& part) = 0;
  /// Every rank's part, by rank, at `root` (empty elsewhere).
  virtual std::vector<Bytes> gather(const Bytes& part, int root) = 0;
  /// Root's `part` on every rank.
  virtual Bytes broadcast(const Bytes& part, int root) = 0;
  /// Waits for every rank without spinning: a rank done with its share waits here while
  /// rank 0 runs the account stages, and leaves it the cores.
  virtual void wait_for_all() = 0;
  /// Ends every rank's process now with exit status `code` (an error of this rank alone).
  [[noreturn]] virtual void abort(int code) = 0;
  /// Bytes this process has sent to others so far.
  int64_t bytes_sent() const { return sent_; }
  /// True once agree() has thrown: every rank holds the same error and stops by itself.
  bool stopped_together() const { return stopped_together_; }
  void stop_together() { stopped_together_ = true; }

 protected:
  int64_t sent_ = 0;
  bool stopped_together_ = false;
};

/// The group this process was started in by mpirun or srun (MPI initialised now, finalised
/// when the group is destroyed), or null when it was started alone or built without MPI.
std::unique_ptr<ProcessGroup> launched_process_group(int* argc, char*** argv);
/// True when this build can run distributed (CMake's RINGSCAN_MPI found MPI).
bool built_with_mpi();

/// The bytes of a vector of trivially copyable values, and back.
template <class T>
Bytes pack(const std::vector<T>& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  Bytes b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}
template <class T>
std::vector<T> unpack(const Bytes& b) {
  static_assert(std::is_trivially_copyable_v<T>);
  std::vector<T> v(b.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}
/// The values of every part, in rank order; each part is freed once copied.
template <class T>
std::vector<T> unpack_all(std::vector<Bytes> parts) {
  static_assert(std::is_trivially_copyable_v<T>);
  size_t total = 0;
  for (const Bytes& b : parts) total += b.size() / sizeof(T);
  std::vector<T> v(total);
  size_t at = 0;
  for (Bytes& b : parts) {
    const size_t n = b.size() / sizeof(T);
    if (n > 0) std::memcpy(v.data() + at, b.data(), n * sizeof(T));
    at += n;
    Bytes().swap(b);
  }
  return v;
}

/// A failure as bytes another rank can raise again (its kind and message); empty for none.
Bytes failure_status(const std::exception_ptr& failure);
/// Throws the failure `status` holds (non-empty, from failure_status), of the same kind, its
/// message prefixed with `prefix`.
[[noreturn]] void throw_failure_status(const Bytes& status, const std::string& prefix);

/// Called by every rank after a step: when any rank's step failed (`failure` set), every
/// rank throws the error of the lowest failing rank, its kind kept (InvalidInput stays an
/// input error) and its message prefixed with "rank N: ", so the whole job stops together.
void agree(ProcessGroup& group, std::exception_ptr failure);

/// Runs `step` on this rank, then agree()s: its value, or the first failing rank's error on
/// every rank.
template <class Step>
auto on_every_rank(ProcessGroup& group, Step&& step) {
  std::exception_ptr failure;
  using T = decltype(step());
  if constexpr (std::is_void_v<T>) {
    try {
      step();
    } catch (...) {
      failure = std::current_exception();
    }
    agree(group, failure);
  } else {
    T out{};
    try {
      out = step();
    } catch (...) {
      failure = std::current_exception();
    }
    agree(group, failure);
    return out;
  }
}

}  // namespace ringscan
