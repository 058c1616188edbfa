#include "ringscan/report.hpp"

#include <charconv>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

namespace ringscan {
namespace {

/// A value computed in float32 (or any double a float holds exactly) as the double of the
/// float's shortest decimal form: JSON then shows 0.94533, not 0.9453299641609192.
double tidy(double v) {
  const float f = float(v);
  if (double(f) != v) return v;
  char buf[48];
  const auto end = std::to_chars(buf, buf + sizeof buf - 1, f).ptr;
  *end = '\0';
  return std::strtod(buf, nullptr);
}

}  // namespace

std::string report_json(const DetectionResult& result, int indent) {
  using nlohmann::json;
  json rings = json::array();
  for (const Ring& r : result.rings) {
    json examples = json::array();
    for (const auto& e : r.examples)
      examples.push_back({{"ring_accounts", e.accounts_in_ring},
                          {"accounts_overall", e.accounts_overall},
                          {"idf", tidy(e.idf)},
                          {"request_rows", e.request_rows}});
    rings.push_back({{"id", r.id},
                     {"cluster", r.cluster},
                     {"size", r.size},
                     {"score", tidy(r.score)},
                     {"evidence",
                      {{"shared_prompt_groups", r.shared_groups},
                       {"shared_prompt_strength", tidy(r.shared_prompt_strength)},
                       {"synchrony", tidy(r.synchrony)},
                       {"behaviour_tightness", tidy(r.behaviour_tightness)},
                       {"prompt_diversity", tidy(r.prompt_diversity)},
                       {"volume", tidy(r.volume)},
                       {"internal_edge_weight", tidy(r.internal_edge_weight)},
                       {"shared_prompt_examples", examples}}},
                     {"members", r.members}});
  }
  json params = json::object();
  for (const auto& [k, v] : result.parameters) params[k] = v;
  json timings = json::object();
  for (const auto& [k, v] : result.stage_seconds) timings[k] = tidy(v);
  json stats = json::object();
  for (const auto& [k, v] : result.statistics) stats[k] = tidy(v);
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
