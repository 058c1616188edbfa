// The evidence graph of reported rings for graph tools: GraphML (Gephi, Cytoscape, networkx)
// and CSV with Neo4j's import headers (neo4j-admin database import).
#pragma once
#include <string>

#include "ringscan/dataset.hpp"
#include "ringscan/io.hpp"

namespace ringscan {

/// The signal an edge's evidence is strongest in: "shared_prompts", "synchrony",
/// "behaviour" or "infrastructure".
const char* strongest_signal(const RingEdge& e);

/// GraphML of the members of reported rings (node id "a<account id>"; ring, ring_score and,
/// given the input, its behaviour features) and the evidence edges between them (each
/// signal, weight, strongest signal, weak).
std::string ring_graph_graphml(const RingGraph& graph, const Dataset* input);

/// The same as two CSV files with Neo4j's import headers: accounts (`account:ID(Account)`,
/// `:LABEL`, properties) and evidence (`:START_ID(Account)`, `:END_ID(Account)`, `:TYPE`,
/// properties).
struct RingGraphCsv {
  std::string accounts, evidence;
};
RingGraphCsv ring_graph_csv(const RingGraph& graph, const Dataset* input);

}  // namespace ringscan
