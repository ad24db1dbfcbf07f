#include "plugins/rcs_rbm/rbm_config.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace relay::rcs_rbm {

namespace {

constexpr std::string_view kKeys =
    "endpoint, agent_id, auth_token, auth_token_file, webhook_secret, capability_check, "
    "capability_ttl, revoke_after, ttl, connections, request_timeout, replay_memory, tls_ca_file";

bool parse_bool(std::string_view v, bool& out) {
  if (v == "true" || v == "yes" || v == "on" || v == "1") return out = true, true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return out = false, true;
  return false;
}

bool parse_size(std::string_view v, size_t lo, size_t hi, size_t& out) {
  size_t n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi) return false;
  out = n;
  return true;
}

}  // namespace

bool parse_duration(std::string_view text, millis& out) {
  size_t end = 0;
  while (end < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  if (end == 0) return false;
  const std::string number(text.substr(0, end));
  char* stop = nullptr;
  const double value = std::strtod(number.c_str(), &stop);
  if (stop != number.c_str() + number.size() || !std::isfinite(value) || value < 0) return false;
  const std::string_view unit = text.substr(end);
  double ms;
  if (unit.empty() || unit == "s")
    ms = value * 1e3;
  else if (unit == "ms")
    ms = value;
  else if (unit == "m")
    ms = value * 60e3;
  else if (unit == "h")
    ms = value * 3600e3;
  else if (unit == "d")
    ms = value * 86400e3;
  else
    return false;
  if (ms > 1e13) return false;  // over 300 years: surely a typo
  out = millis(static_cast<int64_t>(std::llround(ms)));
  return true;
}

std::string parse_endpoint(std::string_view url, endpoint& out) {
  endpoint e;
  std::string_view rest;
  if (url.substr(0, 8) == "https://") {
    e.tls = true, rest = url.substr(8);
  } else if (url.substr(0, 7) == "http://") {
    e.tls = false, rest = url.substr(7);
  } else {
    return "must start with http:// or https://";
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    if (path.find_first_of("?#") != std::string_view::npos)
      return "must not have a query or fragment";
    e.base_path = std::string(path);
  }
  if (authority.empty()) return "has no host";
  if (authority.find('@') != std::string_view::npos) return "must not carry credentials";
  size_t colon = authority.rfind(':');
  if (authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return "has an unterminated IPv6 address";
    e.host = std::string(authority.substr(1, close - 1));
    colon = authority.size() > close + 1 && authority[close + 1] == ':' ? close + 1
                                                                        : std::string_view::npos;
  } else {
    e.host = std::string(authority.substr(0, colon));
  }
  if (colon != std::string_view::npos) {
    size_t port = 0;
    if (!parse_size(authority.substr(colon + 1), 1, 65535, port)) return "has an invalid port";
    e.port = std::to_string(port);
  } else {
    e.port = e.tls ? "443" : "80";
  }
  if (e.host.empty()) return "has no host";
  out = std::move(e);
  return "";
}

std::string duration_json(millis d) {
  const int64_t ms = d.count();
  std::string s = std::to_string(ms / 1000);
  if (ms % 1000 != 0) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms % 1000));
    s += frac;
    while (s.back() == '0') s.pop_back();
  }
  return s + "s";
}

std::string parse_config(const std::vector<std::pair<std::string, std::string>>& kv,
                         rbm_config& out) {
  rbm_config c;
  parse_endpoint("https://rcsbusinessmessaging.googleapis.com", c.api);
  for (const auto& [key, value] : kv) {
    const auto bad = [&](std::string_view why) { return key + ": " + std::string(why); };
    if (key == "endpoint") {
      if (auto why = parse_endpoint(value, c.api); !why.empty()) return bad(why);
    } else if (key == "agent_id") {
      if (value.empty()) return bad("must not be empty");
      c.agent_id = value;
    } else if (key == "auth_token") {
      if (value.empty()) return bad("must not be empty");
      c.auth_token = value;
    } else if (key == "auth_token_file") {
      if (value.empty()) return bad("must not be empty");
      c.auth_token_file = value;
    } else if (key == "webhook_secret") {
      if (value.empty()) return bad("must not be empty (leave it out to refuse webhooks)");
      c.webhook_secret = value;
    } else if (key == "capability_check") {
      if (!parse_bool(value, c.capability_check)) return bad("must be true or false");
    } else if (key == "capability_ttl") {
      if (!parse_duration(value, c.capability_ttl))
        return bad("must be a duration such as 1h or 90s");
    } else if (key == "revoke_after") {
      if (!parse_duration(value, c.revoke_after))
        return bad("must be a duration such as 24h (0: off)");
    } else if (key == "ttl") {
      if (!parse_duration(value, c.ttl)) return bad("must be a duration such as 24h (0: none)");
    } else if (key == "connections") {
      if (!parse_size(value, 1, 1024, c.connections)) return bad("must be a number from 1 to 1024");
    } else if (key == "request_timeout") {
      if (!parse_duration(value, c.request_timeout) || c.request_timeout.count() <= 0)
        return bad("must be a positive duration such as 10s");
    } else if (key == "replay_memory") {
      if (!parse_size(value, 1, 100'000'000, c.replay_memory))
        return bad("must be a number of ids from 1 to 100000000");
    } else if (key == "tls_ca_file") {
      if (value.empty()) return bad("must not be empty");
      c.tls_ca_file = value;
    } else {
      return key + ": unknown key (rcs_rbm knows: " + std::string(kKeys) + ")";
    }
  }
  if (c.agent_id.empty()) return "agent_id: required";
  if (c.auth_token.empty() == c.auth_token_file.empty())
    return "auth_token: give exactly one of auth_token and auth_token_file";
  out = std::move(c);
  return "";
}

}  // namespace relay::rcs_rbm
