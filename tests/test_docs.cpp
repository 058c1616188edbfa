// The user guide and docs/ as a reader of a clone meets them: every link resolves inside the
// repository, and nothing points at files a clone does not have.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// README.md and every Markdown file under docs/.
std::vector<fs::path> documents() {
  const fs::path root = RINGSCAN_SOURCE_DIR;
  std::vector<fs::path> out = {root / "README.md"};
  for (const auto& e : fs::recursive_directory_iterator(root / "docs"))
    if (e.is_regular_file() && e.path().extension() == ".md") out.push_back(e.path());
  return out;
}

/// The anchors of a Markdown file's headings, as GitHub makes them (lower case; letters,
/// digits, '-' and '_' kept; spaces become '-'; repeats get -1, -2, ...).
std::set<std::string> anchors(const std::string& text) {
  std::set<std::string> out;
  std::istringstream lines(text);
  std::string line;
  bool fenced = false;
  while (std::getline(lines, line)) {
    if (line.rfind("```", 0) == 0) fenced = !fenced;
    if (fenced || line.empty() || line[0] != '#') continue;
    const auto start = line.find_first_not_of('#');
    if (start == std::string::npos || line[start] != ' ') continue;
    std::string slug;
    for (std::size_t i = start + 1; i < line.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(line[i]);
      if (std::isalnum(c) || c == '-' || c == '_' || c >= 0x80) slug += char(std::tolower(c));
      else if (c == ' ') slug += '-';
    }
    std::string unique = slug;
    for (int n = 1; out.count(unique); ++n) unique = slug + "-" + std::to_string(n);
    out.insert(unique);
  }
  return out;
}

/// The link targets of a Markdown text, outside code spans and fenced blocks.
std::vector<std::string> links(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream lines(text);
  std::string line;
  bool fenced = false;
  const std::regex link(R"(\]\(([^)\s]+)(\s+"[^"]*")?\))");
  while (std::getline(lines, line)) {
    if (line.rfind("```", 0) == 0) fenced = !fenced;
    if (fenced) continue;
    std::string prose;  // the line without its code spans
    bool code = false;
    for (char c : line) {
      if (c == '`') code = !code;
      else if (!code) prose += c;
    }
    for (std::sregex_iterator m(prose.begin(), prose.end(), link), end; m != end; ++m) out.push_back((*m)[1]);
  }
  return out;
}

}  // namespace

TEST(Docs, EveryLinkInTheReadmeAndDocsResolvesInsideTheRepository) {
  const fs::path root = fs::weakly_canonical(RINGSCAN_SOURCE_DIR);
  int checked = 0;
  for (const fs::path& doc : documents()) {
    const std::string text = slurp(doc);
    for (const std::string& target : links(text)) {
      ++checked;
      const std::string where = doc.string() + ": link " + target;
      EXPECT_EQ(target.find("://"), std::string::npos) << where << " leaves the repository";
      EXPECT_NE(target.rfind("mailto:", 0), 0u) << where;
      const auto hash = target.find('#');
      const std::string file = target.substr(0, hash), anchor = hash == std::string::npos ? "" : target.substr(hash + 1);
      const fs::path resolved = file.empty() ? doc : fs::weakly_canonical(doc.parent_path() / file);
      EXPECT_TRUE(fs::exists(resolved)) << where << ": no such file";
      const std::string relative = fs::relative(resolved, root).string();
      EXPECT_TRUE(!relative.empty() && relative.rfind("..", 0) != 0) << where << " leaves the repository";
      if (!anchor.empty() && fs::exists(resolved) && resolved.extension() == ".md")
        EXPECT_EQ(anchors(slurp(resolved)).count(anchor), 1u) << where << ": no heading with that anchor";
    }
  }
  EXPECT_GT(checked, 10) << "the README and docs/ link to each other";
}

TEST(Docs, NothingPointsOutsideTheClone) {
  for (const fs::path& doc : documents()) {
    const std::string text = slurp(doc);
    EXPECT_EQ(text.find("../shared"), std::string::npos) << doc;
  }
}

TEST(Docs, TheReadmeIsAUserGuideOfAboutTwoHundredAndFiftyLines) {
  const std::string text = slurp(fs::path(RINGSCAN_SOURCE_DIR) / "README.md");
  int lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_LE(lines, 260);
  // The command CI runs is the one the guide gives a new user.
  EXPECT_NE(text.find("scripts/test.sh"), std::string::npos);
}
