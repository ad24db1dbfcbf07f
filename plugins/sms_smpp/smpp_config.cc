#include "plugins/sms_smpp/smpp_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>

namespace sms_smpp {

namespace {

constexpr std::string_view kKnownKeys =
    "host, port, system_id, password, system_type, source_addr, source_addr_ton, "
    "source_addr_npi, dest_addr_ton, dest_addr_npi, window, tps, enquire_link_interval, "
    "response_timeout, queue_timeout, throttle_pause, reconnect_min, reconnect_max, "
    "registered_delivery, connect_timeout, receipt_memory, receipt_max_age";

bool parse_uint(const std::string& text, uint64_t max, uint64_t& out) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v > max)
    return false;
  out = v;
  return true;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

bool parse_duration(const std::string& text, millis& out) {
  if (text == "0") {
    out = millis(0);
    return true;
  }
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return false;
  uint64_t n = 0;
  std::from_chars(text.data(), text.data() + digits, n);
  const std::string_view unit = std::string_view(text).substr(digits);
  if (unit == "ms") {
    out = millis(n);
  } else if (unit == "s") {
    out = millis(n * 1000);
  } else if (unit == "m") {
    out = millis(n * 60'000);
  } else if (unit == "h") {
    out = millis(n * 3'600'000);
  } else {
    return false;
  }
  return true;
}

uint8_t smpp_config::effective_source_ton() const {
  if (source_addr_ton >= 0) return static_cast<uint8_t>(source_addr_ton);
  if (source_addr.empty()) return 0;
  if (source_addr[0] == '+') return 1;                                  // international
  if (all_digits(source_addr)) return source_addr.size() <= 8 ? 3 : 1;  // short code / number
  return 5;                                                             // alphanumeric
}

uint8_t smpp_config::effective_source_npi() const {
  if (source_addr_npi >= 0) return static_cast<uint8_t>(source_addr_npi);
  const uint8_t ton = effective_source_ton();
  return ton == 1 ? 1 : 0;
}

std::string smpp_config::effective_source_addr() const {
  if (!source_addr.empty() && source_addr[0] == '+' && effective_source_ton() == 1)
    return source_addr.substr(1);
  return source_addr;
}

std::string parse_config(const std::vector<std::pair<std::string, std::string>>& kv,
                         smpp_config& cfg) {
  std::vector<std::string> seen;
  for (const auto& [key, value] : kv) {
    const auto bad = [&](const std::string& expected) {
      return key + ": " + expected + " (got \"" + value + "\")";
    };
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) return key + ": given twice";
    seen.push_back(key);
    uint64_t n = 0;
    const auto duration = [&](millis& out, millis min, millis max) -> std::string {
      if (!parse_duration(value, out)) return bad("must be a duration like 500ms, 30s, 2m or 1h");
      if (out < min || out > max) {
        return bad("must be from " + std::to_string(min.count()) + "ms to " +
                   std::to_string(max.count()) + "ms");
      }
      return "";
    };
    const auto byte = [&](auto& out) -> std::string {
      if (!parse_uint(value, 255, n)) return bad("must be a whole number from 0 to 255");
      out = static_cast<std::remove_reference_t<decltype(out)>>(n);
      return "";
    };
    const auto cstring = [&](std::string& out, size_t max) -> std::string {
      if (value.size() > max || value.find('\0') != std::string::npos)
        return key + ": must be at most " + std::to_string(max) + " characters";
      out = value;
      return "";
    };
    std::string why;
    if (key == "host") {
      if (value.empty()) return "host: must not be empty";
      cfg.host = value;
    } else if (key == "port") {
      if (!parse_uint(value, 65535, n) || n == 0) return bad("must be a port from 1 to 65535");
      cfg.port = static_cast<uint16_t>(n);
    } else if (key == "system_id") {
      why = cstring(cfg.system_id, 15);
    } else if (key == "password") {
      why = cstring(cfg.password, 8);
    } else if (key == "system_type") {
      why = cstring(cfg.system_type, 12);
    } else if (key == "source_addr") {
      why = cstring(cfg.source_addr, 21);
    } else if (key == "source_addr_ton") {
      why = byte(cfg.source_addr_ton);
    } else if (key == "source_addr_npi") {
      why = byte(cfg.source_addr_npi);
    } else if (key == "dest_addr_ton") {
      why = byte(cfg.dest_addr_ton);
    } else if (key == "dest_addr_npi") {
      why = byte(cfg.dest_addr_npi);
    } else if (key == "registered_delivery") {
      why = byte(cfg.registered_delivery);
    } else if (key == "window") {
      if (!parse_uint(value, 100'000, n) || n == 0)
        return bad("must be a whole number from 1 to 100000");
      cfg.window = static_cast<uint32_t>(n);
    } else if (key == "tps") {
      double v = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() ||
          !std::isfinite(v) || v < 0 || v > 1e6) {
        return bad("must be a number of submits per second from 0 (unlimited) to 1000000");
      }
      cfg.tps = v;
    } else if (key == "enquire_link_interval") {
      why = duration(cfg.enquire_link_interval, millis(100), std::chrono::hours(1));
    } else if (key == "response_timeout") {
      why = duration(cfg.response_timeout, millis(10), std::chrono::minutes(10));
    } else if (key == "queue_timeout") {
      why = duration(cfg.queue_timeout, millis(10), std::chrono::hours(1));
    } else if (key == "throttle_pause") {
      why = duration(cfg.throttle_pause, millis(0), std::chrono::minutes(10));
    } else if (key == "reconnect_min") {
      why = duration(cfg.reconnect_min, millis(10), std::chrono::hours(1));
    } else if (key == "reconnect_max") {
      why = duration(cfg.reconnect_max, millis(10), std::chrono::hours(1));
    } else if (key == "connect_timeout") {
      why = duration(cfg.connect_timeout, millis(10), std::chrono::minutes(10));
    } else if (key == "receipt_memory") {
      if (!parse_uint(value, 100'000'000, n))
        return bad("must be a whole number of entries from 0 to 100000000");
      cfg.receipt_memory = n;
    } else if (key == "receipt_max_age") {
      why = duration(cfg.receipt_max_age, millis(1000), std::chrono::hours(24 * 30));
    } else {
      return key + ": unknown key (sms_smpp knows " + std::string(kKnownKeys) + ")";
    }
    if (!why.empty()) return why;
  }
  if (cfg.host.empty()) return "host: required (the SMSC's host name or address)";
  if (cfg.system_id.empty()) return "system_id: required (the account the SMSC gave you)";
  if (cfg.reconnect_max < cfg.reconnect_min)
    return "reconnect_max: must not be below reconnect_min";
  return "";
}

}  // namespace sms_smpp
