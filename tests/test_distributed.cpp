// `ringscan detect` over the ranks of mpirun: the same output as one process, and a failure
// on any rank stops the whole job with that rank named and nothing written. Skipped, with a
// message, in builds without MPI.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "command.hpp"
#include "random.hpp"
#include "request_index.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/ring_indicators.hpp"
#include "self_join.hpp"

namespace {

namespace fs = std::filesystem;

using ShellRun = ringscan::testing::CommandRun;
using ringscan::testing::run_command;
ShellRun shell(const std::string& cmd) { return run_command(cmd); }

/// mpirun as this machine allows it: several ranks on few cores, and as root in containers.
/// In the sanitizer build LeakSanitizer is off for the ranks: OpenMPI's plugins, unloaded at
/// MPI_Finalize, leave allocations behind that it cannot attribute to any module, so no
/// suppression can name them; every other check stays on, and the leak check of ringscan's
/// own code runs in the other tests.
std::string mpirun(int ranks) {
  const char* asan = std::getenv("ASAN_OPTIONS");
  std::string cmd = "env ASAN_OPTIONS=" + std::string(asan ? asan : "") + (asan && *asan ? ":" : "") +
                    "detect_leaks=0 " + std::string(RINGSCAN_MPIRUN) + " --oversubscribe -np " + std::to_string(ranks);
  if (geteuid() == 0) cmd += " --allow-run-as-root";
  return cmd;
}

/// Every dataset under `group` of an HDF5 file, as the bytes of its values.
std::map<std::string, std::string> datasets_of(const std::string& file, const std::string& group) {
  std::map<std::string, std::string> out;
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return out;
  const hid_t g = H5Gopen2(f, group.c_str(), H5P_DEFAULT);
  hsize_t count = 0;
  H5Gget_num_objs(g, &count);
  for (hsize_t i = 0; i < count; ++i) {
    char name[256];
    H5Gget_objname_by_idx(g, i, name, sizeof name);
    const hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    const hid_t type = H5Dget_type(d), native = H5Tget_native_type(type, H5T_DIR_ASCEND);
    const hid_t space = H5Dget_space(d);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    std::string bytes(size_t(n) * H5Tget_size(native), '\0');
    if (n > 0) H5Dread(d, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
    out[group + "/" + name] = bytes;
    H5Sclose(space);
    H5Tclose(native);
    H5Tclose(type);
    H5Dclose(d);
  }
  H5Gclose(g);
  H5Fclose(f);
  return out;
}

/// The datasets of /accounts and /rings of a detect output.
std::map<std::string, std::string> labels_and_rings(const std::string& file) {
  auto out = datasets_of(file, "/accounts");
  for (auto& [name, bytes] : datasets_of(file, "/rings")) out[name] = bytes;
  return out;
}

std::string slurp(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Overwrites one embedding value of row `row` with NaN.
void poison_embedding(const std::string& file, int64_t row) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, "/requests/embedding", H5P_DEFAULT);
  const hid_t space = H5Dget_space(d);
  const hsize_t start[2] = {hsize_t(row), 0}, one[2] = {1, 1};
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, one, nullptr);
  const hid_t mem = H5Screate_simple(2, one, nullptr);
  const float nan = std::nanf("");
  H5Dwrite(d, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &nan);
  H5Sclose(mem);
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
}

int64_t requests_of(const std::string& file) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, "/requests/account", H5P_DEFAULT);
  const hid_t space = H5Dget_space(d);
  const int64_t n = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  return n;
}

