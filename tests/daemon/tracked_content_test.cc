#include "daemon/tracked_content.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

namespace relay {
namespace {

const tracking_signer kSigner("0123456789abcdef-secret");

message_id an_id() {
  message_id id;
  id.fill('7');
  return id;
}

// The URLs the click links of `html` lead to, in order.
std::vector<std::string> click_targets(const std::string& html) {
  std::vector<std::string> out;
  const std::regex click("https://t\\.example/t/c/([A-Za-z0-9_-]+)");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), click); it != std::sregex_iterator(); ++it) {
    auto claim = kSigner.verify((*it)[1].str());
    EXPECT_TRUE(claim.ok());
    if (claim.ok()) out.push_back(claim->url);
  }
  return out;
}

TEST(tracked_content, web_links_become_signed_click_urls_and_others_stay) {
  const std::string html =
      R"(<p><a href="https://a.example/x?a=1&amp;b=2">A</a> <A HREF='http://b.example/'>B</A> )"
      R"(<a href="mailto:x@y.example">mail</a> <a href="#top">top</a> <a class="c" href=https://c.example/>C</a></p>)";
  const std::string out = track_html(html, an_id(), "https://t.example", kSigner);
  EXPECT_EQ(click_targets(out),
            (std::vector<std::string>{"https://a.example/x?a=1&b=2", "http://b.example/", "https://c.example/"}));
  EXPECT_NE(out.find("mailto:x@y.example"), std::string::npos);
  EXPECT_NE(out.find("href=\"#top\""), std::string::npos);
  EXPECT_EQ(out.find("a.example/x"), std::string::npos);
}

TEST(tracked_content, the_open_pixel_goes_before_the_body_end_or_at_the_end) {
  const std::string with_body = track_html("<html><body><p>x</p></BODY></html>", an_id(), "https://t.example", kSigner);
  const size_t pixel = with_body.find("<img src=\"https://t.example/t/o/");
  ASSERT_NE(pixel, std::string::npos);
  EXPECT_LT(pixel, with_body.find("</BODY>"));
  const std::string bare = track_html("<p>x</p>", an_id(), "https://t.example", kSigner);
  EXPECT_EQ(bare.rfind("<img", std::string::npos), bare.find("<img"));
  EXPECT_NE(bare.find("<p>x</p><img"), std::string::npos);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(bare, m, std::regex("/t/o/([A-Za-z0-9_-]+)")));
  auto claim = kSigner.verify(m[1].str());
  ASSERT_TRUE(claim.ok());
  EXPECT_EQ(claim->kind, tracking_kind::open);
  EXPECT_EQ(claim->id, an_id());
}

TEST(tracked_content, content_link_is_tracked_and_other_members_pass_through) {
  auto out = tracked_content(R"({"text":"hi","link":"https://a.example/","rcs":{"card":{"title":"T"}}})", an_id(),
                             "https://t.example", kSigner);
  ASSERT_TRUE(out.has_value());
  const auto j = nlohmann::json::parse(*out);
  EXPECT_EQ(j["text"], "hi");
  EXPECT_EQ(j["rcs"]["card"]["title"], "T");
  const std::string link = j["link"];
  ASSERT_TRUE(link.starts_with("https://t.example/t/c/"));
  EXPECT_EQ(kSigner.verify(link.substr(22))->url, "https://a.example/");
  EXPECT_FALSE(tracked_content(R"({"text":"nothing to track"})", an_id(), "https://t.example", kSigner));
  EXPECT_FALSE(tracked_content("not json", an_id(), "https://t.example", kSigner));
}

}  // namespace
}  // namespace relay
