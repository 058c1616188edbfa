#include "ringscan/ring_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <unordered_map>

#include "markup_text.hpp"
#include "utc_text.hpp"
#include "ringscan/error.hpp"
#include "ringscan/export.hpp"

namespace ringscan {
namespace {

// Sizes of the drawings, in CSS pixels.
constexpr int kPlotWidth = 760;       ///< data area of the timeline and behaviour plots
constexpr int kLabelWidth = 170;      ///< left margin for row labels
constexpr int kTimelineBins = 190;    ///< time columns of a ring's timeline (4 px each)
constexpr int kTimelineMembers = 40;  ///< members drawn in a timeline, most active first
constexpr int kGraphNodes = 60;       ///< members drawn in a ring's graph, best connected first
constexpr int kFeatureRows = 16;      ///< behaviour features drawn, most unusual first
constexpr size_t kTextChars = 280;    ///< bytes of a request's text shown

struct SignalStyle {
  const char* name;
  const char* label;
  const char* colour;
};
constexpr SignalStyle kSignalStyles[] = {{"shared_prompts", "shared prompts", "#d62728"},
                                         {"synchrony", "synchrony", "#1f77b4"},
                                         {"behaviour", "behaviour", "#2ca02c"},
                                         {"infrastructure", "infrastructure", "#9467bd"}};

const char* signal_colour(const char* name) {
  for (const SignalStyle& s : kSignalStyles)
    if (std::string(name) == s.name) return s.colour;
  return "#888";
}

/// At most `limit` bytes of UTF-8 text, cut at a character boundary, with an ellipsis.
std::string shortened(const std::string& s, size_t limit) {
  if (s.size() <= limit) return s;
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "\u2026";
}

std::string fixed(double v, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string utc(int64_t t) { return detail::utc_text(t, "%Y-%m-%d %H:%M"); }

std::string duration(double seconds) {
  if (seconds < 120) return fixed(seconds, 0) + " s";
  if (seconds < 7200) return fixed(seconds / 60, 0) + " min";
  if (seconds < 172800) return fixed(seconds / 3600, 1) + " h";
  return fixed(seconds / 86400, 1) + " days";
}

std::string parameter(const OutputSummary& o, const std::string& name) {
  for (std::size_t i = 0; i < o.parameter_names.size(); ++i)
    if (o.parameter_names[i] == name && i < o.parameter_values.size()) return o.parameter_values[i];
  return "";
}

/// Value at quantile q of `v` (sorted in place).
float quantile(std::vector<float>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
  return v[k];
}

/// Value at quantile q of ascending, non-empty `v`.
double sorted_quantile(const std::vector<float>& v, double q) {
  return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))];
}

/// What the input tells about the accounts of the output, by the output's account rows.
struct InputView {
  const Dataset* input = nullptr;
  std::vector<int64_t> input_row;                 ///< [A of output] row in the input's accounts
  std::vector<std::vector<int64_t>> requests;     ///< per drawn member: its request rows
  std::unordered_map<int64_t, int64_t> member_slot;  ///< output account row -> index in `requests`
  std::vector<int64_t> first_seen, last_seen;     ///< per ring (times only)
  std::vector<int64_t> ring_requests;             ///< per ring
};