class Distributed : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::string(RINGSCAN_MPIRUN).empty()) return;
    dir_ = ::testing::TempDir() + "ringscan_mpi_" + std::to_string(getpid());
    fs::create_directories(dir_);
    // Above the exact index's limit (5,000 requests), so the ranks share the partitioned
    // search; with infrastructure tokens and a proxy network, so every stage has work.
    const ShellRun big = shell(cli() + " generate -q -o " + path("in.h5") +
                          " --accounts 800 --dim 48 --seed 21 --infra --proxy-network 0.05");
    ASSERT_EQ(big.code, 0) << big.output;
    const ShellRun small = shell(cli() + " generate -q -o " + path("small.h5") + " --accounts 120 --dim 16 --seed 4");
    ASSERT_EQ(small.code, 0) << small.output;
    // New accounts of in.h5's operators, for indicators taken from in.h5.
    const ShellRun again = shell(cli() + " generate -q -o " + path("again.h5") +
                                 " --accounts 800 --dim 48 --seed 22 --operator-seed 21 --infra --proxy-network 0.05");
    ASSERT_EQ(again.code, 0) << again.output;
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (std::string(RINGSCAN_MPIRUN).empty())
      GTEST_SKIP() << "this build has no MPI (RINGSCAN_MPI found no MPI library): distributed detection is not built";
  }
  static std::string cli() { return RINGSCAN_CLI; }
  /// Two ranks detecting on in.h5 into `out`, rank 1 alone armed with `fault` (MPMD: one
  /// program line per rank).
  static std::string rank_one_faulty(const std::string& fault, const std::string& out) {
    const std::string detect =
        std::string(RINGSCAN_CLI_WITH_TEST_FAULTS) + " detect -q --threads 1 " + path("in.h5") + " -o " + out;
    return mpirun(1) + " " + detect + " : -np 1 env RINGSCAN_TEST_FAULT=" + fault + " " + detect;
  }
  /// Runs rank_one_faulty with `fault` into `name`: the job exits 1 with each of `messages`
  /// in its output, and writes nothing.
  static void expect_rank_one_failure(const std::string& fault, const std::string& name,
                                      std::initializer_list<const char*> messages) {
    const std::string out = path(name);
    const ShellRun r = shell(rank_one_faulty(fault, out));
    EXPECT_EQ(r.code, 1) << r.output;
    for (const char* m : messages) EXPECT_NE(r.output.find(m), std::string::npos) << m << " in: " << r.output;
    EXPECT_FALSE(fs::exists(out));
  }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static std::string dir_;
};
std::string Distributed::dir_;

TEST_F(Distributed, OneTwoAndFourRanksWriteTheAccountsAndRingsOfOneProcess) {
  // The last case takes the account index's partitioned join (its top-level cells shared
  // among the ranks) rather than its exact one.
  const std::pair<std::string, std::string> cases[] = {
      {"in.h5", ""}, {"small.h5", ""}, {"in.h5", " --exact-account-limit 100"}};
  for (const auto& [input, options] : cases) {
    const std::string name = input + (options.empty() ? "" : "-partitioned");
    const std::string one = path("one-" + name);
    const ShellRun single = shell(cli() + " detect -q --threads 2 " + path(input) + options + " -o " + one);
    ASSERT_EQ(single.code, 0) << single.output;
    const auto want = labels_and_rings(one);
    ASSERT_FALSE(want.empty());
    for (int ranks : {1, 2, 4}) {
      const std::string out = path(std::to_string(ranks) + "-" + name);
      const ShellRun r =
          shell(mpirun(ranks) + " " + cli() + " detect -q --threads 1 " + path(input) + options + " -o " + out);
      ASSERT_EQ(r.code, 0) << ranks << " ranks: " << r.output;
      const auto got = labels_and_rings(out);
      ASSERT_EQ(got.size(), want.size()) << ranks << " ranks, " << input;
      for (const auto& [dataset, bytes] : want)
        EXPECT_TRUE(got.at(dataset) == bytes) << dataset << " differs at " << ranks << " ranks, " << name;
    }
  }
  // The rings found are the input's: not an empty answer that trivially agrees.
  EXPECT_GT(labels_and_rings(path("one-in.h5")).at("/rings/id").size(), 0u);
}

