#include "ringscan/report.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

namespace ringscan {
double json_number(double v) {
  const float f = float(v);
  if (double(f) != v) return v;
  char buf[48];
  const auto end = std::to_chars(buf, buf + sizeof buf - 1, f).ptr;
  *end = '\0';
  return std::strtod(buf, nullptr);
}

std::string report_json(const DetectionResult& result, int indent) {
  using nlohmann::json;
  json rings = json::array();
  for (const Ring& r : result.rings) {
    json examples = json::array();
    for (const auto& e : r.examples)
      examples.push_back({{"ring_accounts", e.accounts_in_ring},
                          {"accounts_overall", e.accounts_overall},
                          {"idf", json_number(e.idf)},
                          {"request_rows", e.request_rows}});
    json tokens = json::array();
    for (const auto& t : r.shared_tokens)
      tokens.push_back({{"kind", t.kind},
                        {"token", t.token},
                        {"ring_accounts", t.accounts_in_ring},
                        {"accounts_overall", t.accounts_overall}});
    rings.push_back({{"id", r.id},
                     {"cluster", r.cluster},
                     {"size", r.size},
                     {"seeds", r.seeds},
                     {"score", json_number(r.score)},
                     {"evidence",
                      {{"shared_prompt_groups", r.shared_groups},
                       {"shared_prompt_strength", json_number(r.shared_prompt_strength)},
                       {"synchrony", json_number(r.synchrony)},
                       {"behaviour_tightness", json_number(r.behaviour_tightness)},
                       {"prompt_diversity", json_number(r.prompt_diversity)},
                       {"volume", json_number(r.volume)},
                       {"internal_edge_weight", json_number(r.internal_edge_weight)},
                       {"shared_prompt_examples", examples},
                       {"shared_tokens", tokens}}},
                     {"members", r.members}});
    if (r.sign_up_first != 0)
      rings.back()["evidence"]["sign_up"] = {{"first", r.sign_up_first}, {"last", r.sign_up_last}};
  }
  json params = json::object();
  for (const auto& [k, v] : result.parameters) params[k] = v;
  json timings = json::object();
  for (const auto& [k, v] : result.stage_seconds) timings[k] = json_number(v);
  json stats = json::object();
  for (const auto& [k, v] : result.statistics) stats[k] = json_number(v);
  // Per indicator ring matched: the accounts that matched it, and how many of them are in rings.
  json matches = json::array();
  if (!result.indicator_matches.empty()) {
    std::map<int64_t, std::pair<std::vector<int64_t>, int64_t>> by_ring;
    for (std::size_t i = 0; i < result.indicator_matches.size(); ++i)
      if (const int64_t r = result.indicator_matches[i].ring; r >= 0) {
        by_ring[r].first.push_back(result.account_ids[i]);
        by_ring[r].second += result.ring[i] >= 0;
      }
    for (auto& [ring, m] : by_ring) {
      std::sort(m.first.begin(), m.first.end());
      matches.push_back({{"indicator_ring", ring}, {"accounts", m.first.size()}, {"in_reported_rings", m.second},
                         {"account_ids", m.first}});
    }
  }
  json doc = {{"tool", "ringscan"},
              {"tool_version", RINGSCAN_VERSION},
              {"input", result.input_path},
              {"backend", result.backend},
              {"parameters", params},
              {"stage_seconds", timings},
              {"statistics", stats},
              {"notes", result.notes},
              {"rings", rings}};
  if (!result.indicator_matches.empty()) doc["indicator_matches"] = matches;
  return doc.dump(indent) + "\n";
}

}  // namespace ringscan