InputView view_input(const RingReportSources& s, int64_t detailed) {
  InputView v;
  v.input = s.input;
  const RingGraph& g = *s.graph;
  const int64_t rings = int64_t(s.rings->size());
  if (s.input == nullptr) return v;
  const Dataset& in = *s.input;
  std::unordered_map<int64_t, int64_t> row_of;
  row_of.reserve(size_t(in.num_accounts()));
  for (int64_t i = 0; i < in.num_accounts(); ++i) row_of.emplace(in.account_ids[i], i);
  v.input_row.assign(g.account_ids.size(), -1);
  std::vector<int64_t> ring_of_input(size_t(in.num_accounts()), -1), slot_of_input(size_t(in.num_accounts()), -1);
  for (std::size_t a = 0; a < g.account_ids.size(); ++a) {
    const auto it = row_of.find(g.account_ids[a]);
    if (it == row_of.end())
      throw InvalidInput(in.source + ": /accounts/id: account " + std::to_string(g.account_ids[a]) +
                         " of the output is not in this input (not the input detect read?)");
    v.input_row[a] = it->second;
    ring_of_input[size_t(it->second)] = g.ring[a];
    if (g.ring[a] >= 0 && g.ring[a] < detailed) {
      slot_of_input[size_t(it->second)] = int64_t(v.requests.size());
      v.member_slot.emplace(int64_t(a), int64_t(v.requests.size()));
      v.requests.emplace_back();
    }
  }
  v.first_seen.assign(size_t(rings), INT64_MAX);
  v.last_seen.assign(size_t(rings), INT64_MIN);
  v.ring_requests.assign(size_t(rings), 0);
  for (int64_t r = 0; r < in.num_requests(); ++r) {
    const int64_t account = in.request_account[r];
    const int64_t ring = ring_of_input[size_t(account)];
    if (ring < 0 || ring >= rings) continue;
    ++v.ring_requests[size_t(ring)];
    if (in.has_time()) {
      v.first_seen[size_t(ring)] = std::min(v.first_seen[size_t(ring)], in.request_time[r]);
      v.last_seen[size_t(ring)] = std::max(v.last_seen[size_t(ring)], in.request_time[r]);
    }
    const int64_t slot = slot_of_input[size_t(account)];
    if (slot >= 0) v.requests[size_t(slot)].push_back(r);
  }
  for (const Ring& ring : *s.rings)
    for (const SharedPromptExample& e : ring.examples)
      for (const int64_t row : e.request_rows)
        if (row >= in.num_requests())
          throw InvalidInput(in.source + ": ring " + std::to_string(ring.id) + "'s example request row " +
                             std::to_string(row) + " is past the input's " + std::to_string(in.num_requests()) +
                             " requests (not the input detect read?)");
  return v;
}

/// Account rows (of the output) of each ring's members.
std::vector<std::vector<int64_t>> member_rows(const RingGraph& g, int64_t rings) {
  std::vector<std::vector<int64_t>> m(static_cast<size_t>(rings));
  for (std::size_t a = 0; a < g.ring.size(); ++a)
    if (g.ring[a] >= 0 && g.ring[a] < rings) m[size_t(g.ring[a])].push_back(int64_t(a));
  return m;
}

// --- drawings ------------------------------------------------------------------------------

