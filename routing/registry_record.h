#pragma once
// Registry records (DESIGN §4), as they arrive on relay.registry or in a JSONL
// import. Parsing validates everything before anything is applied, so a bad
// record is reported and skipped whole.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/channel.h"
#include "routing/result.h"

namespace relay {

struct profile {
  std::string msisdn;  // E.164, e.g. +819012345678
  std::string email;
  std::string gender;
  std::optional<int> birth_year;
  std::string region;
  std::string occupation;
  std::string tz;  // IANA, e.g. Asia/Tokyo
  std::string locale;
};

// A user's contract with one carrier.
struct carrier_link {
  std::string carrier_id;
  bool primary = false;
  uint8_t channels = kAllChannels;  // channel_bit()s this user may receive through this carrier
  // Per-channel address overriding the profile's (msisdn for rcs/sms, email for email).
  std::string address[kChannelCount];
};

struct registry_record {
  enum class op : uint8_t { upsert_user, register_user, unregister_user, delete_user };
  op kind = op::upsert_user;
  std::string user_id;
  std::string company_id;  // register / unregister
  std::string service_id;  // register / unregister; may be empty ("" = the company's default service)
  std::string source;      // register: where the registration came from (optional)
  profile user_profile;    // upsert_user: replaces the stored profile
  std::optional<std::vector<carrier_link>> carriers;  // upsert_user: replaces when present
};

// Parses one record (one JSON object). Errors name the field, e.g.
// "carriers[0].carrier_id: missing"; they never quote personal data.
result<registry_record> parse_registry_record(std::string_view json);

}  // namespace relay
