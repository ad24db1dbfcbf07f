#include "daemon/event_json.h"

#include <chrono>
#include <cstdio>

namespace relay {

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
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
  const sys_days day = floor<days>(sys_time<milliseconds>(milliseconds(unix_ms)));
  const year_month_day ymd(day);
  const int64_t ms_of_day = unix_ms - duration_cast<milliseconds>(day.time_since_epoch()).count();
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(ymd.year()),
                              unsigned(ymd.month()), unsigned(ymd.day()), int(ms_of_day / 3600000),
                              int(ms_of_day / 60000 % 60), int(ms_of_day / 1000 % 60), int(ms_of_day % 1000));
  out.append(buf, static_cast<size_t>(n));
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
  out.append(",\"at\":\"");
  append_rfc3339(out, e.at_unix_ms);
  out.append("\"}");
}

}  // namespace relay
