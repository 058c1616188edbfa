// Counter-based randomness: every entity gets its own stream from (seed, kind, index), so
// generation is deterministic whatever the thread count or chunking.
#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.hpp"

namespace ringscan {

/// SplitMix64 finaliser: a bijective 64-bit mix.
RINGSCAN_HD inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline uint64_t stream_key(uint64_t seed, uint64_t kind, uint64_t index) {
  return mix64(mix64(seed ^ mix64(kind)) ^ mix64(index + 0x51ed2701ULL));
}

/// Small, fast generator (xoshiro256**) seeded from a stream key.
class Rng {
 public:
  explicit Rng(uint64_t key) {
    for (auto& s : s_) s = key = mix64(key);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform integer in [0, n).
  int64_t below(int64_t n) { return static_cast<int64_t>(uniform() * static_cast<double>(n)); }
  bool chance(double p) { return uniform() < p; }
  /// Standard normal (Box-Muller; one value per call keeps the stream simple).
  double normal() {
    double u1 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * uniform());
  }
  /// Log-normal with the given mean and log-space sigma.
  double lognormal_with_mean(double mean, double sigma) {
    return mean * std::exp(sigma * normal() - 0.5 * sigma * sigma);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace ringscan