std::string score_histogram(const std::vector<Ring>& rings, double threshold) {
  constexpr int kBins = 20, kHeight = 140, kLeft = 40, kBottom = 30, kBar = 30;
  std::vector<int64_t> counts(kBins, 0);
  for (const Ring& r : rings) ++counts[size_t(std::clamp(int(r.score * kBins), 0, kBins - 1))];
  const int64_t most = std::max<int64_t>(1, *std::max_element(counts.begin(), counts.end()));
  const int width = kLeft + kBins * kBar + 20;
  std::ostringstream o;
  o << "<svg class=\"histogram\" width=\"" << width << "\" height=\"" << kHeight + kBottom + 10
    << "\" role=\"img\" aria-label=\"histogram of ring scores\">";
  for (int b = 0; b < kBins; ++b) {
    const double h = double(counts[size_t(b)]) / double(most) * kHeight;
    const double x = kLeft + b * kBar, y = 10 + kHeight - h;
    o << "<rect x=\"" << x + 1 << "\" y=\"" << fixed(y, 1) << "\" width=\"" << kBar - 2 << "\" height=\""
      << fixed(h, 1) << "\" fill=\"#4a6fa5\"><title>" << fixed(b / double(kBins), 2) << "\u2013"
      << fixed((b + 1) / double(kBins), 2) << ": " << counts[size_t(b)] << " rings</title></rect>";
  }
  for (int t = 0; t <= 10; t += 2) {
    const double x = kLeft + t / 10.0 * kBins * kBar;
    o << "<text x=\"" << x << "\" y=\"" << kHeight + 28 << "\" text-anchor=\"middle\">" << fixed(t / 10.0, 1)
      << "</text>";
  }
  o << "<line x1=\"" << kLeft << "\" y1=\"" << kHeight + 10 << "\" x2=\"" << kLeft + kBins * kBar << "\" y2=\""
    << kHeight + 10 << "\" stroke=\"#333\"/>";
  o << "<text x=\"" << kLeft - 6 << "\" y=\"18\" text-anchor=\"end\">" << most << "</text>";
  o << "<text x=\"" << kLeft - 6 << "\" y=\"" << kHeight + 10 << "\" text-anchor=\"end\">0</text>";
  if (threshold > 0 && threshold <= 1) {
    const double x = kLeft + threshold * kBins * kBar;
    o << "<line x1=\"" << fixed(x, 1) << "\" y1=\"4\" x2=\"" << fixed(x, 1) << "\" y2=\"" << kHeight + 10
      << "\" stroke=\"#c00\" stroke-dasharray=\"5,3\"/><text x=\"" << fixed(x + 4, 1)
      << "\" y=\"14\" fill=\"#c00\">threshold " << fixed(threshold, 2) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

std::string timeline(const Ring& ring, const std::vector<int64_t>& members, const InputView& v,
                     const RingGraph& g) {
  const Dataset& in = *v.input;
  if (!in.has_time()) return "<p class=\"muted\">No timeline: the input has no /requests/time.</p>";
  const int64_t t0 = v.first_seen[size_t(ring.id)], t1 = v.last_seen[size_t(ring.id)];
  if (t0 > t1) return "<p class=\"muted\">No timeline: the ring's members sent no requests.</p>";
  std::vector<int64_t> order = members;
  const auto count = [&](int64_t a) { return int64_t(v.requests[size_t(v.member_slot.at(a))].size()); };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return count(a) > count(b); });
  const int64_t shown = std::min<int64_t>(int64_t(order.size()), kTimelineMembers);
  const double span = double(std::max<int64_t>(1, t1 - t0 + 1));
  const double bin_seconds = span / kTimelineBins;
  std::vector<std::vector<int64_t>> bins(size_t(shown), std::vector<int64_t>(kTimelineBins, 0));
  int64_t most = 1;
  for (int64_t m = 0; m < shown; ++m) {
    for (const int64_t r : v.requests[size_t(v.member_slot.at(order[size_t(m)]))]) {
      const int b = std::min(kTimelineBins - 1, int(double(in.request_time[r] - t0) / bin_seconds));
      most = std::max(most, ++bins[size_t(m)][size_t(b)]);
    }
  }
  constexpr int kRow = 13, kTop = 6;
  const int bin_px = kPlotWidth / kTimelineBins;
  const int height = kTop + int(shown) * kRow + 34;
  std::ostringstream o;
  o << "<svg class=\"timeline\" width=\"" << kLabelWidth + kPlotWidth + 10 << "\" height=\"" << height
    << "\" role=\"img\" aria-label=\"timeline of ring " << ring.id << "\">";
  for (int64_t m = 0; m < shown; ++m) {
    const int y = kTop + int(m) * kRow;
    const int64_t a = order[size_t(m)];
    o << "<text x=\"" << kLabelWidth - 6 << "\" y=\"" << y + kRow - 3 << "\" text-anchor=\"end\" class=\"small\">"
      << g.account_ids[size_t(a)] << " (" << count(a) << ")</text>";
    for (int b = 0; b < kTimelineBins; ++b) {
      const int64_t c = bins[size_t(m)][size_t(b)];
      if (c == 0) continue;
      o << "<rect x=\"" << kLabelWidth + b * bin_px << "\" y=\"" << y + 1 << "\" width=\"" << bin_px << "\" height=\""
        << kRow - 2 << "\" fill=\"#1f4e8c\" fill-opacity=\"" << fixed(0.25 + 0.75 * double(c) / double(most), 2)
        << "\"/>";
    }
  }
  const int axis = kTop + int(shown) * kRow + 4;
  o << "<line x1=\"" << kLabelWidth << "\" y1=\"" << axis << "\" x2=\"" << kLabelWidth + kPlotWidth << "\" y2=\""
    << axis << "\" stroke=\"#333\"/>";
  o << "<text x=\"" << kLabelWidth << "\" y=\"" << axis + 16 << "\">" << utc(t0) << " UTC</text>";
  o << "<text x=\"" << kLabelWidth + kPlotWidth << "\" y=\"" << axis + 16 << "\" text-anchor=\"end\">" << utc(t1)
    << " UTC</text>";
  o << "<text x=\"" << kLabelWidth + kPlotWidth / 2 << "\" y=\"" << axis + 28
    << "\" text-anchor=\"middle\" class=\"small\">one column = " << duration(bin_seconds)
    << "; darker = more requests</text>";
  o << "</svg>";
  if (shown < int64_t(order.size()))
    o << "<p class=\"muted\">The " << shown << " most active of " << order.size() << " members are drawn.</p>";
  return o.str();
}

