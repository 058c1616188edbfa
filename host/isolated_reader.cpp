// Isolated reading: the HDF5 library parses untrusted files in a forked child, so that its
// crashes, hangs and runaway allocations end that child, not ringscan.
#include "isolated_reader.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <new>
#include <numeric>
#include <optional>
#include <string>
#include <utility>

#include "fresh_memory.hpp"
#include "hdf5_handle.hpp"
#include "hdf5_reader_detail.hpp"
#include "parallel.hpp"
#include "ringscan/error.hpp"
#include "ringscan/pipeline.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define RINGSCAN_ISOLATION_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGSCAN_ISOLATION_ASAN 1
#endif
#endif

namespace ringscan::isolation {
namespace {

struct FrameHeader {
  uint32_t type;
  uint32_t reserved;
  uint64_t size;  ///< payload bytes that follow
};

enum class ErrorKind : uint32_t { Invalid = 0, Budget = 1, Internal = 2, OutOfMemory = 3 };

/// The child closed its end: it exited or died (the parent then reads its status).
struct ChildEnded {};
/// The deadline passed while the parent waited for the child.
struct TimedOut {};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Default wall-time limit: 60 s plus 1 s per 20 MB, slow disks included.
double default_timeout(const std::string& path) {
  struct stat st;
  const double bytes = ::stat(path.c_str(), &st) == 0 ? double(st.st_size) : 0.0;
  return 60.0 + bytes / 20e6;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

/// Caps the child's address space at what it maps now plus the budget and 1 GiB, so that a
/// file making HDF5 allocate without bound fails an allocation instead of exhausting the
/// machine. AddressSanitizer reserves terabytes of shadow memory: no cap there.
void limit_address_space(int64_t budget) {
#ifndef RINGSCAN_ISOLATION_ASAN
  if (budget <= 0) return;
  long pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  if (pages <= 0) return;
  const rlim_t limit = rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) + rlim_t(budget) +
                       (rlim_t(1) << 30);
  const rlimit as{limit, limit};
  setrlimit(RLIMIT_AS, &as);
#else
  (void)budget;
#endif
}

/// The child: runs `body`, sends the result or the error, and leaves with _exit so that
/// nothing of the parent's state (atexit handlers, stdio buffers, leak checks) runs twice.
[[noreturn]] void child_main(int fd, int ack_fd, const std::string& path, const Context& ctx,
                             const std::function<void(const ChildChannel&, const Context&)>& body) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the parent
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);  // a crash must leave no core file behind
  limit_address_space(ctx.memory_budget);
  const ChildChannel channel(fd, ack_fd);
  Context child_ctx;
  // libgomp's pool does not survive fork: one thread, which needs no pool.
  child_ctx.threads = 1;
  child_ctx.memory_budget = ctx.memory_budget;
  child_ctx.progress = [&channel](const std::string& stage, int64_t done, int64_t total) {
    Encoder e;
    e(stage, done, total);
    channel.send(FrameType::Progress, e.bytes());
  };
  ErrorKind kind = ErrorKind::Internal;
  std::string message;
  try {
    body(channel, child_ctx);
    _exit(0);
  } catch (const BudgetExceeded& e) {
    kind = ErrorKind::Budget;
    message = e.what();
  } catch (const InvalidInput& e) {
    kind = ErrorKind::Invalid;
    message = e.what();
  } catch (const OutOfMemory& e) {
    kind = ErrorKind::OutOfMemory;
    message = e.what();
  } catch (const std::bad_alloc&) {
    kind = ErrorKind::OutOfMemory;
    message = path + ": out of memory while reading (the reader may map the memory budget "
                     "plus 1 GiB)";
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = path + ": unknown failure while reading";
  }
  Encoder e;
  e(uint32_t(kind), message);
  channel.send(FrameType::Error, e.bytes());
  _exit(0);
}

