// `ringscan report`: the analyst's HTML page of a detect output, and the optional input
// datasets only reports read (/requests/id, /requests/text).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "command.hpp"
#include "ringscan/context.hpp"
#include "ringscan/error.hpp"
#include "ringscan/io.hpp"

namespace {

using ringscan::testing::CommandRun;

CommandRun run(const std::string& args) { return ringscan::testing::run_command(std::string(RINGSCAN_CLI) + " " + args); }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t occurrences(const std::string& text, const std::string& what) {
  int64_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// Adds an int64 [n] dataset `name` to an existing HDF5 file.
void add_integers(const std::string& file, const char* name, const std::vector<int64_t>& values) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << file;
  const hsize_t n = values.size();
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t d = H5Dcreate2(f, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(d, 0) << name;
  EXPECT_GE(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  H5Dclose(d);
  H5Sclose(space);
  H5Fclose(f);
}

/// Adds a dataset of variable-length UTF-8 strings (as h5py writes str) to an existing file.
void add_texts(const std::string& file, const char* name, const std::vector<std::string>& texts) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << file;
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const hsize_t n = texts.size();
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t d = H5Dcreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(d, 0) << name;
  std::vector<const char*> pointers;
  for (const std::string& t : texts) pointers.push_back(t.c_str());
  EXPECT_GE(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), 0);
  H5Dclose(d);
  H5Sclose(space);
  H5Tclose(type);
  H5Fclose(f);
}

/// Marks feature column `name` categorical: attribute `categorical` of /accounts/features.
void mark_categorical(const std::string& file, const char* name) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << file;
  const hid_t d = H5Dopen2(f, "/accounts/features", H5P_DEFAULT);
  ASSERT_GE(d, 0);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  const hsize_t one = 1;
  const hid_t space = H5Screate_simple(1, &one, nullptr);
  const hid_t a = H5Acreate2(d, "categorical", type, space, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(a, 0);
  EXPECT_GE(H5Awrite(a, type, &name), 0);
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
  H5Dclose(d);
  H5Fclose(f);
}

class Report : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "ringscan_report_" + std::to_string(getpid());
    ASSERT_EQ(std::system(("mkdir -p " + dir_).c_str()), 0);
    const CommandRun g = run("generate -q -o " + path("in.h5") + " --accounts 1500 --dim 32 --seed 5");
    ASSERT_EQ(g.code, 0) << g.output;
    const CommandRun d = run("detect -q " + path("in.h5") + " -o " + path("out.h5") + " --report " + path("out.json"));
    ASSERT_EQ(d.code, 0) << d.output;
    report_ = nlohmann::json::parse(slurp(path("out.json")));
    ASSERT_GE(report_["rings"].size(), 2u) << "the generated file should have rings to draw";
    const ringscan::InputShape shape = ringscan::read_input_shape(path("in.h5"));
    requests_ = shape.num_requests;
  }
  static void TearDownTestSuite() { std::system(("rm -rf " + dir_).c_str()); }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static std::string copy_of_input(const std::string& name) {
    EXPECT_EQ(std::system(("cp " + path("in.h5") + " " + path(name)).c_str()), 0);
    return path(name);
  }
  static std::string dir_;
  static nlohmann::json report_;
  static int64_t requests_;
};
std::string Report::dir_;
nlohmann::json Report::report_;
int64_t Report::requests_ = 0;

}  // namespace

