// Nearest rows on the device: the rows stay resident (fp16 or fp32), and a search among any
// subsets of them (a cell of the partition, or all) runs cuBLAS GEMM tiles of inner products
// and a fused selection kernel that keeps, per query, the `cap` closest rows (optionally
// within a radius) in shared memory; subsets are gathered into contiguous tiles first. Rows
// are streamed to the device in chunks through pinned buffers on two streams, converted to
// fp16 on the way when asked, so copies overlap the conversion.
#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "partitioned_join.hpp"
#include "portable/nearest_selection.hpp"
#include "ringscan/context.hpp"
#include "ringscan/error.hpp"

namespace ringscan::cuda {
namespace {

constexpr int kSelectThreads = 256;
constexpr int kRowThreads = 256;
constexpr int64_t kUploadRows = 16384;       // rows per pinned staging chunk
constexpr int64_t kQueryBlock = 4096;        // queries per GEMM tile (upper bound)
constexpr int64_t kMinColumnTile = 1024;
constexpr int64_t kMaxScoreTile = int64_t(1) << 30;  // bytes: GEMMs this size already run at full rate

/// Converts a chunk of fp32 rows to the stored type and records each row's squared norm
/// (from the fp32 values, summed in row order; FAISS on the CPU sums in its own order, one
/// reason the account index's neighbours may differ from the CPU's at near-ties).
template <class Stored>
__global__ void store_rows_kernel(const float* chunk, int64_t rows, int64_t d, Stored* out,
                                  float* norms) {
  for (int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += int64_t(gridDim.x) * blockDim.x) {
    float s = 0;
    for (int64_t i = 0; i < d; ++i) {
      const float v = chunk[r * d + i];
      s += v * v;
      out[r * d + i] = Stored(v);
    }
    norms[r] = s;
  }
}

/// The CUDA block as portable::select_nearest_of_query takes it.
struct CudaBlock {
  __device__ int thread() const { return int(threadIdx.x); }
  __device__ int size() const { return int(blockDim.x); }
  __device__ void sync() const { __syncthreads(); }
  __device__ int claim(int& counter) const { return atomicAdd(&counter, 1); }
};

/// One block per query of the tile (host/portable/nearest_selection.hpp); the candidate
/// slots, tile.slots of (row, distance), in dynamic shared memory.
__global__ void select_nearest_kernel(portable::SelectionTile tile) {
  extern __shared__ __align__(16) unsigned char shared[];
  __shared__ portable::SelectionState state;
  int64_t* row = reinterpret_cast<int64_t*>(shared);  // the 8-byte elements first
  float* dist = reinterpret_cast<float*>(row + tile.slots);
  portable::select_nearest_of_query(CudaBlock{}, tile, blockIdx.x, dist, row, state);
}

/// out [n x d] = rows[ids[i]] for i < n: a cell's rows made contiguous for the GEMM.
template <class Stored>
__global__ void gather_rows_kernel(const Stored* rows, int64_t d, const int64_t* ids, int64_t n,
                                   Stored* out) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n * d;
       t += int64_t(gridDim.x) * blockDim.x)
    out[t] = rows[ids[t / d] * d + t % d];
}