/// The members' most common value of a categorical column and its share among them and
/// among all accounts (`population` ascending).
struct CategoryShare {
  float value = 0;
  double members = 0, population = 0;
};
CategoryShare category_share(std::vector<float> mine, const std::vector<float>& population) {
  std::sort(mine.begin(), mine.end());
  CategoryShare best;
  int64_t most = 0;
  for (std::size_t i = 0; i < mine.size();) {
    std::size_t j = i;
    while (j < mine.size() && mine[j] == mine[i]) ++j;
    if (int64_t(j - i) > most) most = int64_t(j - i), best.value = mine[i];
    i = j;
  }
  best.members = mine.empty() ? 0 : double(most) / double(mine.size());
  const auto [lo, hi] = std::equal_range(population.begin(), population.end(), best.value);
  best.population = population.empty() ? 0 : double(hi - lo) / double(population.size());
  return best;
}

/// Per feature, the members against all accounts: for a continuous one, the population's
/// 5/25/50/75/95th percentiles and each member's value; for a categorical one, the share of
/// the members and of all accounts at the members' most common value.
std::string behaviour_plot(const std::vector<int64_t>& members, const InputView& v,
                           const std::vector<std::vector<float>>& population_sorted) {
  const Dataset& in = *v.input;
  if (!in.has_features()) return "<p class=\"muted\">No behaviour features: the input has no /accounts/features.</p>";
  const int64_t B = in.feature_dim;
  const auto categorical = [&](int64_t f) {
    return f < int64_t(in.feature_categorical.size()) && in.feature_categorical[size_t(f)] != 0;
  };
  struct Row {
    int64_t feature;
    /// How unusual the members are on it: |members' median - population median| in
    /// population IQRs, or for a category ln(members' share / population's share).
    double distance;
  };
  std::vector<Row> rows;
  std::vector<std::vector<float>> values(static_cast<size_t>(B));
  for (int64_t f = 0; f < B; ++f) {
    for (const int64_t a : members) values[size_t(f)].push_back(in.features[size_t(v.input_row[size_t(a)] * B + f)]);
    const std::vector<float>& pop = population_sorted[size_t(f)];
    if (categorical(f)) {
      const CategoryShare c = category_share(values[size_t(f)], pop);
      rows.push_back({f, std::log(std::max(c.members, 1e-9) / std::max(c.population, 1.0 / double(pop.size())))});
      continue;
    }
    std::vector<float> mine = values[size_t(f)];
    const double median = quantile(mine, 0.5);
    const double iqr = std::max(1e-9, sorted_quantile(pop, 0.75) - sorted_quantile(pop, 0.25));
    rows.push_back({f, std::fabs(median - sorted_quantile(pop, 0.5)) / iqr});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.distance > b.distance; });
  const int64_t shown = std::min<int64_t>(B, kFeatureRows);
  constexpr int kRow = 24, kTop = 8;
  std::ostringstream o;
  o << "<svg class=\"behaviour\" width=\"" << kLabelWidth + kPlotWidth + 10 << "\" height=\""
    << kTop + shown * kRow + 8 << "\" role=\"img\" aria-label=\"behaviour features\">";
  for (int64_t i = 0; i < shown; ++i) {
    const int64_t f = rows[size_t(i)].feature;
    const std::vector<float>& pop = population_sorted[size_t(f)];
    const int y = kTop + int(i) * kRow, mid = y + kRow / 2;
    const std::string name = f < int64_t(in.feature_names.size()) ? in.feature_names[size_t(f)] : "feature " + std::to_string(f);
    o << "<text x=\"" << kLabelWidth - 6 << "\" y=\"" << mid + 4 << "\" text-anchor=\"end\">" << detail::markup_escaped(name)
      << "</text>";
    if (categorical(f)) {
      // Two bars on a 0-100% scale: all accounts (grey) and the members (red) at the value.
      const CategoryShare c = category_share(values[size_t(f)], pop);
      const double width = kPlotWidth * 0.6;
      o << "<rect x=\"" << kLabelWidth << "\" y=\"" << mid - 7 << "\" width=\"" << fixed(width * c.population, 1)
        << "\" height=\"6\" fill=\"#bbb\"/><rect x=\"" << kLabelWidth << "\" y=\"" << mid + 1 << "\" width=\""
        << fixed(width * c.members, 1) << "\" height=\"6\" fill=\"#d62728\" fill-opacity=\"0.8\"/>";
      o << "<text x=\"" << fixed(kLabelWidth + width + 8, 1) << "\" y=\"" << mid + 4 << "\">category "
        << fixed(c.value, 0) << ": " << fixed(100 * c.members, 0) << "% of the members, " << fixed(100 * c.population, 1)
        << "% of all accounts</text>";
      continue;
    }
    const auto at = [&pop](double q) { return sorted_quantile(pop, q); };
    double lo = at(0.01), hi = at(0.99);
    for (const float x : values[size_t(f)]) lo = std::min(lo, double(x)), hi = std::max(hi, double(x));
    if (hi <= lo) hi = lo + 1;
    const auto X = [&](double x) { return kLabelWidth + (x - lo) / (hi - lo) * kPlotWidth; };
    o << "<line x1=\"" << fixed(X(at(0.05)), 1) << "\" y1=\"" << mid << "\" x2=\"" << fixed(X(at(0.95)), 1)
      << "\" y2=\"" << mid << "\" stroke=\"#999\"/>";
    o << "<rect x=\"" << fixed(X(at(0.25)), 1) << "\" y=\"" << mid - 6 << "\" width=\""
      << fixed(std::max(1.0, X(at(0.75)) - X(at(0.25))), 1) << "\" height=\"12\" fill=\"#ddd\" stroke=\"#999\"/>";
    o << "<line x1=\"" << fixed(X(at(0.5)), 1) << "\" y1=\"" << mid - 6 << "\" x2=\"" << fixed(X(at(0.5)), 1)
      << "\" y2=\"" << mid + 6 << "\" stroke=\"#555\"/>";
    for (std::size_t m = 0; m < values[size_t(f)].size(); ++m) {
      const double jitter = double(int(m * 7 % 9) - 4);  // spreads equal values apart, the same every run
      o << "<circle cx=\"" << fixed(X(values[size_t(f)][m]), 1) << "\" cy=\"" << fixed(mid + jitter, 1)
        << "\" r=\"2.5\" fill=\"#d62728\" fill-opacity=\"0.7\"/>";
    }
  }
  o << "</svg><p class=\"muted\">Grey: all accounts of the input (box 25th\u201375th percentile, line "
       "5th\u201395th, mark the median; for a category, the share at the members' most common value). Red: the "
       "ring's members. ";
  if (shown < B) o << "The " << shown << " of " << B << " features on which the members stand out most are drawn.";
  o << "</p>";
  return o.str();
}