TEST_F(Distributed, IndicatorsTakenAndMatchedOverRanksAreOneProcesss) {
  const std::string taken = path("ind-one.json"), matched = path("ind-one.h5");
  const ShellRun out = shell(cli() + " detect -q --threads 2 " + path("in.h5") + " -o " + path("ind-src.h5") +
                             " --indicators-out " + taken);
  ASSERT_EQ(out.code, 0) << out.output;
  const ShellRun in = shell(cli() + " detect -q --threads 2 " + path("again.h5") + " -o " + matched +
                            " --indicators-in " + taken);
  ASSERT_EQ(in.code, 0) << in.output;
  const auto want = labels_and_rings(matched);
  // The operators' new accounts are flagged: not an empty answer that trivially agrees.
  const std::string& flagged = want.at("/accounts/indicator_ring");
  int64_t accounts = 0;
  for (size_t at = 0; at + 8 <= flagged.size(); at += 8) {
    int64_t ring;
    std::memcpy(&ring, flagged.data() + at, 8);
    accounts += ring >= 0;
  }
  EXPECT_GE(accounts, 10);
  for (int ranks : {2, 4}) {
    const std::string json = path("ind-" + std::to_string(ranks) + ".json"),
                      h5 = path("ind-" + std::to_string(ranks) + ".h5");
    const ShellRun r = shell(mpirun(ranks) + " " + cli() + " detect -q --threads 1 " + path("in.h5") + " -o " +
                             path("ind-src-" + std::to_string(ranks) + ".h5") + " --indicators-out " + json);
    ASSERT_EQ(r.code, 0) << ranks << " ranks: " << r.output;
    // Every exemplar (the mean of the members' requests, whichever ranks hold them), token
    // and span as one process writes it.
    EXPECT_EQ(slurp(json), slurp(taken)) << ranks << " ranks";
    const ShellRun m = shell(mpirun(ranks) + " " + cli() + " detect -q --threads 1 " + path("again.h5") + " -o " + h5 +
                             " --indicators-in " + taken);
    ASSERT_EQ(m.code, 0) << ranks << " ranks: " << m.output;
    const auto got = labels_and_rings(h5);
    ASSERT_EQ(got.size(), want.size()) << ranks << " ranks";
    for (const auto& [dataset, bytes] : want)
      EXPECT_TRUE(got.at(dataset) == bytes) << dataset << " differs at " << ranks << " ranks";
  }
}

