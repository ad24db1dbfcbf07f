#pragma once
// What sms_smpp takes from a relay message: the SMS body from content_json
// (text, then link on its own line) and the SMPP destination address.

#include <optional>
#include <string>
#include <string_view>

namespace sms_smpp {

struct sms_content {
  std::string text;  // UTF-8
  std::string link;  // UTF-8, may be empty
};

// Reads the top-level string fields "text" and "link" of a JSON object
// (other fields are skipped); nullopt if content_json is not a JSON object.
std::optional<sms_content> parse_content(std::string_view content_json);

// text + "\n" + link, or whichever is present.
std::string sms_body(const sms_content& c);

// E.164 "+8190..." to the SMPP address: the digits without "+" when TON is 1
// (international); nullopt if it is not 1 to 20 digits after an optional "+".
std::optional<std::string> smpp_destination(std::string_view address, unsigned dest_ton);

// An SMPP address back to what relay uses: "+digits" for TON 1.
std::string relay_address(std::string_view smpp_addr, unsigned ton);

}  // namespace sms_smpp
