// What an investigator knows: the allowlist of `detect --allow` (accounts and infrastructure
// tokens known to be legitimate) and the seeds of `detect --seeds` (accounts known to be in
// rings).
#include <charconv>
#include <fstream>
#include <string>

#include "ringscan/error.hpp"
#include "ringscan/pipeline.hpp"

namespace ringscan {
namespace {

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

std::vector<int64_t> read_seed_accounts(const std::string& path) {
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

Allowlist read_allowlist(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InvalidInput(path + ": cannot open the allowlist");
  Allowlist allow;
  allow.source = path;
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
