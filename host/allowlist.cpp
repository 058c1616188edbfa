// What an investigator knows: the allowlist of `detect --allow` (accounts and infrastructure
// tokens known to be legitimate) and the seeds of `detect --seeds` (accounts known to be in
// rings), as text files or HDF5 files.
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "hdf5_handle.hpp"
#include "ringscan/error.hpp"
#include "ringscan/pipeline.hpp"

namespace ringscan {
namespace {

/// Whether `path` starts with the HDF5 signature (a superblock at offset 0).
bool is_hdf5(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  return in.read(head, 8) && std::memcmp(head, "\x89HDF\r\n\x1a\n", 8) == 0;
}

/// An HDF5 file of accounts or tokens, opened read-only; InvalidInput naming it otherwise.
class ListFile {
 public:
  ListFile(const std::string& path, const char* what, int64_t memory_budget) : path_(path), budget_(memory_budget) {
    file_ = h5::Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file_.valid()) throw InvalidInput(path + ": cannot open the " + what + " (HDF5): " + h5::last_error());
  }

  /// Whether the link `name` ("/group/dataset") exists, every level of it.
  bool has(const std::string& name) const {
    for (std::size_t at = name.find('/', 1);; at = name.find('/', at + 1)) {
      const std::string prefix = at == std::string::npos ? name : name.substr(0, at);
      if (H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      if (at == std::string::npos) return true;
    }
  }

  /// The names of the links in group `name`, in name order.
  std::vector<std::string> links(const std::string& name) const {
    const h5::Handle group(H5Gopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Gclose);
    if (!group.valid()) throw InvalidInput(path_ + ": " + name + ": not a group");
    H5G_info_t info{};
    if (H5Gget_info(group.get(), &info) < 0) throw InvalidInput(path_ + ": " + name + ": cannot list the group");
    std::vector<std::string> names;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const ssize_t length = H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (length < 0) throw InvalidInput(path_ + ": " + name + ": cannot list the group");
      std::string link(std::size_t(length) + 1, '\0');
      H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, link.data(), link.size(), H5P_DEFAULT);
      link.resize(std::size_t(length));
      names.push_back(std::move(link));
    }
    return names;
  }

  /// The values of the one-dimensional integer dataset `name`.
  std::vector<int64_t> integers(const std::string& name) const {
    auto fail = [&](const std::string& problem) -> std::vector<int64_t> {
      throw InvalidInput(path_ + ": " + name + ": " + problem);
    };
    const h5::Handle set(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!set.valid()) return fail("cannot open the dataset: " + h5::last_error());
    const h5::Handle type(H5Dget_type(set.get()), H5Tclose);
    if (!type.valid() || H5Tget_class(type.get()) != H5T_INTEGER) return fail("not an integer dataset");
    const h5::Handle space(H5Dget_space(set.get()), H5Sclose);
    if (!space.valid() || H5Sget_simple_extent_ndims(space.get()) != 1) return fail("not one-dimensional");
    hsize_t rows = 0;
    H5Sget_simple_extent_dims(space.get(), &rows, nullptr);
    if (budget_ > 0 && double(rows) * 8 > double(budget_))
      throw BudgetExceeded(path_ + ": " + name + ": " + std::to_string(rows) + " rows do not fit the memory budget");
    std::vector<int64_t> values(rows);
    if (rows > 0 && H5Dread(set.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0)
      return fail("cannot read: " + h5::last_error());
    return values;
  }

 private:
  std::string path_;
  int64_t budget_;
  h5::Handle file_;
};

/// The whole of `text` as a decimal int64, or false.
bool parse_int64(const std::string& text, int64_t* value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  const auto [at, error] = std::from_chars(text.data(), end, *value);
  return error == std::errc() && at == end;
}

std::string trimmed(const std::string& line) {
  const auto first = line.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

std::vector<int64_t> read_seed_accounts(const std::string& path, int64_t memory_budget) {
  if (is_hdf5(path)) {
    const h5::QuietErrors quiet;
    const ListFile f(path, "seed accounts", memory_budget);
    if (f.has("/seeds")) return f.integers("/seeds");
    // The output of an earlier run: the accounts it reported in rings.
    if (f.has("/accounts/id") && f.has("/accounts/ring")) {
      const std::vector<int64_t> id = f.integers("/accounts/id"), ring = f.integers("/accounts/ring");
      if (id.size() != ring.size())
        throw InvalidInput(path + ": /accounts/ring has " + std::to_string(ring.size()) + " rows for " +
                           std::to_string(id.size()) + " accounts");
      std::vector<int64_t> seeds;
      for (std::size_t i = 0; i < id.size(); ++i)
        if (ring[i] >= 0) seeds.push_back(id[i]);
      return seeds;
    }
    throw InvalidInput(path + ": seed accounts: no /seeds dataset, and not a detect output (/accounts/id and /accounts/ring)");
  }
  std::ifstream in(path);
  if (!in) throw InvalidInput(path + ": cannot open the seed accounts");
  std::vector<int64_t> seeds;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    const std::string entry = trimmed(line);
    if (entry.empty() || entry[0] == '#') continue;
    int64_t id = 0;
    if (!parse_int64(entry, &id))
      throw InvalidInput(path + ": line " + std::to_string(number) + ": '" + entry + "' is not an account id (an integer)");
    seeds.push_back(id);
  }
  if (in.bad()) throw InvalidInput(path + ": cannot read the seed accounts");
  return seeds;
}

Allowlist read_allowlist(const std::string& path, int64_t memory_budget) {
  Allowlist allow;
  allow.source = path;
  if (is_hdf5(path)) {
    const h5::QuietErrors quiet;
    const ListFile f(path, "allowlist", memory_budget);
    if (!f.has("/allow")) throw InvalidInput(path + ": allowlist: no /allow group");
    // /allow/accounts holds account ids; every other dataset of /allow is a token kind.
    for (const std::string& name : f.links("/allow")) {
      const std::vector<int64_t> values = f.integers("/allow/" + name);
      if (name == "accounts") {
        allow.accounts.insert(allow.accounts.end(), values.begin(), values.end());
        continue;
      }
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (values[i] == 0)
          throw InvalidInput(path + ": /allow/" + name + ": row " + std::to_string(i) + " is token 0, which means unknown");
        allow.tokens.emplace_back(name, values[i]);
      }
    }
    if (allow.empty()) throw InvalidInput(path + ": allowlist: /allow holds no accounts and no tokens");
    return allow;
  }
  std::ifstream in(path);
  if (!in) throw InvalidInput(path + ": cannot open the allowlist");
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    const std::string entry = trimmed(line);
    if (entry.empty() || entry[0] == '#') continue;
    auto fail = [&](const std::string& problem) {
      throw InvalidInput(path + ": line " + std::to_string(number) + ": '" + entry + "' " + problem);
    };
    const auto colon = entry.find(':');
    int64_t value = 0;
    if (colon == std::string::npos) {
      if (!parse_int64(entry, &value)) fail("is not an account id (an integer) or a token KIND:VALUE");
      allow.accounts.push_back(value);
      continue;
    }
    const std::string kind = trimmed(entry.substr(0, colon));
    if (kind.empty()) fail("has no token kind before ':'");
    if (!parse_int64(trimmed(entry.substr(colon + 1)), &value)) fail("has no integer token value after ':'");
    if (value == 0) fail("names token 0, which means unknown");
    allow.tokens.emplace_back(kind, value);
  }
  if (in.bad()) throw InvalidInput(path + ": cannot read the allowlist");
  return allow;
}

}  // namespace ringscan
