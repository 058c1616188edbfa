// The `ringscan` executable as a user runs it: exit codes, messages, outputs left intact.
#include <gtest/gtest.h>
#include <hdf5.h>

#include "command.hpp"
#include "ringscan/context.hpp"
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using CliRun = ringscan::testing::CommandRun;

CliRun run(const std::string& args) { return ringscan::testing::run_command(std::string(RINGSCAN_CLI) + " " + args); }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "ringscan_cli_" + std::to_string(getpid());
    ASSERT_EQ(std::system(("mkdir -p " + dir_).c_str()), 0);
    const CliRun g = run("generate -q -o " + dir_ + "/in.h5 --accounts 1500 --dim 32 --seed 5");
    ASSERT_EQ(g.code, 0) << g.output;
  }
  static void TearDownTestSuite() { std::system(("rm -rf " + dir_).c_str()); }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static std::string dir_;
};
std::string Cli::dir_;

}  // namespace

TEST_F(Cli, GenerateInfoDetectEvaluateWorkEndToEnd) {
  const CliRun info = run("info " + path("in.h5"));
  EXPECT_EQ(info.code, 0) << info.output;
  EXPECT_NE(info.output.find("valid ringscan input"), std::string::npos);
  const CliRun detect = run("detect -q " + path("in.h5") + " -o " + path("out.h5") + " --report " + path("r.json"));
  ASSERT_EQ(detect.code, 0) << detect.output;
  EXPECT_NE(slurp(path("r.json")).find("\"rings\""), std::string::npos);
  const CliRun eval = run("evaluate -q " + path("out.h5") + " --truth " + path("in.h5"));
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("\"ring_recall\""), std::string::npos);
}

TEST_F(Cli, BadInputExitsTwoNamingTheFileAndLeavesTheOutputUntouched) {
  {
    std::ofstream bad(path("bad.h5"));
    bad << "not an hdf5 file\n";
    std::ofstream old(path("keep.h5"));
    old << "previous result\n";
  }
  const std::string before = slurp(path("keep.h5"));
  const CliRun r = run("detect -q " + path("bad.h5") + " -o " + path("keep.h5"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("bad.h5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ringscan: error:"), std::string::npos);
  EXPECT_EQ(slurp(path("keep.h5")), before);
  const CliRun info = run("info " + path("bad.h5"));
  EXPECT_EQ(info.code, 2) << info.output;
}

TEST_F(Cli, AFullDiskIsOneClearErrorAndLeavesTheEarlierOutput) {
  // A file size limit (ulimit -f, in KiB, with SIGXFSZ ignored) makes writes fail as a full
  // disk does: HDF5 cannot even close the file it was writing.
  const auto limited = [](int kib, const std::string& args) {
    return ringscan::testing::run_command("bash -c \"trap '' XFSZ; ulimit -f " + std::to_string(kib) + "; exec " +
                                          std::string(RINGSCAN_CLI) + " " + args + "\"");
  };
  const CliRun g = limited(200, "generate -q -o " + path("big.h5") + " --accounts 1500 --dim 32 --seed 6");
  EXPECT_EQ(g.code, 1) << g.output;
  EXPECT_NE(g.output.find("ringscan: error: " + path("big.h5") + ": cannot write"), std::string::npos) << g.output;
  EXPECT_NE(g.output.find("file write failed: File too large"), std::string::npos) << g.output;
  EXPECT_EQ(g.output.find("infinite loop"), std::string::npos) << g.output;
  EXPECT_NE(access(path("big.h5").c_str(), F_OK), 0);

  const CliRun first = run("detect -q " + path("in.h5") + " -o " + path("full.h5"));
  ASSERT_EQ(first.code, 0) << first.output;
  const std::string before = slurp(path("full.h5"));
  ASSERT_GT(before.size(), size_t(32) << 10);
  const CliRun again = limited(32, "detect -q " + path("in.h5") + " -o " + path("full.h5"));
  EXPECT_EQ(again.code, 1) << again.output;
  EXPECT_NE(again.output.find("File too large"), std::string::npos) << again.output;
  EXPECT_EQ(again.output.find("infinite loop"), std::string::npos) << again.output;
  EXPECT_EQ(slurp(path("full.h5")), before);
  std::size_t lines = 0;
  for (char c : again.output) lines += c == '\n';
  EXPECT_LE(lines, 2u) << again.output;  // the error, and perhaps a warning
}

TEST_F(Cli, AJobOverItsMemoryBudgetIsRefusedBeforeLoading) {
  const CliRun r = run("detect -q " + path("in.h5") + " -o " + path("small.h5") + " --memory-budget 1M");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("budget"), std::string::npos) << r.output;
  EXPECT_NE(access(path("small.h5").c_str(), F_OK), 0);
}

