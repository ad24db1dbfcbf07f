// Fallback RCS -> SMS end to end (issue 4, "Must hold"): relayd as a child
// process over the Kafka mock with RocksDB on disk, its real rcs_rbm and
// sms_smpp plug-ins talking to the RBM peer (tests/peers/rbm_server.js) and
// the SMSC peer (tests/peers/smsc.js) on loopback. A message not read within
// `fallback_after` goes out again as SMS; one that was read does not; one the
// RBM platform refuses falls back at once; a pending fallback survives SIGKILL.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/http_client.h"
#include "tests/integration/relay_harness.h"
#include "tests/peer_process.h"

namespace relay::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using std::chrono::steady_clock;

constexpr const char* kSecret = "pubsub-client-token";

// The RBM peer (bearer token tok-1, agent acme-agent) and the SMSC peer
// (account relay/secret1), both printing their port first.
struct peers {
  peer_process rbm{{"node", std::string(RELAY_SOURCE_DIR) + "/tests/peers/rbm_server.js", "--token",
                    "tok-1", "--agent-id", "acme-agent"}};
  peer_process smsc{{"node", std::string(RELAY_SOURCE_DIR) + "/tests/peers/smsc.js", "--system-id",
                     "relay", "--password", "secret1"}};

  // carrier-a offers rcs through rcs_rbm and sms through sms_smpp.
  std::string carriers_yaml() const {
    return "  - id: carrier-a\n    channels:\n"
           "      rcs: {plugin: rcs_rbm, endpoint: \"http://" +
           rbm.address() +
           "\", agent_id: acme-agent, auth_token: tok-1, webhook_secret: " + kSecret +
           "}\n"
           "      sms: {plugin: sms_smpp, host: 127.0.0.1, port: " +
           std::to_string(smsc.port()) +
           ", system_id: relay, password: secret1, source_addr: \"12345\"}\n";
  }

  // Messages the RBM peer accepted, by phone number (+E.164) -> messageId.
  std::map<std::string, std::string> rcs_messages() {
    std::map<std::string, std::string> out;
    const auto reply = http_get(rbm.address(), "/_test/messages");
    const auto list = json::parse(reply.body, nullptr, false);
    if (!list.is_array()) return out;
    for (const auto& m : list)
      out[m["phone"].get<std::string>()] = m["messageId"].get<std::string>();
    return out;
  }
  json rbm_stats() {
    return json::parse(http_get(rbm.address(), "/_test/stats").body, nullptr, false);
  }

  // A signed webhook from the RBM peer (as Google's Pub/Sub push) to relayd's
  // hook; returns relayd's HTTP status.
  int push(const std::string& hook, const std::string& type, const std::string& message_id,
           const std::string& event_id) {
    const json request{{"type", type},
                       {"messageId", message_id},
                       {"eventId", event_id},
                       {"url", hook},
                       {"secret", kSecret}};
    const auto reply = http_request(rbm.address(), "POST", "/_test/push", request.dump(),
                                    {{"Content-Type", "application/json"}});
    const auto answer = json::parse(reply.body, nullptr, false);
    return answer.is_object() && answer.contains("status") ? answer["status"].get<int>() : -1;
  }

  // Every submit_sm the SMSC logged so far (its stdout, read without blocking
  // beyond a few milliseconds).
  const std::vector<json>& sms_submits() {
    while (auto line = smsc.read_line(std::chrono::milliseconds(5))) {
      log_.append(*line).push_back('\n');
      auto j = json::parse(*line, nullptr, false);
      if (j.is_object() && j["event"] == "submit") submits_.push_back(std::move(j));
    }
    return submits_;
  }
  // Submits to `e164` (with `text`, when given).
  size_t sms_to(const std::string& e164, const std::string& text = {}) {
    size_t n = 0;
    for (const auto& s : sms_submits()) {
      n += "+" + s["destination_addr"].get<std::string>() == e164 &&
           (text.empty() || s["text"] == text);
    }
    return n;
  }
  // What the SMSC logged so far (binds, submits, closes), for failure messages.
  const std::string& smsc_log() {
    sms_submits();
    return log_;
  }

