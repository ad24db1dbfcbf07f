#pragma once
// Signed open/click tracking tokens for /t/o/{token} and /t/c/{token}.
//
// A token is base64url (no padding) of
//   version (1) | kind ('o' or 'c') | message id (16 raw bytes) | url (clicks only) | tag (16)
// where tag is the first 16 bytes of HMAC-SHA256(secret, everything before it).
// Nothing is stored server-side: whoever holds a token that verifies was
// given it by relay, so a forged or altered token counts nothing and a click
// never redirects to a URL relay did not sign. Replays verify again; the
// caller de-duplicates if it counts once (the claim carries the message id).
//
// Thread-safe: a signer is immutable after construction; verify() and the
// token functions may run concurrently on the HTTP threads.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "routing/message_id.h"
#include "routing/result.h"

namespace relay {

enum class tracking_kind : uint8_t { open = 'o', click = 'c' };

struct tracking_claim {
  tracking_kind kind = tracking_kind::open;
  message_id id{};
  std::string url;  // click only: the original URL, exactly as signed
};

class tracking_signer {
 public:
  static constexpr uint8_t kVersion = 1;
  static constexpr size_t kTagBytes = 16;
  // URLs longer than this are not signed into tokens (verify() rejects the
  // token, tracked_content() leaves such a link untracked); keeps tokens and
  // the redirect's Location within what browsers and proxies accept.
  static constexpr size_t kMaxUrlBytes = 4096;

  explicit tracking_signer(std::string secret);  // secret: at least 16 bytes (caller validates)

  // `id` is 32 lower-case hex digits (message_id); the token is URL-safe.
  std::string open_token(const message_id& id) const;
  std::string click_token(const message_id& id, std::string_view url) const;

  // The claim of a token this signer made; errc::invalid_argument
  // "bad token: ..." for anything else (forged, altered, truncated, garbage).
  // Callers check claim.kind against the route it arrived on.
  result<tracking_claim> verify(std::string_view token) const;

 private:
  struct hmac_state;  // SHA-256 states after the HMAC key's inner and outer pads
  std::string token(tracking_kind kind, const message_id& id, std::string_view url) const;
  void tag(std::string_view data, unsigned char out[32]) const;
  std::shared_ptr<const hmac_state> hmac_;  // immutable; shared by copies
};

// base64url without padding (RFC 4648 §5); decode is strict: no padding, no
// characters outside the alphabet, non-zero unused trailing bits rejected, so
// every encoding has exactly one spelling.
std::string base64url_encode(std::string_view bytes);
bool base64url_decode(std::string_view text, std::string& out);

}  // namespace relay
