// Exact nearest rows on the device: cuBLAS GEMM tiles of inner products and a fused selection
// kernel that keeps, per query, the `cap` closest rows (optionally within a radius) in shared
// memory. Requests are streamed to the device in chunks through pinned buffers on two
// streams, converted to fp16 on the way when asked, so copies overlap the conversion.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_buffer.cuh"
#include "ringscan/context.hpp"
#include "ringscan/error.hpp"

namespace ringscan::cuda {
namespace {

constexpr int kSelectThreads = 256;
constexpr int kRowThreads = 256;
constexpr int64_t kUploadRows = 16384;       // rows per pinned staging chunk
constexpr int64_t kQueryBlock = 4096;        // queries per GEMM tile (upper bound)
constexpr int64_t kMinColumnTile = 1024;

constexpr float kNoDistance = std::numeric_limits<float>::infinity();
constexpr int64_t kNoRow = std::numeric_limits<int64_t>::max();

/// Strict total order of candidates: distance, then row.
__device__ inline bool closer(float da, int64_t ia, float db, int64_t ib) {
  return da < db || (da == db && ia < ib);
}

/// Converts a chunk of fp32 rows to the stored type and records each row's squared norm
/// (summed in row order in float, as the CPU's exact search does for its own norms).
template <class Stored>
__global__ void store_rows(const float* chunk, int64_t rows, int64_t d, Stored* out, float* norms) {
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

/// Sorts the m (a power of two) candidates in shared memory by (distance, row), keeps the
/// first `cap`, and updates the count and the admission threshold (the cap-th distance).
__device__ void merge_candidates(float* dist, int64_t* row, int m, int cap, int* fill,
                                 float* worst_dist, int64_t* worst_row) {
  __syncthreads();
  const int valid = *fill;
  for (int t = valid + threadIdx.x; t < m; t += blockDim.x) {
    dist[t] = kNoDistance;
    row[t] = kNoRow;
  }
  __syncthreads();
  for (int k = 2; k <= m; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < m; i += blockDim.x) {
        const int partner = i ^ j;
        if (partner <= i) continue;
        const bool ascending = (i & k) == 0;
        const bool swap = ascending ? closer(dist[partner], row[partner], dist[i], row[i])
                                    : closer(dist[i], row[i], dist[partner], row[partner]);
        if (swap) {
          const float td = dist[i];
          dist[i] = dist[partner];
          dist[partner] = td;
          const int64_t tr = row[i];
          row[i] = row[partner];
          row[partner] = tr;
        }
      }
      __syncthreads();
    }
  if (threadIdx.x == 0) {
    *fill = min(valid, cap);
    if (*fill == cap) {
      *worst_dist = dist[cap - 1];
      *worst_row = row[cap - 1];
    }
  }
  __syncthreads();
}

/// One block per query of the tile: scans its row of inner products with columns
/// [c0, c0 + columns), turns them into squared distances and merges the admissible ones into
/// the query's running list (best_*, cap entries per query, sorted).
__global__ void select_nearest(const float* scores, int64_t columns, int64_t q0, int64_t c0,
                               const float* norms, float radius, int cap, int m, float* best_dist,
                               int64_t* best_row, int* best_count) {
  extern __shared__ unsigned char shared[];
  int64_t* row = reinterpret_cast<int64_t*>(shared);  // 8-byte aligned first
  float* dist = reinterpret_cast<float*>(row + m);
  __shared__ int fill;
  __shared__ float worst_dist;
  __shared__ int64_t worst_row;
  const int64_t qi = blockIdx.x, q = q0 + qi;
  const int have = best_count[qi];
  for (int t = threadIdx.x; t < have; t += blockDim.x) {
    dist[t] = best_dist[qi * cap + t];
    row[t] = best_row[qi * cap + t];
  }
  if (threadIdx.x == 0) {
    fill = have;
    worst_dist = have == cap ? best_dist[qi * cap + cap - 1] : kNoDistance;
    worst_row = have == cap ? best_row[qi * cap + cap - 1] : kNoRow;
  }
  __syncthreads();
  const float query_norm = norms[q];
  const float* scores_of_query = scores + qi * columns;
  for (int64_t base = 0; base < columns; base += blockDim.x) {
    const int64_t j = base + threadIdx.x;
    if (j < columns && c0 + j != q) {
      const int64_t other = c0 + j;
      const float d2 = fmaxf(query_norm + norms[other] - 2.0f * scores_of_query[j], 0.0f);
      if ((radius < 0 || d2 <= radius) && closer(d2, other, worst_dist, worst_row)) {
        const int at = atomicAdd(&fill, 1);
        dist[at] = d2;
        row[at] = other;
      }
    }
    __syncthreads();
    const bool full = fill > m - int(blockDim.x);  // room for one more round, else merge
    __syncthreads();
    if (full) merge_candidates(dist, row, m, cap, &fill, &worst_dist, &worst_row);
  }
  merge_candidates(dist, row, m, cap, &fill, &worst_dist, &worst_row);
  for (int t = threadIdx.x; t < fill; t += blockDim.x) {
    best_dist[qi * cap + t] = dist[t];
    best_row[qi * cap + t] = row[t];
  }
  if (threadIdx.x == 0) best_count[qi] = fill;
}

int64_t next_power_of_two(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
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
    store_rows<<<blocks, kRowThreads, 0, streams[s].get()>>>(staging[s].data(), rows, d,
                                                             stored + first * d, norms + first);
    RINGSCAN_CUDA_TRY(cudaGetLastError());
  }
  for (auto& s : streams) RINGSCAN_CUDA_TRY(cudaStreamSynchronize(s.get()));
}

/// Inner products of query rows [q0, q0 + nq) with column rows [c0, c0 + nc): scores [nq x nc]
/// row-major, i.e. the column-major nc x nq product X_c^T X_q.
void inner_products(cublasHandle_t handle, const float* x, int64_t d, int64_t q0, int64_t nq,
                    int64_t c0, int64_t nc, float* scores) {
  const float one = 1.0f, zero = 0.0f;
  RINGSCAN_CUDA_TRY(CublasLibrary::get().sgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(nc), int(nq), int(d), &one,
                                x + c0 * d, int(d), x + q0 * d, int(d), &zero, scores, int(nc)));
}
void inner_products(cublasHandle_t handle, const __half* x, int64_t d, int64_t q0, int64_t nq,
                    int64_t c0, int64_t nc, float* scores) {
  const float one = 1.0f, zero = 0.0f;
  RINGSCAN_CUDA_TRY(CublasLibrary::get().gemm_ex(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(nc), int(nq), int(d), &one,
                                 x + c0 * d, CUDA_R_16F, int(d), x + q0 * d, CUDA_R_16F, int(d),
                                 &zero, scores, CUDA_R_32F, int(nc), CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
}

template <class Stored>
RowNeighbours nearest_rows_as(const float* x, int64_t n, int64_t d, float radius, int64_t cap,
                              int64_t device_budget, const char* stage) {
  RowNeighbours result;
  result.offsets.assign(n + 1, 0);
  cap = std::min<int64_t>(cap, n - 1);
  if (n < 2 || cap < 1) return result;
  RINGSCAN_EXPECTS(cap <= 2048, std::string(stage) + ": at most 2048 neighbours per row on the device");
  RINGSCAN_EXPECTS(d <= std::numeric_limits<int>::max(), std::string(stage) + ": dimension too large");

  const int64_t m = next_power_of_two(cap + 2 * kSelectThreads);
  const size_t shared_bytes = size_t(m) * (sizeof(float) + sizeof(int64_t));
  // Fixed costs: the rows, their norms, the staging chunks; the rest goes to the score tile.
  const int64_t q_block = std::min(kQueryBlock, n);
  const int64_t fixed = n * d * int64_t(sizeof(Stored)) + n * 4 +
                        4 * std::min(kUploadRows, n) * d * 4 + q_block * cap * 12 + q_block * 4;
  const int64_t tile_bytes = device_budget - fixed;
  int64_t c_tile = std::min<int64_t>(n, tile_bytes / std::max<int64_t>(1, q_block * 4));
  c_tile = std::min<int64_t>(c_tile, std::numeric_limits<int>::max() / std::max<int64_t>(q_block, 1));
  if (c_tile < std::min(kMinColumnTile, n))
    throw BudgetExceeded(std::string(stage) + " on the device needs about " +
                         format_size(fixed + q_block * std::min(kMinColumnTile, n) * 4) +
                         ", more than the device memory budget of " + format_size(device_budget) +
                         " (raise --device-memory-budget, or run on the CPU)");

  DeviceBuffer<Stored> rows(n * d);
  DeviceBuffer<float> norms(n);
  upload_rows(x, n, d, rows.data(), norms.data());

  Stream stream;
  CublasHandle blas(stream.get());
  DeviceBuffer<float> scores(q_block * c_tile);
  DeviceBuffer<float> best_dist(q_block * cap);
  DeviceBuffer<int64_t> best_row(q_block * cap);
  DeviceBuffer<int> best_count(q_block);
  RINGSCAN_CUDA_TRY(cudaFuncSetAttribute(select_nearest, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         int(shared_bytes)));
  std::vector<float> host_dist(n * cap);
  std::vector<int64_t> host_row(n * cap);
  std::vector<int> count(n);
  for (int64_t q0 = 0; q0 < n; q0 += q_block) {
    const int64_t nq = std::min(q_block, n - q0);
    RINGSCAN_CUDA_TRY(cudaMemsetAsync(best_count.data(), 0, sizeof(int) * size_t(nq), stream.get()));
    for (int64_t c0 = 0; c0 < n; c0 += c_tile) {
      const int64_t nc = std::min(c_tile, n - c0);
      inner_products(blas.get(), rows.data(), d, q0, nq, c0, nc, scores.data());
      select_nearest<<<unsigned(nq), kSelectThreads, shared_bytes, stream.get()>>>(
          scores.data(), nc, q0, c0, norms.data(), radius, int(cap), int(m), best_dist.data(),
          best_row.data(), best_count.data());
      RINGSCAN_CUDA_TRY(cudaGetLastError());
    }
    RINGSCAN_CUDA_TRY(cudaMemcpyAsync(host_dist.data() + q0 * cap, best_dist.data(), sizeof(float) * size_t(nq * cap),
                                      cudaMemcpyDeviceToHost, stream.get()));
    RINGSCAN_CUDA_TRY(cudaMemcpyAsync(host_row.data() + q0 * cap, best_row.data(), sizeof(int64_t) * size_t(nq * cap),
                                      cudaMemcpyDeviceToHost, stream.get()));
    RINGSCAN_CUDA_TRY(cudaMemcpyAsync(count.data() + q0, best_count.data(), sizeof(int) * size_t(nq),
                                      cudaMemcpyDeviceToHost, stream.get()));
    RINGSCAN_CUDA_TRY(cudaStreamSynchronize(stream.get()));
  }
  for (int64_t q = 0; q < n; ++q) result.offsets[q + 1] = result.offsets[q] + count[q];
  result.other.resize(result.offsets[n]);
  result.distance.resize(result.offsets[n]);
  for (int64_t q = 0; q < n; ++q) {
    std::copy_n(&host_row[q * cap], count[q], &result.other[result.offsets[q]]);
    std::copy_n(&host_dist[q * cap], count[q], &result.distance[result.offsets[q]]);
  }
  return result;
}

}  // namespace

RowNeighbours nearest_rows(const float* x, int64_t n, int64_t d, float radius, int64_t cap,
                           bool half_inputs, int64_t device_budget, const char* stage) {
  return half_inputs ? nearest_rows_as<__half>(x, n, d, radius, cap, device_budget, stage)
                     : nearest_rows_as<float>(x, n, d, radius, cap, device_budget, stage);
}

}  // namespace ringscan::cuda
