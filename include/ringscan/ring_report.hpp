// The analyst's view of a detect output: one self-contained HTML page (inline SVG and CSS,
// no network access) with the rings ranked and, for the top ones, their evidence drawn.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ringscan/dataset.hpp"
#include "ringscan/io.hpp"
#include "ringscan/result.hpp"

namespace ringscan {

struct RingReportOptions {
  int64_t top = 20;           ///< rings drawn in detail (timeline, prompts, behaviour, graph)
  int64_t table_rows = 1000;  ///< rings listed in the overview table; the rest are summarised
};

/// What a report is drawn from. `output`, `graph` and `rings` come from one detect output;
/// `input` is the file detect read (embeddings not needed), or null: then the timelines,
/// behaviour features and activity spans are left out and the page says so.
struct RingReportSources {
  const OutputSummary* output = nullptr;
  const RingGraph* graph = nullptr;
  const std::vector<Ring>* rings = nullptr;
  const Dataset* input = nullptr;
  /// Texts of example requests (/requests/text), by request row; empty when none.
  std::map<int64_t, std::string> texts;
};

/// The request rows whose texts the report shows: the shared prompt examples of the rings
/// drawn in detail.
std::vector<int64_t> report_example_rows(const std::vector<Ring>& rings, const RingReportOptions& options);

/// The report as one HTML document. Throws InvalidInput when `input` is not the file the
/// output was made from (an output account missing from it, an example row past its end).
std::string ring_report_html(const RingReportSources& sources, const RingReportOptions& options = {});

}  // namespace ringscan
