// RINGSCAN_HD marks functions compiled for both the host and the device: by g++ for the host
// stages and by nvcc for the kernels, so the CPU tests exercise what the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define RINGSCAN_HD __host__ __device__
#else
#define RINGSCAN_HD
#endif
