// Unix times as the report and the command line print them.
#pragma once
#include <cstdint>
#include <ctime>
#include <string>

namespace ringscan::detail {

/// `unix_seconds` as UTC calendar time in strftime's `format`, or the bare number where the
/// platform cannot represent it.
inline std::string utc_text(int64_t unix_seconds, const char* format) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  char buf[64];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof buf, format, &tm) == 0)
    return std::to_string(unix_seconds);
  return buf;
}

}  // namespace ringscan::detail
