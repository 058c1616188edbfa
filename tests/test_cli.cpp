// The `ringscan` executable as a user runs it: exit codes, messages, outputs left intact.
#include <gtest/gtest.h>

#include "ringscan/context.hpp"
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

struct CliRun {
  int code = -1;
  std::string output;  // stdout and stderr together
};

CliRun run(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(RINGSCAN_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

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
