// A corpus of damaged copies of a valid input file, fixed by a seed: the untrusted-input
// tests run it through the CLI and the fuzzer takes it as seed corpus.
#pragma once
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace ringscan::testing {

/// One damaged copy: its file name and its bytes.
struct CorruptFile {
  std::string name;
  std::string bytes;
};

/// `truncations` prefixes of `valid` (a third of them inside the first 4 KiB, where the
/// superblock and the root group live) and `flips` copies with one bit flipped (half in
/// the first 4 KiB, half anywhere), drawn from std::mt19937_64(seed).
inline std::vector<CorruptFile> corrupt_corpus(const std::string& valid, int truncations,
                                               int flips, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<CorruptFile> out;
  const uint64_t size = valid.size();
  const uint64_t head = std::min<uint64_t>(size, 4096);
  const auto below = [&rng](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  for (int i = 0; i < truncations; ++i) {
    const uint64_t keep = 1 + below(i % 3 == 0 ? head - 1 : size - 1);
    out.push_back({"truncated-" + std::to_string(i) + "-at-" + std::to_string(keep) + ".h5",
                   valid.substr(0, keep)});
  }
  for (int i = 0; i < flips; ++i) {
    const uint64_t at = below(i % 2 == 0 ? head : size);
    const int bit = int(below(8));
    std::string bytes = valid;
    bytes[at] = char(uint8_t(bytes[at]) ^ (1u << bit));
    out.push_back({"flipped-" + std::to_string(i) + "-byte-" + std::to_string(at) + "-bit-" +
                       std::to_string(bit) + ".h5",
                   std::move(bytes)});
  }
  return out;
}

/// The bytes of a file ("" when it cannot be read).
inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace ringscan::testing