 private:
  std::vector<json> submits_;
  std::string log_;
};

// A user of acme/gold on carrier-a with a known number (so the peers can be
// told about it and their logs matched to it).
std::vector<std::string> user(const std::string& id, const std::string& msisdn) {
  return {json{{"op", "upsert_user"},
               {"user_id", id},
               {"profile",
                {{"msisdn", msisdn},
                 {"gender", "f"},
                 {"birth_year", 1990},
                 {"region", "tokyo"},
                 {"tz", "Asia/Tokyo"}}},
               {"carriers", json::array({{{"carrier_id", "carrier-a"}, {"primary", true}}})}}
              .dump(),
          register_user(id, "acme", "gold")};
}

std::string fallback_job(const std::string& job_id, const std::vector<std::string>& users,
                         const std::string& fallback_after) {
  return json{
      {"job_id", job_id},
      {"company_id", "acme"},
      {"to", {{"users", users}}},
      {"channels",
       {{"mode", "fallback"}, {"order", {"rcs", "sms"}}, {"fallback_after", fallback_after}}},
      {"content", {{"text", "Autumn sale: 30% off this week"}}}}
      .dump();
}

// The events of `type` for `user`.
std::vector<json> events_of(const std::vector<json>& events, const std::string& type,
                            const std::string& user) {
  std::vector<json> out;
  for (const auto& e : of_type(events, type)) {
    if (e.value("user_id", std::string()) == user) out.push_back(e);
  }
  return out;
}

// An event's `at` ("2026-11-23T17:17:38.784Z", relayd's clock) in Unix milliseconds.
int64_t at_ms(const json& event) {
  const std::string at = event.value("at", std::string());
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(at.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    ADD_FAILURE() << "unexpected `at`: " << event.dump();
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return int64_t{::timegm(&tm)} * 1000 + ms;
}

// sent/failed/opened of one user in one job as "type:channel", in order of
// publication, e.g. {"sent:rcs", "opened:rcs"}.
std::vector<std::string> story(const std::vector<json>& events, const std::string& job,
                               const std::string& user) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    // Not every event names a user (`accepted` does not): value(), not [].
    if (e.value("user_id", std::string()) != user || e.value("job_id", std::string()) != job) continue;
    const std::string type = e.value("type", std::string());
    if (type != "sent" && type != "failed" && type != "opened") continue;
    out.push_back(type + ":" + e.value("channel", std::string("?")));
  }
  return out;
}

// Sends, opens and failures by channel from `relayctl stats --json`.
std::map<std::string, json> stats_by_channel(relay_instance& relay) {
  std::map<std::string, json> out;
  auto [status, text] = relay.relayctl("stats --json");
  EXPECT_EQ(status, 0) << text;
  const auto stats = json::parse(text, nullptr, false);
  if (!stats.is_object()) {
    ADD_FAILURE() << "relayctl stats --json printed no JSON: " << text;
    return out;
  }
  for (const auto& row : stats["sends"]) {
    if (row["company_id"] == "acme" && row["carrier_id"] == "carrier-a") out[row["channel"]] = row;
  }
  return out;
}

// The engagement counts by channel from `relayctl stats --by channel --json`.
std::map<std::string, json> engagement_by_channel(relay_instance& relay) {
  std::map<std::string, json> out;
  auto [status, text] = relay.relayctl("stats --by channel --company acme --json");
  EXPECT_EQ(status, 0) << text;
  const auto rows = json::parse(text, nullptr, false);
  if (!rows.is_array()) {
    ADD_FAILURE() << "relayctl stats --by channel --json printed no JSON array: " << text;
    return out;
  }
  for (const auto& row : rows) {
    if (row["channel"].is_string()) out[row["channel"]] = row;
  }
  return out;
}

