#include "ringscan/report.hpp"

#include <nlohmann/json.hpp>

namespace ringscan {

std::string report_json(const DetectionResult& result, int indent) {
  using nlohmann::json;
  json rings = json::array();
  for (const Ring& r : result.rings) {
    json examples = json::array();
    for (const auto& e : r.examples)
      examples.push_back({{"ring_accounts", e.accounts_in_ring},
                          {"accounts_overall", e.accounts_overall},
                          {"idf", e.idf},
                          {"request_rows", e.request_rows}});
    rings.push_back({{"id", r.id},
                     {"cluster", r.cluster},
                     {"size", r.size},
                     {"score", r.score},
                     {"evidence",
                      {{"shared_prompt_strength", r.shared_prompt_strength},
                       {"synchrony", r.synchrony},
                       {"behaviour_tightness", r.behaviour_tightness},
                       {"prompt_diversity", r.prompt_diversity},
                       {"volume", r.volume},
                       {"internal_edge_weight", r.internal_edge_weight},
                       {"shared_prompt_examples", examples}}},
                     {"members", r.members}});
  }
  json params = json::object();
  for (const auto& [k, v] : result.parameters) params[k] = v;
  json timings = json::object();
  for (const auto& [k, v] : result.stage_seconds) timings[k] = v;
  json stats = json::object();
  for (const auto& [k, v] : result.statistics) stats[k] = v;
  json doc = {{"tool", "ringscan"},
              {"tool_version", RINGSCAN_VERSION},
              {"input", result.input_path},
              {"backend", result.backend},
              {"parameters", params},
              {"stage_seconds", timings},
              {"statistics", stats},
              {"notes", result.notes},
              {"rings", rings}};
  return doc.dump(indent) + "\n";
}

}  // namespace ringscan
