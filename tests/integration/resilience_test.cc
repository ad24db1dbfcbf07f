// What must hold when things go wrong: crashes, stops, slow and failing
// carriers, bad configuration.

#include <gtest/gtest.h>

#include <set>

#include "tests/integration/relay_harness.h"

namespace relay::test {
namespace {

using nlohmann::json;

bool exited_cleanly(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// Writes `users` users on carrier-a, all registered with acme/gold, and loads
// them with `relayctl registry import --offline` (relayd not running).
void import_users(relay_instance& relay, int users) {
  const std::string path = relay.path("registry.jsonl");
  {
    std::ofstream out(path);
    for (int i = 0; i < users; ++i) {
      const std::string u = "k" + std::to_string(i);
      out << R"({"op":"upsert_user","user_id":")" << u << R"(","profile":{"msisdn":"+81900)" << 1000000 + i
          << R"(","email":")" << u << R"(@example.jp"},"carriers":[{"carrier_id":"carrier-a","primary":true}]})"
          << "\n"
          << R"({"op":"register","user_id":")" << u << R"(","company_id":"acme","service_id":"gold"})" << "\n";
    }
  }
  auto [status, out] = relay.relayctl("registry import " + path + " --offline");
  ASSERT_EQ(status, 0) << out;
}

TEST(Resilience, sigkill_in_the_middle_of_a_broadcast_then_restart_sends_every_message_exactly_once) {
  constexpr int kUsers = 200000;
  relay_instance::options opt;
  opt.sink_settings = "fsync: true";  // a carrier that takes its time, so the kill lands mid-way
  opt.extra_yaml = "limits: {connector_queue: 4000, fanout_chunk: 1000}\n";
  relay_instance relay("sigkill", opt);
  import_users(relay, kUsers);
  relay.start();
  relay.send_job(R"({"job_id":"big","company_id":"acme","to":{"all":true},"content":{"text":"Everyone"},"channels":{"order":["sms"]}})");

  ASSERT_TRUE(wait_until([&] { return relay.sink_line_count("carrier-a", "sms") >= 20000; },
                         std::chrono::seconds(120)))
      << relay.log_text();
  relay.stop(SIGKILL);
  const size_t at_kill = relay.sink_line_count("carrier-a", "sms");
  ASSERT_LT(at_kill, size_t{kUsers}) << "the broadcast finished before the kill; the test proves nothing";

  relay.close_secondary();
  relay.start();
  ASSERT_TRUE(wait_until([&] { return relay.job_done("big"); }, std::chrono::seconds(180))) << relay.log_text();

  auto lines = relay.sink("carrier-a", "sms");
  std::set<std::string> ids, users;
  for (const auto& l : lines) {
    ids.insert(l["message_id"].get<std::string>());
    users.insert(l["user_id"].get<std::string>());
  }
  EXPECT_EQ(lines.size(), size_t{kUsers}) << "killed at " << at_kill << " lines";
  EXPECT_EQ(ids.size(), size_t{kUsers});
  EXPECT_EQ(users.size(), size_t{kUsers});
  EXPECT_EQ(relay.job("big")->progress.sent, uint64_t{kUsers});
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Resilience, sigterm_drains_in_flight_sends_and_commits_offsets) {
  relay_instance::options opt;
  opt.sink_settings = "latency_ms: 500";
  relay_instance relay("sigterm", opt);
  import_users(relay, 50);
  relay.start();
  relay.send_job(R"({"job_id":"drain","company_id":"acme","to":{"all":true},"content":{"text":"x"},"channels":{"order":["sms"]}})");
  ASSERT_TRUE(wait_until([&] { return relay.job("drain").has_value(); }, std::chrono::seconds(30)));

  const int status = relay.stop(SIGTERM);
  EXPECT_TRUE(exited_cleanly(status)) << relay.log_text();
  EXPECT_NE(relay.log_text().find("draining"), std::string::npos);
  EXPECT_EQ(relay.sink_line_count("carrier-a", "sms"), 50u) << "in-flight sends finished before exit";
  EXPECT_TRUE(relay.job_done("drain")) << relay.log_text();

  // The job's offset was committed: a restart does not even see it again.
  relay.close_secondary();
  relay.start();
  relay.send_job(R"({"job_id":"after","company_id":"acme","to":{"users":["k1"]},"content":{"text":"y"},"channels":{"order":["sms"]}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("after"); }, std::chrono::seconds(30)));
  EXPECT_EQ(relay.counter_total(counter_kind::duplicate), 0u);
  EXPECT_EQ(relay.sink_line_count("carrier-a", "sms"), 51u);
  EXPECT_TRUE(exited_cleanly(relay.stop(SIGTERM)));
}

TEST(Resilience, a_full_carrier_queue_pauses_the_kafka_partition_instead_of_growing_memory) {
  relay_instance::options opt;
  opt.partitions = 1;
  opt.sink_settings = "latency_ms: 50";
  opt.extra_yaml = "limits: {connector_queue: 4, fanout_chunk: 4, pending_jobs_per_partition: 5}\n";
  relay_instance relay("pause", opt);
  import_users(relay, 100);
  relay.start();
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) {
    relay.produce(relay.topics().jobs, "acme",
                  json{{"job_id", "p" + std::to_string(i)}, {"company_id", "acme"},
                       {"to", {{"users", {"k" + std::to_string(i)}}}}, {"content", {{"text", "x"}}},
                       {"channels", {{"order", {"sms"}}}}}
                      .dump());
  }
  relay.flush();

  // Accepted-but-unsent jobs stay bounded while the carrier is slow.
  uint64_t worst_backlog = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        const uint64_t accepted = relay.counter_total(counter_kind::accepted);
        const uint64_t sent = relay.sink_line_count("carrier-a", "sms");
        worst_backlog = std::max(worst_backlog, accepted > sent ? accepted - sent : 0);
        return sent == kJobs;
      },
      std::chrono::seconds(60)))
      << relay.log_text();
  EXPECT_LE(worst_backlog, 5u + 4u + 5u) << "pending limit + in-flight window + one consumed batch";
  EXPECT_NE(relay.log_text().find("partition 0 paused"), std::string::npos);
  EXPECT_NE(relay.log_text().find("partition 0 resumed"), std::string::npos);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Resilience, transient_carrier_failures_are_retried_until_accepted) {
  relay_instance::options opt;
  opt.sink_settings = "transient_failure_rate: 0.5";
  opt.extra_yaml = "retry: {initial_backoff: 10ms, max_backoff: 100ms, max_attempts: 20}\n";
  relay_instance relay("retry", opt);
  import_users(relay, 40);
  relay.start();
  relay.send_job(R"({"job_id":"flaky","company_id":"acme","to":{"all":true},"content":{"text":"x"},"channels":{"order":["sms"]}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("flaky"); }, std::chrono::seconds(30))) << relay.log_text();
  auto lines = relay.sink("carrier-a", "sms");
  EXPECT_EQ(lines.size(), 40u);
  int retried = 0;
  for (const auto& l : lines) retried += l["attempt"].get<int>() > 1;
  EXPECT_GT(retried, 0);
  EXPECT_EQ(relay.job("flaky")->progress.sent, 40u);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Resilience, permanent_carrier_failures_emit_failed_events) {
  relay_instance::options opt;
  opt.sink_settings = "permanent_failure_rate: 1.0";
  relay_instance relay("permanent", opt);
  import_users(relay, 5);
  relay.start();
  relay.send_job(R"({"job_id":"doomed","company_id":"acme","to":{"all":true},"content":{"text":"x"},"channels":{"order":["sms"]}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("doomed"); }, std::chrono::seconds(30)));
  EXPECT_EQ(relay.job("doomed")->progress.failed, 5u);
  EXPECT_EQ(relay.sink_line_count("carrier-a", "sms"), 0u);
  size_t failed = 0;
  ASSERT_TRUE(wait_until([&] {
    failed = 0;
    for (const auto& e : relay.events()) failed += e["type"] == "failed";
    return failed == 5;
  }));
  EXPECT_EQ(relay.counter_total(counter_kind::failed), 5u);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Resilience, a_bad_config_stops_start_up_naming_file_line_and_key) {
  temp_dir dir;
  const std::string path = dir / "bad.yaml";
  std::ofstream(path) << "data_dir: /tmp/x\nkafka:\n  brokers: [1, 2]\ncarriers: []\n";
  auto [status, out] = run_command(std::string(RELAY_BINARY_DIR) + "/relayd --check-config " + path);
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("bad.yaml:3"), std::string::npos) << out;
  EXPECT_NE(out.find("kafka.brokers"), std::string::npos) << out;
}

TEST(Resilience, a_missing_plugin_stops_start_up_naming_the_carrier) {
  relay_instance relay("noplugin", {.extra_yaml = ""});
  {
    std::ofstream out(relay.config_path(), std::ios::app);
    out << "  - id: carrier-x\n    channels:\n      sms: {plugin: no_such_plugin}\n";
  }
  auto [rc, text] = run_command(std::string(RELAY_BINARY_DIR) + "/relayd --config " + relay.config_path());
  EXPECT_EQ(rc, 1);
  EXPECT_NE(text.find("carrier-x"), std::string::npos) << text;
  EXPECT_NE(text.find("no_such_plugin"), std::string::npos) << text;
}

}  // namespace
}  // namespace relay::test
