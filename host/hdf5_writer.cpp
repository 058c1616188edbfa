// Atomic writing of detection outputs, text reports and input files: everything goes to a
// temporary file beside the target that is renamed into place only once complete.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hdf5_handle.hpp"
#include "input_writer.hpp"
#include "parallel.hpp"
#include "ringscan/error.hpp"
#include "ringscan/fault_injection.hpp"
#include "ringscan/io.hpp"

#ifndef RINGSCAN_VERSION
#error "RINGSCAN_VERSION must be defined by the build"
#endif

namespace ringscan {
namespace {

using h5::Handle;

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

[[noreturn]] void fail_system(const std::string& path, const std::string& what) {
  throw InternalError(path + ": " + what + ": " + std::strerror(errno));
}

/// Closes fd keeping errno (for the error message of the failure being reported).
void close_keeping_errno(int fd) {
  const int saved = errno;
  ::close(fd);
  errno = saved;
}

bool same_inode(int fd, const std::string& name) {
  struct stat held {}, named {};
  return ::fstat(fd, &held) == 0 && ::stat(name.c_str(), &named) == 0 &&
         held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

/// A temporary file beside `path` (PATH.tmp.<pid>.<unique>), created exclusively and held
/// under an exclusive flock() from creation until it is renamed into place or removed. A
/// writer killed half-way leaves the file but not the lock (the kernel drops it with the
/// process), which is how the next run tells a stale temporary from a live run's one.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {
    remove_stale_temporaries(path_);
    static std::atomic<uint64_t> counter{0};
    const uint64_t salt = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    for (int attempt = 0;; ++attempt) {
      char unique[40];
      std::snprintf(unique, sizeof unique, "%d.%llx", int(::getpid()),
                    static_cast<unsigned long long>((salt * 0x9e3779b97f4a7c15ULL) ^ counter++));
      name_ = path_ + ".tmp." + unique;
      fd_ = ::open(name_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && errno == EEXIST && attempt < 16) continue;
      if (fd_ < 0) fail_system(path_, "cannot create temporary file " + name_);
      if (::flock(fd_, LOCK_EX) != 0) {
        close_keeping_errno(fd_);
        ::unlink(name_.c_str());
        fail_system(path_, "cannot lock temporary file " + name_);
      }
      // A concurrent run may have taken the lock first and removed the file as stale.
      if (same_inode(fd_, name_)) break;
      ::close(fd_);
      fd_ = -1;
      if (attempt >= 16) throw InternalError(path_ + ": cannot create a temporary file beside it");
    }
  }
  ~TempFile() {
    if (fd_ < 0) return;
    if (!published_) ::unlink(name_.c_str());
    ::close(fd_);  // releases the lock
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& name() const { return name_; }
  int fd() const { return fd_; }

  /// Makes the complete file durable, renames it to the target and makes the rename
  /// durable; the lock is held until the file has its final name, and released then.
  void publish() {
    detail::write_checkpoint(path_, "cannot sync temporary file " + name_);
    if (::fsync(fd_) != 0) fail_system(path_, "cannot sync temporary file " + name_);
    detail::write_checkpoint(path_, "cannot rename " + name_ + " into place");
    if (::rename(name_.c_str(), path_.c_str()) != 0)
      fail_system(path_, "cannot rename " + name_ + " into place");
    published_ = true;
    // Readers lock the file too (HDF5 takes a shared flock): release it at once.
    ::close(fd_);
    fd_ = -1;
    // The new file is already in place; a directory that cannot be synced (some file
    // systems refuse) only weakens durability after a crash, so this step is best effort.
    const int dir = ::open(directory_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
    detail::fault_due(testing::FaultKind::KillAtWrite);  // kill tests: after the rename
  }

 private:
  std::string path_, name_;
  int fd_ = -1;
  bool published_ = false;
};

/// Runs write(temp) and publishes the result; on any failure removes the temporary file and
/// throws an Error naming `path` (an existing file at `path` is left as it was).
template <class Write>
void replace_atomically(const std::string& path, Write&& write) {
  try {
    TempFile temp(path);
    write(temp);
    temp.publish();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw InternalError(path + ": cannot write: " + e.what());
  }
}

/// File and memory HDF5 types of the element types ringscan stores.
template <class T>
struct Stored;
template <>
struct Stored<int64_t> {
  static hid_t file() { return H5T_STD_I64LE; }
  static hid_t memory() { return H5T_NATIVE_INT64; }
};
template <>
struct Stored<float> {
  static hid_t file() { return H5T_IEEE_F32LE; }
  static hid_t memory() { return H5T_NATIVE_FLOAT; }
};
template <>
struct Stored<double> {
  static hid_t file() { return H5T_IEEE_F64LE; }
  static hid_t memory() { return H5T_NATIVE_DOUBLE; }
};

}  // namespace

void leave_hdf5_shutdown_to_exit() { H5dont_atexit(); }

namespace {

/// An HDF5 file being written at `temp`; every failure throws InternalError naming `path`.
class SinkFile {
 public:
  SinkFile(std::string path, const std::string& temp) : path_(std::move(path)) {
    Handle access(check(H5Pcreate(H5P_FILE_ACCESS), "file access list"), H5Pclose);
    // The temporary file is locked by its TempFile; HDF5's own flock() on a second
    // descriptor would conflict with that lock.
    check(H5Pset_file_locking(access.get(), false, true), "file locking");
    // 1.8 object headers: readable by every HDF5 since 1.8, and they allow any number of
    // attributes (one per parameter).
    check(H5Pset_libver_bounds(access.get(), H5F_LIBVER_V18, H5F_LIBVER_V18), "format bounds");
    // close() must fail loudly if an object is still open, rather than leave data unwritten.
    check(H5Pset_fclose_degree(access.get(), H5F_CLOSE_SEMI), "close degree");
    file_ = Handle(check(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()),
                         "cannot create " + temp),
                   H5Fclose);
  }

