// relayctl's engagement commands against a running relayd (DESIGN §6):
// `stats --by` groups the counts of real sends and (file_sink-simulated)
// opens, `user` shows one user's record, `explain` names the channel sent,
// its step and seen bits, and a fallback still pending.

#include <gtest/gtest.h>

#include <sstream>

#include "tests/integration/relay_harness.h"

namespace relay::test {
namespace {

using nlohmann::json;

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The words of the first output line starting with `prefix` (words); empty when none.
std::vector<std::string> row(const std::string& out, const std::vector<std::string>& prefix) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    const auto w = words(line);
    if (w.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), w.begin())) return w;
  }
  return {};
}

// relayctl's JSON output, or null when it failed or printed something else.
json relayctl_json(relay_instance& relay, const std::string& args) {
  auto [status, out] = relay.relayctl(args);
  if (status != 0) return nullptr;
  return json::parse(out, nullptr, false);
}

TEST(RelayctlEngagement, stats_by_user_and_explain_show_sends_and_opens) {
  // carrier-a's users open everything, carrier-b's only get it delivered.
  relay_instance relay("ctl-stats",
                       {.carrier_settings = {{"carrier-a", "delivered_rate: 1, opened_rate: 1"},
                                             {"carrier-b", "delivered_rate: 1, opened_rate: 0"}}});
  std::vector<std::string> records;
  for (const char* u : {"u1", "u2", "u3"}) {
    records.push_back(upsert_user(u, "tokyo", "f", 1990, {{"carrier-a", true}}));
    records.push_back(register_user(u, "acme", "gold"));
  }
  for (const char* u : {"u4", "u5"}) {
    records.push_back(upsert_user(u, "osaka", "m", 1980, {{"carrier-b", true}}));
    records.push_back(register_user(u, "acme", "gold"));
  }
  records.push_back(
      register_user("u1", "beta", "news"));  // another company's send, filtered out below
  relay.send_registry(records);
  relay.start();
  relay.send_job(R"({"job_id":"s-1","company_id":"acme","to":{"all":true},"content":{"text":"hi"},)"
                 R"("channels":{"order":["sms"]}})");
  relay.send_job(
      R"({"job_id":"b-1","company_id":"beta","to":{"users":["u1"]},"content":{"text":"hi"},)"
      R"("channels":{"order":["sms"]}})",
      "beta");

  // Every send and every simulated report counted (6 sends, 6 deliveries, 4 opens).
  ASSERT_TRUE(wait_until(
      [&] {
        const json rows = relayctl_json(relay, "stats --by company --json");
        if (!rows.is_array()) return false;
        uint64_t sent = 0, delivered = 0, opened = 0;
        for (const auto& r : rows) {
          sent += r["sent"].get<uint64_t>();
          delivered += r["delivered"].get<uint64_t>();
          opened += r["opened"].get<uint64_t>();
        }
        return sent == 6 && delivered == 6 && opened == 4;
      },
      std::chrono::seconds(30)))
      << relay.relayctl("stats --by company").second << relay.log_text();

  {
    auto [status, out] = relay.relayctl("stats --by carrier,channel --company acme");
    ASSERT_EQ(status, 0) << out;
    EXPECT_EQ(words(out.substr(0, out.find('\n'))),
              (std::vector<std::string>{"carrier", "channel", "sent", "delivered", "opened",
                                        "clicked", "failed", "open", "rate"}))
        << out;
    EXPECT_EQ(
        row(out, {"carrier-a", "sms"}),
        (std::vector<std::string>{"carrier-a", "sms", "3", "3", "3", "0", "0", "100.0%", "(3/3)"}))
        << out;
    EXPECT_EQ(
        row(out, {"carrier-b", "sms"}),
        (std::vector<std::string>{"carrier-b", "sms", "2", "2", "0", "0", "0", "0.0%", "(0/2)"}))
        << out;
    EXPECT_EQ(row(out, {"total"}),
              (std::vector<std::string>{"total", "5", "5", "3", "0", "0", "60.0%", "(3/5)"}))
        << out;
  }
  {
    const json rows =
        relayctl_json(relay, "stats --by carrier,channel --company acme --since 1d --json");
    ASSERT_TRUE(rows.is_array()) << rows;
    ASSERT_EQ(rows.size(), 2u) << rows.dump(2);
    EXPECT_EQ(rows[0]["carrier"], "carrier-a");
    EXPECT_EQ(rows[0]["channel"], "sms");
    EXPECT_EQ(rows[0]["sent"], 3);
    EXPECT_EQ(rows[0]["opened"], 3);
    EXPECT_DOUBLE_EQ(rows[0]["open_rate"].get<double>(), 1.0);
    EXPECT_EQ(rows[1]["carrier"], "carrier-b");
    EXPECT_EQ(rows[1]["delivered"], 2);
    EXPECT_EQ(rows[1]["opened"], 0);
    EXPECT_DOUBLE_EQ(rows[1]["open_rate"].get<double>(), 0.0);
    // Nothing was sent before yesterday or after tomorrow's start.
    const json none = relayctl_json(relay, "stats --by carrier --until 2000-01-01 --json");
    ASSERT_TRUE(none.is_array()) << none;
    EXPECT_TRUE(none.empty()) << none;
  }
  {
    auto [status, out] = relay.relayctl("stats --by carrier,colour");
    EXPECT_EQ(status, 2) << out;
    EXPECT_NE(out.find("unknown dimension \"colour\""), std::string::npos) << out;
    EXPECT_NE(out.find("valid: company, carrier, channel"), std::string::npos) << out;
  }
  {
    // `stats` alone keeps its own report.
    auto [status, out] = relay.relayctl("stats");
    EXPECT_EQ(status, 0) << out;
    EXPECT_NE(out.find("company"), std::string::npos) << out;
  }

  {
    // u1 got acme's and beta's message, both opened.
    auto [status, out] = relay.relayctl("user u1");
    ASSERT_EQ(status, 0) << out;
    EXPECT_EQ(row(out, {"sms"}), (std::vector<std::string>{"sms", "2", "2", "100.0%", "(2/2)"}))
        << out;
    EXPECT_NE(out.find("delivered 2"), std::string::npos) << out;
    EXPECT_NE(out.find("quiet period: none"), std::string::npos) << out;
    const json u = relayctl_json(relay, "user u4 --json");
    ASSERT_TRUE(u.is_object()) << u;
    EXPECT_EQ(u["channels"][1]["channel"], "sms");
    EXPECT_EQ(u["channels"][1]["sent"], 1);
    EXPECT_EQ(u["channels"][1]["opened"], 0);
    EXPECT_EQ(u["today"]["sent"], 1);
    EXPECT_EQ(relay.relayctl("user nobody").first, 1);
  }

  {
    auto [status, out] = relay.relayctl("explain s-1 u1");
    ASSERT_EQ(status, 0) << out;
    const auto message = row(out, {"sms", "first"});
    ASSERT_FALSE(message.empty()) << out;
    EXPECT_NE(std::find(message.begin(), message.end(), "carrier-a"), message.end()) << out;
    EXPECT_NE(out.find("delivered, opened"), std::string::npos) << out;
    EXPECT_NE(out.find("pending timers: none"), std::string::npos) << out;
    EXPECT_NE(out.find("specified: sms, the first reachable channel of order [sms"),
              std::string::npos)
        << out;

    const json e = relayctl_json(relay, "explain s-1 u4 --json");
    ASSERT_TRUE(e.is_object()) << e;
    ASSERT_EQ(e["messages"].size(), 1u) << e.dump(2);
    EXPECT_EQ(e["messages"][0]["channel"], "sms");
    EXPECT_EQ(e["messages"][0]["step"], 0);
    EXPECT_EQ(e["messages"][0]["carrier_id"], "carrier-b");
    EXPECT_EQ(e["messages"][0]["seen"]["delivered"], true);
    EXPECT_EQ(e["messages"][0]["seen"]["opened"], false);
    EXPECT_EQ(e["messages"][0]["dims"]["region"], "osaka");
    EXPECT_TRUE(e["timers"].empty());
    EXPECT_EQ(e["choice"]["channels"], json::array({"sms"}));

    // beta's job was not for u2.
    auto [not_status, not_out] = relay.relayctl("explain b-1 u2");
    EXPECT_EQ(not_status, 0) << not_out;
    EXPECT_NE(not_out.find("not a recipient of this job"), std::string::npos) << not_out;

    auto [job_status, job_out] = relay.relayctl("explain nope u1");
    EXPECT_EQ(job_status, 1) << job_out;
    EXPECT_NE(job_out.find("job nope not found"), std::string::npos) << job_out;
    auto [user_status, user_out] = relay.relayctl("explain s-1 nobody");
    EXPECT_EQ(user_status, 1) << user_out;
    EXPECT_NE(user_out.find("user nobody not found"), std::string::npos) << user_out;
  }
  relay.stop();
}

