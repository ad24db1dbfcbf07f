#include "daemon/tracked_content.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

namespace relay {
namespace {

message_id id_of(std::string_view hex) {
  message_id id{};
  std::copy(hex.begin(), hex.end(), id.begin());
  return id;
}

const message_id kId = id_of("00112233445566778899aabbccddeeff");
const std::string kBase = "https://t.relay.example";

class tracked_content_test : public ::testing::Test {
 protected:
  tracking_signer signer_{"tracked-content-test-secret"};

  // The URLs signed into every /t/c/ token in `text`, in order.
  std::vector<std::string> clicked_urls(const std::string& text) {
    std::vector<std::string> urls;
    const std::regex re(kBase + "/t/c/([A-Za-z0-9_-]+)");
    for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
      auto claim = signer_.verify((*it)[1].str());
      EXPECT_TRUE(claim) << (*it)[1].str();
      if (!claim) continue;
      EXPECT_EQ(claim->kind, tracking_kind::click);
      EXPECT_EQ(claim->id, kId);
      urls.push_back(claim->url);
    }
    return urls;
  }
  std::string pixel() const {
    return "<img src=\"" + kBase + "/t/o/" + signer_.open_token(kId) +
           "\" width=\"1\" height=\"1\" alt=\"\" style=\"display:none\">";
  }
  std::string html(std::string_view in) { return tracked_html(in, kId, kBase, signer_); }
};

TEST_F(tracked_content_test, link_is_replaced_by_its_signed_click_url_and_other_members_kept) {
  const std::string in =
      R"({"text":"Hello 世界","subject":"Hi","link":"https://acme.example/offer?a=1&b=2","n":3})";
  auto out = tracked_content(in, kId, kBase, signer_);
  ASSERT_TRUE(out);
  auto j = nlohmann::ordered_json::parse(*out);
  EXPECT_EQ(j["text"], "Hello 世界");
  EXPECT_EQ(j["subject"], "Hi");
  EXPECT_EQ(j["n"], 3);
  const std::string link = j["link"];
  EXPECT_EQ(link.rfind(kBase + "/t/c/", 0), 0u) << link;
  EXPECT_EQ(clicked_urls(link), std::vector<std::string>{"https://acme.example/offer?a=1&b=2"});
  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"text", "subject", "link", "n"})) << "order kept";
}

TEST_F(tracked_content_test, nothing_to_track_gives_nullopt) {
  EXPECT_FALSE(tracked_content(R"({"text":"plain"})", kId, kBase, signer_));
  EXPECT_FALSE(tracked_content(R"({"text":"x","link":"mailto:a@b.example"})", kId, kBase, signer_));
  EXPECT_FALSE(tracked_content(R"({"link":42})", kId, kBase, signer_));
  EXPECT_FALSE(tracked_content(R"(["not","an","object"])", kId, kBase, signer_));
  EXPECT_FALSE(tracked_content("{not json", kId, kBase, signer_));
  EXPECT_FALSE(tracked_content("", kId, kBase, signer_));
}

TEST_F(tracked_content_test, html_gets_tracked_hrefs_and_a_pixel_before_body_close) {
  const std::string in =
      R"({"subject":"Hi","html":"<html><body><p>See <a href=\"https://acme.example/a\">A</a> and <a class=x href='http://acme.example/b?x=1'>B</a></p></body></html>"})";
  auto out = tracked_content(in, kId, kBase, signer_);
  ASSERT_TRUE(out);
  const std::string h = nlohmann::json::parse(*out)["html"];
  EXPECT_EQ(clicked_urls(h),
            (std::vector<std::string>{"https://acme.example/a", "http://acme.example/b?x=1"}));
  EXPECT_NE(h.find("<a href=\"" + kBase + "/t/c/"), std::string::npos) << h;
  EXPECT_NE(h.find("<a class=x href='" + kBase + "/t/c/"), std::string::npos) << h;
  EXPECT_NE(h.find(pixel() + "</body></html>"), std::string::npos) << h;
  EXPECT_EQ(h.find("acme.example"), std::string::npos) << "no original URL left in clear";
}

TEST_F(tracked_content_test, pixel_is_appended_when_there_is_no_body_close) {
  EXPECT_EQ(html("<p>Hello</p>"), "<p>Hello</p>" + pixel());
  EXPECT_EQ(html(""), pixel());
}

TEST_F(tracked_content_test, upper_case_tags_and_attributes_are_tracked_and_body_found) {
  const std::string h = html("<BODY><A HREF=\"HTTPS://ACME.example/X\">x</A></BODY>");
  EXPECT_EQ(clicked_urls(h), std::vector<std::string>{"HTTPS://ACME.example/X"});
  EXPECT_NE(h.find(pixel() + "</BODY>"), std::string::npos) << h;
}

TEST_F(tracked_content_test, unquoted_hrefs_are_tracked) {
  const std::string h = html("<a href=https://acme.example/u?q=1>u</a>");
  EXPECT_EQ(clicked_urls(h), std::vector<std::string>{"https://acme.example/u?q=1"});
  EXPECT_EQ(h.rfind("<a href=" + kBase + "/t/c/", 0), 0u) << h;
}

TEST_F(tracked_content_test, mailto_anchors_relative_and_other_schemes_are_left_alone) {
  const std::string in =
      "<a href=\"mailto:help@acme.example\">m</a><a href=\"#top\">t</a>"
      "<a href=\"/relative\">r</a><a href=\"tel:+81000\">p</a>"
      "<a href=\"javascript:alert(1)\">j</a><a name=\"x\">n</a><abbr "
      "href=\"https://a.example/\">z</abbr>"
      "<a data-href=\"https://a.example/d\" href=\"ftp://a.example/f\">f</a>";
  EXPECT_EQ(html(in), in + pixel());
}

