#pragma once
// RBM webhooks as Google delivers them: a Pub/Sub push
//   {"message": {"data": "<base64 JSON>", "messageId": "...", "publishTime": "..."},
//    "subscription": "..."}
// with header x-goog-signature = base64(HMAC-SHA512(client token, decoded data)).
// The decoded data is a UserEvent (DELIVERED / READ / IS_TYPING) or a
// UserMessage (text or suggestionResponse). Google retries for days, so the
// same event arrives more than once: replay_memory remembers what was
// processed and the duplicate is answered 409.
//
// Threads: relay's HTTP threads call process_webhook concurrently;
// replay_memory locks itself.

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace relay::rcs_rbm {

std::string base64_encode(std::string_view bytes);
// Standard alphabet, padding optional, URL-safe letters accepted; false on
// anything else.
bool base64_decode(std::string_view text, std::string& out);

std::string hmac_sha512(std::string_view key, std::string_view data);

// Constant-time check of `signature_b64` against HMAC-SHA512(secret, data).
bool signature_matches(std::string_view secret, std::string_view data,
                       std::string_view signature_b64);

// "2026-11-24T09:00:00.123Z" / "...+09:00" → Unix ms; 0 when unparsable.
int64_t parse_rfc3339_ms(std::string_view text);

struct webhook_event {
  enum class kind { delivered, read, typing, user_message, ignored };
  kind type = kind::ignored;
  std::string replay_key;  // "event:<eventId>" / "message:<messageId>"; empty: not de-duplicated
  std::string message_id;  // events: relay's message id; user messages: the user's message id
  std::string phone;       // senderPhoneNumber
  std::string agent_id;
  std::string text;      // user message: text, or the suggestion's text
  std::string postback;  // user message: suggestionResponse.postbackData
  int64_t at_unix_ms = 0;
};

// Bounded memory of processed ids (64-bit hashes; the oldest is forgotten
// first). Thread-safe.
class replay_memory {
 public:
  explicit replay_memory(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  // True the first time `key` is seen (and remembers it), false for a replay.
  bool first_time(std::string_view key);
  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_set<uint64_t> seen_;
  std::deque<uint64_t> order_;
};

struct webhook_result {
  int http_status = 200;
  std::string error;  // why it was refused (for a DEBUG log; no personal data)
  webhook_event event;
};

// Verifies, decodes and de-duplicates one push. 200 with event.type set (or
// `ignored`), 401 missing/invalid signature or no secret configured, 400
// malformed, 409 replay.
webhook_result process_webhook(std::string_view secret, std::string_view signature_header,
                               std::string_view body, replay_memory& replays);

}  // namespace relay::rcs_rbm
