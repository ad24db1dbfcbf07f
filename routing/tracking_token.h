#pragma once
// Signed tokens in relay's tracking URLs: /t/o/<token> (open pixel) and
// /t/c/<token> (click redirect). A token carries the message id (and, for a
// click, the URL to redirect to) and an HMAC over it, so relay can trust what
// it says without a lookup, and a forged or altered token counts nothing.
//
// Format: base64url without padding of
//   version (1) | kind ('o' | 'c') | 16 raw bytes of the message id |
//   URL bytes (clicks only) | first 16 bytes of HMAC-SHA256(secret, all before)
// A 128-bit tag is far beyond guessing over HTTP; the short token keeps links
// readable and within SMS budgets.

#include <cstdint>
#include <string>
#include <string_view>

#include "routing/message_id.h"
#include "routing/result.h"

namespace relay {

enum class tracking_kind : uint8_t { open = 'o', click = 'c' };

struct tracking_claim {
  tracking_kind kind = tracking_kind::open;
  message_id id{};
  std::string url;  // clicks only
};

class tracking_signer {
 public:
  explicit tracking_signer(std::string secret);  // at least 16 bytes (the config checks)

  std::string open_token(const message_id& id) const;
  std::string click_token(const message_id& id, std::string_view url) const;
  // errc::invalid_argument "bad token: ..." for anything not signed by this key.
  result<tracking_claim> verify(std::string_view token) const;

 private:
  std::string make(tracking_kind kind, const message_id& id, std::string_view url) const;
  std::string secret_;
};

}  // namespace relay
