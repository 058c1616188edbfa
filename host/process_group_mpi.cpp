// The process group over MPI (OpenMPI from Debian; any MPI 3 library). Messages larger
// than MPI's int counts are sent in pieces.
#include <mpi.h>
#include <time.h>

#include <algorithm>
#include <cstdlib>

#include "ringscan/error.hpp"
#include "ringscan/process_group.hpp"

namespace ringscan {
namespace {

/// The largest piece one MPI message carries.
constexpr int64_t kPiece = int64_t{1} << 30;

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw InternalError(std::string("MPI ") + what + " failed: " + std::string(text, size_t(length)));
}

/// True when a launcher (mpirun, srun) started this process as one of a group.
bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

class MpiGroup final : public ProcessGroup {
 public:
  MpiGroup(int* argc, char*** argv) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "initialisation");
    // Errors come back as codes, turned into exceptions that agree() spreads to every rank.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiGroup() override { MPI_Finalize(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::vector<Bytes> all_to_all(std::vector<Bytes> parts) override {
    RINGSCAN_ASSERT(int(parts.size()) == size_, "all_to_all: one part per rank");
    std::vector<const Bytes*> send(size_);
    for (int r = 0; r < size_; ++r) send[r] = &parts[r];
    return exchange(send, true, &parts[rank_]);
  }

  std::vector<Bytes> all_gather(const Bytes& part) override {
    return exchange(std::vector<const Bytes*>(size_, &part), true);
  }

  std::vector<Bytes> gather(const Bytes& part, int root) override {
    const Bytes none;
    std::vector<const Bytes*> send(size_, &none);
    send[root] = &part;
    return exchange(send, rank_ == root);
  }

  Bytes broadcast(const Bytes& part, int root) override {
    const Bytes none;
    std::vector<const Bytes*> send(size_, rank_ == root ? &part : &none);
    std::vector<Bytes> got = exchange(send, true);
    return rank_ == root ? part : std::move(got[root]);
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

  void wait_for_all() override {
    MPI_Request request;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "barrier");
    int done = 0;
    // Polled with short sleeps: MPI's own wait spins, and a waiting rank would take a core
    // from the one still working.
    const timespec pause{0, 1000000};
    for (;;) {
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "barrier");
      if (done) return;
      nanosleep(&pause, nullptr);
    }
  }

 private:
  /// Sends *send[r] to rank r, and returns what each rank sent this one (empty unless
  /// `receive`: a gather's other ranks expect nothing). The sizes go first, by all-to-all.
  /// `own`, when given, is this rank's part to itself, moved rather than copied.
  std::vector<Bytes> exchange(const std::vector<const Bytes*>& send, bool receive, Bytes* own = nullptr) {
    std::vector<int64_t> send_sizes(size_), recv_sizes(size_);
    for (int r = 0; r < size_; ++r) send_sizes[r] = int64_t(send[r]->size());
    check(MPI_Alltoall(send_sizes.data(), 1, MPI_INT64_T, recv_sizes.data(), 1, MPI_INT64_T, MPI_COMM_WORLD),
          "all-to-all of sizes");
    std::vector<Bytes> received(size_);
    std::vector<MPI_Request> requests;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) {
        if (own != nullptr) received[r] = std::move(*own);
        else received[r] = *send[r];
        continue;
      }
      received[r].resize(size_t(recv_sizes[r]));
      post(received[r].data(), recv_sizes[r], r, false, requests);
      post(const_cast<char*>(send[r]->data()), send_sizes[r], r, true, requests);
      sent_ += send_sizes[r];
    }
    wait(requests);
    if (!receive) received.assign(size_, Bytes{});
    return received;
  }

  /// Posts the sends (or receives) of `bytes` bytes to (from) `peer`, in pieces.
  void post(char* data, int64_t bytes, int peer, bool send, std::vector<MPI_Request>& requests) {
    for (int64_t at = 0, tag = 0; at < bytes; at += kPiece, ++tag) {
      const int n = int(std::min(kPiece, bytes - at));
      MPI_Request r;
      if (send)
        check(MPI_Isend(data + at, n, MPI_BYTE, peer, int(tag), MPI_COMM_WORLD, &r), "send");
      else
        check(MPI_Irecv(data + at, n, MPI_BYTE, peer, int(tag), MPI_COMM_WORLD, &r), "receive");
      requests.push_back(r);
    }
  }
  void wait(std::vector<MPI_Request>& requests) {
    if (requests.empty()) return;
    check(MPI_Waitall(int(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "exchange");
  }

  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<ProcessGroup> launched_process_group(int* argc, char*** argv) {
  if (!launched_by_mpi()) return nullptr;
  return std::make_unique<MpiGroup>(argc, argv);
}

bool built_with_mpi() { return true; }

}  // namespace ringscan
