#include "routing/duration.h"

#include <cstdint>
#include <limits>

namespace relay {

namespace {

// The text is not quoted in errors: callers prefix the field path, and a
// duration read from a job must not echo arbitrary outside bytes.
constexpr const char* kExpected = "expected a non-negative integer and a unit (ms, s, m, h or d)";

error duration_error(std::string_view what) {
  std::string m(what);
  m += ": ";
  m += kExpected;
  return make_error(errc::invalid_argument, std::move(m));
}

}  // namespace

result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return duration_error("empty duration");

  size_t i = 0;
  uint64_t n = 0;
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (n > (kMax - digit) / 10) return make_error(errc::invalid_argument, "duration is too large");
    n = n * 10 + digit;
    ++i;
  }
  if (i == 0) return duration_error("duration does not start with a digit");

  const std::string_view unit = text.substr(i);
  uint64_t unit_ms = 0;
  if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "s") {
    unit_ms = 1000;
  } else if (unit == "m") {
    unit_ms = 60 * 1000;
  } else if (unit == "h") {
    unit_ms = 60 * 60 * 1000;
  } else if (unit == "d") {
    unit_ms = 24 * 60 * 60 * 1000;
  } else if (unit.empty()) {
    return duration_error("duration has no unit");
  } else {
    return duration_error("duration has an unknown unit");
  }
  if (n > kMax / unit_ms) return make_error(errc::invalid_argument, "duration is too large");
  return std::chrono::milliseconds(static_cast<int64_t>(n * unit_ms));
}

}  // namespace relay
