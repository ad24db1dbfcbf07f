#pragma once
// The job model (DESIGN §3, version 1) and its parser/validator.
//
// parse_job never throws: malformed input yields an error whose message is one
// line naming the field and what is wrong, e.g.
//   "channels.order[1]: unknown channel \"fax\" (expected rcs, sms or email)".
// That line becomes the `error` header on relay.jobs.dlq and the `detail` of
// the `rejected` event, so it must never contain personal data or content.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/channel.h"
#include "routing/clock.h"
#include "routing/result.h"

namespace relay {

enum class channel_mode : uint8_t { specified, preferred, best, simultaneous, fallback, resend };

std::string_view to_string(channel_mode m);

enum class target_kind : uint8_t { users, all, where };

// One attribute test of `to.where`. Exactly one form is used:
//  - equals:  {"gender": "f"}              -> values = {"f"}
//  - any_of:  {"region": ["tokyo","osaka"]} -> values = {"tokyo","osaka"}
//  - range:   {"age": {"gte": 20, "lt": 30}} -> lower/upper set (inclusive bounds after normalising gt/lt)
// Numbers in equals/any_of are kept as their decimal text.
struct attribute_test {
  enum class kind : uint8_t { equals, any_of, range };
  std::string field;
  kind form = kind::equals;
  std::vector<std::string> values;
  std::optional<int64_t> min_inclusive;
  std::optional<int64_t> max_inclusive;
};

struct send_window {
  int start_minute = 0;  // minutes after local midnight, 0..1439
  int end_minute = 0;    // exclusive; may be < start (window over midnight)
  std::string tz;        // IANA name; empty = recipient's tz
};

struct job_schedule {
  std::optional<sys_time> not_before;
  std::optional<sys_time> expires;
  std::optional<send_window> window;
};

// Content sent after the user opened one of the job's messages (`on_open`),
// once per user, on the channel of the opened message.
struct follow_up {
  std::string content_json;  // as `job::content_json`
  std::string text, subject, html, link;
  std::chrono::seconds after{0};                // delay after the open
  std::chrono::seconds within{24 * 3600 * 7};   // opens later than this after the job's acceptance trigger nothing
};

struct job {
  std::string job_id;
  std::string company_id;
  std::string service_id;  // empty: any service of the company

  target_kind target = target_kind::users;
  std::vector<std::string> users;     // target_kind::users, in the order given, duplicates removed
  std::vector<attribute_test> where;  // target_kind::where, all tests must hold

  // The `content` object re-serialised as compact JSON (what plug-ins get),
  // and its fields for the host's own use.
  std::string content_json;
  std::string text, subject, html, link;

  channel_mode mode = channel_mode::specified;
  std::vector<channel> order;  // empty when the job gives none: relay.yaml's default_order applies
  std::chrono::seconds fallback_after{0};
  int max_resends = 1;  // channels.max_resends: resend mode's extra sends on the same channel (1..10)

  job_schedule schedule;
  std::string priority;  // "" or "exclusive" (also "normal")
  std::string bid_id;
  std::optional<int64_t> max_price_micros;
  std::optional<follow_up> on_open;
};

struct job_limits {
  size_t max_job_bytes = 1 << 20;        // whole Kafka value
  size_t max_content_bytes = 64 * 1024;  // content_json
  size_t max_users = 100000;             // entries of to.users
};

// Parses and validates one job (the bytes of a relay.jobs message).
result<job> parse_job(std::string_view bytes, const job_limits& limits);

}  // namespace relay