std::string subgraph(const Ring& ring, const std::vector<int64_t>& members, const RingGraph& g,
                     const std::vector<const RingEdge*>& edges) {
  std::unordered_map<int64_t, double> degree;
  for (const RingEdge* e : edges) degree[e->first] += e->weight, degree[e->second] += e->weight;
  std::vector<int64_t> nodes = members;
  std::stable_sort(nodes.begin(), nodes.end(), [&](int64_t a, int64_t b) { return degree[a] > degree[b]; });
  if (int64_t(nodes.size()) > kGraphNodes) nodes.resize(kGraphNodes);
  std::sort(nodes.begin(), nodes.end());
  // Room around the circle for the labels (ids of up to 20 digits).
  constexpr int kSize = 560;
  const double radius = kSize / 2.0 - 125;
  std::unordered_map<int64_t, std::pair<double, double>> at;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const double angle = 2 * M_PI * double(i) / double(nodes.size()) - M_PI / 2;
    at[nodes[i]] = {kSize / 2.0 + radius * std::cos(angle), kSize / 2.0 + radius * std::sin(angle)};
  }
  double heaviest = 0;
  for (const RingEdge* e : edges) heaviest = std::max(heaviest, double(e->weight));
  std::ostringstream o;
  o << "<div class=\"graph\"><svg width=\"" << kSize << "\" height=\"" << kSize << "\" role=\"img\" aria-label=\"evidence graph of ring "
    << ring.id << "\">";
  int64_t drawn = 0;
  for (const RingEdge* e : edges) {
    const auto a = at.find(e->first), b = at.find(e->second);
    if (a == at.end() || b == at.end()) continue;
    ++drawn;
    const char* signal = strongest_signal(*e);
    o << "<line x1=\"" << fixed(a->second.first, 1) << "\" y1=\"" << fixed(a->second.second, 1) << "\" x2=\""
      << fixed(b->second.first, 1) << "\" y2=\"" << fixed(b->second.second, 1) << "\" stroke=\"" << signal_colour(signal)
      << "\" stroke-width=\"" << fixed(0.6 + 2.4 * (heaviest > 0 ? e->weight / heaviest : 0), 2) << "\""
      << (e->weak ? " stroke-dasharray=\"4,3\"" : "") << " stroke-opacity=\"0.7\"><title>"
      << g.account_ids[size_t(e->first)] << " \u2013 " << g.account_ids[size_t(e->second)] << ": " << signal
      << ", weight " << fixed(e->weight, 2) << "</title></line>";
  }
  for (const int64_t n : nodes) {
    const auto [x, y] = at[n];
    o << "<circle cx=\"" << fixed(x, 1) << "\" cy=\"" << fixed(y, 1) << "\" r=\"5\" fill=\"#333\"><title>account "
      << g.account_ids[size_t(n)] << "</title></circle>";
    if (nodes.size() <= 24) {
      const double dx = x - kSize / 2.0, dy = y - kSize / 2.0, len = std::max(1.0, std::hypot(dx, dy));
      o << "<text x=\"" << fixed(x + dx / len * 10, 1) << "\" y=\"" << fixed(y + dy / len * 10 + 3, 1)
        << "\" text-anchor=\"" << (dx > 1 ? "start" : dx < -1 ? "end" : "middle") << "\" class=\"small\">" << g.account_ids[size_t(n)] << "</text>";
    }
  }
  o << "</svg><div class=\"legend\"><b>Edges by strongest signal</b>";
  for (const SignalStyle& s : kSignalStyles)
    o << "<div><span class=\"swatch\" style=\"background:" << s.colour << "\"></span>" << s.label << "</div>";
  o << "<div>dashed: below the edge threshold (a link of a weak core)</div><div>width: fused weight</div>";
  o << "<div>" << drawn << " edges among " << nodes.size() << " of " << members.size() << " members</div></div></div>";
  return o.str();
}

