// Running a reader of an untrusted file in a forked child process: the framed protocol
// between child and parent (frames on a pipe, acknowledgements back on a socket), and the
// fork, limits and reaping around it.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "ringscan/context.hpp"
#include "hdf5_reader_detail.hpp"
#include "ringscan/io.hpp"

namespace ringscan::isolation {

/// What a frame from the child carries.
enum class FrameType : uint32_t {
  Progress = 1,  ///< Encoded stage, done, total: forwarded to the parent's Context
  Error = 2,     ///< Encoded error kind and message: rethrown in the parent
  Result = 3,    ///< Encoded result, as the caller defines it: the last frame
  Raw = 4,       ///< Data the caller's handler interprets, reading any payload itself
};

/// Appends values to a byte buffer: trivially copyable values as their bytes, strings and
/// vectors as a 64-bit count then their elements.
class Encoder {
 public:
  template <class... T>
  void operator()(const T&... values) {
    (put(values), ...);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>, "no encoding for this type");
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put(const std::string& s) {
    put(uint64_t(s.size()));
    bytes_.append(s);
  }
  void put(const DatasetSummary& s) { (*this)(s.name, s.type, s.shape); }
  void put(const SharedPromptExample& e) { (*this)(e.accounts_in_ring, e.accounts_overall, e.idf, e.request_rows); }
  void put(const SharedTokenExample& t) { (*this)(t.kind, t.token, t.accounts_in_ring, t.accounts_overall); }
  void put(const Ring& r) {
    (*this)(r.id, r.cluster, r.size, r.score, r.shared_prompt_strength, r.synchrony, r.behaviour_tightness,
            r.prompt_diversity, r.volume, r.internal_edge_weight, r.members, r.shared_groups, r.examples,
            r.shared_tokens, r.sign_up_first, r.sign_up_last, r.seeds);
  }
  template <class T>
  void put(const std::vector<T>& v) {
    put(uint64_t(v.size()));
    if constexpr (std::is_trivially_copyable_v<T>) {
      bytes_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    } else {
      for (const T& e : v) put(e);
    }
  }

  std::string bytes_;
};

/// Reads back what Encoder wrote, checking every count against the bytes left; throws
/// InvalidInput naming `path` on a malformed buffer.
class Decoder {
 public:
  Decoder(const std::string& bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  template <class... T>
  void operator()(T&... values) {
    (get(values), ...);
  }
  /// Throws unless every byte was consumed.
  void finish() const;

 private:
  const char* take(uint64_t n);
  uint64_t count(uint64_t element_size);
  template <class T>
  void get(T& v) {
    static_assert(std::is_trivially_copyable_v<T>, "no decoding for this type");
    std::memcpy(&v, take(sizeof v), sizeof v);
  }
  void get(std::string& s) {
    const uint64_t n = count(1);
    s.assign(take(n), n);
  }
  void get(DatasetSummary& s) { (*this)(s.name, s.type, s.shape); }
  void get(SharedPromptExample& e) { (*this)(e.accounts_in_ring, e.accounts_overall, e.idf, e.request_rows); }
  void get(SharedTokenExample& t) { (*this)(t.kind, t.token, t.accounts_in_ring, t.accounts_overall); }
  void get(Ring& r) {
    (*this)(r.id, r.cluster, r.size, r.score, r.shared_prompt_strength, r.synchrony, r.behaviour_tightness,
            r.prompt_diversity, r.volume, r.internal_edge_weight, r.members, r.shared_groups, r.examples,
            r.shared_tokens, r.sign_up_first, r.sign_up_last, r.seeds);
  }
  template <class T>
  void get(std::vector<T>& v) {
    if constexpr (std::is_trivially_copyable_v<T>) {
      v.resize(count(sizeof(T)));
      if (!v.empty()) std::memcpy(v.data(), take(v.size() * sizeof(T)), v.size() * sizeof(T));
    } else {
      v.resize(count(sizeof(uint64_t)));  // every element is at least a count
      for (T& e : v) get(e);
    }
  }

  const std::string& bytes_;
  const std::string& path_;
  uint64_t at_ = 0;
};

/// The child's ends of the pipes: frames out, acknowledgements in.
class ChildChannel {
 public:
  ChildChannel(int fd, int ack_fd) : fd_(fd), ack_fd_(ack_fd) {}
  /// Sends a frame whose payload is `head` followed by `size` bytes at `data`.
  void send(FrameType type, const std::string& head, const void* data = nullptr,
            uint64_t size = 0) const;
  /// Waits for the parent's next acknowledgement (of data it took from shared memory).
  void wait_ack() const;

 private:
  int fd_, ack_fd_;
};

/// The parent's ends of the pipes, with the deadline every read observes.
class ParentChannel {
 public:
  ParentChannel(int fd, int ack_fd, double deadline, const std::string& path)
      : fd_(fd), ack_fd_(ack_fd), deadline_(deadline), path_(path) {}
  /// Reads exactly `size` bytes into `out`, waiting until the deadline at most.
  void read(void* out, uint64_t size);
  /// Reads `size` bytes of payload into a buffer.
  std::string read_payload(uint64_t size);
  /// Tells the child that data it placed in shared memory has been taken.
  void ack() const;

 private:
  int fd_, ack_fd_;
  double deadline_;  ///< seconds on the steady clock
  const std::string& path_;
};

/// Handles one Result or Raw frame of `size` payload bytes, reading the payload from the
/// channel; returns true once the result is complete.
using FrameHandler = std::function<bool(FrameType type, uint64_t size, ParentChannel& channel)>;

/// Forks a child (memory mapped MAP_SHARED before the call is shared with it) that runs `child` (with a Context of one thread whose progress goes to the
/// parent) and sends its frames; the parent dispatches them to `handler` until the result
/// is complete. A child that crashes, hangs past the limit, fails or sends malformed frames
/// becomes an exception naming `path`; the child is always reaped.
void run_isolated(const std::string& path, const Context& ctx, const IsolationLimits& limits,
                  const std::function<void(const ChildChannel&, const Context&)>& child,
                  const FrameHandler& handler);

}  // namespace ringscan::isolation

namespace ringscan::detail {

/// Reads embedding rows that the file stores as they are used (no filter, little-endian
/// float32, or float16 bits at `value_bytes` 2) from where the reader process found them:
/// `extents` of (first, count, byte offset), rows relative to `first_row`, into `out`
/// ([rows x dim] floats, rows in order), on the caller's threads. Only bounded reads of the
/// file: offsets past its end (a file changed since it was parsed), short reads and NaN or
/// infinity (named by row and column as the reader names them) are InvalidInput naming it.
void read_embedding_extents(const std::string& path, const std::vector<RowExtent>& extents,
                            int64_t first_row, int64_t dim, int64_t value_bytes, float* out);

/// Embedding rows read so by this process (for tests: whether a file took that path).
int64_t embedding_rows_read_by_parent();

}  // namespace ringscan::detail
