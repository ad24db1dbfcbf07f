#pragma once
// The rcs_rbm connector's configuration: the keys of its channel map in
// relay.yaml, validated in on_create (unknown keys and bad values are
// rejected with a one-line reason naming the key). See README.md.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relay::rcs_rbm {

using millis = std::chrono::milliseconds;

// An http(s) endpoint split for the client: https://host[:port][/base].
struct endpoint {
  bool tls = true;
  std::string host;
  std::string port;       // "443" / "80" when not given
  std::string base_path;  // "" or "/prefix" without a trailing '/'
};

struct rbm_config {
  endpoint api;  // endpoint (default https://rcsbusinessmessaging.googleapis.com)
  std::string agent_id;
  std::string auth_token;       // static bearer token, or
  std::string auth_token_file;  // a file holding it, re-read when it changes
  std::string webhook_secret;   // the Pub/Sub client token; empty: webhooks answered 401
  bool capability_check = false;
  millis capability_ttl{std::chrono::hours(1)};
  millis revoke_after{0};  // 0: never revoke
  millis ttl{0};           // 0: no AgentMessage ttl
  size_t connections = 8;
  millis request_timeout{std::chrono::seconds(10)};
  size_t replay_memory = 1'000'000;
  std::string tls_ca_file;  // extra CA bundle; system CAs otherwise
};

// Largest number of phone numbers whose capability is remembered.
inline constexpr size_t kCapabilityCacheSize = 100'000;

// Fills `out` from the connector's keys; returns "" or a one-line error
// naming the key.
std::string parse_config(const std::vector<std::pair<std::string, std::string>>& kv,
                         rbm_config& out);

// "250ms", "10s", "90m", "24h", "7d", a bare number of seconds; decimals
// allowed ("1.5s"). False when `text` is none of these or negative.
bool parse_duration(std::string_view text, millis& out);

// Splits "https://host[:port][/base]"; "" or a reason.
std::string parse_endpoint(std::string_view url, endpoint& out);

// A duration as the API's protobuf Duration JSON: "86400s", "1.5s".
std::string duration_json(millis d);

}  // namespace relay::rcs_rbm
