#include "plugins/rcs_rbm/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "plugins/rcs_rbm/json.h"

namespace relay::rcs_rbm {

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (bytes.size() - i == 1) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (bytes.size() - i == 2) {
    const uint32_t v =
        (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool base64_decode(std::string_view text, std::string& out) {
  out.clear();
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return false;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+' || c == '-')
      v = 62;
    else if (c == '/' || c == '_')
      v = 63;
    else
      return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

std::string hmac_sha512(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha512(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &size);
  return std::string(reinterpret_cast<const char*>(mac), size);
}

bool signature_matches(std::string_view secret, std::string_view data,
                       std::string_view signature_b64) {
  std::string given;
  if (signature_b64.empty() || !base64_decode(signature_b64, given)) return false;
  const std::string expected = hmac_sha512(secret, data);
  if (given.size() != expected.size()) return false;  // the length is public
  return CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

namespace {

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {  // H. Hinnant's algorithm
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool digits_at(std::string_view s, size_t at, size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (size_t k = 0; k < n; ++k) {
    const char c = s[at + k];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

uint64_t hash64(std::string_view s) {  // FNV-1a with a splitmix finaliser
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

}  // namespace

int64_t parse_rfc3339_ms(std::string_view s) {
  int y, mo, d, h, mi, se;
  if (!digits_at(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits_at(s, 5, 2, mo) ||
      s[7] != '-' || !digits_at(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits_at(s, 11, 2, h) || s[13] != ':' || !digits_at(s, 14, 2, mi) || s[16] != ':' ||
      !digits_at(s, 17, 2, se)) {
    return 0;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return 0;
  size_t i = 19;
  int ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int scale = 100;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ms += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
  }
  int64_t offset_min = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits_at(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !digits_at(s, i + 4, 2, om))
      return 0;
    offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
    i += 6;
  } else {
    return 0;
  }
  if (i != s.size()) return 0;
  const int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_min * 60;
  return secs * 1000 + ms;
}

bool replay_memory::first_time(std::string_view key) {
  const uint64_t h = hash64(key);
  std::lock_guard lock(mu_);
  if (!seen_.insert(h).second) return false;
  order_.push_back(h);
  while (order_.size() > capacity_) {
    seen_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

size_t replay_memory::size() const {
  std::lock_guard lock(mu_);
  return seen_.size();
}

webhook_result process_webhook(std::string_view secret, std::string_view signature_header,
                               std::string_view body, replay_memory& replays) {
  webhook_result r;
  const auto refuse = [&](int status, std::string why) {
    r.http_status = status;
    r.error = std::move(why);
    r.event = {};
    return r;
  };
  if (secret.empty()) return refuse(401, "no webhook_secret configured");
  if (signature_header.empty()) return refuse(401, "missing x-goog-signature");

  json push;
  std::string error;
  if (!parse_json(body, push, error) || !push.is_object())
    return refuse(400, "body is not a JSON object");
  const json* message = push.find("message");
  if (message == nullptr || !message->is_object()) return refuse(400, "no message object");
  const json* data_b64 = message->find("data");
  if (data_b64 == nullptr || !data_b64->is_string()) return refuse(400, "no message.data string");
  std::string data;
  if (!base64_decode(data_b64->as_string(), data)) return refuse(400, "message.data is not base64");
  if (!signature_matches(secret, data, signature_header))
    return refuse(401, "signature does not match");

  json payload;
  if (!parse_json(data, payload, error) || !payload.is_object())
    return refuse(400, "message.data is not a JSON object");
  webhook_event& e = r.event;
  e.phone = payload.get_string("senderPhoneNumber");
  e.agent_id = payload.get_string("agentId");
  e.at_unix_ms = parse_rfc3339_ms(payload.get_string("sendTime"));
  e.message_id = payload.get_string("messageId");

  if (const json* type = payload.find("eventType"); type != nullptr) {
    if (!type->is_string()) return refuse(400, "eventType is not a string");
    const std::string event_id = payload.get_string("eventId");
    const std::string& t = type->as_string();
    if (t == "DELIVERED" || t == "READ") {
      if (e.message_id.empty()) return refuse(400, t + " event without messageId");
      e.type = t == "DELIVERED" ? webhook_event::kind::delivered : webhook_event::kind::read;
    } else if (t == "IS_TYPING") {
      e.type = webhook_event::kind::typing;
      return r;  // nothing to count, nothing to remember
    } else {
      e.type = webhook_event::kind::ignored;
      return r;
    }
    // Without an eventId the (type, message) pair identifies the event.
    e.replay_key = !event_id.empty() ? "event:" + event_id : "event:" + t + ":" + e.message_id;
  } else if (payload.find("text") != nullptr || payload.find("suggestionResponse") != nullptr) {
    if (e.message_id.empty()) return refuse(400, "user message without messageId");
    if (e.phone.empty()) return refuse(400, "user message without senderPhoneNumber");
    e.type = webhook_event::kind::user_message;
    if (const json* text = payload.find("text"); text != nullptr) {
      if (!text->is_string()) return refuse(400, "text is not a string");
      e.text = text->as_string();
    } else {
      const json* s = payload.find("suggestionResponse");
      if (!s->is_object()) return refuse(400, "suggestionResponse is not an object");
      e.text = s->get_string("text");
      e.postback = s->get_string("postbackData");
      if (e.text.empty()) e.text = e.postback;
    }
    e.replay_key = "message:" + e.message_id;
  } else {
    // userFile, location, capability callbacks...: verified but not for relay.
    e.type = webhook_event::kind::ignored;
    return r;
  }
  if (!replays.first_time(e.replay_key)) return refuse(409, "replay of an event already processed");
  return r;
}

}  // namespace relay::rcs_rbm
