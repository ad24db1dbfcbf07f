#include "routing/tracking_token.h"

#include <gtest/gtest.h>

namespace relay {
namespace {

message_id id_of(char fill) {
  message_id id;
  id.fill(fill);
  id[0] = '0';
  id[31] = 'f';
  return id;
}

TEST(tracking_token, open_and_click_tokens_round_trip) {
  const tracking_signer signer("0123456789abcdef-secret");
  const message_id id = id_of('a');
  auto open = signer.verify(signer.open_token(id));
  ASSERT_TRUE(open.ok()) << open.err().message;
  EXPECT_EQ(open->kind, tracking_kind::open);
  EXPECT_EQ(open->id, id);
  EXPECT_TRUE(open->url.empty());
  const std::string url = "https://acme.example/オファー?x=1&y=%20#top";
  const std::string token = signer.click_token(id, url);
  EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  auto click = signer.verify(token);
  ASSERT_TRUE(click.ok());
  EXPECT_EQ(click->kind, tracking_kind::click);
  EXPECT_EQ(click->url, url);
}

TEST(tracking_token, every_altered_character_is_rejected) {
  const tracking_signer signer("0123456789abcdef-secret");
  const std::string token = signer.click_token(id_of('b'), "https://a.example/");
  for (size_t i = 0; i < token.size(); ++i) {
    for (char c : {'A', 'z', '0', '-', '_'}) {
      if (token[i] == c) continue;
      std::string forged = token;
      forged[i] = c;
      EXPECT_FALSE(signer.verify(forged).ok()) << "position " << i;
    }
  }
}

TEST(tracking_token, another_key_truncation_and_garbage_are_rejected) {
  const tracking_signer signer("0123456789abcdef-secret");
  const tracking_signer other("another-secret-of-16+");
  const std::string token = signer.open_token(id_of('c'));
  EXPECT_FALSE(other.verify(token).ok());
  for (size_t n = 0; n < token.size(); ++n) EXPECT_FALSE(signer.verify(token.substr(0, n)).ok()) << n;
  EXPECT_FALSE(signer.verify(token + "A").ok());
  EXPECT_FALSE(signer.verify("not a token!").ok());
  EXPECT_FALSE(signer.verify(std::string(5000, 'A')).ok());
}

}  // namespace
}  // namespace relay
