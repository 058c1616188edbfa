// Shareable indicators of rings: taken from one file's rings, written and read back, matched
// against another file of the same operators (flagged) and of others (not), and malformed
// indicator files refused with the file and the field named.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "ringscan/error.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/indicators.hpp"
#include "ringscan/pipeline.hpp"

using namespace ringscan;

namespace {

Context two_threads() {
  Context ctx;
  ctx.threads = 2;
  return ctx;
}

/// 3,000 accounts with infrastructure; `operators` fixes the rings (their pools, proxies,
/// cards), `seed` everything else.
Dataset generated(uint64_t seed, uint64_t operators) {
  GenerateOptions g;
  g.accounts = 3000;
  g.dim = 64;
  g.seed = seed;
  g.operator_seed = operators;
  g.infrastructure = true;
  return generate_in_memory(g, two_threads());
}

/// A path of this process's own: ctest runs each test in a process of its own, several at
/// once, and each writes and removes the first file's indicators.
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("ringscan-indicators-" + std::to_string(getpid()) + "-" + name))
      .string();
}

/// Indicators of the rings of the file of `seed` and `operators`, through a file on disk.
const Indicators& indicators_of_first_file() {
  static const Indicators read = [] {
    DetectOptions o;
    o.collect_indicators = true;
    const DetectionResult r = detect_rings(generated(21, 700), o, two_threads());
    EXPECT_FALSE(r.rings.empty());
    EXPECT_EQ(r.indicators.rings.size(), r.rings.size());
    const std::string path = temp_path("first.json");
    write_indicators(path, r.indicators);
    Indicators back = read_indicators(path, int64_t(1) << 30);
    std::remove(path.c_str());
    return back;
  }();
  return read;
}

struct Flagged {
  int64_t ring_members = 0, members_flagged = 0, others_flagged = 0;
};

Flagged match(const Dataset& d) {
  DetectOptions o;
  o.known_indicators = indicators_of_first_file();
  const DetectionResult r = detect_rings(d, o, two_threads());
  EXPECT_EQ(r.indicator_matches.size(), d.account_ids.size());
  Flagged f;
  for (std::size_t a = 0; a < d.account_ids.size(); ++a) {
    const bool member = d.labels[a] >= 0, flagged = r.indicator_matches[a].ring >= 0;
    f.ring_members += member;
    f.members_flagged += member && flagged;
    f.others_flagged += !member && flagged;
  }
  return f;
}

TEST(Indicators, OfOneFileFlagTheSameOperatorsNewAccountsInAnother) {
  const Flagged f = match(generated(22, 700));
  ASSERT_GT(f.ring_members, 0);
  EXPECT_GE(double(f.members_flagged) / double(f.ring_members), 0.9);
  EXPECT_EQ(f.others_flagged, 0);
}

TEST(Indicators, FlagNobodyInAFileOfOtherOperators) {
  const Flagged f = match(generated(23, 701));
  EXPECT_EQ(f.members_flagged + f.others_flagged, 0);
}

TEST(Indicators, HoldUnitPromptsRareTokensAndSpans) {
  const Indicators& known = indicators_of_first_file();
  EXPECT_EQ(known.dim, 64);
  ASSERT_FALSE(known.rings.empty());
  for (const RingIndicator& r : known.rings) {
    EXPECT_GE(r.size, 3);
    ASSERT_GE(r.num_prompts(known.dim), 1);
    EXPECT_LE(r.num_prompts(known.dim), kIndicatorPrompts);
    for (int64_t k = 0; k < r.num_prompts(known.dim); ++k) {
      double norm = 0;
      for (int64_t d = 0; d < known.dim; ++d) norm += double(r.prompts[k * known.dim + d]) * r.prompts[k * known.dim + d];
      EXPECT_NEAR(norm, 1.0, 1e-4);
    }
    for (const SharedTokenExample& t : r.tokens) {
      EXPECT_NE(t.token, 0);
      EXPECT_GE(t.accounts_in_ring, 2);
      EXPECT_GE(t.accounts_overall, t.accounts_in_ring);
    }
    EXPECT_GT(r.first_seen, 0);
    EXPECT_GE(r.last_seen, r.first_seen);
  }
}

TEST(Indicators, OfAnotherEmbeddingWidthAreRefusedNamingTheFile) {
  Indicators wrong = indicators_of_first_file();
  wrong.dim = 32;
  for (RingIndicator& r : wrong.rings) r.prompts.resize(std::size_t(r.num_prompts(64)) * 32);
  DetectOptions o;
  o.known_indicators = wrong;
  o.known_indicators_source = "known.json";
  try {
    detect_rings(generated(22, 700), o, two_threads());
    FAIL() << "no error";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("known.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("width 32"), std::string::npos) << e.what();
  }
}

TEST(Indicators, MalformedFilesAreRefusedNamingTheFileAndTheField) {
  const std::string path = temp_path("malformed.json");
  const std::string ring = R"({"ring": 0, "size": 3, "prompts": [[1, 0]], "tokens": [{"kind": "ip24", "value": 5}]})";
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"format": "other", "version": 1, "dim": 2, "rings": []})", "format"},
      {R"({"format": "ringscan-indicators", "version": 2, "dim": 2, "rings": []})", "version 2"},
      {R"({"format": "ringscan-indicators", "version": 1, "dim": 0, "rings": []})", "dim"},
      {R"({"format": "ringscan-indicators", "version": 1, "dim": 2})", "rings"},
      {R"({"format": "ringscan-indicators", "version": 1, "dim": 2, "rings": [{"size": 3}]})", "rings[0]: no 'ring'"},
      {R"({"format": "ringscan-indicators", "version": 1, "dim": 3, "rings": [)" + ring + "]}", "rings[0].prompts[0]"},
      {R"({"format": "ringscan-indicators", "version": 1, "dim": 2, "rings": [{"ring": 0, "prompts": [[0, 0]]}]})",
       "zero vector"},
      {R"({"format": "ringscan-indicators", "version": 1, "dim": 2, "rings": [{"ring": 0, "prompts": [[1, "x"]]}]})",
       "not a finite number"},
      {R"({"format": "ringscan-indicators", "version": 1, "dim": 2, "rings": [{"ring": 0, "tokens": [{"kind": "ip24", "value": 0}]}]})",
       "tokens[0].value"},
      {R"({"format": "ringscan-indicators", "version": 1, "dim": 2, "rings": [{"ring": 0, "tokens": [{"value": 4}]}]})",
       "kind"},
  };
  for (const auto& [text, expected] : cases) {
    std::ofstream(path) << text;
    try {
      read_indicators(path, int64_t(1) << 30);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const InvalidInput& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      EXPECT_NE(message.find(expected), std::string::npos) << "expected '" << expected << "' in: " << message;
    }
  }
  // A valid one reads, with its prompt made unit length.
  std::ofstream(path) << R"({"format": "ringscan-indicators", "version": 1, "dim": 2, "rings": [)" << ring << "]}";
  const Indicators ok = read_indicators(path, int64_t(1) << 30);
  ASSERT_EQ(ok.rings.size(), 1u);
  EXPECT_EQ(ok.rings[0].tokens.at(0).kind, "ip24");
  EXPECT_FLOAT_EQ(ok.rings[0].prompts.at(0), 1.0f);
  // A file larger than the budget allows is refused before it is parsed.
  EXPECT_THROW(read_indicators(path, 100), BudgetExceeded);
  std::remove(path.c_str());
  EXPECT_THROW(read_indicators(path, int64_t(1) << 30), InvalidInput);
}

}  // namespace
