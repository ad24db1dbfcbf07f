#pragma once
// The connector's configuration: the keys of relay.yaml's sms channel map,
// parsed and checked once in on_create. Unknown keys are rejected.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sms_smpp {

using millis = std::chrono::milliseconds;

struct smpp_config {
  std::string host;
  uint16_t port = 2775;
  std::string system_id, password, system_type;
  std::string source_addr;                         // as configured; "+" stripped when TON is 1
  int source_addr_ton = -1, source_addr_npi = -1;  // -1: chosen from source_addr's form
  uint8_t dest_addr_ton = 1, dest_addr_npi = 1;
  uint32_t window = 32;
  double tps = 0;  // submit_sm PDUs per second; 0 = unlimited
  millis enquire_link_interval{30'000};
  millis response_timeout{10'000};
  millis queue_timeout{30'000};
  millis throttle_pause{1'000};
  millis reconnect_min{500};
  millis reconnect_max{30'000};
  millis connect_timeout{10'000};
  uint8_t registered_delivery = 1;
  size_t receipt_memory = 1'000'000;
  millis receipt_max_age{std::chrono::hours(72)};

  // The TON/NPI and address actually sent as source.
  uint8_t effective_source_ton() const;
  uint8_t effective_source_npi() const;
  std::string effective_source_addr() const;
};

// "500ms", "30s", "2m", "1h" (and "0"); false if malformed.
bool parse_duration(const std::string& text, millis& out);

// Returns "" or a one-line reason naming the key.
std::string parse_config(const std::vector<std::pair<std::string, std::string>>& kv,
                         smpp_config& cfg);

}  // namespace sms_smpp
