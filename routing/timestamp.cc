#include "routing/timestamp.h"

namespace relay {

bool read_fixed_digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

std::optional<sys_time> parse_rfc3339(std::string_view s, timestamp_form form) {
  using namespace std::chrono;
  const bool lenient = form == timestamp_form::lenient;
  int y = 0, mo = 0, d = 0;
  if (s.size() < 10 || !read_fixed_digits(s, 0, 4, y) || s[4] != '-' || !read_fixed_digits(s, 5, 2, mo) ||
      s[7] != '-' || !read_fixed_digits(s, 8, 2, d)) {
    return std::nullopt;
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  sys_time t = time_point_cast<milliseconds>(sys_days{ymd});
  if (s.size() == 10) return lenient ? std::optional<sys_time>(t) : std::nullopt;

  int h = 0, mi = 0, sec = 0;
  const bool separator = s[10] == 'T' || s[10] == 't' || (lenient && s[10] == ' ');
  if (!separator || s.size() < 16 || !read_fixed_digits(s, 11, 2, h) || s[13] != ':' ||
      !read_fixed_digits(s, 14, 2, mi) || h > 23 || mi > 59) {
    return std::nullopt;
  }
  size_t pos = 16;
  if (pos < s.size() && s[pos] == ':') {
    if (!read_fixed_digits(s, pos + 1, 2, sec) || sec > 60) return std::nullopt;
    pos += 3;
  } else if (!lenient) {
    return std::nullopt;
  }
  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    const size_t start = ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 3) millis = millis * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (size_t k = pos - start; k < 3; ++k) millis *= 10;
  }
  int offset_minutes = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!read_fixed_digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !read_fixed_digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_minutes = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else if (!lenient) {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  t += hours{h} + minutes{mi} + seconds{sec} + milliseconds{millis};
  return t - minutes{offset_minutes};
}

}  // namespace relay