[[noreturn]] void rethrow(ErrorKind kind, const std::string& message) {
  if (kind == ErrorKind::Budget) throw BudgetExceeded(message);
  if (kind == ErrorKind::Invalid) throw InvalidInput(message);
  if (kind == ErrorKind::OutOfMemory) throw OutOfMemory(message);
  throw InternalError(message);
}

[[noreturn]] void malformed(const std::string& path) {
  throw InvalidInput(path + ": the reader process sent a malformed reply");
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

/// A forked child, killed and reaped when it goes out of scope unless reaped before.
class ChildProcess {
 public:
  ChildProcess(pid_t pid, int fd, int ack_fd) : pid_(pid), fd_(fd), ack_fd_(ack_fd) {}
  ~ChildProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid_retrying(0);
    }
    close(fd_);
    close(ack_fd_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// Waits for the child to exit until `deadline`; kills it then. Returns its wait status.
  int reap(double deadline) {
    while (true) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (r < 0 && errno != EINTR) {
        pid_ = -1;
        return 0;
      }
      if (now_seconds() > deadline) throw TimedOut{};
      usleep(1000);
    }
  }
  /// Kills the child and reaps it.
  void kill_now() {
    kill(pid_, SIGKILL);
    waitpid_retrying(0);
  }

 private:
  void waitpid_retrying(int flags) {
    int status;
    while (waitpid(pid_, &status, flags) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  pid_t pid_;
  int fd_, ack_fd_;
};

}  // namespace

const char* Decoder::take(uint64_t n) {
  if (n > bytes_.size() - at_) malformed(path_);
  const char* p = bytes_.data() + at_;
  at_ += n;
  return p;
}

uint64_t Decoder::count(uint64_t element_size) {
  uint64_t n;
  get(n);
  if (n > (bytes_.size() - at_) / element_size) malformed(path_);
  return n;
}

void Decoder::finish() const {
  if (at_ != bytes_.size()) malformed(path_);
}

void ChildChannel::send(FrameType type, const std::string& head, const void* data,
                        uint64_t size) const {
  const FrameHeader h{uint32_t(type), 0, head.size() + size};
  const std::pair<const void*, uint64_t> parts[] = {
      {&h, sizeof h}, {head.data(), head.size()}, {data, size}};
  for (const auto& [bytes, length] : parts) {
    const char* p = static_cast<const char*>(bytes);
    uint64_t left = length;
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, std::min<uint64_t>(left, uint64_t(1) << 30));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) _exit(3);  // the parent is gone
      p += n;
      left -= uint64_t(n);
    }
  }
}

void ChildChannel::wait_ack() const {
  char byte;
  ssize_t n;
  while ((n = ::read(ack_fd_, &byte, 1)) < 0 && errno == EINTR) {
  }
  if (n != 1) _exit(3);  // the parent is gone
}

