// Text placed in XML or HTML (GraphML export, the HTML report).
#pragma once
#include <string>

namespace ringscan::detail {

/// `s` with the five characters markup gives meaning to written as entities, so that it
/// reads as text in an element or a quoted attribute of XML or HTML.
inline std::string markup_escaped(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace ringscan::detail
