#include "routing/tracking_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <utility>

namespace relay {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kIdBytes = 16;
constexpr size_t kHeaderBytes = 2 + kIdBytes;  // version, kind, id
constexpr size_t kMinBytes = kHeaderBytes + tracking_signer::kTagBytes;
constexpr size_t kMaxBytes = kMinBytes + tracking_signer::kMaxUrlBytes;

int8_t decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return static_cast<int8_t>(c - 'A');
  if (c >= 'a' && c <= 'z') return static_cast<int8_t>(c - 'a' + 26);
  if (c >= '0' && c <= '9') return static_cast<int8_t>(c - '0' + 52);
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

constexpr char kHex[] = "0123456789abcdef";

constexpr size_t kBlock = 64;   // SHA-256 block size
constexpr size_t kDigest = 32;  // SHA-256 digest size

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using md_ctx = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;

// One scratch context per thread: HTTP threads verify concurrently.
EVP_MD_CTX* scratch() {
  thread_local md_ctx ctx{EVP_MD_CTX_new()};
  return ctx.get();
}

error bad_token(std::string_view why) {
  return make_error(errc::invalid_argument, "bad token: " + std::string(why));
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) |
                       (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint32_t(uint8_t(bytes[i + 2]));
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

bool base64url_decode(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 == 1) return false;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int8_t v = decode_char(c);
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // The leftover bits (2 or 4) must be zero: one spelling per byte string.
  return (acc & ((1u << bits) - 1)) == 0;
}

// HMAC (RFC 2104) with the key's padded states computed once: a token then
// costs two SHA-256 context copies instead of a key schedule per call, which
// matters when every recipient of a broadcast gets several tokens.
struct tracking_signer::hmac_state {
  md_ctx inner{EVP_MD_CTX_new()}, outer{EVP_MD_CTX_new()};
};

tracking_signer::tracking_signer(std::string secret) {
  auto state = std::make_shared<hmac_state>();
  std::array<unsigned char, kBlock> key{};
  if (secret.size() > kBlock) {
    unsigned int len = 0;
    EVP_Digest(secret.data(), secret.size(), key.data(), &len, EVP_sha256(), nullptr);
  } else {
    std::copy(secret.begin(), secret.end(), key.begin());
  }
  std::array<unsigned char, kBlock> ipad, opad;
  for (size_t i = 0; i < kBlock; ++i) {
    ipad[i] = key[i] ^ 0x36;
    opad[i] = key[i] ^ 0x5c;
  }
  EVP_DigestInit_ex(state->inner.get(), EVP_sha256(), nullptr);
  EVP_DigestUpdate(state->inner.get(), ipad.data(), ipad.size());
  EVP_DigestInit_ex(state->outer.get(), EVP_sha256(), nullptr);
  EVP_DigestUpdate(state->outer.get(), opad.data(), opad.size());
  OPENSSL_cleanse(key.data(), key.size());
  OPENSSL_cleanse(ipad.data(), ipad.size());
  OPENSSL_cleanse(opad.data(), opad.size());
  OPENSSL_cleanse(secret.data(), secret.size());
  hmac_ = std::move(state);
}

void tracking_signer::tag(std::string_view data, unsigned char out[kDigest]) const {
  EVP_MD_CTX* ctx = scratch();
  unsigned char inner[kDigest];
  unsigned int len = 0;
  EVP_MD_CTX_copy_ex(ctx, hmac_->inner.get());
  EVP_DigestUpdate(ctx, data.data(), data.size());
  EVP_DigestFinal_ex(ctx, inner, &len);
  EVP_MD_CTX_copy_ex(ctx, hmac_->outer.get());
  EVP_DigestUpdate(ctx, inner, sizeof(inner));
  EVP_DigestFinal_ex(ctx, out, &len);
}

std::string tracking_signer::open_token(const message_id& id) const {
  return token(tracking_kind::open, id, {});
}

std::string tracking_signer::click_token(const message_id& id, std::string_view url) const {
  return token(tracking_kind::click, id, url);
}

std::string tracking_signer::token(tracking_kind kind, const message_id& id,
                                   std::string_view url) const {
  std::string raw;
  raw.reserve(kMinBytes + url.size());
  raw += static_cast<char>(kVersion);
  raw += static_cast<char>(kind);
  // message ids are lower-case hex by construction; anything else encodes as 0.
  for (size_t i = 0; i < kIdBytes; ++i) {
    const int hi = hex_value(id[2 * i]), lo = hex_value(id[2 * i + 1]);
    raw += static_cast<char>(((hi < 0 ? 0 : hi) << 4) | (lo < 0 ? 0 : lo));
  }
  raw += url;
  unsigned char t[kDigest];
  tag(raw, t);
  raw.append(reinterpret_cast<const char*>(t), kTagBytes);
  return base64url_encode(raw);
}

result<tracking_claim> tracking_signer::verify(std::string_view token) const {
  if (token.empty()) return bad_token("empty");
  if (token.size() > (kMaxBytes * 4 + 2) / 3) return bad_token("too long");
  std::string raw;
  if (!base64url_decode(token, raw)) return bad_token("not base64url");
  if (raw.size() < kMinBytes) return bad_token("too short");

  // Authenticate before looking at anything the sender controls.
  const std::string_view signed_part(raw.data(), raw.size() - kTagBytes);
  unsigned char expected[kDigest];
  tag(signed_part, expected);
  if (CRYPTO_memcmp(expected, raw.data() + signed_part.size(), kTagBytes) != 0) {
    return bad_token("signature mismatch");
  }

  if (static_cast<uint8_t>(raw[0]) != kVersion) return bad_token("unknown version");
  tracking_claim claim;
  const char kind = raw[1];
  if (kind == static_cast<char>(tracking_kind::open)) {
    claim.kind = tracking_kind::open;
    if (signed_part.size() != kHeaderBytes) return bad_token("open token with a url");
  } else if (kind == static_cast<char>(tracking_kind::click)) {
    claim.kind = tracking_kind::click;
    if (signed_part.size() == kHeaderBytes) return bad_token("click token without a url");
    claim.url.assign(signed_part.substr(kHeaderBytes));
  } else {
    return bad_token("unknown kind");
  }
  for (size_t i = 0; i < kIdBytes; ++i) {
    const auto b = static_cast<uint8_t>(raw[2 + i]);
    claim.id[2 * i] = kHex[b >> 4];
    claim.id[2 * i + 1] = kHex[b & 15];
  }
  return claim;
}

}  // namespace relay