TEST(Fallback, fallback_sends_sms_when_rcs_is_not_read) {
  peers p;
  ASSERT_TRUE(p.rbm.ok()) << p.rbm.error();
  ASSERT_TRUE(p.smsc.ok()) << p.smsc.error();
  const std::string u1 = "+819011110001", u2 = "+819011110002";
  relay_instance relay("fallback-read", {.carriers_yaml = p.carriers_yaml()});
  auto records = user("u1", u1);
  for (auto& r : user("u2", u2)) records.push_back(r);
  relay.send_registry(records);
  relay.start();

  relay.send_job(fallback_job("fb-1", {"u1", "u2"}, "1s"));
  // Both get RCS first. u1 reads it at once: the READ must be in relay's send
  // log before the 1 s fallback fires, so it is pushed as soon as the RBM
  // peer has the message.
  ASSERT_TRUE(wait_until([&] { return p.rcs_messages().count(u1) == 1; }, seconds(20)))
      << relay.log_text();
  const auto rcs_seen_at = steady_clock::now();
  const std::string u1_rcs_id = p.rcs_messages().at(u1);
  const std::string hook = "http://" + relay.http_address() + "/hooks/carrier-a/rcs";
  ASSERT_EQ(p.push(hook, "READ", u1_rcs_id, "ev-read-u1"), 200);
  const auto read_pushed_in = steady_clock::now() - rcs_seen_at;
  RecordProperty(
      "read_pushed_after_ms",
      static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(read_pushed_in).count()));

  // u2 did not read: SMS after fallback_after.
  ASSERT_TRUE(wait_until([&] { return p.sms_to(u2) >= 1; }, seconds(20)))
      << p.smsc_log() << relay.log_text();
  // The job finishes only when every pending fallback is gone, including the
  // one u1's RCS armed (it fires, finds the open and sends nothing) and the
  // one after u2's SMS (no channel left): a fallback period after the SMS.
  ASSERT_TRUE(wait_until([&] { return relay.job_done("fb-1"); }, seconds(20))) << relay.log_text();
  EXPECT_EQ(p.sms_to(u1), 0u)
      << "u1 read the RCS message (READ pushed "
      << std::chrono::duration_cast<std::chrono::milliseconds>(read_pushed_in).count()
      << " ms after the RBM peer had it) but still got an SMS";
  EXPECT_EQ(p.sms_to(u2), 1u) << "the SMSC's log:\n" << p.smsc_log();
  ASSERT_EQ(p.sms_submits().size(), 1u);
  EXPECT_EQ(p.sms_submits()[0]["text"], "Autumn sale: 30% off this week");
  const auto rcs = p.rcs_messages();
  EXPECT_EQ(rcs.size(), 2u);  // one RCS each, no RCS resent

  // Events: u1 sent (rcs), opened; u2 sent (rcs), sent (sms), each SMS its own message id.
  ASSERT_TRUE(wait_until([&] { return of_type(relay.events(), "sent").size() >= 3; }, seconds(10)));
  const auto events = relay.events();
  EXPECT_EQ(story(events, "fb-1", "u1"), (std::vector<std::string>{"sent:rcs", "opened:rcs"}))
      << json(events).dump();
  EXPECT_EQ(story(events, "fb-1", "u2"), (std::vector<std::string>{"sent:rcs", "sent:sms"}))
      << json(events).dump();
  const auto u1_sent = events_of(events, "sent", "u1");
  const auto u1_opened = events_of(events, "opened", "u1");
  ASSERT_EQ(u1_sent.size(), 1u);
  ASSERT_EQ(u1_opened.size(), 1u);
  EXPECT_EQ(u1_sent[0]["message_id"], u1_rcs_id);  // the RBM messageId is relay's message id
  EXPECT_EQ(u1_opened[0]["message_id"], u1_rcs_id);
  EXPECT_EQ(u1_opened[0]["job_id"], "fb-1");
  const auto u2_sent = events_of(events, "sent", "u2");
  ASSERT_EQ(u2_sent.size(), 2u);
  EXPECT_EQ(u2_sent[0]["message_id"], rcs.count(u2) ? rcs.at(u2) : "");
  EXPECT_NE(u2_sent[0]["message_id"], u2_sent[1]["message_id"]);
  // The SMS waited for fallback_after (timers fire within about 200 ms of their time).
  EXPECT_GE(at_ms(u2_sent[1]) - at_ms(u2_sent[0]), 1000) << json(u2_sent).dump();
  for (const auto& e : u2_sent) EXPECT_EQ(e["job_id"], "fb-1");
  EXPECT_TRUE(of_type(events, "failed").empty());
  EXPECT_TRUE(of_type(events, "rejected").empty());

  // The SMS counts as a send of its own (on sms), the open once (on rcs).
  EXPECT_EQ(relay.counter_total(counter_kind::sent), 3u);
  EXPECT_EQ(relay.counter_total(counter_kind::opened), 1u);
  auto by_channel = stats_by_channel(relay);
  EXPECT_EQ(by_channel["rcs"].value("sent", 0), 2);
  EXPECT_EQ(by_channel["rcs"].value("opened", 0), 1);
  EXPECT_EQ(by_channel["sms"].value("sent", 0), 1);
  EXPECT_EQ(by_channel["sms"].value("opened", 0), 0);
  // The engagement cube (what channel choice learns from) agrees.
  auto cube = engagement_by_channel(relay);
  EXPECT_EQ(cube["rcs"].value("sent", 0), 2) << cube["rcs"].dump();
  EXPECT_EQ(cube["rcs"].value("opened", 0), 1) << cube["rcs"].dump();
  EXPECT_EQ(cube["sms"].value("sent", 0), 1) << cube["sms"].dump();
  EXPECT_EQ(cube["sms"].value("opened", 0), 0) << cube["sms"].dump();
  relay.stop();
}