  hid_t file() const { return file_.get(); }

  template <class T>
  T check(T status, const std::string& what) const {
    if (status < 0) throw InternalError(path_ + ": " + what + ": " + h5::last_error());
    return status;
  }

  Handle group(const std::string& name) const {
    return Handle(check(H5Gcreate2(file(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                        "cannot create group " + name),
                  H5Gclose);
  }

  /// A scalar fixed-length UTF-8 string attribute.
  void attribute(hid_t owner, const std::string& name, const std::string& value) const {
    Handle type(check(H5Tcopy(H5T_C_S1), name), H5Tclose);
    check(H5Tset_size(type.get(), value.size() + 1), name);
    check(H5Tset_strpad(type.get(), H5T_STR_NULLTERM), name);
    check(H5Tset_cset(type.get(), H5T_CSET_UTF8), name);
    write_attribute(owner, name, type.get(), type.get(), scalar_space(name).get(), value.c_str());
  }
  void attribute(hid_t owner, const std::string& name, int64_t value) const {
    write_attribute(owner, name, Stored<int64_t>::file(), Stored<int64_t>::memory(),
                    scalar_space(name).get(), &value);
  }
  void attribute(hid_t owner, const std::string& name, double value) const {
    write_attribute(owner, name, Stored<double>::file(), Stored<double>::memory(),
                    scalar_space(name).get(), &value);
  }
  /// A 1-D attribute of variable-length UTF-8 strings.
  void attribute(hid_t owner, const std::string& name,
                 const std::vector<std::string>& values) const {
    Handle type(check(H5Tcopy(H5T_C_S1), name), H5Tclose);
    check(H5Tset_size(type.get(), H5T_VARIABLE), name);
    check(H5Tset_cset(type.get(), H5T_CSET_UTF8), name);
    const hsize_t n = values.size();
    Handle space(check(H5Screate_simple(1, &n, nullptr), name), H5Sclose);
    std::vector<const char*> pointers;
    for (const auto& v : values) pointers.push_back(v.c_str());
    write_attribute(owner, name, type.get(), type.get(), space.get(), pointers.data());
  }

  /// Writes `values` as a contiguous dataset [n] (width 0) or [n, width].
  template <class T>
  void column(hid_t group, const std::string& name, const std::vector<T>& values,
              int64_t width = 0) const {
    const int rank = width == 0 ? 1 : 2;
    const hsize_t dims[2] = {hsize_t(values.size() / size_t(std::max<int64_t>(width, 1))),
                             hsize_t(width)};
    Handle space(check(H5Screate_simple(rank, dims, nullptr), name), H5Sclose);
    Handle dataset(check(H5Dcreate2(group, name.c_str(), Stored<T>::file(), space.get(),
                                    H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                         "cannot create dataset " + name),
                   H5Dclose);
    detail::write_checkpoint(path_, "cannot write dataset " + name);
    if (!values.empty())
      check(H5Dwrite(dataset.get(), Stored<T>::memory(), H5S_ALL, H5S_ALL, H5P_DEFAULT,
                     values.data()),
            "cannot write dataset " + name);
  }

  /// An empty [0] or [0, width] dataset of `type` that append_rows extends.
  Handle extendible(hid_t group, const std::string& name, hid_t type, int64_t width,
                    int64_t chunk_rows) const {
    const int rank = width == 0 ? 1 : 2;
    const hsize_t dims[2] = {0, hsize_t(width)};
    const hsize_t max_dims[2] = {H5S_UNLIMITED, hsize_t(width)};
    const hsize_t chunk[2] = {hsize_t(chunk_rows), hsize_t(width)};
    Handle space(check(H5Screate_simple(rank, dims, max_dims), name), H5Sclose);
    Handle create(check(H5Pcreate(H5P_DATASET_CREATE), name), H5Pclose);
    check(H5Pset_chunk(create.get(), rank, chunk), "chunk layout of " + name);
    return Handle(check(H5Dcreate2(group, name.c_str(), type, space.get(), H5P_DEFAULT,
                                   create.get(), H5P_DEFAULT),
                        "cannot create dataset " + name),
                  H5Dclose);
  }

  /// Extends `dataset` (rank 1 when width is 0) by `count` rows at `first` from `data`.
  void append_rows(hid_t dataset, const std::string& name, hid_t memtype, int64_t first,
                   int64_t count, int64_t width, const void* data) const {
    const int rank = width == 0 ? 1 : 2;
    const hsize_t start[2] = {hsize_t(first), 0};
    const hsize_t extent[2] = {hsize_t(count), hsize_t(width)};
    const hsize_t size[2] = {hsize_t(first + count), hsize_t(width)};
    detail::write_checkpoint(path_, "cannot write " + name);
    check(H5Dset_extent(dataset, size), "cannot extend " + name);
    Handle file_space(check(H5Dget_space(dataset), name), H5Sclose);
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr),
          name);
    Handle memory_space(check(H5Screate_simple(rank, extent, nullptr), name), H5Sclose);
    check(H5Dwrite(dataset, memtype, memory_space.get(), file_space.get(), H5P_DEFAULT, data),
          "cannot write " + name);
  }

  /// Flushes and closes the file; every object opened on it must be closed already.
  void close() {
    detail::write_checkpoint(path_, "cannot flush");
    check(H5Fflush(file(), H5F_SCOPE_GLOBAL), "cannot flush");
    check(file_.reset(), "cannot close");
  }

 private:
  Handle scalar_space(const std::string& name) const {
    return Handle(check(H5Screate(H5S_SCALAR), name), H5Sclose);
  }
  void write_attribute(hid_t owner, const std::string& name, hid_t file_type, hid_t memory_type,
                       hid_t space, const void* data) const {
    Handle attr(check(H5Acreate2(owner, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT),
                      "cannot create attribute " + name),
                H5Aclose);
    detail::write_checkpoint(path_, "cannot write attribute " + name);
    check(H5Awrite(attr.get(), memory_type, data), "cannot write attribute " + name);
  }

  std::string path_;
  Handle file_;
};

/// One member of every row (a ring, a ring edge), as a column.
template <class Row, class T>
std::vector<T> ring_column(const std::vector<Row>& rows, T Row::*member) {
  std::vector<T> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(row.*member);
  return out;
}

void check_consistent(const std::string& path, const DetectionResult& r) {
  const size_t accounts = r.account_ids.size();
  const std::pair<const char*, size_t> columns[] = {
      {"cluster", r.cluster.size()}, {"ring", r.ring.size()}, {"ring_score", r.ring_score.size()},
      {"indicator_matches", r.indicator_matches.empty() ? accounts : r.indicator_matches.size()}};
  for (const auto& [name, size] : columns)
    if (size != accounts)
      throw InternalError(path + ": inconsistent detection result: " + name + " has " +
                          std::to_string(size) + " entries for " + std::to_string(accounts) +
                          " accounts");
}

/// Rows per chunk of an extendible dataset: about 1 MiB per chunk, at most 4096 rows.
int64_t chunk_rows_for(int64_t row_bytes) {
  return std::max<int64_t>(1, std::min<int64_t>(4096, (int64_t{1} << 20) / row_bytes));
}

}  // namespace

void write_detection_output(const std::string& path, const DetectionResult& result) {
  const h5::QuietErrors quiet;
  check_consistent(path, result);
  replace_atomically(path, [&](const TempFile& temp) {
    SinkFile out(path, temp.name());
    const hid_t root = out.file();
    out.attribute(root, "format", std::string("ringscan-output"));
    out.attribute(root, "schema_version", int64_t{1});
    out.attribute(root, "tool_version", std::string(RINGSCAN_VERSION));
    out.attribute(root, "backend", result.backend);
    out.attribute(root, "input", result.input_path);
    for (const auto& [name, value] : result.parameters) out.attribute(root, "param." + name, value);
    for (const auto& [name, value] : result.stage_seconds)
      out.attribute(root, "time." + name, value);
    for (const auto& [name, value] : result.statistics) out.attribute(root, "stat." + name, value);
    for (std::size_t i = 0; i < result.notes.size(); ++i)
      out.attribute(root, "note." + std::to_string(i), result.notes[i]);
    {
      const Handle accounts = out.group("/accounts");
      out.column(accounts.get(), "id", result.account_ids);
      out.column(accounts.get(), "cluster", result.cluster);
      out.column(accounts.get(), "ring", result.ring);
      out.column(accounts.get(), "ring_score", result.ring_score);
      if (!result.indicator_matches.empty()) {
        std::vector<int64_t> ring, prompts, tokens;
        for (const IndicatorMatch& m : result.indicator_matches) {
          ring.push_back(m.ring);
          prompts.push_back(m.prompt_hits);
          tokens.push_back(m.token_hits);
        }
        out.column(accounts.get(), "indicator_ring", ring);
        out.column(accounts.get(), "indicator_prompt_hits", prompts);
        out.column(accounts.get(), "indicator_token_hits", tokens);
      }
    }
    {
      const Handle rings = out.group("/rings");
      const hid_t g = rings.get();
      const auto& r = result.rings;
      out.column(g, "id", ring_column(r, &Ring::id));
      out.column(g, "cluster", ring_column(r, &Ring::cluster));
      out.column(g, "size", ring_column(r, &Ring::size));
      out.column(g, "score", ring_column(r, &Ring::score));
      out.column(g, "shared_prompt_strength", ring_column(r, &Ring::shared_prompt_strength));
      out.column(g, "synchrony", ring_column(r, &Ring::synchrony));
      out.column(g, "behaviour_tightness", ring_column(r, &Ring::behaviour_tightness));
      out.column(g, "prompt_diversity", ring_column(r, &Ring::prompt_diversity));
      out.column(g, "volume", ring_column(r, &Ring::volume));
      out.column(g, "shared_groups", ring_column(r, &Ring::shared_groups));
    }
    {
      // Each ring's strongest shared prompt groups, ring by ring; example_row holds the
      // groups' example requests one after another, `examples` of them per group.
      const Handle prompts = out.group("/ring_prompts");
      const hid_t g = prompts.get();
      std::vector<int64_t> ring, in_ring, overall, examples, rows;
      std::vector<float> idf;
      for (const Ring& x : result.rings)
        for (const SharedPromptExample& e : x.examples) {
          ring.push_back(x.id);
          in_ring.push_back(e.accounts_in_ring);
          overall.push_back(e.accounts_overall);
          idf.push_back(e.idf);
          examples.push_back(int64_t(e.request_rows.size()));
          rows.insert(rows.end(), e.request_rows.begin(), e.request_rows.end());
        }
      out.column(g, "ring", ring);
      out.column(g, "accounts_in_ring", in_ring);
      out.column(g, "accounts_overall", overall);
      out.column(g, "idf", idf);
      out.column(g, "examples", examples);
      out.column(g, "example_row", rows);
    }
    {
      const Handle edges = out.group("/ring_edges");
      const hid_t g = edges.get();
      const auto& e = result.ring_edges;
      const auto ids = [&](int64_t RingEdge::*row) {
        std::vector<int64_t> v;
        for (const RingEdge& x : e) v.push_back(result.account_ids.at(size_t(x.*row)));
        return v;
      };
      out.column(g, "ring", ring_column(e, &RingEdge::ring));
      out.column(g, "first", ids(&RingEdge::first));
      out.column(g, "second", ids(&RingEdge::second));
      out.column(g, "shared_prompts", ring_column(e, &RingEdge::shared_prompts));
      out.column(g, "synchrony", ring_column(e, &RingEdge::synchrony));
      out.column(g, "behaviour", ring_column(e, &RingEdge::behaviour));
      out.column(g, "infrastructure", ring_column(e, &RingEdge::infrastructure));
      out.column(g, "weight", ring_column(e, &RingEdge::weight));
      std::vector<int64_t> weak;
      for (const RingEdge& x : e) weak.push_back(x.weak);
      out.column(g, "weak", weak);
    }
    out.close();
  });
}

void write_file_atomically(const std::string& path, const std::string& text) {
  replace_atomically(path, [&](const TempFile& temp) {
    // Written in bounded pieces so that a failing write (a full disk) can strike mid-file.
    constexpr size_t kPiece = size_t{1} << 20;
    size_t done = 0;
    while (done < text.size()) {
      detail::write_checkpoint(path, "cannot write " + temp.name());
      const ssize_t n = ::write(temp.fd(), text.data() + done, std::min(kPiece, text.size() - done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_system(path, "cannot write " + temp.name());
      done += size_t(n);
    }
  });
}

int64_t remove_stale_temporaries(const std::string& path) {
  const std::string dir = directory_of(path), prefix = base_name(path) + ".tmp.";
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return 0;  // the write itself reports a missing directory
  std::vector<std::string> candidates;
  while (const dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0)
      candidates.push_back(name);
  }
  ::closedir(listing);
  int64_t removed = 0;
  for (const std::string& name : candidates) {
    const std::string full = dir + "/" + name;
    const std::string suffix = name.substr(prefix.size());
    const size_t dot = suffix.find('.');
    const std::string pid_part = suffix.substr(0, dot);
    // Only names ringscan makes, <pid> or <pid>.<hex>: a user's "out.h5.tmp.old" stays.
    if (pid_part.empty() || pid_part.find_first_not_of("0123456789") != std::string::npos ||
        (dot != std::string::npos &&
         (dot + 1 == suffix.size() ||
          suffix.find_first_not_of("0123456789abcdef", dot + 1) != std::string::npos)))
      continue;
    if (dot == std::string::npos) {
      // PATH.tmp.<pid> of versions that did not lock: stale once that process is gone.
      const long pid = std::strtol(suffix.c_str(), nullptr, 10);
      if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH && ::unlink(full.c_str()) == 0)
        ++removed;
      continue;
    }
    const int fd = ::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    // Only a file whose lock nobody holds is stale; it is removed while this run holds the
    // lock, and only if the name still refers to the file that was locked.
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0 &&
        same_inode(fd, full) && ::unlink(full.c_str()) == 0)
      ++removed;
    ::close(fd);
  }
  return removed;
}

// ---- InputFileWriter ----

struct InputFileWriter::Impl {
  std::string path;
  std::unique_ptr<TempFile> temp;
  int64_t dim = 0;
  EmbeddingType type = EmbeddingType::Float32;
  bool with_time = false;
  int64_t infra_dim = 0;
  int64_t rows = 0;
  bool accounts_written = false, committed = false, broken = false;
  std::vector<uint16_t> staging;  // float16 bits of one append
  // Declared before the objects below so that it is destroyed (closed) after them.
  std::unique_ptr<SinkFile> file;
  Handle half, requests, account, embedding, time, infra;