TEST(RelayctlEngagement, explain_shows_a_pending_fallback_and_a_send_held_by_a_quiet_period) {
  // carrier-a carries rcs (delivered, never read) and sms.
  relay_instance relay("ctl-fallback");
  const std::string outbox = relay.outbox("carrier-a");
  relay.reconfigure([&](relay_instance::options& o) {
    o.carriers_yaml =
        "  - id: carrier-a\n    channels:\n"
        "      rcs: {plugin: file_sink, dir: " +
        outbox +
        ", delivered_rate: 1, opened_rate: 0}\n"
        "      sms: {plugin: file_sink, dir: " +
        outbox + "}\n";
  });
  relay.send_registry({upsert_user("u1", "tokyo", "f", 1990, {{"carrier-a", true}}),
                       register_user("u1", "acme", "gold"),
                       upsert_user("u2", "tokyo", "m", 1985, {{"carrier-a", true}}),
                       register_user("u2", "acme", "gold")});
  relay.start();
  relay.send_job(
      R"({"job_id":"fb-1","company_id":"acme","to":{"users":["u1"]},"content":{"text":"hi"},)"
      R"("channels":{"mode":"fallback","order":["rcs","sms"],"fallback_after":"1h"}})");
  ASSERT_TRUE(wait_until([&] { return relay.sink_line_count("carrier-a", "rcs") == 1; },
                         std::chrono::seconds(30)))
      << relay.log_text();

  json e;
  ASSERT_TRUE(wait_until(
      [&] {
        e = relayctl_json(relay, "explain fb-1 u1 --json");
        return e.is_object() && e["timers"].size() == 1 && e["messages"].size() == 1 &&
               e["messages"][0]["seen"]["delivered"] == true;
      },
      std::chrono::seconds(30)))
      << e.dump(2) << relay.log_text();
  EXPECT_EQ(e["job"]["mode"], "fallback");
  EXPECT_EQ(e["messages"][0]["channel"], "rcs");
  EXPECT_EQ(e["messages"][0]["step"], 0);
  EXPECT_EQ(e["messages"][0]["seen"]["opened"], false);
  const json& t = e["timers"][0];
  EXPECT_EQ(t["kind"], "fallback");
  EXPECT_EQ(t["previous_channel"], "rcs");
  EXPECT_EQ(t["next_channel"], "sms");
  EXPECT_EQ(t["tried"], json::array({"rcs"}));
  const auto due = t["due"].get<std::string>();
  const auto sent_at = e["messages"][0]["sent_at"].get<std::string>();
  EXPECT_GT(due, sent_at);
  EXPECT_EQ(relay.sink_line_count("carrier-a", "sms"), 0u);  // not before fallback_after

  auto [status, out] = relay.relayctl("explain fb-1 u1");
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("fallback #1 due"), std::string::npos) << out;
  EXPECT_NE(out.find("(in 59m"), std::string::npos) << out;
  EXPECT_NE(out.find("unless the rcs message (first) is opened or clicked by then, send sms"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("fallback: rcs, the first reachable channel of order [rcs, sms]"),
            std::string::npos)
      << out;

  // An exclusive job sends to u2 now and holds it quiet (30m before, 2h after
  // by default); another job for u2 waits for the end of that.
  relay.send_job(
      R"({"job_id":"ex-1","company_id":"acme","to":{"users":["u2"]},"content":{"text":"sale"},)"
      R"("channels":{"order":["sms"]},"priority":"exclusive"})");
  ASSERT_TRUE(wait_until([&] { return relay.sink_line_count("carrier-a", "sms") == 1; },
                         std::chrono::seconds(30)))
      << relay.log_text();
  relay.send_job(
      R"({"job_id":"n-1","company_id":"acme","to":{"users":["u2"]},"content":{"text":"news"},)"
      R"("channels":{"order":["sms"]}})");
  ASSERT_TRUE(wait_until(
      [&] {
        e = relayctl_json(relay, "explain n-1 u2 --json");
        return e.is_object() && e["timers"].size() == 1;
      },
      std::chrono::seconds(30)))
      << e.dump(2) << relay.log_text();
  EXPECT_TRUE(e["messages"].empty());
  EXPECT_EQ(e["timers"][0]["kind"], "send");
  EXPECT_EQ(e["timers"][0]["waiting_for"], "quiet");
  EXPECT_EQ(e["timers"][0]["quiet_job_id"], "ex-1");
  auto [quiet_status, quiet_out] = relay.relayctl("explain n-1 u2");
  EXPECT_EQ(quiet_status, 0) << quiet_out;
  EXPECT_NE(quiet_out.find("waiting for the quiet period of exclusive job ex-1"), std::string::npos)
      << quiet_out;
  auto [user_status, user_out] = relay.relayctl("user u2");
  EXPECT_EQ(user_status, 0) << user_out;
  EXPECT_NE(user_out.find("quiet period (in force)"), std::string::npos) << user_out;
  EXPECT_NE(user_out.find("held by job ex-1"), std::string::npos) << user_out;
  EXPECT_EQ(relay.sink_line_count("carrier-a", "sms"), 1u);
  relay.stop();
}

}  // namespace
}  // namespace relay::test
