// Nearest rows on the device: the rows stay resident (fp16 or fp32), and a search among any
// subsets of them (a cell of the partition, or all) runs cuBLAS GEMM tiles of inner products
// and a fused selection kernel that keeps, per query, the `cap` closest rows (optionally
// within a radius) in shared memory; subsets are gathered into contiguous tiles first. Rows
// are streamed to the device in chunks through pinned buffers on two streams, converted to
// fp16 on the way when asked, so copies overlap the conversion. The tiling and bookkeeping
// are host/tiled_row_search.hpp's, the selection host/portable/nearest_selection.hpp's: both
// also run in the CPU tests; this file holds the device's part.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "partitioned_join.hpp"
#include "staging.cuh"
#include "portable/nearest_selection.hpp"
#include "tiled_row_search.hpp"
#include "ringscan/context.hpp"
#include "ringscan/error.hpp"

namespace ringscan::cuda {
namespace {

constexpr int kSelectThreads = 256;
constexpr int kRowThreads = 256;
constexpr int64_t kUploadRows = 16384;       // rows per pinned staging chunk

constexpr int kWarp = 32;
static_assert(kRowThreads % kWarp == 0, "whole warps per block");

/// Converts a chunk of fp32 rows to the stored type and records each row's squared norm
/// (from the fp32 values). One warp per row, its lanes on consecutive elements, so that the
/// loads and stores coalesce; each lane sums every 32nd element and the warp adds the lanes'
/// sums in a fixed order, so a row's norm is the same on every run (FAISS on the CPU sums in
/// its own order, one reason the account index's neighbours may differ from the CPU's at
/// near-ties).
template <class Stored>
__global__ void store_rows_kernel(const float* chunk, int64_t rows, int64_t d, Stored* out,
                                  float* norms) {
  const int lane = int(threadIdx.x) % kWarp;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarp);
  // r is the same for the whole warp, so every lane takes part in the shuffles.
  for (int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; r < rows; r += warps) {
    float s = 0;
    for (int64_t i = lane; i < d; i += kWarp) {
      const float v = chunk[r * d + i];
      s += v * v;
      out[r * d + i] = Stored(v);
    }
    for (int offset = kWarp / 2; offset > 0; offset /= 2) s += __shfl_down_sync(0xffffffffu, s, offset);
    if (lane == 0) norms[r] = s;
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

/// Raises, never lowers, a kernel's limit of dynamic shared memory. The attribute is per
/// kernel and process-wide: a search with a smaller tile must not lower it beneath the launch
/// of another search alive at the same time. Above 48 KiB (static and dynamic together) a
/// kernel must opt in; below, the opt-in is harmless.
void allow_dynamic_shared_memory(const void* kernel, size_t bytes) {
  static std::mutex mutex;
  static std::unordered_map<const void*, size_t> allowed;
  const std::lock_guard<std::mutex> lock(mutex);
  size_t& current = allowed[kernel];
  if (bytes <= current) return;
  RINGSCAN_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  current = bytes;
}

/// out [n x d] = rows[ids[i]] for i < n: a cell's rows made contiguous for the GEMM.
template <class Stored>
__global__ void gather_rows_kernel(const Stored* rows, int64_t d, const int64_t* ids, int64_t n,
                                   Stored* out) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n * d;
       t += int64_t(gridDim.x) * blockDim.x)
    out[t] = rows[ids[t / d] * d + t % d];
}

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
    copy_with_threads(x + first * d, rows * d, pinned[s].data());
    RINGSCAN_CUDA_TRY(cudaMemcpyAsync(staging[s].data(), pinned[s].data(), sizeof(float) * size_t(rows * d),
                                      cudaMemcpyHostToDevice, streams[s].get()));
    const int blocks = int(std::min<int64_t>((rows * kWarp + kRowThreads - 1) / kRowThreads, 4096));
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

/// The CUDA device as TiledRowSearch drives it (host/tiled_row_search.hpp): device
/// memory, the kernels above and cuBLAS, all on one stream of its own.
template <class Stored>
class CudaSearchDevice {
 public:
  template <class T>
  using Buffer = DeviceBuffer<T>;

  int select_threads() const { return kSelectThreads; }
  /// The two pinned chunks of upload_rows and their two device staging buffers.
  int64_t staging_bytes(int64_t n, int64_t d) const { return 4 * std::min(kUploadRows, n) * d * 4; }
  void store_rows(const float* x, int64_t n, int64_t d, Stored* rows, float* norms) {
    upload_rows(x, n, d, rows, norms);
  }
  void upload(const int64_t* host, int64_t n, int64_t* device) {
    RINGSCAN_CUDA_TRY(cudaMemcpyAsync(device, host, sizeof(int64_t) * size_t(n), cudaMemcpyHostToDevice,
                                      stream_.get()));
  }
  void gather(const Stored* rows, int64_t d, const int64_t* ids, int64_t n, Stored* out) {
    const int blocks = int(std::min<int64_t>((n * d + kRowThreads - 1) / kRowThreads, 65536));
    gather_rows_kernel<<<blocks, kRowThreads, 0, stream_.get()>>>(rows, d, ids, n, out);
    RINGSCAN_CUDA_TRY(cudaGetLastError());
  }
  void inner_products(const Stored* q, int64_t nq, const Stored* c, int64_t nc, int64_t d, float* scores) {
    ::ringscan::cuda::inner_products(blas_.get(), q, nq, c, nc, d, scores);
  }
  void clear(int* counts, int64_t n) {
    RINGSCAN_CUDA_TRY(cudaMemsetAsync(counts, 0, sizeof(int) * size_t(n), stream_.get()));
  }
  void select(const portable::SelectionTile& tile, int64_t queries) {
    const size_t shared_bytes = size_t(tile.slots) * (sizeof(float) + sizeof(int64_t));
    allow_dynamic_shared_memory(reinterpret_cast<const void*>(select_nearest_kernel), shared_bytes);
    select_nearest_kernel<<<unsigned(queries), kSelectThreads, shared_bytes, stream_.get()>>>(tile);
    RINGSCAN_CUDA_TRY(cudaGetLastError());
  }
  template <class T>
  void download(const T* device, int64_t n, T* host) {
    RINGSCAN_CUDA_TRY(cudaMemcpyAsync(host, device, sizeof(T) * size_t(n), cudaMemcpyDeviceToHost,
                                      stream_.get()));
  }
  void synchronize() { RINGSCAN_CUDA_TRY(cudaStreamSynchronize(stream_.get())); }

 private:
  Stream stream_;
  CublasHandle blas_{stream_.get()};
};

template <class Stored>
using DeviceRowSearch = TiledRowSearch<Stored, CudaSearchDevice<Stored>>;

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