TEST_F(Distributed, BadInputInOneRanksShareStopsEveryRankNamingItAndWritesNothing) {
  const std::string bad = path("bad.h5"), out = path("bad-out.h5");
  fs::copy_file(path("in.h5"), bad, fs::copy_options::overwrite_existing);
  poison_embedding(bad, requests_of(bad) - 1);  // read by the last rank
  { std::ofstream(out) << "previous result\n"; }
  const ShellRun r = shell(mpirun(2) + " " + cli() + " detect -q --threads 1 " + bad + " -o " + out);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("rank 1: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/requests/embedding"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bad.h5"), std::string::npos) << r.output;
  std::ifstream kept(out);
  std::string line;
  std::getline(kept, line);
  EXPECT_EQ(line, "previous result");
}

TEST_F(Distributed, AFailedAllocationOnOneRankStopsTheJobNamingTheRank) {
  // Rank 1 alone fails its third budgeted allocation.
  expect_rank_one_failure("alloc:3", "alloc-out.h5", {"rank 1: ", "out of memory"});
}

TEST_F(Distributed, AFailureWhileAnotherRankEvaluatesPairsStopsTheJobNamingThatRank) {
  // Rank 1's eighth budgeted allocation, its last, holds the account profiles rank 0 shares
  // for the evaluation of the candidate pairs (earlier ones: the stages before, the last two
  // the rows of the account index's two joins; should they change in number, this message
  // names the stage that failed instead).
  expect_rank_one_failure("alloc:8", "pairs-out.h5", {"evaluating candidate pairs on rank 1: out of memory"});
}

TEST_F(Distributed, AFailureWhileAnotherRankJoinsAccountProfilesStopsTheJobNamingThatRank) {
  // Rank 1's sixth budgeted allocation holds the rows of the account index's first join
  // (coordination profiles), which rank 0 shares.
  expect_rank_one_failure("alloc:6", "join-out.h5", {"account index on rank 1: out of memory"});
}

TEST_F(Distributed, AKilledRankFailsTheJobWithoutOutput) {
  const std::string out = path("killed-out.h5");
  const ShellRun r = shell(rank_one_faulty("kill-alloc:4", out));
  EXPECT_NE(r.code, 0) << r.output;
  // mpirun names the rank that died.
  EXPECT_NE(r.output.find("rank 1"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(Distributed, OptionsARunOverRanksCannotHonourAreRefusedWithTheReason) {
  const ShellRun cuda = shell(mpirun(2) + " " + cli() + " detect -q --device cuda " + path("in.h5") + " -o " + path("x.h5"));
  EXPECT_EQ(cuda.code, 2) << cuda.output;
  EXPECT_NE(cuda.output.find("--device cuda"), std::string::npos) << cuda.output;
  // Checked by every rank alike and agreed: reported once, by rank 0, and no rank aborts.
  const auto count = [](const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(cuda.output, "ringscan: error:"), 1) << cuda.output;
  EXPECT_EQ(cuda.output.find("MPI_ABORT"), std::string::npos) << cuda.output;
  const ShellRun typo = shell(mpirun(2) + " " + cli() + " detect -q --no-such-option " + path("in.h5"));
  EXPECT_EQ(typo.code, 2) << typo.output;
  EXPECT_EQ(count(typo.output, "ringscan: error:"), 1) << typo.output;
  const ShellRun generate = shell(mpirun(2) + " " + cli() + " generate -q -o " + path("g.h5") + " --accounts 50");
  EXPECT_EQ(generate.code, 2) << generate.output;
  EXPECT_NE(generate.output.find("only detect runs over the ranks"), std::string::npos) << generate.output;
  EXPECT_FALSE(fs::exists(path("x.h5")));
}

// The properties the distributed request index stands on, checked in one process: each is
// what lets a rank search its part and find what one process finds.

std::vector<float> random_rows(int64_t n, int64_t d, uint64_t seed) {
  ringscan::Rng rng(seed);
  std::vector<float> x(n * d);
  for (float& v : x) v = float(rng.uniform()) - 0.5f;
  return x;
}

TEST(DistributedParts, ARowsNearestCellsDoNotDependOnTheBatchItIsSearchedIn) {
  const int64_t n = 9000, d = 24, k = 40;
  const std::vector<float> x = random_rows(n, d, 3), centroids = random_rows(k, d, 4);
  const std::vector<int64_t> whole = ringscan::nearest_cells(x.data(), d, nullptr, n, centroids.data(), k, 2);
  // Shares starting anywhere, short ones (below FAISS's BLAS threshold) among them.
  for (const auto& [first, count] : std::vector<std::pair<int64_t, int64_t>>{{0, 7}, {5, 13}, {8191, 3}, {4000, 5000}, {8999, 1}}) {
    std::vector<int64_t> rows(count);
    for (int64_t i = 0; i < count; ++i) rows[i] = first + i;
    const std::vector<int64_t> part = ringscan::nearest_cells(x.data(), d, rows.data(), count, centroids.data(), k, 2);
    for (int64_t i = 0; i < count; ++i)
      for (int p = 0; p < 2; ++p)
        ASSERT_EQ(part[i * 2 + p], whole[(first + i) * 2 + p]) << "row " << first + i << " in a share from " << first;
  }
}

TEST(DistributedParts, AnyRangeOfRequestsFindsTheWholeCallsKnownPromptHitsInIt) {
  const int64_t n = 9000, d = 24;
  const std::vector<float> x = random_rows(n, d, 5);
  ringscan::Indicators known;
  known.dim = d;
  for (int r = 0; r < 3; ++r) {
    ringscan::RingIndicator ring;
    ring.ring = r;
    ring.prompts = random_rows(4, d, 10 + r);
    known.rings.push_back(ring);
  }
  std::vector<int64_t> owner(n);
  for (int64_t i = 0; i < n; ++i) owner[i] = i;
  const ringscan::Context ctx;
  // A similarity some requests reach and most do not.
  const float similarity = 0.6f;
  const auto whole = ringscan::indicator_prompt_hits(x.data(), 0, n, d, owner, known, similarity, ctx);
  ASSERT_GT(whole.size(), 500u);
  ASSERT_LT(whole.size(), size_t(n - 500));
  // Ranges starting anywhere, short ones (below FAISS's BLAS threshold) among them.
  for (const auto& [first, count] : std::vector<std::pair<int64_t, int64_t>>{{0, 7}, {5, 13}, {4095, 3}, {4000, 5000}, {8999, 1}}) {
    const auto part = ringscan::indicator_prompt_hits(x.data() + first * d, first, count, d, owner, known, similarity, ctx);
    std::vector<std::pair<int64_t, int64_t>> want;
    for (const auto& h : whole)
      if (h.first >= first && h.first < first + count) want.push_back(h);
    EXPECT_EQ(part, want) << "requests [" << first << ", " << first + count << ")";
  }
}

TEST(DistributedParts, ACellsQueriesSearchedInChunksFindTheWholeSearchsPairs) {
  const int64_t n = 5000, d = 16;
  std::vector<float> x = random_rows(n, d, 7);
  // Near-duplicates to find: every tenth row repeats the row before with a little noise.
  for (int64_t r = 1; r < n; r += 10)
    for (int64_t j = 0; j < d; ++j) x[r * d + j] = x[(r - 1) * d + j] + 0.001f * float(j % 3);
  std::vector<int64_t> members, queries(n);
  for (int64_t r = 0; r < n; ++r) {
    queries[r] = r;
    if (r % 3 != 2) members.push_back(r);
  }
  const ringscan::JoinFilter accept = [](int64_t, int64_t, float, float*) { return true; };
  for (const bool tiers_on : {false, true}) {
    ringscan::NeighbourTiers tiers;
    if (tiers_on) {
      tiers.near = 0.01f;
      tiers.far_cap = 3;
    }
    const ringscan::CellJoin join{x.data(), d, 0.3f, 6, accept, tiers};
    std::vector<ringscan::RequestPair> whole, chunked;
    join(members.data(), int64_t(members.size()), queries.data(), n, whole);
    for (int64_t first = 0; first < n; first += 2 * ringscan::kJoinQueryBatch)
      join(members.data(), int64_t(members.size()), queries.data() + first,
           std::min<int64_t>(2 * ringscan::kJoinQueryBatch, n - first), chunked);
    ASSERT_GT(whole.size(), 400u);
    ASSERT_EQ(chunked.size(), whole.size()) << "tiers " << tiers_on;
    for (std::size_t i = 0; i < whole.size(); ++i) {
      ASSERT_EQ(chunked[i].first, whole[i].first);
      ASSERT_EQ(chunked[i].second, whole[i].second);
      ASSERT_EQ(chunked[i].similarity, whole[i].similarity);
    }
  }
}

TEST(DistributedParts, TiesBrokenWhereTheRowsAreGiveTheOrderOfOneProcess) {
  ringscan::GenerateOptions g;
  g.accounts = 200;
  g.dim = 8;
  g.seed = 9;
  const ringscan::Context ctx;
  ringscan::Dataset data = ringscan::generate_in_memory(g, ctx);
  // Many ties of (account, time): times in coarse steps.
  for (int64_t& t : data.request_time) t -= t % 86400;
  const ringscan::CanonicalRequests want = ringscan::canonical_requests(data, ctx);
  ringscan::CanonicalRequests got =
      ringscan::canonical_bookkeeping(data, ctx, [](int64_t) -> const float* { return nullptr; });
  // Two "ranks": each breaks the ties of its half with the rows it holds.
  const int64_t half = got.account_offsets[got.num_accounts / 2];
  const auto stored = [&](int64_t row) { return data.embeddings.data() + row * data.dim; };
  ringscan::break_ties(got, 0, half, stored);
  ringscan::break_ties(got, half, got.num_requests, stored);
  EXPECT_EQ(got.request_row, want.request_row);
  EXPECT_NE(std::adjacent_find(want.time.begin(), want.time.end()), want.time.end()) << "no ties to break";
}

}  // namespace
