// The shipped carrier plug-ins end to end: relayd (child process, Kafka over
// TCP, RocksDB on disk) loads them from the build exactly as a third-party
// plug-in, and they talk to real peers on loopback (tests/peers/). What comes
// back — receipts, webhooks, opens and clicks — is counted once, with its job.

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <regex>

#include "tests/integration/http_client.h"
#include "tests/integration/relay_harness.h"
#include "tests/peer_process.h"
#include "tests/peers/smtp_peer.h"

namespace relay::test {
namespace {

using nlohmann::json;

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


// The SMSC's log lines (JSON) until one satisfies `pred`; nullopt at the deadline.
std::optional<json> smsc_line(peer_process& smsc, const std::function<bool(const json&)>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto line = smsc.read_line(std::chrono::milliseconds(500));
    if (!line) continue;
    auto j = json::parse(*line, nullptr, false);
    if (j.is_object() && pred(j)) return j;
  }
  return std::nullopt;
}

TEST(CarrierPlugins, sms_receipts_count_once_and_still_match_after_relayd_restarts) {
  peer_process smsc({"node", std::string(RELAY_SOURCE_DIR) + "/tests/peers/smsc.js", "--system-id", "relay",
                     "--password", "secret1", "--receipts", "tlv"});
  ASSERT_TRUE(smsc.ok()) << smsc.error();
  relay_instance relay(
      "sms-e2e",
      {.carriers_yaml = "  - id: carrier-a\n    channels:\n      sms: {plugin: sms_smpp, host: 127.0.0.1, port: " +
                        std::to_string(smsc.port()) + ", system_id: relay, password: secret1, source_addr: \"12345\"}\n"});
  relay.send_registry({upsert_user("u1", "tokyo", "f", 1990, {{"carrier-a", true}}),
                       upsert_user("u2", "tokyo", "m", 1985, {{"carrier-a", true}}),
                       register_user("u1", "acme", "gold"), register_user("u2", "acme", "gold")});
  relay.start();
  relay.send_job(R"({"job_id":"sms-1","company_id":"acme","to":{"users":["u1"]},"channels":{"order":["sms"]},)"
                 R"("content":{"text":"こんにちは、秋のセールのお知らせです。"}})");
  const auto first = smsc_line(smsc, [](const json& j) { return j["event"] == "submit"; });
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ((*first)["data_coding"], 8);  // UCS-2 for Japanese
  // The SMSC's receipt (TLV form) comes back as one `delivered`, with the job.
  ASSERT_TRUE(wait_until([&] { return relay.counter_total(counter_kind::delivered) == 1; }, std::chrono::seconds(20)))
      << relay.log_text();

  // A second message; relayd restarts before its receipt, so the plug-in has
  // forgotten the SMSC's id and relay must match it through its send log.
  relay.send_job(R"({"job_id":"sms-2","company_id":"acme","to":{"users":["u2"]},"channels":{"order":["sms"]},)"
                 R"("content":{"text":"Second"}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("sms-2"); }, std::chrono::seconds(20))) << relay.log_text();
  const auto second = smsc_line(smsc, [](const json& j) { return j["event"] == "submit" && j["text"] == "Second"; });
  ASSERT_TRUE(second.has_value());
  relay.stop();
  relay.start();
  // The automatic receipt for sms-2 already counted; a late duplicate of it,
  // sent now to the fresh plug-in, matches by the SMSC id and counts nothing.
  ASSERT_TRUE(wait_until([&] { return relay.counter_total(counter_kind::delivered) == 2; }, std::chrono::seconds(20)));
  ASSERT_TRUE(smsc.write_line(json{{"cmd", "receipt"}, {"id", (*second)["message_id"]}, {"stat", "UNDELIV"}, {"form", "tlv"}}.dump()));
  ASSERT_TRUE(smsc.write_line(json{{"cmd", "receipt"}, {"id", (*first)["message_id"]}, {"stat", "DELIVRD"}, {"form", "text"}}.dump()));
  ASSERT_TRUE(wait_until([&] { return relay.counter_total(counter_kind::failed) == 1; }, std::chrono::seconds(20)))
      << relay.log_text();
  ASSERT_TRUE(wait_until([&] { return of_type(relay.events(), "failed").size() == 1; }));
  const auto events = relay.events();
  const auto failed = of_type(events, "failed");
  EXPECT_EQ(failed[0]["job_id"], "sms-2");  // matched by the SMSC's id alone
  EXPECT_EQ(failed[0]["user_id"], "u2");
  EXPECT_EQ(of_type(events, "delivered").size(), 2u);  // the repeated DELIVRD for sms-1 counted nothing
  EXPECT_EQ(relay.counter_total(counter_kind::delivered), 2u);
  relay.stop();
}

TEST(CarrierPlugins, rcs_webhooks_through_relayd_count_once_and_forged_or_replayed_ones_count_nothing) {
  peer_process rbm({"node", std::string(RELAY_SOURCE_DIR) + "/tests/peers/rbm_server.js", "--token", "tok-1",
                    "--agent-id", "acme-agent"});
  ASSERT_TRUE(rbm.ok()) << rbm.error();
  const std::string secret = "pubsub-client-token";
  relay_instance relay("rcs-e2e",
                       {.carriers_yaml = "  - id: carrier-a\n    channels:\n      rcs: {plugin: rcs_rbm, endpoint: \"http://" +
                                         rbm.address() + "\", agent_id: acme-agent, auth_token: tok-1, webhook_secret: " +
                                         secret + "}\n"});
  relay.send_registry({upsert_user("u1", "tokyo", "f", 1990, {{"carrier-a", true}}),
                       register_user("u1", "acme", "gold")});
  relay.start();
  relay.send_job(R"({"job_id":"rcs-1","company_id":"acme","to":{"users":["u1"]},"channels":{"order":["rcs"]},)"
                 R"("content":{"text":"Hello","link":"https://acme.example/x"}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("rcs-1"); }, std::chrono::seconds(20))) << relay.log_text();
  const auto messages = json::parse(http_get(rbm.address(), "/_test/messages").body);
  ASSERT_EQ(messages.size(), 1u);
  const std::string message_id = messages[0]["messageId"];

  const std::string hook = "http://" + relay.http_address() + "/hooks/carrier-a/rcs";
  auto push = [&](const json& request) {
    json r = request;
    r["messageId"] = message_id;
    r["url"] = hook;
    r["secret"] = secret;
    return json::parse(http_request(rbm.address(), "POST", "/_test/push", r.dump(),
                                    {{"Content-Type", "application/json"}}).body);
  };
  EXPECT_EQ(push({{"type", "DELIVERED"}, {"eventId", "ev-1"}})["status"], 200);
  EXPECT_EQ(push({{"type", "DELIVERED"}, {"eventId", "ev-1"}})["status"], 409);   // Pub/Sub redelivery
  EXPECT_EQ(push({{"type", "READ"}, {"signature", "bad"}})["status"], 401);       // forged
  EXPECT_EQ(push({{"type", "READ"}, {"signature", "none"}})["status"], 401);      // unsigned
  EXPECT_EQ(push({{"type", "DELIVERED"}, {"eventId", "ev-2"}})["status"], 200);  // a new id, same news
  EXPECT_EQ(push({{"type", "READ"}, {"eventId", "ev-3"}})["status"], 200);
  ASSERT_TRUE(wait_until([&] { return relay.counter_total(counter_kind::opened) == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(relay.counter_total(counter_kind::delivered), 1u);
  ASSERT_TRUE(wait_until([&] { return of_type(relay.events(), "opened").size() == 1; }));
  const auto events = relay.events();
  EXPECT_EQ(of_type(events, "delivered").size(), 1u);
  EXPECT_EQ(of_type(events, "opened")[0]["job_id"], "rcs-1");
  EXPECT_EQ(of_type(events, "opened")[0]["message_id"], message_id);
  relay.stop();
}

}  // namespace
}  // namespace relay::test
