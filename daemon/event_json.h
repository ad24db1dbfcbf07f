#pragma once
// The events relay publishes on relay.events (DESIGN §2): one JSON object per
// event, fields that do not apply left out. Never personal data: ids, channel
// names and machine words only.

#include <cstdint>
#include <string>
#include <string_view>

namespace relay {

struct event_fields {
  std::string_view type;  // accepted, rejected, scheduled, sent, delivered, opened, clicked, failed, inbound
  std::string_view job_id;
  std::string_view message_id;
  std::string_view company_id;
  std::string_view user_id;
  std::string_view carrier_id;
  std::string_view channel;
  std::string_view reason;
  std::string_view detail;
  int64_t at_unix_ms = 0;
  int64_t until_unix_ms = 0;  // scheduled: when the send will be looked at again (0: left out)
};

// Appends the event's JSON to `out` (cleared first); reuses its capacity.
void encode_event(const event_fields& e, std::string& out);

// Appends `s` as a JSON string literal (quotes included).
void append_json_string(std::string& out, std::string_view s);

// RFC 3339 UTC with milliseconds: 2026-11-23T10:00:00.123Z
void append_rfc3339(std::string& out, int64_t unix_ms);

}  // namespace relay