TEST(Fallback, a_failed_rcs_send_falls_back_to_sms_at_once) {
  peers p;
  ASSERT_TRUE(p.rbm.ok()) << p.rbm.error();
  ASSERT_TRUE(p.smsc.ok()) << p.smsc.error();
  const std::string u3 = "+819011110003", u4 = "+819011110004";
  // u3 is no RCS user: the platform answers agentMessages.create with 404.
  const auto configured =
      http_request(p.rbm.address(), "POST", "/_test/config", json{{"not_capable", {u3}}}.dump(),
                   {{"Content-Type", "application/json"}});
  ASSERT_EQ(configured.status, 200);
  relay_instance relay("fallback-failed", {.carriers_yaml = p.carriers_yaml()});
  auto records = user("u3", u3);
  for (auto& r : user("u4", u4)) records.push_back(r);
  relay.send_registry(records);
  relay.start();

  // An hour's fallback_after: only the immediate path can deliver u3's SMS in this test.
  const auto sent_at = steady_clock::now();
  relay.send_job(fallback_job("fb-2", {"u3", "u4"}, "1h"));
  ASSERT_TRUE(wait_until([&] { return p.sms_to(u3) >= 1; }, seconds(30)))
      << p.smsc_log() << relay.log_text();
  EXPECT_LT(steady_clock::now() - sent_at, seconds(30));
  ASSERT_TRUE(
      wait_until([&] { return events_of(relay.events(), "sent", "u4").size() == 1; }, seconds(10)));
  // A later job's SMS: relayd's core loop has passed the turn that sent u3's
  // SMS, so anything that turn sent twice is at the SMSC by now.
  relay.send_job(
      R"({"job_id":"barrier","company_id":"acme","to":{"users":["u4"]},"channels":{"order":["sms"]},)"
      R"("content":{"text":"barrier"}})");
  ASSERT_TRUE(wait_until([&] { return p.sms_to(u4, "barrier") == 1; }, seconds(20)))
      << relay.log_text();
  ASSERT_TRUE(wait_until([&] { return relay.job_done("barrier"); }, seconds(20)))
      << relay.log_text();
  EXPECT_EQ(p.sms_to(u3), 1u) << "the SMSC's log:\n" << p.smsc_log();

  // Jobs are recorded done before their events reach Kafka: wait for them.
  ASSERT_TRUE(wait_until([&] { return story(relay.events(), "fb-2", "u3").size() >= 2; }, seconds(10)));
  const auto events = relay.events();
  EXPECT_EQ(story(events, "fb-2", "u3"), (std::vector<std::string>{"failed:rcs", "sent:sms"}))
      << json(events).dump();
  const auto failed = events_of(events, "failed", "u3");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["reason"], "carrier_failed");
  EXPECT_NE(failed[0].value("detail", std::string()).find("404"), std::string::npos)
      << failed[0].dump();
  EXPECT_NE(failed[0]["message_id"], events_of(events, "sent", "u3")[0]["message_id"]);
  // At once: not after any fallback period (this job's is an hour).
  EXPECT_LT(at_ms(events_of(events, "sent", "u3")[0]) - at_ms(failed[0]), 1000);
  // u4 took the RCS message; its fallback is an hour away, so no SMS.
  EXPECT_EQ(story(events, "fb-2", "u4"), (std::vector<std::string>{"sent:rcs"}))
      << json(events).dump();
  EXPECT_EQ(p.sms_to(u4, "Autumn sale: 30% off this week"), 0u);
  EXPECT_EQ(p.sms_submits().size(), 2u);  // u3's and the barrier
  const auto rcs = p.rcs_messages();
  EXPECT_EQ(rcs.size(), 1u);
  EXPECT_EQ(rcs.count(u4), 1u);
  EXPECT_GE(p.rbm_stats().value("api_requests", 0), 2);  // u3's create was made (and refused)
  EXPECT_FALSE(relay.job_done("fb-2"));                  // u4's fallback still pending
  // explain shows that pending fallback: SMS next, unless the RCS message is opened.
  auto [status, text] = relay.relayctl("explain fb-2 u4 --json");
  ASSERT_EQ(status, 0) << text;
  const auto explained = json::parse(text, nullptr, false);
  ASSERT_TRUE(explained.is_object()) << text;
  ASSERT_EQ(explained["timers"].size(), 1u) << text;
  EXPECT_EQ(explained["timers"][0]["kind"], "fallback") << text;
  EXPECT_EQ(explained["timers"][0]["previous_channel"], "rcs") << text;
  EXPECT_EQ(explained["timers"][0]["next_channel"], "sms") << text;
  relay.stop();
}