std::string prompt_table(const Ring& ring, const InputView& v, const std::map<int64_t, std::string>& texts) {
  if (ring.examples.empty())
    return "<p class=\"muted\">No shared prompt groups stored for this ring (" + std::to_string(ring.shared_groups) +
           " rare groups are shared by two or more members).</p>";
  const bool ids = v.input != nullptr && !v.input->request_ids.empty();
  std::ostringstream o;
  o << "<p>" << ring.shared_groups << " rare prompt groups are sent by two or more members; the strongest "
    << ring.examples.size() << ":</p>";
  o << "<table class=\"prompts\"><tr><th>members who sent it</th><th>accounts overall</th><th>IDF</th><th>example requests</th></tr>";
  for (const SharedPromptExample& e : ring.examples) {
    o << "<tr><td class=\"num\">" << e.accounts_in_ring << " of " << ring.size << "</td><td class=\"num\">"
      << e.accounts_overall << "</td><td class=\"num\">" << fixed(e.idf, 2) << "</td><td>";
    for (const int64_t row : e.request_rows) {
      // One line per example when it has a text; else the rows run on in one line.
      const auto t = texts.find(row);
      o << (t != texts.end() ? "<div class=\"example\">" : "<span class=\"example\">") << "<span class=\"muted\">row "
        << row;
      if (ids) o << ", id " << v.input->request_ids[size_t(row)];
      o << "</span>";
      if (t != texts.end()) o << " <q>" << detail::markup_escaped(shortened(t->second, kTextChars)) << "</q></div>";
      else o << "</span> ";
    }
    o << "</td></tr>";
  }
  o << "</table>";
  return o.str();
}

