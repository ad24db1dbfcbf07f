#include "routing/tracking_token.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>

namespace relay {
namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kIdBytes = 16;
constexpr size_t kTagBytes = 16;
constexpr size_t kMaxTokenChars = 4096;
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Strict: rejects other characters, impossible lengths and non-zero spare bits,
// so every byte string has exactly one token.
bool unbase64url(std::string_view in, std::string& out) {
  if (in.size() % 4 == 1) return false;
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = sextet(c);
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void tag(const std::string& secret, std::string_view data, unsigned char out[EVP_MAX_MD_SIZE]) {
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
}

error bad(std::string_view why) { return make_error(errc::invalid_argument, "bad token: " + std::string(why)); }

}  // namespace

tracking_signer::tracking_signer(std::string secret) : secret_(std::move(secret)) {}

std::string tracking_signer::make(tracking_kind kind, const message_id& id, std::string_view url) const {
  std::string payload;
  payload.reserve(2 + kIdBytes + url.size() + kTagBytes);
  payload.push_back(static_cast<char>(kVersion));
  payload.push_back(static_cast<char>(kind));
  for (size_t i = 0; i < id.size(); i += 2) {
    const int hi = hex_value(id[i]), lo = hex_value(id[i + 1]);
    payload.push_back(static_cast<char>(((hi < 0 ? 0 : hi) << 4) | (lo < 0 ? 0 : lo)));
  }
  payload.append(url);
  unsigned char mac[EVP_MAX_MD_SIZE];
  tag(secret_, payload, mac);
  payload.append(reinterpret_cast<const char*>(mac), kTagBytes);
  return base64url(payload);
}

std::string tracking_signer::open_token(const message_id& id) const { return make(tracking_kind::open, id, {}); }

std::string tracking_signer::click_token(const message_id& id, std::string_view url) const {
  return make(tracking_kind::click, id, url);
}

result<tracking_claim> tracking_signer::verify(std::string_view token) const {
  if (token.empty() || token.size() > kMaxTokenChars) return bad("empty or too long");
  std::string raw;
  if (!unbase64url(token, raw)) return bad("not base64url");
  if (raw.size() < 2 + kIdBytes + kTagBytes) return bad("too short");
  const std::string_view signed_part(raw.data(), raw.size() - kTagBytes);
  unsigned char mac[EVP_MAX_MD_SIZE];
  tag(secret_, signed_part, mac);
  if (CRYPTO_memcmp(mac, raw.data() + signed_part.size(), kTagBytes) != 0) return bad("signature mismatch");
  if (static_cast<uint8_t>(raw[0]) != kVersion) return bad("unknown version");
  tracking_claim claim;
  if (raw[1] == 'o') {
    claim.kind = tracking_kind::open;
  } else if (raw[1] == 'c') {
    claim.kind = tracking_kind::click;
  } else {
    return bad("unknown kind");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < kIdBytes; ++i) {
    const auto b = static_cast<uint8_t>(raw[2 + i]);
    claim.id[2 * i] = kHex[b >> 4];
    claim.id[2 * i + 1] = kHex[b & 15];
  }
  claim.url.assign(signed_part.substr(2 + kIdBytes));
  if (claim.kind == tracking_kind::open && !claim.url.empty()) return bad("open token with a URL");
  if (claim.kind == tracking_kind::click && claim.url.empty()) return bad("click token without a URL");
  return claim;
}

}  // namespace relay
