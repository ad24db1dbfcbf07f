#pragma once
// What an RBM API answer means for relay: the Google error body
// {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED"}}
// parsed, turned into a detail without personal data, and the HTTP status
// classified as success / transient / permanent.

#include <string>
#include <string_view>

#include "relay/plugin.h"

namespace relay::rcs_rbm {

struct api_error {
  int code = 0;
  std::string status;   // e.g. "NOT_FOUND"; from the body, else derived from the HTTP status
  std::string message;  // the API's message, phone numbers masked, at most ~200 bytes
};

// Parses an error body; falls back to the HTTP status when the body is not
// Google's error shape. `msisdn` (may be empty) is masked in the message.
api_error parse_api_error(int http_status, std::string_view body, std::string_view msisdn);

// "RBM 404 NOT_FOUND: Requested entity was not found."
std::string error_detail(const api_error& e);

// 408, 429 and 5xx: the same request may succeed later.
bool is_transient_status(int http_status);

// The outcome of agentMessages.create for a complete HTTP answer.
struct send_outcome {
  relay_submit_status status = RELAY_SUBMIT_FAILED;
  std::string carrier_ref;  // ACCEPTED: the message's resource name
  std::string detail;       // "duplicate" on 409, the error otherwise
};
send_outcome classify_send(int http_status, std::string_view body, std::string_view msisdn,
                           std::string_view message_id);

// Masks runs of 7 or more digits (with an optional leading '+') and cuts at
// about `limit` bytes on a UTF-8 boundary.
std::string mask_numbers(std::string_view text, size_t limit = 200);

// The resource name the API gives a message: phones/{msisdn}/agentMessages/{id}.
std::string message_name(std::string_view msisdn, std::string_view message_id);

}  // namespace relay::rcs_rbm
