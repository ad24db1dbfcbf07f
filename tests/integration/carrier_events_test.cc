// What happens after a carrier accepts a message, end to end through relayd:
// delivery and open reports come back to the job that sent them and count
// once; relay's own tracking URLs (open pixel, click redirect) count once and
// refuse forged tokens; a slow carrier does not hold up the others, and what
// waits for it survives a restart; /metrics, /healthz and /readyz answer.

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "tests/integration/http_client.h"
#include "tests/integration/relay_harness.h"

namespace relay::test {
namespace {

using nlohmann::json;

// `n` users of acme, alternately on carrier-a and carrier-b.
void load_users(relay_instance& relay, int n) {
  std::vector<std::string> records;
  for (int i = 0; i < n; ++i) {
    const std::string u = "u" + std::to_string(i);
    records.push_back(upsert_user(u, "tokyo", "f", 1990, {{i % 2 == 0 ? "carrier-a" : "carrier-b", true}}));
    records.push_back(register_user(u, "acme", "gold"));
  }
  relay.send_registry(records);
}

TEST(CarrierEvents, delivery_and_open_reports_name_their_job_and_count_once) {
  relay_instance relay("reports", {.sink_settings = "delivered_rate: 1, opened_rate: 1"});
  load_users(relay, 10);
  relay.start();
  relay.send_job(R"({"job_id":"rep-1","company_id":"acme","to":{"all":true},"content":{"text":"hi"},)"
                 R"("channels":{"order":["sms"]}})");
  ASSERT_TRUE(wait_until([&] { return relay.counter_total(counter_kind::opened) == 10; }, std::chrono::seconds(30)))
      << relay.log_text();
  EXPECT_EQ(relay.counter_total(counter_kind::delivered), 10u);
  EXPECT_EQ(relay.counter_total(counter_kind::sent), 10u);

  ASSERT_TRUE(wait_until([&] { return of_type(relay.events(), "opened").size() == 10; }));
  const auto events = relay.events();
  const auto delivered = of_type(events, "delivered");
  const auto opened = of_type(events, "opened");
  ASSERT_EQ(delivered.size(), 10u);
  ASSERT_EQ(opened.size(), 10u);
  std::set<std::string> users;
  for (const auto& e : opened) {
    EXPECT_EQ(e["job_id"], "rep-1");
    EXPECT_EQ(e["company_id"], "acme");
    EXPECT_EQ(e["channel"], "sms");
    EXPECT_EQ(e["message_id"].get<std::string>().size(), 32u);
    users.insert(e["user_id"].get<std::string>());
  }
  EXPECT_EQ(users.size(), 10u);

  auto [status, out] = relay.relayctl("stats");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("delivered"), std::string::npos) << out;
  EXPECT_NE(out.find("opened"), std::string::npos) << out;
  auto [jstatus, jout] = relay.relayctl("stats --json");
  ASSERT_EQ(jstatus, 0) << jout;
  const json stats = json::parse(jout);
  uint64_t opened_total = 0;
  for (const auto& row : stats["sends"]) opened_total += row["opened"].get<uint64_t>();
  EXPECT_EQ(opened_total, 10u);
  relay.stop();
}

TEST(CarrierEvents, tracked_open_and_click_count_once_and_forged_tokens_count_nothing) {
  relay_instance relay("tracking");
  relay.send_registry({upsert_user("u1", "tokyo", "f", 1990, {{"carrier-a", true}}),
                       register_user("u1", "acme", "gold")});
  relay.start();
  relay.send_job(
      R"({"job_id":"trk-1","company_id":"acme","to":{"users":["u1"]},"channels":{"order":["email"]},)"
      R"("content":{"subject":"Hi","text":"Hello","html":"<html><body><p>Hello <a href=\"https://acme.example/offer?x=1&amp;y=2\">offer</a></p></body></html>"}})");
  ASSERT_TRUE(wait_until([&] { return relay.sink_line_count("carrier-a", "email") == 1; }, std::chrono::seconds(30)))
      << relay.log_text();
  const json line = relay.sink("carrier-a", "email")[0];
  const std::string html = line["content"]["html"];
  EXPECT_EQ(html.find("https://acme.example/offer"), std::string::npos) << "the link is not rewritten: " << html;

  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, std::regex("/t/o/([A-Za-z0-9_-]+)"))) << html;
  const std::string open_token = m[1];
  ASSERT_TRUE(std::regex_search(html, m, std::regex("/t/c/([A-Za-z0-9_-]+)"))) << html;
  const std::string click_token = m[1];
  const std::string http = relay.http_address();
  ASSERT_FALSE(http.empty());

  // The pixel, twice (a reader reopening the mail), counts one open.
  for (int i = 0; i < 2; ++i) {
    const auto r = http_get(http, "/t/o/" + open_token);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.at("content-type"), "image/gif");
  }
  const auto click = http_get(http, "/t/c/" + click_token);
  EXPECT_EQ(click.status, 302);
  EXPECT_EQ(click.headers.at("location"), "https://acme.example/offer?x=1&y=2");

  // Forged: one character changed; an open token on the click route.
  std::string forged = open_token;
  forged[forged.size() / 2] = forged[forged.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(http_get(http, "/t/o/" + forged).status, 404);
  EXPECT_EQ(http_get(http, "/t/c/" + open_token).status, 404);

  ASSERT_TRUE(wait_until([&] { return relay.counter_total(counter_kind::clicked) == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(relay.counter_total(counter_kind::opened), 1u);
  ASSERT_TRUE(wait_until([&] { return of_type(relay.events(), "clicked").size() == 1; }));
  const auto events = relay.events();
  ASSERT_EQ(of_type(events, "opened").size(), 1u);
  ASSERT_EQ(of_type(events, "clicked").size(), 1u);
  EXPECT_EQ(of_type(events, "opened")[0]["job_id"], "trk-1");
  EXPECT_EQ(of_type(events, "clicked")[0]["user_id"], "u1");
  relay.stop();
}

TEST(CarrierEvents, a_stalled_carrier_does_not_hold_up_another_and_its_queue_survives_a_restart) {
  // carrier-a accepts messages but never answers (an hour of latency) and
  // holds at most 20 in flight; carrier-b is healthy.
  relay_instance relay("stalled", {.extra_yaml = "limits: {connector_queue: 20, fanout_chunk: 50, outbox_after: 200ms}\n",
                                   .carrier_settings = {{"carrier-a", "latency_ms: 3600000"}}});
  load_users(relay, 400);
  relay.start();
  relay.send_job(R"({"job_id":"stall-1","company_id":"acme","to":{"all":true},"content":{"text":"hi"},)"
                 R"("channels":{"order":["sms"]}})");
  // Every carrier-b recipient arrives while carrier-a is stuck.
  ASSERT_TRUE(wait_until([&] { return relay.sink_line_count("carrier-b", "sms") == 200; }, std::chrono::seconds(30)))
      << relay.log_text();
  EXPECT_EQ(relay.sink_line_count("carrier-a", "sms"), 0u);
  const auto metrics = http_get(relay.http_address(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(metrics.body, m,
                                std::regex(R"re(relay_outbox_depth\{carrier="carrier-a",channel="sms"\} (\d+))re")))
      << metrics.body;
  EXPECT_GE(std::stoi(m[1]), 150);  // the rest of carrier-a's 200 wait on disk

  // Killed while carrier-a still holds everything; restarted with carrier-a healthy.
  relay.stop(SIGKILL);
  relay.reconfigure([](relay_instance::options& o) { o.carrier_settings.clear(); });
  relay.start();
  ASSERT_TRUE(wait_until([&] { return relay.job_done("stall-1"); }, std::chrono::seconds(60))) << relay.log_text();
  const auto a = relay.sink("carrier-a", "sms");
  std::set<std::string> ids;
  for (const auto& l : a) ids.insert(l["message_id"].get<std::string>());
  EXPECT_EQ(a.size(), 200u) << relay.log_text();
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_EQ(relay.sink_line_count("carrier-b", "sms"), 200u);  // nothing sent twice
  relay.stop();
}

TEST(CarrierEvents, health_readiness_and_metrics_are_served) {
  relay_instance relay("http");
  relay.send_registry({upsert_user("u1", "tokyo", "f", 1990, {{"carrier-a", true}}),
                       register_user("u1", "acme", "gold")});
  relay.start();
  const std::string http = relay.http_address();
  EXPECT_EQ(http_get(http, "/healthz").status, 200);
  EXPECT_EQ(http_get(http, "/readyz").status, 200);
  relay.send_job(R"({"job_id":"m-1","company_id":"acme","to":{"users":["u1"]},"content":{"text":"hi"}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("m-1"); }, std::chrono::seconds(30)));
  ASSERT_TRUE(wait_until(
      [&] {
        const auto r = http_get(http, "/metrics");
        return r.body.find(R"(relay_messages_total{carrier="carrier-a",channel="sms",event="sent"} 1)") !=
               std::string::npos;
      },
      std::chrono::seconds(10)))
      << http_get(http, "/metrics").body;
  const auto r = http_get(http, "/metrics");
  EXPECT_NE(r.headers.at("content-type").find("text/plain"), std::string::npos);
  EXPECT_EQ(http_request(http, "POST", "/hooks/no-such-carrier/sms", "{}").status, 404);
  relay.stop();
}

}  // namespace
}  // namespace relay::test