TEST_F(tracked_content_test, entities_in_hrefs_are_decoded_before_signing) {
  const std::string h = html(
      "<a href=\"https://acme.example/p?a=1&amp;b=2&#38;c=3&#x26;d=&quot;4&quot;\">x</a>"
      "<a href=\"  https://acme.example/space  \">y</a>");
  EXPECT_EQ(clicked_urls(h), (std::vector<std::string>{"https://acme.example/p?a=1&b=2&c=3&d=\"4\"",
                                                       "https://acme.example/space"}));
}

TEST_F(tracked_content_test, unicode_urls_survive_and_other_attributes_are_kept) {
  const std::string h = html(
      "<a target=\"_blank\" href=\"https://例え.jp/パス?q=日本\" style=\"color:red\">日本</a>");
  EXPECT_EQ(clicked_urls(h), std::vector<std::string>{"https://例え.jp/パス?q=日本"});
  EXPECT_NE(h.find("<a target=\"_blank\" href=\""), std::string::npos);
  EXPECT_NE(h.find("\" style=\"color:red\">日本</a>"), std::string::npos) << h;
}

TEST_F(tracked_content_test, comments_and_unterminated_tags_are_left_as_written) {
  const std::string comment = "<!-- <a href=\"https://acme.example/c\"> -->";
  EXPECT_EQ(html(comment), comment + pixel());
  const std::string broken = "<p>x</p><a href=\"https://acme.example/never-closed";
  EXPECT_EQ(html(broken), broken + pixel());
}

TEST_F(tracked_content_test, base_url_trailing_slash_is_ignored) {
  auto out = tracked_content(R"({"link":"https://acme.example/"})", kId, kBase + "/", signer_);
  ASSERT_TRUE(out);
  const std::string link = nlohmann::json::parse(*out)["link"];
  EXPECT_EQ(link.rfind(kBase + "/t/c/", 0), 0u) << link;
}

TEST_F(tracked_content_test, html_and_link_both_tracked_with_a_single_pixel) {
  auto out = tracked_content(
      R"({"link":"https://acme.example/l","html":"<body><a href=\"https://acme.example/h\">h</a></body>"})",
      kId, kBase, signer_);
  ASSERT_TRUE(out);
  auto j = nlohmann::json::parse(*out);
  EXPECT_EQ(clicked_urls(j["link"]), std::vector<std::string>{"https://acme.example/l"});
  const std::string h = j["html"];
  EXPECT_EQ(clicked_urls(h), std::vector<std::string>{"https://acme.example/h"});
  size_t pixels = 0;
  for (size_t p = h.find("/t/o/"); p != std::string::npos; p = h.find("/t/o/", p + 1)) ++pixels;
  EXPECT_EQ(pixels, 1u);
}

TEST_F(tracked_content_test, a_template_prepared_once_renders_each_message_like_tracked_content) {
  const std::string in =
      R"({"subject":"Hi","link":"https://acme.example/l?a=1","html":"<body><a href='https://acme.example/1'>1</a><A HREF=\"http://acme.example/2?x=&amp;y\">2</A><a href=\"#x\">x</a></body>","n":1.5})";
  auto t = tracked_content_template::make(in, kBase);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->links(), 3u);
  for (const char* hex : {"00112233445566778899aabbccddeeff", "ffffffffffffffffffffffffffffffff",
                          "0123456789abcdef0123456789abcdef"}) {
    const message_id id = id_of(hex);
    const std::string rendered = t->render(id, signer_);
    EXPECT_EQ(rendered, tracked_content(in, id, kBase, signer_));
    auto j = nlohmann::ordered_json::parse(rendered);
    EXPECT_EQ(j["n"], 1.5);
    const std::string h = j["html"];
    EXPECT_NE(h.find("/t/o/" + signer_.open_token(id) + "\""), std::string::npos) << h;
  }
  std::string reused = "stale";
  t->render_into(kId, signer_, reused);
  EXPECT_EQ(reused, t->render(kId, signer_));
  EXPECT_EQ(clicked_urls(reused),
            (std::vector<std::string>{"https://acme.example/l?a=1", "https://acme.example/1",
                                      "http://acme.example/2?x=&y"}));
  EXPECT_FALSE(tracked_content_template::make(R"({"text":"x"})", kBase));
}

TEST_F(tracked_content_test, content_that_contains_the_template_marker_is_still_rendered_exactly) {
  const std::string in =
      R"({"text":"~RLY0~0~ ~RLY1~","html":"<p>~RLY0~1~</p><a href=\"https://acme.example/~RLY0~0~\">x</a>"})";
  auto out = tracked_content(in, kId, kBase, signer_);
  ASSERT_TRUE(out);
  auto j = nlohmann::json::parse(*out);
  EXPECT_EQ(j["text"], "~RLY0~0~ ~RLY1~");
  const std::string h = j["html"];
  EXPECT_EQ(h.rfind("<p>~RLY0~1~</p><a href=\"" + kBase + "/t/c/", 0), 0u) << h;
  EXPECT_EQ(clicked_urls(h), std::vector<std::string>{"https://acme.example/~RLY0~0~"});
  EXPECT_NE(h.find(pixel()), std::string::npos);
}

}  // namespace
}  // namespace relay