TEST_F(Cli, CudaDeviceWithoutADeviceIsInvalidUsage) {
  if (ringscan::build_info().cuda_devices > 0)
    GTEST_SKIP() << "a CUDA device is present: --device cuda is valid here";
  const CliRun r = run("detect -q " + path("in.h5") + " -o " + path("cuda.h5") + " --device cuda");
  EXPECT_EQ(r.code, 2) << r.output;
  const bool says_why = r.output.find("no CUDA device found") != std::string::npos ||
                        r.output.find("no CUDA backend") != std::string::npos;
  EXPECT_TRUE(says_why) << r.output;
  EXPECT_NE(access(path("cuda.h5").c_str(), F_OK), 0);
}

TEST_F(Cli, UnknownOptionsAndMissingArgumentsAreInvalidUsage) {
  EXPECT_EQ(run("detect").code, 2);
  EXPECT_EQ(run("detect " + path("in.h5") + " -o " + path("x.h5") + " --no-such-flag").code, 2);
  EXPECT_EQ(run("frobnicate").code, 2);
}

TEST_F(Cli, EvaluateWithoutGroundTruthIsInvalidInput) {
  ASSERT_EQ(run("detect -q " + path("in.h5") + " -o " + path("o2.h5")).code, 0);
  const CliRun r = run("evaluate -q " + path("o2.h5") + " --truth " + path("o2.h5"));
  EXPECT_EQ(r.code, 2) << r.output;
}