constexpr const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.muted{color:#777}.small{font-size:10px}svg{font:11px system-ui,sans-serif;display:block}
table{border-collapse:collapse;margin:6px 0}th,td{border-bottom:1px solid #e4e4e4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}.card{background:#f6f8fb;border:1px solid #dde3ec;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:20px}.notes li{color:#8a5a00}.graph{display:flex;gap:16px;align-items:flex-start}
.legend div{margin:3px 0}.swatch{display:inline-block;width:22px;height:4px;margin-right:6px;vertical-align:middle}
.example{margin:2px 8px 2px 0}span.example{display:inline-block}q{color:#333}.members{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
section.ring{margin-top:28px}
)";

// Sorts the overview table by the clicked column (numbers by data-v); nothing else runs.
constexpr const char* kScript = R"(
document.querySelectorAll('table.sortable th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var down = th.getAttribute('data-order') !== 'desc';
    th.setAttribute('data-order', down ? 'desc' : 'asc');
    rows.sort(function (a, b) {
      var x = a.cells[column].getAttribute('data-v'), y = b.cells[column].getAttribute('data-v');
      var d = (x !== null && y !== null) ? parseFloat(x) - parseFloat(y)
                                          : a.cells[column].textContent.localeCompare(b.cells[column].textContent);
      return down ? -d : d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
)";

}  // namespace

std::vector<int64_t> report_example_rows(const std::vector<Ring>& rings, const RingReportOptions& options) {
  std::vector<int64_t> rows;
  for (const Ring& r : rings)
    if (r.id < options.top)
      for (const SharedPromptExample& e : r.examples) rows.insert(rows.end(), e.request_rows.begin(), e.request_rows.end());
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

std::string ring_report_html(const RingReportSources& s, const RingReportOptions& options) {
  if (s.output == nullptr || s.graph == nullptr || s.rings == nullptr)
    throw InternalError("ring_report_html: output, graph and rings are required");
  const OutputSummary& out = *s.output;
  const RingGraph& g = *s.graph;
  const std::vector<Ring>& rings = *s.rings;
  const int64_t detailed = std::min<int64_t>(std::max<int64_t>(options.top, 0), int64_t(rings.size()));
  const InputView v = view_input(s, detailed);
  const std::vector<std::vector<int64_t>> members = member_rows(g, int64_t(rings.size()));
  std::vector<std::vector<const RingEdge*>> edges(rings.size());
  for (const RingEdge& e : g.edges)
    if (e.ring >= 0 && e.ring < int64_t(rings.size())) edges[size_t(e.ring)].push_back(&e);

  std::vector<std::vector<float>> population;  // per feature, every account's value
  if (s.input != nullptr && s.input->has_features() && detailed > 0) {
    const Dataset& in = *s.input;
    population.resize(size_t(in.feature_dim));
    for (int64_t f = 0; f < in.feature_dim; ++f) {
      population[size_t(f)].resize(size_t(in.num_accounts()));
      for (int64_t a = 0; a < in.num_accounts(); ++a) population[size_t(f)][size_t(a)] = in.features[size_t(a * in.feature_dim + f)];
      std::sort(population[size_t(f)].begin(), population[size_t(f)].end());
    }
  }
  const double threshold = std::atof(parameter(out, "ring_threshold").c_str());

  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>ringscan report: " << detail::markup_escaped(out.path) << "</title><style>" << kStyle << "</style></head><body>\n";
  o << "<h1>Account rings</h1><p class=\"muted\">" << detail::markup_escaped(out.path) << " (ringscan " << detail::markup_escaped(out.tool_version)
    << ", " << detail::markup_escaped(out.backend) << " backend), input " << detail::markup_escaped(out.input) << "</p>\n";
  int64_t ring_accounts = 0;
  for (const Ring& r : rings) ring_accounts += r.size;
  o << "<div class=\"cards\"><div class=\"card\"><b>" << rings.size() << "</b>rings</div><div class=\"card\"><b>"
    << ring_accounts << "</b>accounts in rings</div><div class=\"card\"><b>" << out.accounts << "</b>accounts</div>";
  if (s.input != nullptr)
    o << "<div class=\"card\"><b>" << s.input->num_requests() << "</b>requests</div>";
  o << "</div>\n";
  if (!out.notes.empty()) {
    o << "<ul class=\"notes\">";
    for (const std::string& n : out.notes) o << "<li>" << detail::markup_escaped(n) << "</li>";
    o << "</ul>\n";
  }
  if (s.input == nullptr)
    o << "<p class=\"muted\">Made without the input file (--input): no timelines, behaviour features or activity "
         "spans.</p>\n";

  o << "<h2>Ring scores</h2>" << score_histogram(rings, threshold)
    << "<p class=\"muted\">Clusters scoring below the threshold are not reported and not counted here.</p>\n";

  o << "<h2>Rings by score</h2><table class=\"sortable\"><thead><tr><th class=\"num\">ring</th><th class=\"num\">size</th>"
       "<th class=\"num\">score</th><th class=\"num\">shared prompts</th><th class=\"num\">synchrony</th>"
       "<th class=\"num\">behaviour</th><th class=\"num\">volume</th><th>first activity</th><th>last activity</th></tr>"
       "</thead><tbody>\n";
  const int64_t listed = std::min<int64_t>(int64_t(rings.size()), std::max<int64_t>(options.table_rows, 0));
  for (int64_t i = 0; i < listed; ++i) {
    const Ring& r = rings[size_t(i)];
    const bool timed = s.input != nullptr && s.input->has_time() && v.first_seen[size_t(i)] <= v.last_seen[size_t(i)];
    o << "<tr><td class=\"num\" data-v=\"" << r.id << "\">"
      << (r.id < detailed ? "<a href=\"#ring-" + std::to_string(r.id) + "\">" + std::to_string(r.id) + "</a>"
                          : std::to_string(r.id))
      << "</td><td class=\"num\" data-v=\"" << r.size << "\">" << r.size << "</td><td class=\"num\" data-v=\""
      << fixed(r.score, 4) << "\">" << fixed(r.score, 3) << "</td><td class=\"num\" data-v=\""
      << fixed(r.shared_prompt_strength, 4) << "\">" << fixed(r.shared_prompt_strength, 2)
      << "</td><td class=\"num\" data-v=\"" << fixed(r.synchrony, 4) << "\">" << fixed(r.synchrony, 2)
      << "</td><td class=\"num\" data-v=\"" << fixed(r.behaviour_tightness, 4) << "\">"
      << fixed(r.behaviour_tightness, 2) << "</td><td class=\"num\" data-v=\"" << fixed(r.volume, 0) << "\">"
      << fixed(r.volume, 0) << "</td><td data-v=\"" << (timed ? v.first_seen[size_t(i)] : 0) << "\">"
      << (timed ? utc(v.first_seen[size_t(i)]) : "") << "</td><td data-v=\"" << (timed ? v.last_seen[size_t(i)] : 0)
      << "\">" << (timed ? utc(v.last_seen[size_t(i)]) : "") << "</td></tr>\n";
  }
  o << "</tbody></table>\n";
  if (listed < int64_t(rings.size())) {
    int64_t accounts = 0, smallest = INT64_MAX, largest = 0;
    for (std::size_t i = size_t(listed); i < rings.size(); ++i) {
      accounts += rings[i].size;
      smallest = std::min(smallest, rings[i].size);
      largest = std::max(largest, rings[i].size);
    }
    o << "<p>" << int64_t(rings.size()) - listed << " more rings (" << accounts << " accounts, sizes " << smallest
      << "\u2013" << largest << ", scores " << fixed(rings.back().score, 3) << "\u2013" << fixed(rings[size_t(listed)].score, 3)
      << ") are not listed here; all are in the output file.</p>\n";
  }
  o << "<p class=\"muted\">Shared prompts: share of the members' requests in prompt groups two or more members sent. "
       "Synchrony and behaviour: mean evidence of the ring's edges, in nats against independent accounts of the same "
       "input. Click a column to sort.</p>\n";

  for (int64_t i = 0; i < detailed; ++i) {
    const Ring& r = rings[size_t(i)];
    const std::vector<int64_t>& m = members[size_t(i)];
    o << "<section class=\"ring\" id=\"ring-" << r.id << "\"><h2>Ring " << r.id << ": " << r.size
      << " accounts, score " << fixed(r.score, 3) << "</h2>\n";
    o << "<p>shared prompts " << fixed(r.shared_prompt_strength, 2) << " \u00b7 synchrony " << fixed(r.synchrony, 2)
      << " \u00b7 behaviour " << fixed(r.behaviour_tightness, 2) << " \u00b7 prompt diversity "
      << fixed(r.prompt_diversity, 3) << " \u00b7 " << fixed(r.volume, 0) << " requests";
    if (s.input != nullptr && s.input->has_time() && v.first_seen[size_t(i)] <= v.last_seen[size_t(i)])
      o << " \u00b7 active " << utc(v.first_seen[size_t(i)]) << " to " << utc(v.last_seen[size_t(i)]) << " UTC";
    o << "</p>\n";
    if (s.input != nullptr) o << "<h3>Timeline</h3>" << timeline(r, m, v, g) << "\n";
    o << "<h3>Shared prompt groups</h3>" << prompt_table(r, v, s.texts) << "\n";
    if (s.input != nullptr) o << "<h3>Behaviour against all accounts</h3>" << behaviour_plot(m, v, population) << "\n";
    o << "<h3>Evidence graph</h3>" << subgraph(r, m, g, edges[size_t(i)]) << "\n";
    o << "<h3>Members</h3><p class=\"members\">";
    for (std::size_t k = 0; k < r.members.size(); ++k) o << (k ? " " : "") << r.members[k];
    o << "</p></section>\n";
  }
  if (detailed < int64_t(rings.size()))
    o << "<p class=\"muted\">The top " << detailed << " rings are drawn in detail (--top).</p>\n";
  o << "<script>" << kScript << "</script></body></html>\n";
  return o.str();
}

}  // namespace ringscan
