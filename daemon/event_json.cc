#include "daemon/event_json.h"

#include <chrono>
#include <climits>
#include <cstdio>

namespace relay {

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  // Ids and machine words need no escaping: copy them whole.
  bool plain = true;
  for (char c : s) plain &= static_cast<unsigned char>(c) >= 0x20 && c != '"' && c != '\\';
  if (plain) {
    out.append(s);
    out.push_back('"');
    return;
  }
  for (char c : s) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[(c >> 4) & 0xf]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void append_rfc3339(std::string& out, int64_t unix_ms) {
  using namespace std::chrono;
  // Events come in bursts within one second: format the date and time once
  // per second (snprintf was a seventh of a broadcast's core-thread time).
  thread_local int64_t cached_second = INT64_MIN;
  thread_local char cached[24];
  const int64_t second = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  if (second != cached_second) {
    const sys_days day = floor<days>(sys_seconds(seconds(second)));
    const year_month_day ymd(day);
    const int64_t s_of_day = second - duration_cast<seconds>(day.time_since_epoch()).count();
    std::snprintf(cached, sizeof cached, "%04d-%02u-%02uT%02d:%02d:%02d", int(ymd.year()),
                  unsigned(ymd.month()), unsigned(ymd.day()), int(s_of_day / 3600),
                  int(s_of_day / 60 % 60), int(s_of_day % 60));
    cached_second = second;
  }
  const int ms = static_cast<int>(unix_ms - second * 1000);
  out.append(cached, 19);
  const char tail[6] = {'.', char('0' + ms / 100), char('0' + ms / 10 % 10), char('0' + ms % 10), 'Z', 0};
  out.append(tail, 5);
}

void encode_event(const event_fields& e, std::string& out) {
  out.clear();
  out.append("{\"type\":");
  append_json_string(out, e.type);
  const std::pair<std::string_view, std::string_view> fields[] = {
      {"job_id", e.job_id},     {"message_id", e.message_id}, {"company_id", e.company_id},
      {"user_id", e.user_id},   {"carrier_id", e.carrier_id}, {"channel", e.channel},
      {"reason", e.reason},     {"detail", e.detail}};
  for (const auto& [name, value] : fields) {
    if (value.empty()) continue;
    out.append(",\"");
    out.append(name);
    out.append("\":");
    append_json_string(out, value);
  }
  if (e.until_unix_ms != 0) {
    out.append(",\"until\":\"");
    append_rfc3339(out, e.until_unix_ms);
    out.push_back('"');
  }
  out.append(",\"at\":\"");
  append_rfc3339(out, e.at_unix_ms);
  out.append("\"}");
}

}  // namespace relay