TEST_F(Cli, VersionListsTheBackends) {
  const CliRun r = run("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("cpu"), std::string::npos) << r.output;
}

TEST_F(Cli, DetectNamesTheEvidenceAnInputLacksAndStillReportsItsRings) {
  const CliRun g = run("generate -q -o " + path("required.h5") +
                       " --accounts 1500 --dim 32 --seed 6 --no-times --no-features");
  ASSERT_EQ(g.code, 0) << g.output;
  const CliRun d = run("detect -q " + path("required.h5") + " -o " + path("required.out.h5") + " --report " +
                       path("required.json"));
  ASSERT_EQ(d.code, 0) << d.output;
  EXPECT_NE(d.output.find("timing evidence off: the input has no /requests/time"), std::string::npos) << d.output;
  EXPECT_NE(d.output.find("behaviour evidence off: the input has no /accounts/features"), std::string::npos)
      << d.output;
  EXPECT_EQ(d.output.find("0 rings among"), std::string::npos) << d.output;
  const std::string report = slurp(path("required.json"));
  EXPECT_NE(report.find("\"notes\""), std::string::npos);
  EXPECT_NE(report.find("timing evidence off"), std::string::npos);
}

namespace {

bool file_exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

/// Lines of text (a final line without a newline counts).
int line_count(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n + (!text.empty() && text.back() != '\n');
}

}  // namespace

TEST_F(Cli, NoOutputMayReplaceAnInputOfItsCommandEvenThroughLinks) {
  ASSERT_EQ(run("detect -q " + path("in.h5") + " -o " + path("clobber.out.h5")).code, 0);
  std::remove(path("in.link.h5").c_str());
  std::remove(path("in.hard.h5").c_str());
  ASSERT_EQ(symlink(path("in.h5").c_str(), path("in.link.h5").c_str()), 0);
  ASSERT_EQ(link(path("in.h5").c_str(), path("in.hard.h5").c_str()), 0);
  const std::string input = slurp(path("in.h5")), output = slurp(path("clobber.out.h5"));
  const std::string evaluate = "evaluate -q " + path("clobber.out.h5") + " --truth " + path("in.h5") + " --json ";
  for (const std::string target : {"in.h5", "clobber.out.h5", "in.link.h5", "in.hard.h5"}) {
    const CliRun r = run(evaluate + path(target));
    EXPECT_EQ(r.code, 2) << target << ": " << r.output;
    EXPECT_NE(r.output.find("refusing to overwrite"), std::string::npos) << r.output;
  }
  const std::string detect = "detect -q " + path("in.h5") + " -o ";
  for (const std::string target : {"in.link.h5", "in.hard.h5"}) {
    const CliRun r = run(detect + path(target));
    EXPECT_EQ(r.code, 2) << target << ": " << r.output;
  }
  // Two outputs of one command on one file.
  const CliRun both = run(detect + path("clobber.out.h5") + " --report " + path("clobber.out.h5"));
  EXPECT_EQ(both.code, 2) << both.output;
  EXPECT_EQ(slurp(path("in.h5")), input);
  EXPECT_EQ(slurp(path("clobber.out.h5")), output);
}

TEST_F(Cli, ThreadCountsAboveTheCoresAreCappedWithAWarning) {
  const CliRun d = run("detect -q " + path("in.h5") + " -o " + path("threads.h5") + " --threads 100000");
  EXPECT_EQ(d.code, 0) << d.output;
  EXPECT_NE(d.output.find("--threads 100000 is more than the"), std::string::npos) << d.output;
  const CliRun g = run("generate -q -o " + path("threads.in.h5") + " --accounts 200 --dim 8 --threads 100000");
  EXPECT_EQ(g.code, 0) << g.output;
}

TEST_F(Cli, EveryOptionErrorIsOneLineAndExitTwoBeforeAnyFileIsRead) {
  {
    std::ofstream bad(path("unreadable.h5"));
    bad << "not an hdf5 file\n";
    std::ofstream allow(path("bad-allow.txt"));
    allow << "42\nip24:\n";
  }
  // The input is not HDF5: an error about the option, not about the file, shows the option
  // was checked first.
  const std::string detect = "detect " + path("unreadable.h5") + " -o " + path("never.h5") + " ";
  const std::string generate = "generate -o " + path("never.h5") + " ";
  const std::vector<std::string> cases = {
      detect + "--duplicate-similarity nan", detect + "--duplicate-similarity 0",
      detect + "--duplicate-similarity 1.5", detect + "--template-similarity 1.5",
      detect + "--template-similarity -0.1", detect + "--duplicate-neighbours 0",
      detect + "--time-window -5", detect + "--min-ring-size 0", detect + "--false-edges 0",
      detect + "--ring-threshold 2", detect + "--report-examples -1", detect + "--reduced-dim 4",
      detect + "--max-prompt-share 0", detect + "--min-core-degree 0", detect + "--account-neighbours -1",
      detect + "--exact-request-limit -1", detect + "--exact-account-limit -1", detect + "--read-timeout -1",
      detect + "--memory-budget 12Q", detect + "--device-memory-budget lots", detect + "--device gpu",
      detect + "--threads -1", detect + "--threads many", detect + "--no-such-flag", detect + "--time-window",
      detect + "--allow " + path("bad-allow.txt"), detect + "--allow " + path("no-such-allow.txt"),
      detect + "--seeds " + path("bad-allow.txt"), detect + "--seeds " + path("no-such-seeds.txt"),
      detect + "--indicators-in " + path("bad-allow.txt"), detect + "--indicators-in " + path("no-such.json"),
      "detect", "detect " + path("unreadable.h5"), "detect " + path("no-such-file.h5") + " -o " + path("never.h5"),
      generate + "--accounts 0", generate + "--dim 1", generate + "--ring-fraction 2", generate + "--days 0",
      generate + "--ring-cover 0.95", generate + "--noise-features 5 --no-features", "generate",
      generate + "--proxy-network 0.1", generate + "--infra --proxy-network 0.7",
      "evaluate " + path("unreadable.h5"), "evaluate " + path("unreadable.h5") + " --truth " + path("in.h5") +
          " --memory-budget -3",
      "info", "info " + path("unreadable.h5") + " --bogus", "frobnicate", "detect-rings " + path("in.h5")};
  for (const std::string& args : cases) {
    const CliRun r = run(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_EQ(line_count(r.output), 1) << args << ": " << r.output;
    EXPECT_EQ(r.output.rfind("ringscan: error: ", 0), 0u) << args << ": " << r.output;
    EXPECT_EQ(r.output.find("not an HDF5 file"), std::string::npos) << args << ": " << r.output;
    EXPECT_FALSE(file_exists(path("never.h5"))) << args;
  }
  EXPECT_NE(run("frobnicate").output.find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_NE(run(detect + "--allow " + path("bad-allow.txt")).output.find("bad-allow.txt: line 2"), std::string::npos);
}

TEST_F(Cli, IndicatorsWrittenByOneRunAreMatchedByAnother) {
  const CliRun out = run("detect -q " + path("in.h5") + " -o " + path("ind.out.h5") + " --indicators-out " +
                         path("ind.json"));
  ASSERT_EQ(out.code, 0) << out.output;
  EXPECT_NE(out.output.find(path("ind.json")), std::string::npos) << out.output;
  const auto indicators = nlohmann::json::parse(slurp(path("ind.json")));
  EXPECT_EQ(indicators["format"], "ringscan-indicators");
  ASSERT_FALSE(indicators["rings"].empty());
  // The same file matched against its own rings' indicators: their members are flagged.
  const CliRun in = run("detect -q " + path("in.h5") + " -o " + path("ind.in.h5") + " --indicators-in " +
                        path("ind.json") + " --report " + path("ind.report.json"));
  ASSERT_EQ(in.code, 0) << in.output;
  EXPECT_NE(in.output.find("indicators of " + path("ind.json")), std::string::npos) << in.output;
  const auto report = nlohmann::json::parse(slurp(path("ind.report.json")));
  ASSERT_FALSE(report["indicator_matches"].empty());
  EXPECT_GE(report["indicator_matches"][0]["accounts"].get<int64_t>(), 3);
  // Indicators of another embedding model are refused before the input is read: ahead of the
  // memory budget's check, which needs only the input's header.
  ASSERT_EQ(run("generate -q -o " + path("ind.narrow.h5") + " --accounts 200 --dim 16 --seed 5").code, 0);
  const CliRun narrow = run("detect -q " + path("ind.narrow.h5") + " -o " + path("ind.narrow.out.h5") +
                            " --indicators-in " + path("ind.json") + " --memory-budget 1M");
  EXPECT_EQ(narrow.code, 2) << narrow.output;
  EXPECT_NE(narrow.output.find(path("ind.json") + ": indicators: prompts of width 32"), std::string::npos)
      << narrow.output;
  EXPECT_FALSE(std::filesystem::exists(path("ind.narrow.out.h5")));
  // An indicators file is never an output's target.
  const CliRun clobber = run("detect -q " + path("in.h5") + " -o " + path("ind.again.h5") + " --indicators-in " +
                             path("ind.json") + " --indicators-out " + path("ind.json"));
  EXPECT_EQ(clobber.code, 2) << clobber.output;
}

TEST_F(Cli, AnEarlierOutputSeedsALaterRunThroughTheIsolatedReader) {
  const CliRun first = run("detect -q " + path("in.h5") + " -o " + path("seeding.out.h5") + " --report " +
                           path("seeding.json"));
  ASSERT_EQ(first.code, 0) << first.output;
  int64_t ring_accounts = 0;
  const auto seeding = nlohmann::json::parse(slurp(path("seeding.json")));
  for (const auto& ring : seeding["rings"]) ring_accounts += ring["size"].get<int64_t>();
  ASSERT_GT(ring_accounts, 0);
  const CliRun second = run("detect -q " + path("in.h5") + " -o " + path("seeded.out.h5") + " --seeds " +
                            path("seeding.out.h5") + " --report " + path("seeded.json"));
  ASSERT_EQ(second.code, 0) << second.output;
  const auto report = nlohmann::json::parse(slurp(path("seeded.json")));
  ASSERT_FALSE(report["rings"].empty());
  // The first run's ring members are the seeds, and the rings that hold them say so.
  EXPECT_EQ(report["statistics"]["seed_accounts"].get<double>(), double(ring_accounts));
  int64_t seeded = 0;
  for (const auto& ring : report["rings"]) seeded += ring["seeds"].get<int64_t>();
  EXPECT_EQ(seeded, ring_accounts);
  // An HDF5 file that is neither a seed list nor an output: exit 2, naming it.
  const CliRun bad = run("detect -q " + path("in.h5") + " -o " + path("never-seeded.h5") + " --seeds " + path("in.h5"));
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("no /seeds dataset"), std::string::npos) << bad.output;
  EXPECT_FALSE(file_exists(path("never-seeded.h5")));
}

TEST_F(Cli, TheRingsTableCountsTheGroupsSharedNotTheExamplesShown) {
  const CliRun d = run("detect -q " + path("in.h5") + " -o " + path("groups.h5") + " --report " +
                       path("groups.json") + " --report-examples 1");
  ASSERT_EQ(d.code, 0) << d.output;
  const auto report = nlohmann::json::parse(slurp(path("groups.json")));
  ASSERT_FALSE(report["rings"].empty());
  const int64_t shared = report["rings"][0]["evidence"]["shared_prompt_groups"];
  EXPECT_GE(shared, 1);
  EXPECT_EQ(report["rings"][0]["evidence"]["shared_prompt_examples"].size(), 1u);
  const std::string expected =
      "evidence: " + std::to_string(shared) + " shared prompt group" + (shared == 1 ? "" : "s") + " (1 shown";
  EXPECT_NE(d.output.find(expected), std::string::npos) << d.output;
}

TEST_F(Cli, ReportFloatsArePrintedAtTheirOwnPrecision) {
  ASSERT_EQ(run("detect -q " + path("in.h5") + " -o " + path("floats.h5") + " --report " + path("floats.json")).code,
            0);
  const auto report = nlohmann::json::parse(slurp(path("floats.json")));
  ASSERT_FALSE(report["rings"].empty());
  int checked = 0;
  for (const auto& ring : report["rings"]) {
    for (const auto& value : {ring["score"], ring["evidence"]["shared_prompt_strength"], ring["evidence"]["synchrony"]}) {
      const std::string text = value.dump();
      // float32 needs at most 9 significant digits; a float widened to double prints 16-17.
      int digits = 0;
      for (char c : text) digits += std::isdigit(static_cast<unsigned char>(c)) != 0;
      EXPECT_LE(digits, 10) << text;
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST_F(Cli, InfoDescribesADetectOutput) {
  ASSERT_EQ(run("detect -q " + path("in.h5") + " -o " + path("described.h5")).code, 0);
  const CliRun r = run("info " + path("described.h5"));
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* text : {"valid ringscan detection output", "backend", "rings", "false_edges_per_million",
                           "time (s)"})
    EXPECT_NE(r.output.find(text), std::string::npos) << text << ": " << r.output;
  const CliRun j = run("info -q --json " + path("described.h5"));
  ASSERT_EQ(j.code, 0) << j.output;
  const auto info = nlohmann::json::parse(j.output);
  EXPECT_EQ(info["kind"], "detection output");
  EXPECT_EQ(info["rings"], info["ring_table"].size());
  EXPECT_GT(info["rings"].get<int64_t>(), 0);
  // float32 values at their own precision, as in the report.
  const std::string score = info["ring_table"][0]["score"].dump();
  EXPECT_LE(std::count_if(score.begin(), score.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }),
            10)
      << score;
}

TEST_F(Cli, GenerateCountsItsNounsAndTimesItsWholeRun) {
  const auto started = std::chrono::steady_clock::now();
  const CliRun g = run("generate -o " + path("timed.h5") + " --accounts 3000 --dim 384 --seed 5");
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(g.code, 0) << g.output;
  EXPECT_EQ(g.output.find("1 crowds"), std::string::npos) << g.output;
  EXPECT_EQ(g.output.find("1 rings"), std::string::npos) << g.output;
  const auto at = g.output.find("[generate] done in ");
  ASSERT_NE(at, std::string::npos) << g.output;
  const double reported = std::stod(g.output.substr(at + std::string("[generate] done in ").size()));
  // The stage is most of the process's life (the rest is start-up and the final rename).
  EXPECT_GT(reported, 0.3 * wall) << g.output << " (wall " << wall << " s)";
}

namespace {

/// The first line of a file, and how many lines follow it.
std::pair<std::string, int64_t> header_and_rows(const std::string& path) {
  std::ifstream in(path);
  std::string header, line;
  std::getline(in, header);
  int64_t rows = 0;
  while (std::getline(in, line)) rows += !line.empty();
  return {header, rows};
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string field; std::getline(in, field, ',');) out.push_back(field);
  return out;
}

/// A header field as neo4j-admin's import reads it: `name:type`, a special column
/// (`:ID(Group)`, `:START_ID(Group)`, `:END_ID(Group)`, `:TYPE`, `:LABEL`, optionally
/// named), or a plain name (a string property).
bool neo4j_header_field(const std::string& f) {
  static const std::regex special(R"(^([A-Za-z_][A-Za-z0-9_]*)?:(ID|START_ID|END_ID)(\([A-Za-z]+\))?$|^:(TYPE|LABEL)$)");
  static const std::regex typed(R"(^[A-Za-z_][A-Za-z0-9_.]*:(long|int|double|float|boolean|string)$)");
  static const std::regex plain(R"(^[A-Za-z_][A-Za-z0-9_.]*$)");
  return std::regex_match(f, special) || std::regex_match(f, typed) || std::regex_match(f, plain);
}

}  // namespace

TEST_F(Cli, ExportWritesTheRingsAsNeo4jImportCsvAndGraphml) {
  const CliRun detect = run("detect -q " + path("in.h5") + " -o " + path("export-out.h5") + " --report " + path("export.json"));
  ASSERT_EQ(detect.code, 0) << detect.output;
  const auto report = nlohmann::json::parse(slurp(path("export.json")));
  int64_t members = 0;
  for (const auto& r : report["rings"]) members += int64_t(r["members"].size());
  ASSERT_GT(members, 0);

  const CliRun csv = run("export -q " + path("export-out.h5") + " --input " + path("in.h5") + " --format csv -o " +
                         path("neo4j"));
  ASSERT_EQ(csv.code, 0) << csv.output;
  const auto [accounts_header, accounts] = header_and_rows(path("neo4j/accounts.csv"));
  const auto [evidence_header, edges] = header_and_rows(path("neo4j/evidence.csv"));
  EXPECT_EQ(accounts, members);
  EXPECT_GT(edges, 0);
  for (const std::string& f : split_commas(accounts_header)) EXPECT_TRUE(neo4j_header_field(f)) << f;
  for (const std::string& f : split_commas(evidence_header)) EXPECT_TRUE(neo4j_header_field(f)) << f;
  EXPECT_EQ(split_commas(accounts_header).front(), "account:ID(Account)");
  const std::vector<std::string> e = split_commas(evidence_header);
  EXPECT_EQ(std::vector<std::string>(e.begin(), e.begin() + 3),
            (std::vector<std::string>{":START_ID(Account)", ":END_ID(Account)", ":TYPE"}));
  // Every relationship joins two accounts of the node file.
  std::ifstream a(path("neo4j/accounts.csv")), r(path("neo4j/evidence.csv"));
  std::set<std::string> ids;
  std::string line;
  std::getline(a, line);
  while (std::getline(a, line)) ids.insert(split_commas(line).front());
  std::getline(r, line);
  while (std::getline(r, line)) {
    const std::vector<std::string> f = split_commas(line);
    EXPECT_TRUE(ids.count(f[0]) && ids.count(f[1])) << line;
  }

  const CliRun graphml = run("export -q " + path("export-out.h5") + " -o " + path("rings.graphml"));
  ASSERT_EQ(graphml.code, 0) << graphml.output;
  const std::string xml = slurp(path("rings.graphml"));
  auto count = [&](const std::string& what) {
    int64_t n = 0;
    for (size_t at = xml.find(what); at != std::string::npos; at = xml.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<node "), members);
  EXPECT_EQ(count("<edge "), edges);
  EXPECT_EQ(xml.rfind("</graphml>\n"), xml.size() - 11);
}

TEST_F(Cli, ExportOfAnOutputWithoutRingEdgesExitsTwoNamingThem) {
  const CliRun detect = run("detect -q " + path("in.h5") + " -o " + path("old-out.h5"));
  ASSERT_EQ(detect.code, 0) << detect.output;
  // An output as earlier versions wrote it.
  const hid_t f = H5Fopen(path("old-out.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Ldelete(f, "/ring_edges", H5P_DEFAULT);
  H5Fclose(f);
  const CliRun r = run("export -q " + path("old-out.h5") + " -o " + path("old.graphml"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("/ring_edges"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("old-out.h5"), std::string::npos) << r.output;
  EXPECT_FALSE(std::ifstream(path("old.graphml")).good());
}
