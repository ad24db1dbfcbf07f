// The shipped carrier plug-ins end to end: relayd (child process, Kafka over
// TCP, RocksDB on disk) loads them from the build exactly as a third-party
// plug-in, and they talk to real peers on loopback (tests/peers/). What comes
// back — receipts, webhooks, opens and clicks — is counted once, with its job.

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "tests/integration/http_client.h"
#include "tests/integration/relay_harness.h"
#include "tests/peers/smtp_peer.h"

namespace relay::test {
namespace {

using nlohmann::json;

std::vector<json> of_type(const std::vector<json>& events, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : events) {
    if (e["type"] == type) out.push_back(e);
  }
  return out;
}

TEST(CarrierPlugins, email_through_smtp_carries_tracked_links_whose_opens_and_clicks_count_once) {
  smtp_peer smtp({"--pipelining"});
  relay_instance relay(
      "email-e2e",
      {.carriers_yaml = "  - id: carrier-a\n    channels:\n      email: {plugin: email_smtp, host: 127.0.0.1, port: " +
                        smtp.port() + ", from: news@acme.example, starttls: \"off\"}\n"});
  relay.send_registry({upsert_user("u1", "tokyo", "f", 1990, {{"carrier-a", true}}),
                       register_user("u1", "acme", "gold")});
  relay.start();
  relay.send_job(
      R"({"job_id":"mail-1","company_id":"acme","to":{"users":["u1"]},"channels":{"order":["email"]},)"
      R"("content":{"subject":"秋のお知らせ","text":"Hello","html":"<html><body><p>Hello <a href=\"https://acme.example/offer\">offer</a></p></body></html>"}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("mail-1"); }, std::chrono::seconds(30))) << relay.log_text();
  const auto messages = smtp.messages();
  ASSERT_EQ(messages.size(), 1u);
  const json& m = messages[0];
  EXPECT_EQ(m["rcpt_tos"][0], "u1@example.jp");
  EXPECT_EQ(m["parsed"]["headers"]["subject"], "秋のお知らせ");
  std::string html;
  for (const auto& part : m["parsed"]["parts"]) {
    if (part["content_type"] == "text/html") html = part["body"];
  }
  // The Message-ID is relay's message id, the same one the `sent` event names.
  ASSERT_TRUE(wait_until([&] { return !of_type(relay.events(), "sent").empty(); }));  // events are asynchronous
  const auto sent = of_type(relay.events(), "sent");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_NE(m["message_id"].get<std::string>().find(sent[0]["message_id"].get<std::string>()), std::string::npos);

  std::smatch match;
  ASSERT_TRUE(std::regex_search(html, match, std::regex("/t/o/([A-Za-z0-9_-]+)"))) << html;
  const std::string open_path = "/t/o/" + match[1].str();
  ASSERT_TRUE(std::regex_search(html, match, std::regex("/t/c/([A-Za-z0-9_-]+)"))) << html;
  const std::string click_path = "/t/c/" + match[1].str();
  const std::string http = relay.http_address();
  EXPECT_EQ(http_get(http, open_path).status, 200);
  EXPECT_EQ(http_get(http, open_path).status, 200);
  const auto click = http_get(http, click_path);
  EXPECT_EQ(click.status, 302);
  EXPECT_EQ(click.headers.count("location") ? click.headers.at("location") : "", "https://acme.example/offer");
  ASSERT_TRUE(wait_until([&] { return relay.counter_total(counter_kind::clicked) == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(relay.counter_total(counter_kind::opened), 1u);
  ASSERT_TRUE(wait_until([&] { return of_type(relay.events(), "clicked").size() == 1; }));
  const auto events = relay.events();
  ASSERT_EQ(of_type(events, "opened").size(), 1u);
  EXPECT_EQ(of_type(events, "opened")[0]["job_id"], "mail-1");
  EXPECT_EQ(of_type(events, "opened")[0]["message_id"], sent[0]["message_id"]);
  relay.stop();
}

}  // namespace
}  // namespace relay::test
