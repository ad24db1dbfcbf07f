// The engagement engine end to end on relay's own clock (issue 4): send
// windows and expiry, fallback and resend, daily caps, exclusive quiet
// periods, and the counts behind them. relay runs in this process on a
// test_clock (in_process_relay.h) with real Kafka (the mock cluster over TCP),
// RocksDB on disk, file_sink plug-ins and its HTTP server; hours pass when the
// test says so, never by sleeping.

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "routing/engagement_cube.h"
#include "tests/integration/http_client.h"
#include "tests/integration/in_process_relay.h"

namespace relay::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// 2026-11-24 08:00 in Tokyo.
const sys_time kTokyo0800 = sys_time(std::chrono::milliseconds(1'795'474'800'000));

// One carrier with all three channels on file_sink.
std::string all_channel_carrier(const relay_instance& files) {
  const std::string dir = files.outbox("carrier-a");
  return "  - id: carrier-a\n    channels:\n"
         "      rcs: {plugin: file_sink, dir: " + dir + "}\n"
         "      sms: {plugin: file_sink, dir: " + dir + "}\n"
         "      email: {plugin: file_sink, dir: " + dir + "}\n";
}

struct engagement_relay {
  explicit engagement_relay(const std::string& name, const std::string& extra_yaml = "")
      : files(name), clk(kTokyo0800), relay(files, clk) {
    files.reconfigure([&](relay_instance::options& o) {
      o.carriers_yaml = all_channel_carrier(files);
      o.extra_yaml = extra_yaml;
    });
    std::vector<std::string> registry;
    for (const char* u : {"u1", "u2"}) {
      registry.push_back(upsert_user(u, "tokyo", "f", 1990, {{"carrier-a", true}}));
      registry.push_back(register_user(u, "acme", "gold"));
    }
    files.send_registry(registry);
    relay.start();
  }

  // Lines file_sink wrote for `user` on `channel`.
  std::vector<json> lines(const std::string& channel, const std::string& user) const {
    std::vector<json> out;
    for (const json& l : files.sink("carrier-a", channel)) {
      if (l["user_id"] == user) out.push_back(l);
    }
    return out;
  }
  size_t events_of(const std::string& type) { return of_type(files.events(), type).size(); }

  relay_instance files;
  test_clock clk;
  in_process_relay relay;
};

std::string job(const std::string& id, const std::string& users_and_more,
                const std::string& content = R"({"text":"Hello"})") {
  return R"({"job_id":")" + id + R"(","company_id":"acme","content":)" + content + "," + users_and_more + "}";
}

TEST(Engagement, a_send_outside_its_window_waits_for_it_and_goes_out_when_it_opens) {
  engagement_relay r("window");
  r.files.send_job(job("w-1", R"("to":{"users":["u1","u2"]},"channels":{"order":["sms"]},)"
                              R"("schedule":{"window":{"start":"09:00","end":"18:00","tz":"Asia/Tokyo"}})"));
  ASSERT_TRUE(wait_until([&] { return r.events_of("scheduled") == 2; }, 30s));
  const json scheduled = of_type(r.files.events(), "scheduled")[0];
  EXPECT_EQ(scheduled["reason"], "waiting");
  EXPECT_EQ(scheduled["until"], "2026-11-24T00:00:00.000Z");  // 09:00 in Tokyo
  EXPECT_EQ(r.files.sink_line_count("carrier-a", "sms"), 0u);
  EXPECT_FALSE(r.files.job_done("w-1"));

  r.clk.advance(59min);
  // Relay's loop looks at its timers several times a second; a minute early
  // nothing may go out.
  EXPECT_FALSE(wait_until([&] { return r.files.sink_line_count("carrier-a", "sms") > 0; }, 1s));
  r.clk.advance(1min + 1s);
  ASSERT_TRUE(wait_until([&] { return r.files.sink_line_count("carrier-a", "sms") == 2; }, 10s));
  EXPECT_TRUE(wait_until([&] { return r.files.job_done("w-1"); }, 10s));
}

TEST(Engagement, a_send_that_cannot_happen_before_the_job_expires_fails_as_expired) {
  engagement_relay r("expiry");
  r.files.send_job(job("x-1", R"("to":{"users":["u1"]},"channels":{"order":["sms"]},)"
                              R"("schedule":{"window":{"start":"09:00","end":"10:00"},"expires":"2026-11-24T08:30:00+09:00"})"));
  ASSERT_TRUE(wait_until([&] { return r.files.job_done("x-1"); }, 30s));
  ASSERT_TRUE(wait_until([&] { return r.events_of("failed") == 1; }, 10s)) << json(r.files.events()).dump();
  const auto failed = of_type(r.files.events(), "failed");
  EXPECT_EQ(failed[0]["reason"], "expired");
  EXPECT_EQ(failed[0]["user_id"], "u1");
  EXPECT_EQ(r.files.sink_line_count("carrier-a", "sms"), 0u);
  EXPECT_EQ(r.files.job("x-1")->progress.expired, 1u);
}

