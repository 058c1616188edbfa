// A corpus of damaged copies of a valid input file, fixed by a seed: the untrusted-input
// tests run it through the CLI and the fuzzer takes it as seed corpus.
#pragma once
#include <hdf5.h>

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

/// Writes a small valid input file (12 requests, 4 accounts, every dataset of the schema,
/// contiguous storage: a few KiB, so that damage lands in structure more than in padding).
inline bool write_compact_input(const std::string& path) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return false;
  const hid_t links = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(links, 1);
  bool ok = true;
  const auto write = [&](hid_t owner, const char* name, hid_t type, std::vector<hsize_t> dims,
                         hid_t memtype, const void* data, bool attribute = false) {
    const hid_t space = dims.empty() ? H5Screate(H5S_SCALAR)
                                     : H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    if (attribute) {
      const hid_t a = H5Acreate2(owner, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
      ok = ok && a >= 0 && H5Awrite(a, memtype, data) >= 0;
      H5Aclose(a);
    } else {
      const hid_t d = H5Dcreate2(owner, name, type, space, links, H5P_DEFAULT, H5P_DEFAULT);
      ok = ok && d >= 0 && H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
      H5Dclose(d);
    }
    H5Sclose(space);
  };
  const hid_t text = H5Tcopy(H5T_C_S1);
  H5Tset_size(text, H5T_VARIABLE);
  const char* format = "ringscan";
  const int64_t version = 1;
  write(file, "format", text, {}, text, &format, true);
  write(file, "version", H5T_STD_I64LE, {}, H5T_NATIVE_INT64, &version, true);
  std::vector<int64_t> account, time;
  std::vector<float> embedding;
  for (int i = 0; i < 12; ++i) {
    account.push_back(100 + i % 4);
    time.push_back(1700000000 + 60 * i);
    for (int j = 0; j < 4; ++j) embedding.push_back(float((i * 7 + j * 3) % 5) - 2.0f);
  }
  const std::vector<int64_t> ids{100, 101, 102, 103}, label{0, 0, -1, -1};
  const std::vector<float> features{1, 2, 1, 2, 5, 1, 3, 3};
  write(file, "/requests/account", H5T_STD_I64LE, {12}, H5T_NATIVE_INT64, account.data());
  write(file, "/requests/embedding", H5T_IEEE_F32LE, {12, 4}, H5T_NATIVE_FLOAT, embedding.data());
  write(file, "/requests/time", H5T_STD_I64LE, {12}, H5T_NATIVE_INT64, time.data());
  write(file, "/accounts/id", H5T_STD_I64LE, {4}, H5T_NATIVE_INT64, ids.data());
  write(file, "/accounts/features", H5T_IEEE_F32LE, {4, 2}, H5T_NATIVE_FLOAT, features.data());
  write(file, "/accounts/label", H5T_STD_I64LE, {4}, H5T_NATIVE_INT64, label.data());
  const hid_t features_set = H5Dopen2(file, "/accounts/features", H5P_DEFAULT);
  const char* names[] = {"rate", "tokens"};
  write(features_set, "names", text, {2}, text, names, true);
  H5Dclose(features_set);
  H5Tclose(text);
  H5Pclose(links);
  return H5Fclose(file) >= 0 && ok;
}

/// The bytes of a file ("" when it cannot be read).
inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace ringscan::testing