void ParentChannel::ack() const {
  const char byte = 1;
  // The child may have exited already (after its last block): MSG_NOSIGNAL, so that this
  // fails instead of raising SIGPIPE; its status then says how it ended.
  while (::send(ack_fd_, &byte, 1, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

void ParentChannel::read(void* out, uint64_t size) {
  char* p = static_cast<char*>(out);
  while (size > 0) {
    const double left = deadline_ - now_seconds();
    if (left <= 0) throw TimedOut{};
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = poll(&pfd, 1, int(std::min(left * 1000.0 + 1.0, 1e9)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw InternalError(path_ + ": waiting for the reader process: " + std::strerror(errno));
    if (ready == 0) continue;  // the deadline check above decides
    const ssize_t n = ::read(fd_, p, std::min<uint64_t>(size, uint64_t(1) << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw ChildEnded{};
    p += n;
    size -= uint64_t(n);
  }
}

std::string ParentChannel::read_payload(uint64_t size) {
  std::string bytes;
  try {
    bytes.resize(size);
  } catch (const std::exception&) {
    malformed(path_);
  }
  read(bytes.data(), size);
  return bytes;
}

void run_isolated(const std::string& path, const Context& ctx, const IsolationLimits& limits,
                  const std::function<void(const ChildChannel&, const Context&)>& child,
                  const FrameHandler& handler) {
  const double timeout = limits.timeout_seconds > 0 ? limits.timeout_seconds : default_timeout(path);
  const double deadline = now_seconds() + timeout;
  // Frames child -> parent on a pipe; acknowledgements parent -> child on a socket (see ack()).
  int fds[2], acks[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    throw InternalError(path + ": cannot create a pipe for the reader process: " +
                        std::strerror(errno));
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, acks) != 0) {
    const int err = errno;
    close(fds[0]);
    close(fds[1]);
    throw InternalError(path + ": cannot create a pipe for the reader process: " +
                        std::strerror(err));
  }
  fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);  // fewer wake-ups for bulk data; best effort
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    for (const int fd : {fds[0], fds[1], acks[0], acks[1]}) close(fd);
    throw InternalError(path + ": cannot start the reader process: " + std::strerror(err));
  }
  if (pid == 0) {
    close(fds[0]);
    close(acks[1]);
    child_main(fds[1], acks[0], path, ctx, child);
  }
  close(fds[1]);
  close(acks[0]);
  ChildProcess process(pid, fds[0], acks[1]);
  ParentChannel channel(fds[0], acks[1], deadline, path);
  const std::string timed_out = path + ": reading timed out after " + seconds_text(timeout) +
                                " s (the reader process was killed: the HDF5 library may loop "
                                "on this file)";
  try {
    while (true) {
      FrameHeader h;
      channel.read(&h, sizeof h);
      const auto type = FrameType(h.type);
      if (type == FrameType::Progress) {
        if (h.size > (1 << 16)) malformed(path);
        const std::string payload = channel.read_payload(h.size);
        Decoder d(payload, path);
        std::string stage;
        int64_t done = 0, total = 0;
        d(stage, done, total);
        d.finish();
        ctx.report(stage, done, total);
      } else if (type == FrameType::Error) {
        if (h.size > (1 << 20)) malformed(path);
        const std::string payload = channel.read_payload(h.size);
        Decoder d(payload, path);
        uint32_t kind = 0;
        std::string message;
        d(kind, message);
        d.finish();
        process.reap(deadline);
        rethrow(ErrorKind(kind), message);
      } else if (type == FrameType::Result || type == FrameType::Raw) {
        if (handler(type, h.size, channel)) {
          process.kill_now();  // everything needed has arrived
          return;
        }
      } else {
        malformed(path);
      }
    }
  } catch (const ChildEnded&) {
    int status = 0;
    try {
      status = process.reap(deadline);
    } catch (const TimedOut&) {
      throw InvalidInput(timed_out);
    }
    if (WIFSIGNALED(status))
      throw InvalidInput(path + ": the HDF5 library crashed while reading this file (" +
                         signal_name(WTERMSIG(status)) +
                         " in the reader process): the file is malformed");
    throw InvalidInput(path + ": the reader process ended with exit status " +
                       std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                       " before sending a result: the HDF5 library failed on this file");
  } catch (const TimedOut&) {
    throw InvalidInput(timed_out);
  }
}

}  // namespace ringscan::isolation

namespace ringscan {
namespace {

using isolation::ChildChannel;
using isolation::Decoder;
using isolation::Encoder;
using isolation::FrameType;
using isolation::ParentChannel;
using isolation::malformed;

/// The fields of a Dataset the child sends after the embeddings, in one order for both ends.
template <class Archive, class D>
void dataset_fields(Archive& a, D& d) {
  a(d.account_ids, d.accounts_derived, d.request_account, d.dim, d.embedding_first, d.request_time, d.feature_dim,
    d.features, d.feature_names, d.feature_categorical, d.labels, d.infra_dim, d.request_infra, d.infra_names,
    d.account_payment, d.account_created, d.request_ids);
}

template <class Archive, class S>
void summary_fields(Archive& a, S& s) {
  a(s.path, s.version, s.num_requests, s.num_accounts, s.dim, s.feature_dim, s.feature_names,
    s.has_time, s.has_features, s.has_labels, s.has_infra, s.has_payment, s.has_created, s.infra_names,
    s.accounts_derived,
    s.time_min, s.time_max, s.labelled_rings, s.labelled_accounts, s.accounts_without_requests,
    s.zero_norm_embeddings, s.memory_bytes, s.datasets);
}

/// Floats of the embeddings whose pages the parent maps at a time (256 MiB).
constexpr size_t kMappedAhead = size_t(64) << 20;
/// float16 values a parent thread converts at a time (a block of 16 MiB holds 32 of them).
constexpr int64_t kConvertBlock = int64_t(1) << 18;

/// The slot field of a Raw frame that gives rows' place in the file, [first, count, this,
/// byte offset], instead of rows in a shared slot.
constexpr int64_t kExtentFrame = -2;

/// Stored bytes of the embeddings one parent thread reads and converts at a time (float16
/// rows pass through a buffer of that size each thread keeps).
constexpr int64_t kExtentPieceBytes = int64_t(4) << 20;

std::atomic<int64_t> rows_read_by_parent{0};

}  // namespace

namespace detail {

int64_t embedding_rows_read_by_parent() { return rows_read_by_parent.load(); }

void read_embedding_extents(const std::string& path, const std::vector<RowExtent>& extents,
                            int64_t first_row, int64_t dim, int64_t value_bytes, float* out) {
  const std::string dataset = path + ": /requests/embedding: ";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InvalidInput(dataset + "cannot open the file to read the rows: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw InvalidInput(dataset + "cannot stat the file: " + std::strerror(errno));
  // Pieces of at most kExtentPieceBytes, each within the file as it is now: the file may
  // have changed since the child read its layout.
  const int64_t row_bytes = dim * value_bytes;
  const int64_t piece_rows = std::max<int64_t>(1, kExtentPieceBytes / row_bytes);
  std::vector<RowExtent> pieces;
  for (const auto& [first, count, offset] : extents) {
    int64_t end;
    if (__builtin_mul_overflow(count, row_bytes, &end) || __builtin_add_overflow(end, offset, &end) ||
        end > int64_t(st.st_size))
      throw InvalidInput(dataset + "rows " + std::to_string(first_row + first) + "-" +
                         std::to_string(first_row + first + count - 1) +
                         " lie beyond the end of the file (was it changed while it was read?)");
    for (int64_t b = 0; b < count; b += piece_rows)
      pieces.push_back({first + b, std::min(piece_rows, count - b), offset + b * row_bytes});
  }
  std::atomic<int64_t> first_bad{INT64_MAX};
  detail::parallel_for(int64_t(pieces.size()), 1, [&](int64_t i) {
    const auto [first, count, offset] = pieces[i];
    thread_local std::vector<uint16_t> staging;
    char* into = reinterpret_cast<char*>(out + first * dim);
    if (value_bytes == 2) {
      staging.resize(size_t(count * dim));
      into = reinterpret_cast<char*>(staging.data());
    }
    for (int64_t done = 0, want = count * row_bytes; done < want;) {
      const ssize_t got = ::pread(fd, into + done, size_t(want - done), off_t(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0)
        throw InvalidInput(dataset + (got < 0 ? std::string("cannot read rows: ") + std::strerror(errno)
                                              : std::string("the file ended before its rows (was it changed while "
                                                            "it was read?)")));
      done += got;
    }
    int64_t bad;
    if (value_bytes == 2) {
      bad = first_non_finite_in_block(staging.data(), count * dim);
      h5::half_to_float_n(staging.data(), out + first * dim, count * dim);
    } else {
      bad = first_non_finite_in_block(out + first * dim, count * dim);
    }
    if (bad < count * dim) detail::atomic_min(first_bad, first * dim + bad);
  });
  const int64_t bad = first_bad.load();
  if (bad != INT64_MAX) {
    throw InvalidInput(dataset + non_finite_problem(out[bad], first_row + bad / dim, bad % dim));
  }
  rows_read_by_parent += std::accumulate(extents.begin(), extents.end(), int64_t(0),
                                         [](int64_t n, const RowExtent& x) { return n + x.count; });
}

}  // namespace detail

namespace {

/// Two blocks of memory shared by parent and child (mapped before the fork): the child
/// reads embedding rows into one while the parent copies the other into its array, so the
/// rows are copied once on their way and never pass through a pipe. float16 rows come as
/// stored and the parent converts them on its threads: the child has one thread. Rows the
/// file stores as they are used (no filter, whole rows a chunk) do not come this way: the
/// child says where they lie and the parent reads them on its threads
/// (read_embedding_extents).
class SharedSlots {
 public:
  static constexpr int64_t kSlots = 2;
  static constexpr int64_t kSlotBytes = int64_t{16} << 20;

  SharedSlots() {
    void* p = mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      throw InternalError(std::string("cannot map memory for the reader process: ") +
                          std::strerror(errno));
    slots_ = static_cast<char*>(p);
  }
  ~SharedSlots() { munmap(slots_, bytes()); }
  SharedSlots(const SharedSlots&) = delete;
  SharedSlots& operator=(const SharedSlots&) = delete;

  void* slot(int64_t i) const { return slots_ + i * kSlotBytes; }

 private:
  static size_t bytes() { return size_t(kSlots * kSlotBytes); }
  char* slots_ = nullptr;
};

/// The child's side: embedding rows go into the shared slots in turn; Raw frames say
/// [rows, dim, -1, value bytes] once, then [first, count, slot, 0] for each block.
class SlotSink final : public detail::EmbeddingSink {
 public:
  SlotSink(const ChildChannel& channel, const SharedSlots& slots, const std::string& path)
      : channel_(channel), slots_(slots), path_(path) {}
  bool takes_float16() const override { return true; }
  int64_t rows_per_block(int64_t dim, int64_t value_bytes) override {
    if (dim > SharedSlots::kSlotBytes / value_bytes)
      throw InvalidInput(path_ + ": /requests/embedding: width " + std::to_string(dim) +
                         " is too wide for the isolated reader (at most " +
                         std::to_string(SharedSlots::kSlotBytes / value_bytes) + "; see --no-isolation)");
    return SharedSlots::kSlotBytes / (dim * value_bytes);
  }
  void begin(int64_t rows, int64_t dim, int64_t value_bytes) override { send(rows, dim, -1, value_bytes); }
  void* block(int64_t, int64_t) override {
    // The slot is free once the parent acknowledged the block sent from it two blocks ago.
    while (sent_ - acknowledged_ >= SharedSlots::kSlots) {
      channel_.wait_ack();
      ++acknowledged_;
    }
    return slots_.slot(sent_ % SharedSlots::kSlots);
  }
  void rows(int64_t first, int64_t count) override {
    send(first, count, sent_ % SharedSlots::kSlots, 0);
    ++sent_;
  }
  bool takes_extents() const override { return true; }
  void extent(const detail::RowExtent& x) override { send(x.first, x.count, kExtentFrame, x.offset); }

 private:
  void send(int64_t a, int64_t b, int64_t slot, int64_t bytes) {
    Encoder e;
    e(a, b, slot, bytes);
    channel_.send(FrameType::Raw, e.bytes());
  }
  const ChildChannel& channel_;
  const SharedSlots& slots_;
  const std::string& path_;
  int64_t sent_ = 0, acknowledged_ = 0;
};

/// Checks what the parent got against itself: a child whose memory the HDF5 library
/// corrupted must not hand over arrays that index out of bounds.
void check_consistent(const Dataset& d, int64_t rows_received, bool embeddings_only, const std::string& path) {
  const auto r = uint64_t(d.num_requests());
  const auto a = uint64_t(d.num_accounts());
  const auto optional = [](size_t size, uint64_t n) { return size == 0 || size == n; };
  const bool ok =
      d.dim >= 1 && d.feature_dim >= 0 && d.embedding_first >= 0 &&
      (embeddings_only ? d.request_account.empty() : rows_received <= d.num_requests() - d.embedding_first) &&
      d.embeddings.size() == uint64_t(rows_received) * uint64_t(d.dim) && optional(d.request_time.size(), r) &&
      d.infra_dim >= 0 && optional(d.request_infra.size(), r * uint64_t(d.infra_dim)) &&
      optional(d.infra_names.size(), uint64_t(d.infra_dim)) && d.features.size() == a * uint64_t(d.feature_dim) &&
      optional(d.feature_names.size(), uint64_t(d.feature_dim)) &&
      optional(d.feature_categorical.size(), uint64_t(d.feature_dim)) && optional(d.labels.size(), a) &&
      optional(d.account_payment.size(), a) && optional(d.account_created.size(), a) &&
      optional(d.request_ids.size(), r) &&
      std::all_of(d.request_account.begin(), d.request_account.end(),
                  [a](int64_t row) { return row >= 0 && uint64_t(row) < a; });
  if (!ok) malformed(path);
}

/// Receives the result of the child into `out` (one Result frame) and checks it is complete.
template <class T, class Fields>
isolation::FrameHandler result_into(T& out, const std::string& path, Fields fields) {
  return [&out, &path, fields](FrameType type, uint64_t size, ParentChannel& channel) {
    if (type != FrameType::Result) malformed(path);
    const std::string payload = channel.read_payload(size);
    Decoder d(payload, path);
    fields(d, out);
    d.finish();
    return true;
  };
}

/// Runs `read` in the child and sends what it returns through `fields`.
template <class T, class Read, class Fields>
T run_reader(const std::string& path, const Context& ctx, const IsolationLimits& limits,
             Read read, Fields fields) {
  T out;
  isolation::run_isolated(
      path, ctx, limits,
      [&](const ChildChannel& channel, const Context& child_ctx) {
        const T result = read(child_ctx);
        Encoder e;
        fields(e, result);
        channel.send(FrameType::Result, e.bytes());
      },
      result_into(out, path, fields));
  return out;
}

}  // namespace

Dataset load_dataset_isolated(const std::string& path, const Context& ctx,
                              const LoadOptions& options, const IsolationLimits& limits) {
  const ThreadScope threads(ctx.threads);  // the parent's threads map the embeddings' pages
  Dataset out;
  int64_t rows = -1, received = 0, embedding_dim = 0, value_bytes = 4;
  std::optional<detail::PopulatedGrowth<float>> growth;  // of out.embeddings, once reserved
  std::vector<detail::RowExtent> extents;  // rows the parent reads from the file itself
  const auto fields = [](auto& a, auto& d) { dataset_fields(a, d); };
  const isolation::FrameHandler receive_result = result_into(out, path, fields);
  const SharedSlots slots;  // mapped before the fork: shared with the child
  isolation::run_isolated(
      path, ctx, limits,
      [&](const ChildChannel& channel, const Context& child_ctx) {
        SlotSink sink(channel, slots, path);
        const Dataset d = detail::load_streaming(path, child_ctx, options, sink);
        Encoder e;
        fields(e, d);
        channel.send(FrameType::Result, e.bytes());
      },
      [&](FrameType type, uint64_t size, ParentChannel& channel) {
        if (type == FrameType::Result) return receive_result(type, size, channel);
        int64_t head[4];
        if (size != sizeof head) malformed(path);
        channel.read(head, sizeof head);
        if (rows < 0) {  // the shape, [rows x dim], and the bytes of a value, before any rows
          rows = head[0];
          const int64_t dim = head[1];
          value_bytes = head[3];
          int64_t values;
          if (head[2] != -1 || (value_bytes != 2 && value_bytes != 4) || rows < 0 || dim < 1 ||
              dim > SharedSlots::kSlotBytes / value_bytes || __builtin_mul_overflow(rows, dim, &values))
            malformed(path);
          ctx.require_memory(values * int64_t(sizeof(float)), path + ": loading the embeddings");
          // Reserved, not filled: the pages are mapped 256 MiB at a time as the blocks reach
          // them, while the child reads the next ones, instead of all before any block
          // (10 GB for 10M requests of 256 dimensions: seconds).
          try {
            out.embeddings.reserve(size_t(values));
          } catch (const std::bad_alloc&) {
            throw OutOfMemory(path + ": out of memory allocating the embeddings");
          }
          growth.emplace(out.embeddings, kMappedAhead);
          embedding_dim = out.dim = dim;
          return false;
        }
        const int64_t first = head[0], count = head[1], slot = head[2];
        if (slot == kExtentFrame) {  // where rows lie in the file: the parent reads them itself
          if (first != received || count < 1 || count > rows - first || head[3] < 0 ||
              (received > 0 && extents.empty()))
            malformed(path);
          extents.push_back({first, count, head[3]});
          received += count;
          if (received == rows) {  // every row placed: read them while the child reads the rest
            detail::resize_populated(out.embeddings, size_t(rows * out.dim));
            detail::read_embedding_extents(path, extents, options.embedding_first, out.dim, value_bytes,
                                           out.embeddings.data());
          }
          return false;
        }
        if (!extents.empty() || first != received || count < 0 || count > rows - first || slot < 0 ||
            slot >= SharedSlots::kSlots || head[3] != 0 || count * out.dim > SharedSlots::kSlotBytes / value_bytes)
          malformed(path);
        growth->resize(size_t((first + count) * out.dim));  // within the reservation
        float* to = out.embeddings.data() + first * out.dim;
        const int64_t n = count * out.dim;
        if (value_bytes == 4) {
          std::memcpy(to, slots.slot(slot), size_t(n) * sizeof(float));
        } else {
          const auto* from = static_cast<const uint16_t*>(slots.slot(slot));
          detail::parallel_for_blocks(n, kConvertBlock, [&](int64_t b, int64_t e) {
            h5::half_to_float_n(from + b, to + b, e - b);
          });
        }
        channel.ack();
        received += count;
        return false;
      });
  if (rows < 0 || out.dim != embedding_dim || received != rows ||
      (options.embedding_rows >= 0 && rows != options.embedding_rows))
    malformed(path);
  check_consistent(out, received, options.embeddings_only, path);
  out.source = path;
  return out;
}

InputSummary describe_input_isolated(const std::string& path, const Context& ctx,
                                     const IsolationLimits& limits) {
  return run_reader<InputSummary>(
      path, ctx, limits, [&](const Context& c) { return describe_input(path, c); },
      [](auto& a, auto& s) { summary_fields(a, s); });
}

InputShape read_input_shape_isolated(const std::string& path, const Context& ctx,
                                     const IsolationLimits& limits) {
  return run_reader<InputShape>(
      path, ctx, limits, [&](const Context&) { return read_input_shape(path); },
      [](auto& a, auto& s) {
        a(s.path, s.num_requests, s.num_accounts, s.dim, s.feature_dim, s.embedding_bytes,
          s.has_time, s.accounts_derived);
      });
}

TruthLabels read_truth_labels_isolated(const std::string& path, const Context& ctx,
                                       const IsolationLimits& limits) {
  return run_reader<TruthLabels>(
      path, ctx, limits, [&](const Context& c) { return read_truth_labels(path, c); },
      [](auto& a, auto& t) { a(t.account_ids, t.label, t.role, t.ring_style); });
}

DetectionLabels read_detection_labels_isolated(const std::string& path, const Context& ctx,
                                               const IsolationLimits& limits) {
  return run_reader<DetectionLabels>(
      path, ctx, limits, [&](const Context&) { return read_detection_labels(path); },
      [](auto& a, auto& l) { a(l.account_ids, l.cluster, l.ring); });
}

std::vector<Ring> read_rings_isolated(const std::string& path, const Context& ctx, const IsolationLimits& limits) {
  std::vector<Ring> rings = run_reader<std::vector<Ring>>(
      path, ctx, limits, [&](const Context&) { return read_rings(path); }, [](auto& a, auto& r) { a(r); });
  for (std::size_t r = 0; r < rings.size(); ++r)
    if (rings[r].id != int64_t(r) || int64_t(rings[r].members.size()) != rings[r].size) malformed(path);
  return rings;
}

std::vector<std::string> read_request_texts_isolated(const std::string& path, const std::vector<int64_t>& rows,
                                                     const Context& ctx, const IsolationLimits& limits) {
  std::vector<std::string> texts = run_reader<std::vector<std::string>>(
      path, ctx, limits, [&](const Context&) { return read_request_texts(path, rows); },
      [](auto& a, auto& t) { a(t); });
  if (!texts.empty() && texts.size() != rows.size()) malformed(path);
  return texts;
}

RingGraph read_ring_graph_isolated(const std::string& path, const Context& ctx, const IsolationLimits& limits) {
  RingGraph g = run_reader<RingGraph>(
      path, ctx, limits, [&](const Context&) { return read_ring_graph(path); },
      [](auto& a, auto& r) { a(r.account_ids, r.ring, r.ring_score, r.edges); });
  // A child the HDF5 library corrupted must not hand over edges that index out of bounds.
  const int64_t A = int64_t(g.account_ids.size());
  bool ok = int64_t(g.ring.size()) == A && int64_t(g.ring_score.size()) == A;
  for (const RingEdge& e : g.edges) ok = ok && e.first >= 0 && e.first < A && e.second >= 0 && e.second < A;
  if (!ok) malformed(path);
  return g;
}

OutputSummary describe_detection_output_isolated(const std::string& path, const Context& ctx,
                                                 const IsolationLimits& limits) {
  return run_reader<OutputSummary>(
      path, ctx, limits, [&](const Context&) { return describe_detection_output(path); },
      [](auto& a, auto& s) {
        a(s.path, s.tool_version, s.backend, s.input, s.accounts, s.accounts_in_rings, s.parameter_names,
          s.parameter_values, s.timing_names, s.timing_seconds, s.statistic_names, s.statistic_values, s.notes,
          s.ring_id, s.ring_size, s.ring_score, s.ring_shared);
      });
}

std::string read_file_format_isolated(const std::string& path, const Context& ctx, const IsolationLimits& limits) {
  return run_reader<std::string>(
      path, ctx, limits, [&](const Context&) { return read_file_format(path); }, [](auto& a, auto& s) { a(s); });
}

std::vector<int64_t> read_seed_accounts_isolated(const std::string& path, const Context& ctx,
                                                 const IsolationLimits& limits) {
  return run_reader<std::vector<int64_t>>(
      path, ctx, limits, [&](const Context& child) { return read_seed_accounts(path, child.memory_budget); },
      [](auto& a, auto& seeds) { a(seeds); });
}

Allowlist read_allowlist_isolated(const std::string& path, const Context& ctx, const IsolationLimits& limits) {
  // The tokens travel as two columns.
  struct Columns {
    std::vector<int64_t> accounts, values;
    std::vector<std::string> kinds;
  };
  const Columns c = run_reader<Columns>(
      path, ctx, limits,
      [&](const Context& child) {
        const Allowlist allow = read_allowlist(path, child.memory_budget);
        Columns out{allow.accounts, {}, {}};
        for (const auto& [kind, value] : allow.tokens) {
          out.kinds.push_back(kind);
          out.values.push_back(value);
        }
        return out;
      },
      [](auto& a, auto& columns) { a(columns.accounts, columns.kinds, columns.values); });
  if (c.kinds.size() != c.values.size()) throw InvalidInput(path + ": malformed allowlist from the reader process");
  Allowlist allow;
  allow.source = path;
  allow.accounts = c.accounts;
  for (std::size_t i = 0; i < c.kinds.size(); ++i) allow.tokens.emplace_back(c.kinds[i], c.values[i]);
  return allow;
}

}  // namespace ringscan