TEST(Engagement, fallback_sends_the_next_channel_only_to_users_who_did_not_open) {
  engagement_relay r("fallback", "tracking: {location_header: CF-IPCountry}\n");
  r.files.send_job(job("f-1", R"("to":{"users":["u1","u2"]},)"
                              R"("channels":{"mode":"fallback","order":["rcs","sms"],"fallback_after":"2h"})",
                       R"({"text":"Hello","html":"<p>Hello</p>"})"));
  ASSERT_TRUE(wait_until([&] { return r.events_of("sent") == 2; }, 30s));
  // u1 opens (the tracking pixel in its message); u2 does not.
  const std::string html = r.lines("rcs", "u1").at(0)["content"]["html"];
  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, std::regex("/t/o/([A-Za-z0-9_-]+)"))) << html;
  // Behind a CDN that says where the reader is: the open counts by location.
  EXPECT_EQ(http_request(r.files.http_address(), "GET", "/t/o/" + std::string(m[1]), {}, {{"CF-IPCountry", "JP"}})
                .status,
            200);
  ASSERT_TRUE(wait_until([&] { return r.events_of("opened") == 1; }, 10s));

  r.clk.advance(2h + 1s);
  ASSERT_TRUE(wait_until([&] { return r.files.job_done("f-1"); }, 15s));
  EXPECT_EQ(r.lines("sms", "u2").size(), 1u) << json(r.files.sink("carrier-a", "sms")).dump();
  EXPECT_EQ(r.lines("sms", "u1").size(), 0u) << "u1 opened the RCS message";
  EXPECT_NE(r.lines("sms", "u2")[0]["message_id"], r.lines("rcs", "u2")[0]["message_id"]);

  // Counted by channel: two RCS sends and one open, one SMS send.
  store* db = r.files.database();
  ASSERT_NE(db, nullptr);
  auto rows = query_engagement(*db, {.group_by = {engagement_dimension::channel}, .company = "acme"});
  ASSERT_TRUE(rows) << rows.err().message;
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].key[0], "rcs");
  EXPECT_EQ((*rows)[0].counts[engagement_count::sent], 2u);
  EXPECT_EQ((*rows)[0].counts[engagement_count::opened], 1u);
  EXPECT_EQ((*rows)[1].key[0], "sms");
  EXPECT_EQ((*rows)[1].counts[engagement_count::sent], 1u);
  auto places = query_engagement(*db, {.group_by = {engagement_dimension::location}, .company = "acme"});
  ASSERT_TRUE(places) << places.err().message;
  ASSERT_EQ(places->size(), 1u);
  EXPECT_EQ((*places)[0].key[0], "JP");
  EXPECT_EQ((*places)[0].counts[engagement_count::opened], 1u);
}

TEST(Engagement, resend_repeats_the_channel_with_new_message_ids_at_most_max_resends_times) {
  engagement_relay r("resend");
  r.files.send_job(job("r-1", R"("to":{"users":["u1"]},)"
                              R"("channels":{"mode":"resend","order":["sms"],"fallback_after":"1h","max_resends":2})"));
  ASSERT_TRUE(wait_until([&] { return r.files.sink_line_count("carrier-a", "sms") == 1; }, 30s));
  for (size_t sends = 2; sends <= 3; ++sends) {
    // The resend's timer is set when relay records the send (the `sent`
    // event): only then may relay's time move on.
    ASSERT_TRUE(wait_until([&] { return r.events_of("sent") == sends - 1; }, 10s));
    r.clk.advance(1h + 1s);
    ASSERT_TRUE(wait_until([&] { return r.files.sink_line_count("carrier-a", "sms") == sends; }, 10s)) << sends;
  }
  ASSERT_TRUE(wait_until([&] { return r.files.job_done("r-1"); }, 10s));
  r.clk.advance(1h + 1s);
  EXPECT_FALSE(wait_until([&] { return r.files.sink_line_count("carrier-a", "sms") > 3; }, 1s));
  const auto lines = r.lines("sms", "u1");
  std::set<std::string> ids;
  for (const json& l : lines) ids.insert(l["message_id"]);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(of_type(r.files.events(), "sent").size(), 3u);
}