/// Page-locked host memory for the staging chunks (copies from it run asynchronously).
class PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t bytes) { RINGSCAN_CUDA_TRY(cudaMallocHost(&data_, bytes)); }
  ~PinnedBuffer() { cudaFreeHost(data_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  float* data() { return static_cast<float*>(data_); }

 private:
  void* data_ = nullptr;
};

class Stream {
 public:
  Stream() { RINGSCAN_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream) {
    RINGSCAN_CUDA_TRY(CublasLibrary::get().create(&handle_));
    RINGSCAN_CUDA_TRY(CublasLibrary::get().set_stream(handle_, stream));
  }
  ~CublasHandle() { CublasLibrary::get().destroy(handle_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

/// Uploads x [n x d] through two pinned chunks on two streams (copy of one chunk overlaps
/// the conversion of the other) into `stored`, with each row's squared norm in `norms`.
template <class Stored>
void upload_rows(const float* x, int64_t n, int64_t d, Stored* stored, float* norms) {
  const int64_t chunk_rows = std::min(kUploadRows, n);
  PinnedBuffer pinned[2] = {PinnedBuffer(sizeof(float) * size_t(chunk_rows * d)),
                            PinnedBuffer(sizeof(float) * size_t(chunk_rows * d))};
  DeviceBuffer<float> staging[2] = {DeviceBuffer<float>(chunk_rows * d), DeviceBuffer<float>(chunk_rows * d)};
  Stream streams[2];
  for (int64_t first = 0, chunk = 0; first < n; first += chunk_rows, ++chunk) {
    const int s = int(chunk & 1);
    const int64_t rows = std::min(chunk_rows, n - first);
    // The chunk two steps back used these buffers: wait for its conversion to finish.
    RINGSCAN_CUDA_TRY(cudaStreamSynchronize(streams[s].get()));
    std::copy_n(x + first * d, rows * d, pinned[s].data());
    RINGSCAN_CUDA_TRY(cudaMemcpyAsync(staging[s].data(), pinned[s].data(), sizeof(float) * size_t(rows * d),
                                      cudaMemcpyHostToDevice, streams[s].get()));
    const int blocks = int(std::min<int64_t>((rows + kRowThreads - 1) / kRowThreads, 4096));
    store_rows_kernel<<<blocks, kRowThreads, 0, streams[s].get()>>>(staging[s].data(), rows, d,
                                                             stored + first * d, norms + first);
    RINGSCAN_CUDA_TRY(cudaGetLastError());
  }
  for (auto& s : streams) RINGSCAN_CUDA_TRY(cudaStreamSynchronize(s.get()));
}


/// scores [nq x nc] row-major = queries [nq x d] . columns [nc x d]^T, i.e. the column-major
/// nc x nq product C^T Q.
void inner_products(cublasHandle_t handle, const float* queries, int64_t nq, const float* columns,
                    int64_t nc, int64_t d, float* scores) {
  const float one = 1.0f, zero = 0.0f;
  RINGSCAN_CUDA_TRY(CublasLibrary::get().sgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(nc), int(nq),
                                               int(d), &one, columns, int(d), queries, int(d),
                                               &zero, scores, int(nc)));
}
void inner_products(cublasHandle_t handle, const __half* queries, int64_t nq, const __half* columns,
                    int64_t nc, int64_t d, float* scores) {
  const float one = 1.0f, zero = 0.0f;
  RINGSCAN_CUDA_TRY(CublasLibrary::get().gemm_ex(
      handle, CUBLAS_OP_T, CUBLAS_OP_N, int(nc), int(nq), int(d), &one, columns, CUDA_R_16F,
      int(d), queries, CUDA_R_16F, int(d), &zero, scores, CUDA_R_32F, int(nc),
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/// Rows of one side of a search on the device: a matrix [.. x d] with its row norms, and
/// which of its rows take part (ids, copied to the device, or the first `count`).
template <class Stored>
struct Operand {
  const Stored* rows;
  const float* norms;
  const int64_t* ids;  ///< device ids, or null for rows [0, count)
  int64_t count;
};

/// Makes `buffer` hold at least n elements, keeping it when it already does: buffers are
/// reused across the many searches of a partitioned join (cudaMalloc and cudaFree per cell
/// would synchronise the device each time).
template <class T>
void grow(DeviceBuffer<T>& buffer, int64_t n) {
  if (buffer.size() < n) {
    buffer = DeviceBuffer<T>();  // free first: the old and new never coexist
    buffer = DeviceBuffer<T>(n);
  }
}

/// The per-search device buffers, kept between searches.
template <class Stored>
struct SearchWorkspace {
  DeviceBuffer<float> scores, best_dist;
  DeviceBuffer<int64_t> best_row, query_ids, member_ids;
  DeviceBuffer<int> best_count;
  DeviceBuffer<Stored> query_rows, column_rows;

  int64_t bytes() const {
    return 4 * (scores.size() + best_dist.size() + best_count.size()) +
           8 * (best_row.size() + query_ids.size() + member_ids.size()) +
           int64_t(sizeof(Stored)) * (query_rows.size() + column_rows.size());
  }
  /// Frees everything but the ids (which the current search is using).
  void release_tiles() {
    scores = DeviceBuffer<float>();
    best_dist = DeviceBuffer<float>();
    best_row = DeviceBuffer<int64_t>();
    best_count = DeviceBuffer<int>();
    query_rows = DeviceBuffer<Stored>();
    column_rows = DeviceBuffer<Stored>();
  }
};

/// The rows of x [n x d] resident on the device (fp16 or fp32) with their norms; searches
/// among them by tiles of a cuBLAS GEMM and the fused selection kernel. Every device byte
/// it takes is counted against `device_budget`.
template <class Stored>
class DeviceRowSearch final : public RowSearch {
 public:
  DeviceRowSearch(const float* x, int64_t n, int64_t d, int64_t device_budget, const char* stage)
      : n_(n), d_(d), budget_(device_budget), stage_(stage) {
    RINGSCAN_EXPECTS(d <= std::numeric_limits<int>::max(), stage_ + ": dimension too large");
    RINGSCAN_EXPECTS(device_budget > 0, stage_ + ": the device memory budget must be positive");
    resident_ = n * d * int64_t(sizeof(Stored)) + n * 4;
    require(resident_ + 4 * std::min(kUploadRows, n) * d * 4, "its rows");
    rows_ = DeviceBuffer<Stored>(n * d);
    norms_ = DeviceBuffer<float>(n);
    if (n > 0) upload_rows(x, n, d, rows_.data(), norms_.data());
  }

  RowNeighbours nearest_others(const int64_t* queries, int64_t nq, const int64_t* members,
                               int64_t m, float radius, int64_t cap) override {
    const int64_t* query_ids = upload_ids(queries, nq, ws_.query_ids);
    const int64_t* member_ids = upload_ids(members, m, ws_.member_ids);
    const Operand<Stored> q{rows_.data(), norms_.data(), query_ids, nq};
    const Operand<Stored> c{rows_.data(), norms_.data(), member_ids, m};
    return search(q, c, true, radius, cap, 0);
  }

  void nearest_centroids(const float* centroids, int64_t k, int64_t probes, int64_t* cell,
                         float* dist2) override {
    require(resident_ + k * d_ * int64_t(sizeof(Stored) + 4) + 4 * std::min(kUploadRows, k) * d_ * 4,
            "its centroids");
    DeviceBuffer<Stored> stored(k * d_);
    DeviceBuffer<float> norms(k);
    upload_rows(centroids, k, d_, stored.data(), norms.data());
    const Operand<Stored> q{rows_.data(), norms_.data(), nullptr, n_};
    const Operand<Stored> c{stored.data(), norms.data(), nullptr, k};
    const RowNeighbours found = search(q, c, false, -1.0f, probes, k * d_ * int64_t(sizeof(Stored) + 4));
    for (int64_t r = 0; r < n_; ++r) {
      RINGSCAN_ASSERT(found.offsets[r + 1] - found.offsets[r] == probes,
                      stage_ + ": a row found fewer centroids than asked");
      std::copy_n(&found.other[found.offsets[r]], probes, cell + r * probes);
      std::copy_n(&found.distance[found.offsets[r]], probes, dist2 + r * probes);
    }
  }

 private:
  /// ids [n] copied into `buffer` (on the stream), or null for null ids.
  const int64_t* upload_ids(const int64_t* ids, int64_t n, DeviceBuffer<int64_t>& buffer) {
    if (!ids) return nullptr;
    const int64_t more = std::max<int64_t>(0, n - buffer.size()) * 8;
    // Earlier searches' tiles are a cache: drop them before refusing (search() sizes anew).
    if (resident_ + ws_.bytes() + more > budget_) ws_.release_tiles();
    require(resident_ + ws_.bytes() + more, "its row ids");
    grow(buffer, n);
    RINGSCAN_CUDA_TRY(cudaMemcpyAsync(buffer.data(), ids, sizeof(int64_t) * size_t(n),
                                      cudaMemcpyHostToDevice, stream_.get()));
    return buffer.data();
  }

  void require(int64_t bytes, const char* what) const {
    require_device_memory(double(bytes), budget_, stage_ + " on the device, for " + what + ",");
  }

  /// For each query of q: its up to `cap` nearest columns of c (not itself when
  /// exclude_self), within radius when radius >= 0. `extra` bytes are already held.
  RowNeighbours search(const Operand<Stored>& q, const Operand<Stored>& c, bool exclude_self,
                       float radius, int64_t cap, int64_t extra) {
    const auto started = std::chrono::steady_clock::now();
    const int64_t nq = q.count, nc = c.count;
    RowNeighbours result;
    result.offsets.assign(nq + 1, 0);
    cap = std::min<int64_t>(cap, nc);
    if (nq == 0 || nc == 0 || cap < 1) return result;
    RINGSCAN_EXPECTS(cap <= 2048, stage_ + ": at most 2048 neighbours per row on the device");
    const int64_t slots = portable::nearest_selection_slots(cap, kSelectThreads);
    const size_t shared_bytes = size_t(slots) * (sizeof(float) + sizeof(int64_t));

    // Fixed costs: resident rows, ids, the per-query lists and the gathered query block; the
    // rest goes to the score tile (at most kMaxScoreTile bytes) and the gathered columns.
    const int64_t row_bytes = d_ * int64_t(sizeof(Stored));
    const int64_t q_block = std::min(kQueryBlock, nq);
    const int64_t ids = 8 * (ws_.query_ids.size() + ws_.member_ids.size());
    const int64_t fixed = resident_ + extra + ids + q_block * (cap * 12 + 4) + (q.ids ? q_block * row_bytes : 0);
    const int64_t per_column = q_block * 4 + (c.ids ? row_bytes : 0);
    int64_t c_tile = std::min<int64_t>(nc, (budget_ - fixed) / per_column);
    c_tile = std::min<int64_t>(c_tile, kMaxScoreTile / (4 * q_block));
    if (c_tile < std::min(kMinColumnTile, nc)) require(fixed + per_column * std::min(kMinColumnTile, nc), "its score tile");
    // Keep the buffers of earlier searches where they are large enough, unless keeping them
    // would hold more than the budget.
    if (fixed - ids + per_column * c_tile + ws_.bytes() > budget_) ws_.release_tiles();
    grow(ws_.scores, q_block * c_tile);
    if (q.ids) grow(ws_.query_rows, q_block * d_);
    if (c.ids) grow(ws_.column_rows, c_tile * d_);
    grow(ws_.best_dist, q_block * cap);
    grow(ws_.best_row, q_block * cap);
    grow(ws_.best_count, q_block);
    RINGSCAN_CUDA_TRY(cudaFuncSetAttribute(select_nearest_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           int(shared_bytes)));
    std::vector<float> host_dist(nq * cap);
    std::vector<int64_t> host_row(nq * cap);
    std::vector<int> count(nq);
    for (int64_t q0 = 0; q0 < nq; q0 += q_block) {
      const int64_t bq = std::min(q_block, nq - q0);
      const portable::Side query_side{q.ids ? q.ids + q0 : nullptr, q0};
      const Stored* query_matrix = contiguous(q, q0, bq, ws_.query_rows, stream_.get());
      RINGSCAN_CUDA_TRY(cudaMemsetAsync(ws_.best_count.data(), 0, sizeof(int) * size_t(bq), stream_.get()));
      for (int64_t c0 = 0; c0 < nc; c0 += c_tile) {
        const int64_t bc = std::min(c_tile, nc - c0);
        const portable::Side column_side{c.ids ? c.ids + c0 : nullptr, c0};
        const Stored* column_matrix = contiguous(c, c0, bc, ws_.column_rows, stream_.get());
        inner_products(blas_.get(), query_matrix, bq, column_matrix, bc, d_, ws_.scores.data());
        const portable::SelectionTile tile{ws_.scores.data(), bc, query_side, column_side,
                                           q.norms, c.norms, exclude_self, radius, int(cap),
                                           int(slots), ws_.best_dist.data(), ws_.best_row.data(),
                                           ws_.best_count.data()};
        select_nearest_kernel<<<unsigned(bq), kSelectThreads, shared_bytes, stream_.get()>>>(tile);
        RINGSCAN_CUDA_TRY(cudaGetLastError());
      }
      RINGSCAN_CUDA_TRY(cudaMemcpyAsync(host_dist.data() + q0 * cap, ws_.best_dist.data(),
                                        sizeof(float) * size_t(bq * cap), cudaMemcpyDeviceToHost, stream_.get()));
      RINGSCAN_CUDA_TRY(cudaMemcpyAsync(host_row.data() + q0 * cap, ws_.best_row.data(),
                                        sizeof(int64_t) * size_t(bq * cap), cudaMemcpyDeviceToHost, stream_.get()));
      RINGSCAN_CUDA_TRY(cudaMemcpyAsync(count.data() + q0, ws_.best_count.data(), sizeof(int) * size_t(bq),
                                        cudaMemcpyDeviceToHost, stream_.get()));
      RINGSCAN_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
    }
    work_.flop += 2.0 * double(nq) * double(nc) * double(d_);
    work_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (int64_t i = 0; i < nq; ++i) result.offsets[i + 1] = result.offsets[i] + count[i];
    result.other.resize(result.offsets[nq]);
    result.distance.resize(result.offsets[nq]);
    for (int64_t i = 0; i < nq; ++i) {
      std::copy_n(&host_row[i * cap], count[i], &result.other[result.offsets[i]]);
      std::copy_n(&host_dist[i * cap], count[i], &result.distance[result.offsets[i]]);
    }
    return result;
  }

  /// Rows [first, first + count) of operand o as one contiguous matrix: in place for a
  /// range, gathered into `scratch` for ids.
  const Stored* contiguous(const Operand<Stored>& o, int64_t first, int64_t count,
                           DeviceBuffer<Stored>& scratch, cudaStream_t stream) const {
    if (!o.ids) return o.rows + first * d_;
    const int blocks = int(std::min<int64_t>((count * d_ + kRowThreads - 1) / kRowThreads, 65536));
    gather_rows_kernel<<<blocks, kRowThreads, 0, stream>>>(o.rows, d_, o.ids + first, count, scratch.data());
    RINGSCAN_CUDA_TRY(cudaGetLastError());
    return scratch.data();
  }

  int64_t n_, d_, budget_, resident_ = 0;
  std::string stage_;
  Stream stream_;
  CublasHandle blas_{stream_.get()};
  DeviceBuffer<Stored> rows_;
  DeviceBuffer<float> norms_;
  SearchWorkspace<Stored> ws_;
};

}  // namespace

std::unique_ptr<RowSearch> make_row_search(const float* x, int64_t n, int64_t d, bool half_inputs,
                                           int64_t device_budget, const char* stage) {
  if (half_inputs) return std::make_unique<DeviceRowSearch<__half>>(x, n, d, device_budget, stage);
  return std::make_unique<DeviceRowSearch<float>>(x, n, d, device_budget, stage);
}

RowNeighbours nearest_rows(const float* x, int64_t n, int64_t d, float radius, int64_t cap,
                           bool half_inputs, int64_t device_budget, const char* stage) {
  return make_row_search(x, n, d, half_inputs, device_budget, stage)
      ->nearest_others(nullptr, n, nullptr, n, radius, cap);
}

}  // namespace ringscan::cuda
