#include "routing/tracking_token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace relay {
namespace {

message_id id_of(std::string_view hex) {
  message_id id{};
  std::copy(hex.begin(), hex.end(), id.begin());
  return id;
}

const message_id kId = id_of("0123456789abcdef00ff7e5a3c9d1b42");
const std::string kSecret = "0123456789abcdef-test-secret";

bool url_safe(const std::string& token) {
  return std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

TEST(tracking_token, open_token_round_trips_and_is_url_safe) {
  tracking_signer signer(kSecret);
  const std::string token = signer.open_token(kId);
  EXPECT_TRUE(url_safe(token)) << token;
  EXPECT_EQ(token.size(), 46u) << "34 bytes in unpadded base64url";
  auto claim = signer.verify(token);
  ASSERT_TRUE(claim) << claim.err().message;
  EXPECT_EQ(claim->kind, tracking_kind::open);
  EXPECT_EQ(claim->id, kId);
  EXPECT_EQ(claim->url, "");
}

TEST(tracking_token, click_token_round_trips_with_its_url) {
  tracking_signer signer(kSecret);
  const std::string url = "https://acme.example/offer?id=42&utm_source=relay#top";
  const std::string token = signer.click_token(kId, url);
  EXPECT_TRUE(url_safe(token)) << token;
  auto claim = signer.verify(token);
  ASSERT_TRUE(claim) << claim.err().message;
  EXPECT_EQ(claim->kind, tracking_kind::click);
  EXPECT_EQ(claim->id, kId);
  EXPECT_EQ(claim->url, url);
}

TEST(tracking_token, urls_with_unicode_query_strings_and_odd_lengths_survive) {
  tracking_signer signer(kSecret);
  for (const std::string& url : std::vector<std::string>{
           "https://例え.jp/パス?q=日本語&x=%E3%81%82", "http://a.example/?a=b&c=d;e=f+g",
           "https://x.example/a", "https://x.example/ab", "https://x.example/abc",
           "https://x.example/" + std::string(3000, 'z')}) {
    auto claim = signer.verify(signer.click_token(kId, url));
    ASSERT_TRUE(claim) << url << ": " << claim.err().message;
    EXPECT_EQ(claim->url, url);
  }
}

TEST(tracking_token, every_single_bit_flip_of_the_token_bytes_is_rejected) {
  tracking_signer signer(kSecret);
  for (const std::string& token :
       {signer.open_token(kId), signer.click_token(kId, "https://acme.example/o?x=1")}) {
    std::string raw;
    ASSERT_TRUE(base64url_decode(token, raw));
    for (size_t byte = 0; byte < raw.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string mutated = raw;
        mutated[byte] = static_cast<char>(mutated[byte] ^ (1 << bit));
        auto claim = signer.verify(base64url_encode(mutated));
        ASSERT_FALSE(claim) << "byte " << byte << " bit " << bit;
        EXPECT_EQ(claim.err().code, errc::invalid_argument);
        EXPECT_EQ(claim.err().message.rfind("bad token: ", 0), 0u) << claim.err().message;
      }
    }
  }
}

TEST(tracking_token, every_single_bit_flip_of_the_token_text_is_rejected) {
  tracking_signer signer(kSecret);
  const std::string token = signer.click_token(kId, "https://acme.example/o");
  for (size_t i = 0; i < token.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string mutated = token;
      mutated[i] = static_cast<char>(mutated[i] ^ (1 << bit));
      EXPECT_FALSE(signer.verify(mutated)) << "char " << i << " bit " << bit;
    }
  }
}

TEST(tracking_token, a_token_signed_with_another_secret_is_rejected) {
  tracking_signer signer(kSecret);
  tracking_signer other("another-secret-of-16+-bytes");
  auto claim = signer.verify(other.open_token(kId));
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.err().message, "bad token: signature mismatch");
  EXPECT_FALSE(signer.verify(other.click_token(kId, "https://acme.example/")));
  EXPECT_TRUE(other.verify(other.open_token(kId)));
}