  ~Impl() {
    if (committed) return;
    const h5::QuietErrors quiet;
    infra.reset();
    time.reset();
    embedding.reset();
    account.reset();
    requests.reset();
    half.reset();
    file.reset();
    temp.reset();  // removes the temporary file
  }

  void require_open(const char* operation) const {
    if (committed) fail(std::string(operation) + " after commit()");
    if (broken) fail(std::string(operation) + " after an earlier failure");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw InternalError(path + ": InputFileWriter: " + what);
  }

  /// Runs `step`, remembering a failure so that the file can never be committed half-written.
  template <class Step>
  void guarded(Step&& step) {
    try {
      step();
    } catch (...) {
      broken = true;
      throw;
    }
  }

  /// Encodes n x dim floats as float16 into `staging`; fails on values float16 cannot hold.
  void encode_half(const float* values, int64_t n) {
    staging.resize(size_t(n * dim));
    std::atomic<int64_t> first_bad{n * dim};
    detail::parallel_for(n * dim, 0, [&](int64_t i) {
      staging[size_t(i)] = h5::float_to_half(values[i]);
      if (std::isfinite(values[i]) && (staging[size_t(i)] & 0x7c00u) == 0x7c00u)
        detail::atomic_min(first_bad, i);
    });
    const int64_t bad = first_bad.load();
    if (bad == n * dim) return;
    char value[32];
    std::snprintf(value, sizeof value, "%g", double(values[bad]));
    fail(std::string("/requests/embedding: value ") + value + " at row " +
         std::to_string(rows + bad / dim) + " is out of the float16 range");
  }
};

InputFileWriter::InputFileWriter(const std::string& path, int64_t dim, EmbeddingType type,
                                 bool with_time)
    : impl_(std::make_unique<Impl>()) {
  const h5::QuietErrors quiet;
  Impl& w = *impl_;
  w.path = path;
  w.temp = std::make_unique<TempFile>(path);
  w.dim = dim;
  w.type = type;
  w.with_time = with_time;
  if (dim < 1) throw InvalidInput(path + ": /requests/embedding: dimension must be at least 1");
  w.file = std::make_unique<SinkFile>(path, w.temp->name());
  const SinkFile& f = *w.file;
  f.attribute(f.file(), "format", std::string("ringscan"));
  f.attribute(f.file(), "version", int64_t{1});
  w.requests = f.group("/requests");
  const hid_t g = w.requests.get();
  const int64_t id_chunk = int64_t{1} << 14;  // 128 KiB chunks: small files stay small
  w.account = f.extendible(g, "account", Stored<int64_t>::file(), 0, id_chunk);
  hid_t element = Stored<float>::file();
  if (type == EmbeddingType::Float16) {
    w.half = h5::make_half_type();
    if (!w.half.valid()) w.fail("cannot make the float16 type: " + h5::last_error());
    element = w.half.get();
  }
  const int64_t element_bytes = type == EmbeddingType::Float16 ? 2 : 4;
  w.embedding = f.extendible(g, "embedding", element, dim, chunk_rows_for(dim * element_bytes));
  if (with_time) w.time = f.extendible(g, "time", Stored<int64_t>::file(), 0, id_chunk);
}

InputFileWriter::~InputFileWriter() = default;

void InputFileWriter::declare_infra(const std::vector<std::string>& names) {
  const h5::QuietErrors quiet;
  Impl& w = *impl_;
  w.require_open("declare_infra");
  if (w.rows > 0 || w.infra_dim > 0 || names.empty()) w.fail("declare_infra: after requests, twice, or no names");
  w.guarded([&] {
    const SinkFile& f = *w.file;
    w.infra_dim = int64_t(names.size());
    w.infra = f.extendible(w.requests.get(), "infra", Stored<int64_t>::file(), w.infra_dim, int64_t{1} << 12);
    f.attribute(w.infra.get(), "names", names);
  });
}

void InputFileWriter::append_requests(const int64_t* account, const float* embedding,
                                      const int64_t* time, int64_t n, const int64_t* infra) {
  const h5::QuietErrors quiet;
  Impl& w = *impl_;
  w.require_open("append_requests");
  if (n < 0 || (n > 0 && (account == nullptr || embedding == nullptr)) ||
      (n > 0 && w.with_time && time == nullptr) || (n > 0 && (w.infra_dim > 0) != (infra != nullptr)))
    w.fail("append_requests: invalid arguments (n, null arrays, missing time or infra)");
  if (n == 0) return;
  w.guarded([&] {
    const SinkFile& f = *w.file;
    f.append_rows(w.account.get(), "/requests/account", Stored<int64_t>::memory(), w.rows, n, 0,
                  account);
    if (w.type == EmbeddingType::Float16) {
      // HDF5's own float-to-float16 conversion is ~20x slower than this one.
      w.encode_half(embedding, n);
      f.append_rows(w.embedding.get(), "/requests/embedding", w.half.get(), w.rows, n, w.dim,
                    w.staging.data());
    } else {
      f.append_rows(w.embedding.get(), "/requests/embedding", Stored<float>::memory(), w.rows, n,
                    w.dim, embedding);
    }
    if (w.with_time)
      f.append_rows(w.time.get(), "/requests/time", Stored<int64_t>::memory(), w.rows, n, 0, time);
    if (w.infra_dim > 0)
      f.append_rows(w.infra.get(), "/requests/infra", Stored<int64_t>::memory(), w.rows, n, w.infra_dim, infra);
    w.rows += n;
  });
}

void InputFileWriter::write_accounts(const std::vector<int64_t>& ids,
                                     const std::vector<float>& features, int64_t feature_dim,
                                     const std::vector<std::string>& feature_names,
                                     const std::vector<int64_t>& labels) {
  const h5::QuietErrors quiet;
  Impl& w = *impl_;
  w.require_open("write_accounts");
  if (w.accounts_written) w.fail("write_accounts called twice");
  const size_t a = ids.size();
  if (feature_dim < 0 || features.size() != a * size_t(feature_dim) ||
      (!feature_names.empty() && feature_names.size() != size_t(feature_dim)) ||
      (!labels.empty() && labels.size() != a))
    w.fail("write_accounts: features, names or labels do not match " + std::to_string(a) +
           " accounts x " + std::to_string(feature_dim) + " features");
  w.guarded([&] {
    const SinkFile& f = *w.file;
    const Handle group = f.group("/accounts");
    f.column(group.get(), "id", ids);
    if (feature_dim > 0) {
      f.column(group.get(), "features", features, feature_dim);
      if (!feature_names.empty()) {
        const Handle dataset(f.check(H5Dopen2(group.get(), "features", H5P_DEFAULT), "features"),
                             H5Dclose);
        f.attribute(dataset.get(), "names", feature_names);
      }
    }
    if (!labels.empty()) f.column(group.get(), "label", labels);
    w.accounts_written = true;
  });
}

void InputFileWriter::write_account_column(const std::string& name,
                                           const std::vector<int64_t>& values) {
  const h5::QuietErrors quiet;
  Impl& w = *impl_;
  w.require_open("write_account_column");
  if (!w.accounts_written) w.fail("write_account_column before write_accounts");
  if (name.empty() || name.find('/') != std::string::npos || name == "id" || name == "label" ||
      name == "features")
    w.fail("write_account_column: invalid column name '" + name + "'");
  w.guarded([&] {
    const SinkFile& f = *w.file;
    const Handle group(f.check(H5Gopen2(f.file(), "/accounts", H5P_DEFAULT), "/accounts"),
                       H5Gclose);
    f.column(group.get(), name.c_str(), values);
  });
}

void InputFileWriter::commit() {
  const h5::QuietErrors quiet;
  Impl& w = *impl_;
  w.require_open("commit");
  w.guarded([&] {
    w.infra.reset();
    w.time.reset();
    w.embedding.reset();
    w.account.reset();
    w.requests.reset();
    w.half.reset();
    w.file->close();
    w.temp->publish();
    w.committed = true;
  });
}

}  // namespace ringscan
