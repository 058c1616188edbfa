#include "ringscan/export.hpp"

#include <cstdio>
#include <sstream>
#include <unordered_map>

#include "markup_text.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

/// Each ring member's row of the input's accounts (features), by the output's account rows.
std::vector<int64_t> input_rows(const RingGraph& g, const Dataset* input) {
  std::vector<int64_t> rows(g.account_ids.size(), -1);
  if (input == nullptr || input->feature_dim == 0) return rows;
  std::unordered_map<int64_t, int64_t> row_of;
  for (int64_t i = 0; i < input->num_accounts(); ++i) row_of[input->account_ids[i]] = i;
  for (std::size_t a = 0; a < rows.size(); ++a) {
    if (g.ring[a] < 0) continue;
    const auto it = row_of.find(g.account_ids[a]);
    if (it == row_of.end())
      throw InvalidInput(input->source + ": /accounts/id: account " + std::to_string(g.account_ids[a]) +
                         " of the output is not in this input (not the input detect read?)");
    rows[a] = it->second;
  }
  return rows;
}

std::vector<std::string> feature_names(const Dataset* input) {
  std::vector<std::string> names;
  if (input == nullptr) return names;
  for (int64_t f = 0; f < input->feature_dim; ++f)
    names.push_back(f < int64_t(input->feature_names.size()) ? input->feature_names[f] : "feature" + std::to_string(f));
  return names;
}

/// A float as text that reads back to the same value.
std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

struct Signal {
  const char* name;
  float RingEdge::*value;
};
constexpr Signal kSignals[] = {{"shared_prompts", &RingEdge::shared_prompts},
                               {"synchrony", &RingEdge::synchrony},
                               {"behaviour", &RingEdge::behaviour},
                               {"infrastructure", &RingEdge::infrastructure},
                               {"weight", &RingEdge::weight}};
constexpr int kEvidenceSignals = 4;  ///< the first four; weight fuses them

}  // namespace

const char* strongest_signal(const RingEdge& e) {
  int best = 0;
  for (int s = 1; s < kEvidenceSignals; ++s)
    if (e.*kSignals[s].value > e.*kSignals[best].value) best = s;
  return kSignals[best].name;
}

std::string ring_graph_graphml(const RingGraph& g, const Dataset* input) {
  const std::vector<int64_t> rows = input_rows(g, input);
  const std::vector<std::string> names = feature_names(input);
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
       "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\"\n"
       "         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
       "         xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns "
       "http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n";
  x << "  <key id=\"ring\" for=\"node\" attr.name=\"ring\" attr.type=\"long\"/>\n"
       "  <key id=\"ring_score\" for=\"node\" attr.name=\"ring_score\" attr.type=\"double\"/>\n"
       "  <key id=\"account\" for=\"node\" attr.name=\"account\" attr.type=\"long\"/>\n";
  for (std::size_t f = 0; f < names.size(); ++f)
    x << "  <key id=\"f" << f << "\" for=\"node\" attr.name=\"" << detail::markup_escaped(names[f]) << "\" attr.type=\"double\"/>\n";
  for (const Signal& s : kSignals)
    x << "  <key id=\"" << s.name << "\" for=\"edge\" attr.name=\"" << s.name << "\" attr.type=\"double\"/>\n";
  x << "  <key id=\"strongest\" for=\"edge\" attr.name=\"strongest\" attr.type=\"string\"/>\n"
       "  <key id=\"weak\" for=\"edge\" attr.name=\"weak\" attr.type=\"boolean\"/>\n"
       "  <graph id=\"rings\" edgedefault=\"undirected\">\n";
  for (std::size_t a = 0; a < g.account_ids.size(); ++a) {
    if (g.ring[a] < 0) continue;
    x << "    <node id=\"a" << g.account_ids[a] << "\"><data key=\"ring\">" << g.ring[a]
      << "</data><data key=\"ring_score\">" << number(g.ring_score[a]) << "</data><data key=\"account\">"
      << g.account_ids[a] << "</data>";
    if (rows[a] >= 0)
      for (std::size_t f = 0; f < names.size(); ++f)
        x << "<data key=\"f" << f << "\">" << number(input->features[rows[a] * input->feature_dim + int64_t(f)]) << "</data>";
    x << "</node>\n";
  }
  for (const RingEdge& e : g.edges) {
    x << "    <edge source=\"a" << g.account_ids[e.first] << "\" target=\"a" << g.account_ids[e.second] << "\">";
    for (const Signal& s : kSignals) x << "<data key=\"" << s.name << "\">" << number(e.*s.value) << "</data>";
    x << "<data key=\"strongest\">" << strongest_signal(e) << "</data><data key=\"weak\">"
      << (e.weak ? "true" : "false") << "</data></edge>\n";
  }
  x << "  </graph>\n</graphml>\n";
  return x.str();
}

RingGraphCsv ring_graph_csv(const RingGraph& g, const Dataset* input) {
  const std::vector<int64_t> rows = input_rows(g, input);
  const std::vector<std::string> names = feature_names(input);
  RingGraphCsv out;
  std::ostringstream a, e;
  a << "account:ID(Account),:LABEL,ring:long,ring_score:double";
  for (const std::string& n : names) a << "," << csv_field(n + ":double");
  a << "\n";
  for (std::size_t i = 0; i < g.account_ids.size(); ++i) {
    if (g.ring[i] < 0) continue;
    a << g.account_ids[i] << ",Account;RingMember," << g.ring[i] << "," << number(g.ring_score[i]);
    for (std::size_t f = 0; f < names.size(); ++f)
      a << "," << (rows[i] >= 0 ? number(input->features[rows[i] * input->feature_dim + int64_t(f)]) : std::string());
    a << "\n";
  }
  e << ":START_ID(Account),:END_ID(Account),:TYPE,ring:long";
  for (const Signal& s : kSignals) e << "," << s.name << ":double";
  e << ",strongest,weak:boolean\n";
  for (const RingEdge& r : g.edges) {
    e << g.account_ids[r.first] << "," << g.account_ids[r.second] << ",EVIDENCE," << r.ring;
    for (const Signal& s : kSignals) e << "," << number(r.*s.value);
    e << "," << strongest_signal(r) << "," << (r.weak ? "true" : "false") << "\n";
  }
  out.accounts = a.str();
  out.evidence = e.str();
  return out;
}

}  // namespace ringscan