TEST(Fallback, fallback_survives_a_restart) {
  peers p;
  ASSERT_TRUE(p.rbm.ok()) << p.rbm.error();
  ASSERT_TRUE(p.smsc.ok()) << p.smsc.error();
  const std::string u5 = "+819011110005";
  relay_instance relay("fallback-restart", {.carriers_yaml = p.carriers_yaml()});
  relay.send_registry(user("u5", u5));
  relay.start();

  relay.send_job(fallback_job("fb-3", {"u5"}, "2s"));
  // Killed as soon as the RCS send is published (its send record and timer
  // are written in the same batch) and well before the 2 s fallback is due.
  ASSERT_TRUE(
      wait_until([&] { return events_of(relay.events(), "sent", "u5").size() == 1; }, seconds(20)))
      << relay.log_text();
  relay.stop(SIGKILL);
  EXPECT_EQ(p.sms_to(u5), 0u);
  relay.start();

  ASSERT_TRUE(wait_until([&] { return p.sms_to(u5) >= 1; }, seconds(20)))
      << p.smsc_log() << relay.log_text();
  ASSERT_TRUE(wait_until([&] { return relay.job_done("fb-3"); }, seconds(20))) << relay.log_text();
  EXPECT_EQ(p.sms_to(u5), 1u) << "the SMSC's log:\n" << p.smsc_log();
  EXPECT_EQ(p.sms_submits().size(), 1u);
  EXPECT_EQ(p.rcs_messages().size(), 1u);
  // The SMS came from the durable timer, not from re-running the RCS step.
  EXPECT_NE(relay.log_text().find("1 timers pending from before the restart"), std::string::npos)
      << relay.log_text();
  EXPECT_EQ(p.rbm_stats().value("creates", 0) + p.rbm_stats().value("duplicates", 0), 1);
  ASSERT_TRUE(wait_until([&] { return story(relay.events(), "fb-3", "u5").size() >= 2; }, seconds(10)));
  const auto events = relay.events();
  EXPECT_EQ(story(events, "fb-3", "u5"), (std::vector<std::string>{"sent:rcs", "sent:sms"}))
      << json(events).dump();
  EXPECT_EQ(relay.counter_total(counter_kind::sent), 2u);
  relay.stop();
}

}  // namespace
}  // namespace relay::test
