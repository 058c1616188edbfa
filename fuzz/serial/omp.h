// The two OpenMP calls the loader's sources make, for the serial fuzz build: the fuzzer
// runs the loader on one thread, and LLVM's OpenMP runtime leaves a file in /dev/shm behind
// every process that dies, which the fuzzer's crashing inputs do by design.
#pragma once
inline int omp_get_max_threads() { return 1; }
inline void omp_set_num_threads(int) {}