TEST(Engagement, a_daily_cap_throttles_further_jobs_until_the_users_next_day) {
  engagement_relay r("caps", "engagement: {throttle: {daily: 1}}\n");
  const std::string to = R"("to":{"users":["u1"]},"channels":{"order":["sms"]})";
  r.files.send_job(job("c-1", to));
  ASSERT_TRUE(wait_until([&] { return r.files.job_done("c-1"); }, 30s));
  r.files.send_job(job("c-2", to));
  ASSERT_TRUE(wait_until([&] { return r.files.job_done("c-2"); }, 30s));
  // The job is recorded done before its events have reached Kafka.
  ASSERT_TRUE(wait_until([&] { return r.events_of("rejected") == 1; }, 10s));
  const auto rejected = of_type(r.files.events(), "rejected");
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0]["reason"], "throttled");
  EXPECT_EQ(rejected[0]["job_id"], "c-2");
  EXPECT_EQ(r.files.job("c-2")->progress.throttled, 1u);

  r.clk.advance(24h);
  r.files.send_job(job("c-3", to));
  ASSERT_TRUE(wait_until([&] { return r.files.job_done("c-3"); }, 30s));
  EXPECT_EQ(r.files.sink_line_count("carrier-a", "sms"), 2u);
}

TEST(Engagement, an_exclusive_send_holds_other_jobs_back_until_its_quiet_period_ends) {
  engagement_relay r("quiet", "engagement: {quiet_period: {before: 30m, after: 2h}}\n");
  r.files.send_job(job("q-excl", R"("to":{"users":["u1"]},"channels":{"order":["sms"]},"priority":"exclusive")"));
  ASSERT_TRUE(wait_until([&] { return r.files.job_done("q-excl"); }, 30s));
  r.clk.advance(1min);
  r.files.send_job(job("q-other", R"("to":{"users":["u1","u2"]},"channels":{"order":["sms"]})"));
  // u2 is not held; u1 waits for the end of the quiet period.
  ASSERT_TRUE(wait_until([&] { return r.lines("sms", "u2").size() == 1; }, 30s));
  ASSERT_TRUE(wait_until([&] { return r.events_of("scheduled") == 1; }, 10s));
  const json held = of_type(r.files.events(), "scheduled")[0];
  EXPECT_EQ(held["user_id"], "u1");
  EXPECT_EQ(held["job_id"], "q-other");
  EXPECT_EQ(r.lines("sms", "u1").size(), 1u);

  r.clk.advance(2h);
  ASSERT_TRUE(wait_until([&] { return r.lines("sms", "u1").size() == 2; }, 10s));
  EXPECT_TRUE(wait_until([&] { return r.files.job_done("q-other"); }, 10s));
}

TEST(Engagement, an_open_triggers_the_on_open_follow_up_once_on_the_same_channel) {
  engagement_relay r("follow-up");
  r.files.send_job(job("o-1", R"("to":{"users":["u1","u2"]},"channels":{"order":["email"]},)"
                              R"("on_open":{"content":{"text":"Thanks for reading"},"after":"10m","within":"1d"})",
                       R"({"subject":"Hi","text":"Hello","html":"<p>Hello</p>"})"));
  ASSERT_TRUE(wait_until([&] { return r.events_of("sent") == 2; }, 30s));
  const std::string html = r.lines("email", "u1").at(0)["content"]["html"];
  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, std::regex("/t/o/([A-Za-z0-9_-]+)"))) << html;
  for (int i = 0; i < 2; ++i) EXPECT_EQ(http_get(r.files.http_address(), "/t/o/" + std::string(m[1])).status, 200);
  ASSERT_TRUE(wait_until([&] { return r.events_of("opened") == 1; }, 10s));
  EXPECT_FALSE(wait_until([&] { return r.lines("email", "u1").size() > 1; }, 500ms)) << "sent before `after`";

  r.clk.advance(10min + 1s);
  ASSERT_TRUE(wait_until([&] { return r.lines("email", "u1").size() == 2; }, 10s));
  EXPECT_EQ(r.lines("email", "u1")[1]["content"]["text"], "Thanks for reading");
  EXPECT_EQ(r.lines("email", "u2").size(), 1u) << "u2 opened nothing";
  EXPECT_FALSE(r.files.job_done("o-1")) << "an open may still come within a day";

  r.clk.advance(24h);
  ASSERT_TRUE(wait_until([&] { return r.files.job_done("o-1"); }, 10s));
  EXPECT_EQ(r.lines("email", "u1").size(), 2u);
}

}  // namespace
}  // namespace relay::test
