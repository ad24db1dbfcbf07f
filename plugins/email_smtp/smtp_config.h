#pragma once
// The connector's configuration (the keys under carriers[].channels.email in
// relay.yaml) and its validation. Unknown keys are rejected.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relay::email_smtp {

enum class starttls_mode { auto_, required, off };

struct smtp_config {
  std::string host;
  uint16_t port = 25;
  std::string from;
  std::string from_name;
  std::string reply_to;
  std::string helo_name;  // default: this machine's host name
  starttls_mode starttls = starttls_mode::auto_;
  std::string tls_ca_file;  // default: the system's trust store
  bool tls_verify = true;
  std::string username;
  std::string password;
  bool allow_plain_auth = false;
  size_t connections = 4;
  size_t max_messages_per_connection = 1000;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds command_timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
  std::string message_id_domain;  // default: the domain of `from`
  std::string list_unsubscribe;   // comma-separated mailto:/https: URIs; {message_id} allowed
};

// Fills `out` from key/value pairs. Returns "" or a one-line reason naming
// the key.
std::string parse_config(const std::vector<std::pair<std::string, std::string>>& kv,
                         smtp_config& out);

// "30s", "500ms", "2m", "1h" (a bare number is seconds).
bool parse_duration(std::string_view text, std::chrono::milliseconds& out);

// A mailbox we are willing to put into headers and SMTP commands: one '@',
// non-empty local part and domain, no spaces, controls, '<', '>' or quotes.
bool valid_mailbox(std::string_view address);

}  // namespace relay::email_smtp