TEST_F(Report, DrawsTheTopRingsInDetailAndListsEveryRing) {
  const CommandRun r = run("report -q " + path("out.h5") + " --input " + path("in.h5") + " --top 2 -o " + path("top2.html"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string html = slurp(path("top2.html"));
  const auto& rings = report_["rings"];
  EXPECT_EQ(html.rfind("</html>\n"), html.size() - 8);
  EXPECT_EQ(occurrences(html, "<section class=\"ring\""), 2);
  // The overview lists every ring, one table row each.
  EXPECT_EQ(occurrences(html, "<tr><td class=\"num\" data-v="), int64_t(rings.size()));
  // A histogram, then per detailed ring a timeline, a behaviour plot and a graph.
  EXPECT_EQ(occurrences(html, "<svg class=\"timeline\""), 2);
  EXPECT_EQ(occurrences(html, "<svg class=\"behaviour\""), 2);
  EXPECT_EQ(occurrences(html, "aria-label=\"evidence graph of ring "), 2);
  for (int r = 0; r < 2; ++r) {
    const size_t begin = html.find("<section class=\"ring\" id=\"ring-" + std::to_string(r) + "\"");
    ASSERT_NE(begin, std::string::npos) << r;
    const std::string section = html.substr(begin, html.find("</section>", begin) - begin);
    for (const auto& member : rings[r]["members"])
      EXPECT_NE(section.find(std::to_string(member.get<int64_t>())), std::string::npos) << "ring " << r;
    for (const auto& example : rings[r]["evidence"]["shared_prompt_examples"])
      for (const auto& row : example["request_rows"])
        EXPECT_NE(section.find("row " + std::to_string(row.get<int64_t>())), std::string::npos) << "ring " << r;
  }
  // Ring 2 onwards: listed, not drawn.
  EXPECT_EQ(html.find("id=\"ring-2\""), std::string::npos);
}

TEST_F(Report, RingsReadBackFromTheOutputAsDetectReportedThem) {
  const std::vector<ringscan::Ring> rings = ringscan::read_rings(path("out.h5"));
  const auto& want = report_["rings"];
  ASSERT_EQ(rings.size(), want.size());
  for (size_t r = 0; r < rings.size(); ++r) {
    EXPECT_EQ(rings[r].id, int64_t(r));
    EXPECT_EQ(rings[r].members, want[r]["members"].get<std::vector<int64_t>>());
    const auto& examples = want[r]["evidence"]["shared_prompt_examples"];
    ASSERT_EQ(rings[r].examples.size(), examples.size()) << r;
    for (size_t e = 0; e < examples.size(); ++e) {
      EXPECT_EQ(rings[r].examples[e].request_rows, examples[e]["request_rows"].get<std::vector<int64_t>>());
      EXPECT_EQ(rings[r].examples[e].accounts_overall, examples[e]["accounts_overall"].get<int64_t>());
      EXPECT_FLOAT_EQ(rings[r].examples[e].idf, examples[e]["idf"].get<float>());
    }
  }
}

TEST_F(Report, ShowsTheProvidersRequestIdsAndTextsEscaped) {
  const std::string input = copy_of_input("texts.h5");
  std::vector<int64_t> ids;
  std::vector<std::string> texts;
  for (int64_t r = 0; r < requests_; ++r) {
    ids.push_back(r * 10 + 7);
    texts.push_back("prompt " + std::to_string(r) + " <b>bold</b> & caf\u00e9 \u2014 \u65e5\u672c");
  }
  add_integers(input, "/requests/id", ids);
  add_texts(input, "/requests/text", texts);
  // Detection does not read them: the same rings as without them.
  const CommandRun d = run("detect -q " + input + " -o " + path("texts-out.h5") + " --report " + path("texts.json"));
  ASSERT_EQ(d.code, 0) << d.output;
  EXPECT_EQ(nlohmann::json::parse(slurp(path("texts.json")))["rings"].size(), report_["rings"].size());

  const CommandRun r = run("report -q " + path("texts-out.h5") + " --input " + input + " -o " + path("texts.html"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string html = slurp(path("texts.html"));
  const int64_t row = report_["rings"][0]["evidence"]["shared_prompt_examples"][0]["request_rows"][0].get<int64_t>();
  EXPECT_NE(html.find("row " + std::to_string(row) + ", id " + std::to_string(row * 10 + 7)), std::string::npos);
  EXPECT_NE(html.find("prompt " + std::to_string(row) + " &lt;b&gt;bold&lt;/b&gt; &amp; caf\u00e9 \u2014 \u65e5\u672c"),
            std::string::npos);
  EXPECT_EQ(html.find("<b>bold</b>"), std::string::npos);
}

TEST_F(Report, ATextThatIsNotUtf8ExitsTwoNamingItsRowAndKeepsTheEarlierReport) {
  const std::string input = copy_of_input("latin1.h5");
  std::vector<std::string> texts(size_t(requests_), "fine");
  texts[size_t(requests_ - 3)] = "caf\xe9";  // Latin-1, not UTF-8
  add_texts(input, "/requests/text", texts);
  {
    std::ofstream earlier(path("kept.html"));
    earlier << "earlier report\n";
  }
  const CommandRun r = run("report -q " + path("out.h5") + " --input " + input + " -o " + path("kept.html"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("latin1.h5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/requests/text"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("row " + std::to_string(requests_ - 3) + ": not UTF-8"), std::string::npos) << r.output;
  EXPECT_EQ(slurp(path("kept.html")), "earlier report\n");
  // The same in this process (no isolation): the reader's error, and nothing leaked.
  try {
    ringscan::read_request_texts(input, {0});
    ADD_FAILURE() << "a text that is not UTF-8 was read";
  } catch (const ringscan::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("row " + std::to_string(requests_ - 3) + ": not UTF-8"), std::string::npos)
        << e.what();
  }
}

TEST_F(Report, RequestIdsOrTextsOfAnotherLengthAreRefusedByEveryCommand) {
  const std::string ids = copy_of_input("short-ids.h5");
  add_integers(ids, "/requests/id", std::vector<int64_t>(size_t(requests_ - 1), 1));
  const std::string texts = copy_of_input("long-texts.h5");
  add_texts(texts, "/requests/text", std::vector<std::string>(size_t(requests_ + 1), "x"));
  for (const auto& [file, dataset] : {std::pair{ids, "/requests/id"}, std::pair{texts, "/requests/text"}}) {
    const CommandRun d = run("detect -q " + file + " -o " + path("never.h5"));
    EXPECT_EQ(d.code, 2) << d.output;
    EXPECT_NE(d.output.find(std::string(dataset) + ": has "), std::string::npos) << d.output;
    const CommandRun r = run("report -q " + path("out.h5") + " --input " + file + " -o " + path("never.html"));
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find(dataset), std::string::npos) << r.output;
  }
  EXPECT_FALSE(std::ifstream(path("never.h5")).good());
  EXPECT_FALSE(std::ifstream(path("never.html")).good());
}

TEST_F(Report, OfAnotherInputExitsTwoSayingItIsNotTheInputDetectRead) {
  const CommandRun g = run("generate -q -o " + path("other.h5") + " --accounts 300 --dim 32 --seed 9");
  ASSERT_EQ(g.code, 0) << g.output;
  const CommandRun r = run("report -q " + path("out.h5") + " --input " + path("other.h5") + " -o " + path("other.html"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("not the input detect read"), std::string::npos) << r.output;
  EXPECT_FALSE(std::ifstream(path("other.html")).good());
}

TEST_F(Report, WithoutTheInputDrawsTheGraphsAndSaysWhatIsLeftOut) {
  const CommandRun r = run("report -q " + path("out.h5") + " -o " + path("bare.html"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string html = slurp(path("bare.html"));
  EXPECT_NE(html.find("Made without the input file"), std::string::npos);
  EXPECT_EQ(occurrences(html, "<svg class=\"timeline\""), 0);
  EXPECT_EQ(occurrences(html, "aria-label=\"evidence graph of ring "),
            std::min<int64_t>(20, int64_t(report_["rings"].size())));
}

TEST_F(Report, ACategoricalFeatureShowsTheMembersShareAtTheirCommonValue) {
  const std::string input = copy_of_input("categorical.h5");
  mark_categorical(input, "temperature");
  const CommandRun r = run("report -q " + path("out.h5") + " --input " + input + " --top 1 -o " + path("cat.html"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string html = slurp(path("cat.html"));
  const size_t plot = html.find("<svg class=\"behaviour\"");
  ASSERT_NE(plot, std::string::npos);
  const std::string behaviour = html.substr(plot, html.find("</svg>", plot) - plot);
  // One row of shares for the categorical column; box plots for the others.
  EXPECT_EQ(occurrences(behaviour, "% of the members, "), 1) << behaviour;
  EXPECT_EQ(occurrences(behaviour, "<circle "), int64_t(report_["rings"][0]["members"].size()) * 7);
}
