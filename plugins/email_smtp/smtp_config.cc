#include "plugins/email_smtp/smtp_config.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>

namespace relay::email_smtp {
namespace {

constexpr std::string_view kKnownKeys =
    "host, port, from, from_name, reply_to, helo_name, starttls, tls_ca_file, tls_verify, "
    "username, password, allow_plain_auth, connections, max_messages_per_connection, "
    "connect_timeout, command_timeout, idle_timeout, message_id_domain, list_unsubscribe";

bool parse_bool(std::string_view text, bool& out) {
  if (text == "true" || text == "yes" || text == "on" || text == "1") return out = true, true;
  if (text == "false" || text == "no" || text == "off" || text == "0") return out = false, true;
  return false;
}

bool parse_count(std::string_view text, uint64_t min, uint64_t max, uint64_t& out) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max)
    return false;
  out = v;
  return true;
}

bool has_control_or_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  return std::all_of(d.begin(), d.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '[' || c == ']' || c == ':';
  });
}

bool valid_unsubscribe(std::string_view uris) {
  bool any = false;
  size_t i = 0;
  while (i <= uris.size()) {
    size_t comma = uris.find(',', i);
    if (comma == std::string_view::npos) comma = uris.size();
    std::string_view uri = uris.substr(i, comma - i);
    while (!uri.empty() && uri.front() == ' ') uri.remove_prefix(1);
    while (!uri.empty() && uri.back() == ' ') uri.remove_suffix(1);
    if (uri.empty() || has_control_or_space(uri) || uri.find_first_of("<>\"") != std::string_view::npos)
      return false;
    if (uri.rfind("mailto:", 0) != 0 && uri.rfind("https:", 0) != 0 && uri.rfind("http:", 0) != 0)
      return false;
    any = true;
    i = comma + 1;
  }
  return any;
}

}  // namespace

bool parse_duration(std::string_view text, std::chrono::milliseconds& out) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || n > 86'400'000) return false;
  const std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  uint64_t ms;
  if (unit == "ms") ms = n;
  else if (unit == "s" || unit.empty()) ms = n * 1000;
  else if (unit == "m") ms = n * 60'000;
  else if (unit == "h") ms = n * 3'600'000;
  else return false;
  if (ms == 0 || ms > 86'400'000) return false;
  out = std::chrono::milliseconds(ms);
  return true;
}

bool valid_mailbox(std::string_view a) {
  const size_t at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == a.size() || a.size() > 320) return false;
  if (has_control_or_space(a) || a.find_first_of("<>\"(),;[]\\") != std::string_view::npos)
    return false;
  return a.find('@') == at && valid_domain(a.substr(at + 1));
}

std::string parse_config(const std::vector<std::pair<std::string, std::string>>& kv,
                         smtp_config& cfg) {
  std::vector<std::string_view> seen;
  for (const auto& [key, value] : kv) {
    const auto bad = [&](std::string_view expected) {
      return key + ": " + std::string(expected) + " (got \"" + value + "\")";
    };
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) return key + ": given twice";
    seen.push_back(key);
    uint64_t n = 0;
    if (key == "host") {
      if (value.empty() || has_control_or_space(value)) return bad("must be a host name or address");
      cfg.host = value;
    } else if (key == "port") {
      if (!parse_count(value, 1, 65535, n)) return bad("must be a port number from 1 to 65535");
      cfg.port = static_cast<uint16_t>(n);
    } else if (key == "from") {
      if (!valid_mailbox(value)) return bad("must be a mailbox such as news@acme.example");
      cfg.from = value;
    } else if (key == "from_name") {
      if (value.find_first_of("\r\n") != std::string::npos) return "from_name: must be one line";
      cfg.from_name = value;
    } else if (key == "reply_to") {
      if (!valid_mailbox(value)) return bad("must be a mailbox such as help@acme.example");
      cfg.reply_to = value;
    } else if (key == "helo_name") {
      if (!valid_domain(value)) return bad("must be a domain name or address literal");
      cfg.helo_name = value;
    } else if (key == "starttls") {
      if (value == "auto") cfg.starttls = starttls_mode::auto_;
      else if (value == "required") cfg.starttls = starttls_mode::required;
      else if (value == "off") cfg.starttls = starttls_mode::off;
      else return bad("must be auto, required or off");
    } else if (key == "tls_ca_file") {
      if (value.empty() || ::access(value.c_str(), R_OK) != 0)
        return bad("must be a readable file of PEM certificates");
      cfg.tls_ca_file = value;
    } else if (key == "tls_verify") {
      if (!parse_bool(value, cfg.tls_verify)) return bad("must be true or false");
    } else if (key == "username") {
      if (value.empty()) return "username: must not be empty";
      cfg.username = value;
    } else if (key == "password") {
      cfg.password = value;  // never echoed back in errors
    } else if (key == "allow_plain_auth") {
      if (!parse_bool(value, cfg.allow_plain_auth)) return bad("must be true or false");
    } else if (key == "connections") {
      if (!parse_count(value, 1, 256, n)) return bad("must be a whole number from 1 to 256");
      cfg.connections = n;
    } else if (key == "max_messages_per_connection") {
      if (!parse_count(value, 1, 1'000'000, n)) return bad("must be a whole number from 1 to 1000000");
      cfg.max_messages_per_connection = n;
    } else if (key == "connect_timeout") {
      if (!parse_duration(value, cfg.connect_timeout)) return bad("must be a duration such as 10s");
    } else if (key == "command_timeout") {
      if (!parse_duration(value, cfg.command_timeout)) return bad("must be a duration such as 60s");
    } else if (key == "idle_timeout") {
      if (!parse_duration(value, cfg.idle_timeout)) return bad("must be a duration such as 30s");
    } else if (key == "message_id_domain") {
      if (!valid_domain(value)) return bad("must be a domain name");
      cfg.message_id_domain = value;
    } else if (key == "list_unsubscribe") {
      if (!valid_unsubscribe(value))
        return bad("must be comma-separated mailto: or https: URIs without spaces or <>");
      cfg.list_unsubscribe = value;
    } else {
      return key + ": unknown key (email_smtp knows " + std::string(kKnownKeys) + ")";
    }
  }
  if (cfg.host.empty()) return "host: required (the SMTP server's name or address)";
  if (cfg.from.empty()) return "from: required (the sender mailbox, e.g. news@acme.example)";
  if (cfg.username.empty() != cfg.password.empty())
    return cfg.username.empty() ? "password: given without username" : "username: given without password";
  if (!cfg.username.empty() && cfg.starttls == starttls_mode::off && !cfg.allow_plain_auth)
    return "username: AUTH would travel in plain text with starttls: off; use starttls auto or "
           "required, or set allow_plain_auth: true";
  if (cfg.message_id_domain.empty()) cfg.message_id_domain = cfg.from.substr(cfg.from.rfind('@') + 1);
  if (cfg.helo_name.empty()) {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0 && valid_domain(name)) cfg.helo_name = name;
    else cfg.helo_name = "localhost";
  }
  return "";
}

}  // namespace relay::email_smtp