TEST(tracking_token, truncated_empty_garbage_and_overlong_tokens_are_rejected) {
  tracking_signer signer(kSecret);
  const std::string open = signer.open_token(kId);
  const std::string click = signer.click_token(kId, "https://acme.example/offer");
  EXPECT_EQ(signer.verify("").err().message, "bad token: empty");
  for (size_t n = 1; n < open.size(); ++n) {
    EXPECT_FALSE(signer.verify(open.substr(0, n))) << n;
    EXPECT_FALSE(signer.verify(open.substr(n))) << n;
  }
  for (size_t n = 1; n < click.size(); ++n) EXPECT_FALSE(signer.verify(click.substr(0, n))) << n;
  EXPECT_FALSE(signer.verify(open + "A"));
  EXPECT_FALSE(signer.verify(open + "AA"));
  EXPECT_FALSE(signer.verify(open + "AAAA"));
  EXPECT_FALSE(signer.verify(open + "="));
  EXPECT_FALSE(signer.verify(open + open));
  EXPECT_FALSE(signer.verify("not a token at all"));
  EXPECT_FALSE(signer.verify("%2F%2E%2E"));
  EXPECT_FALSE(signer.verify(std::string(46, 'A')));
  EXPECT_FALSE(signer.verify(std::string(1 << 20, 'A')));
  EXPECT_EQ(signer.verify(std::string(1 << 20, 'A')).err().message, "bad token: too long");
  // A URL beyond the limit makes a token that never verifies.
  EXPECT_FALSE(signer.verify(signer.click_token(
      kId, "https://acme.example/" + std::string(tracking_signer::kMaxUrlBytes, 'x'))));
  // base64 with the standard alphabet or padding is not our encoding.
  std::string std_alphabet = click;
  std::replace(std_alphabet.begin(), std_alphabet.end(), '-', '+');
  std::replace(std_alphabet.begin(), std_alphabet.end(), '_', '/');
  if (std_alphabet != click) {
    EXPECT_FALSE(signer.verify(std_alphabet));
  }
}

TEST(tracking_token, kind_is_part_of_the_claim_so_routes_can_refuse_a_mix_up) {
  tracking_signer signer(kSecret);
  auto open = signer.verify(signer.open_token(kId));
  ASSERT_TRUE(open);
  EXPECT_NE(open->kind, tracking_kind::click);
  // Re-labelling an open token as a click (kind byte) breaks the signature.
  std::string raw;
  ASSERT_TRUE(base64url_decode(signer.open_token(kId), raw));
  raw[1] = 'c';
  EXPECT_FALSE(signer.verify(base64url_encode(raw)));
}

TEST(tracking_token, tokens_are_deterministic_and_differ_by_message_and_url) {
  tracking_signer signer(kSecret);
  EXPECT_EQ(signer.open_token(kId), signer.open_token(kId));
  EXPECT_NE(signer.open_token(kId), signer.open_token(id_of("0123456789abcdef00ff7e5a3c9d1b43")));
  EXPECT_NE(signer.click_token(kId, "https://a.example/1"),
            signer.click_token(kId, "https://a.example/2"));
}

TEST(tracking_token, layout_is_version_kind_id_url_and_truncated_hmac_sha256) {
  // Checked against OpenSSL's one-shot HMAC, for short, block-sized and long
  // (pre-hashed) secrets.
  for (const std::string& secret :
       {std::string(16, 's'), std::string(64, 'k'), std::string(65, 'k'), std::string(200, 'z')}) {
    tracking_signer signer(secret);
    std::string raw;
    ASSERT_TRUE(base64url_decode(signer.click_token(kId, "https://a.example/"), raw));
    ASSERT_EQ(raw.size(), 1 + 1 + 16 + 18 + 16u);
    EXPECT_EQ(raw[0], 1);
    EXPECT_EQ(raw[1], 'c');
    EXPECT_EQ(raw.substr(2, 16),
              std::string("\x01\x23\x45\x67\x89\xab\xcd\xef\x00\xff\x7e\x5a\x3c\x9d\x1b\x42", 16));
    EXPECT_EQ(raw.substr(18, 18), "https://a.example/");
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(raw.data()), raw.size() - 16, mac, &len);
    ASSERT_EQ(len, 32u);
    EXPECT_EQ(raw.substr(raw.size() - 16), std::string(reinterpret_cast<const char*>(mac), 16))
        << "secret of " << secret.size() << " bytes";
  }
}

TEST(tracking_token, signing_and_verifying_from_many_threads_agree) {
  tracking_signer signer(kSecret);
  const std::string expected = signer.click_token(kId, "https://acme.example/t");
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (signer.click_token(kId, "https://acme.example/t") != expected) ++mismatches;
        if (!signer.verify(expected)) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(base64url, encodes_rfc4648_vectors_without_padding_and_decodes_strictly) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  std::string out;
  EXPECT_TRUE(base64url_decode("Zm9vYmE", out));
  EXPECT_EQ(out, "fooba");
  EXPECT_TRUE(base64url_decode("-_8", out));
  EXPECT_EQ(out, "\xfb\xff");
  EXPECT_FALSE(base64url_decode("Zg==", out));
  EXPECT_FALSE(base64url_decode("Zh", out)) << "non-zero unused bits";
  EXPECT_FALSE(base64url_decode("Z", out));
  EXPECT_FALSE(base64url_decode("Zm9v+g", out));
}

}  // namespace
}  // namespace relay
