// The spine end to end: relayd as a child process, Kafka over TCP (the mock
// cluster hosted here), RocksDB on disk, file_sink plug-ins loaded from the
// build's plugins directory.

#include <gtest/gtest.h>

#include <set>

#include "tests/integration/relay_harness.h"

namespace relay::test {
namespace {

using nlohmann::json;

void load_small_registry(relay_instance& relay) {
  relay.send_registry({
      upsert_user("u1", "tokyo", "f", 1996, {{"carrier-a", true}}),
      upsert_user("u2", "osaka", "m", 1980, {{"carrier-b", true}, {"carrier-c", false}}),
      upsert_user("u3", "tokyo", "m", 2001, {{"carrier-c", true}}),
      upsert_user("u4", "nagoya", "f", 1990, {{"carrier-a", true}}),
      register_user("u1", "acme", "gold"),
      register_user("u2", "acme", "gold"),
      register_user("u3", "acme", "silver"),
      register_user("u4", "globex", "news"),
  });
}

TEST(Spine, listed_users_reach_their_primary_carrier_and_unregistered_are_rejected) {
  relay_instance relay("listed");
  load_small_registry(relay);
  relay.start();
  relay.send_job(R"({"job_id":"j-listed","company_id":"acme","service_id":"gold",
                     "to":{"users":["u1","u2","u4","nobody"]},
                     "content":{"text":"Hello"},"channels":{"order":["sms","email"]}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("j-listed"); }, std::chrono::seconds(30)))
      << relay.log_text();

  auto a = relay.sink("carrier-a", "sms");
  auto b = relay.sink("carrier-b", "sms");
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(relay.sink_line_count("carrier-c", "sms"), 0u) << "u2 is on carrier-c too, but carrier-b is primary";
  EXPECT_EQ(a[0]["user_id"], "u1");
  EXPECT_EQ(a[0]["job_id"], "j-listed");
  EXPECT_EQ(a[0]["company_id"], "acme");
  EXPECT_EQ(a[0]["carrier_id"], "carrier-a");
  EXPECT_EQ(a[0]["channel"], "sms");
  EXPECT_EQ(a[0]["content"]["text"], "Hello");
  EXPECT_EQ(a[0]["message_id"].get<std::string>().size(), 32u);
  EXPECT_TRUE(a[0]["address"].get<std::string>().starts_with("+8190"));
  EXPECT_EQ(b[0]["user_id"], "u2");

  auto job = relay.job("j-listed");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->progress.sent, 2u);
  EXPECT_EQ(job->progress.not_registered, 2u);  // u4 is globex's, "nobody" is nobody's

  ASSERT_TRUE(wait_until([&] { return of_type(relay.events(), "sent").size() == 2; }));
  auto events = relay.events();
  EXPECT_EQ(of_type(events, "accepted").size(), 1u);
  auto rejected = of_type(events, "rejected");
  std::set<std::string> rejected_users;
  for (const auto& e : rejected) {
    EXPECT_EQ(e["reason"], "not_registered");
    rejected_users.insert(e["user_id"]);
  }
  EXPECT_EQ(rejected_users, (std::set<std::string>{"u4", "nobody"}));
  for (const auto& e : events) {
    EXPECT_FALSE(e.contains("address")) << "events never carry personal data";
    EXPECT_EQ(e.dump().find("+8190"), std::string::npos);
  }
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Spine, broadcast_and_attribute_filter_reach_exactly_the_registered_matching_users) {
  relay_instance relay("broadcast");
  std::vector<std::string> records;
  const char* regions[] = {"tokyo", "osaka", "nagoya"};
  for (int i = 0; i < 300; ++i) {
    const std::string u = "b" + std::to_string(i);
    records.push_back(upsert_user(u, regions[i % 3], i % 2 ? "f" : "m", 1960 + i % 40,
                                  {{i % 5 == 0 ? "carrier-b" : "carrier-a", true}}));
    if (i % 4 != 3) records.push_back(register_user(u, "acme", i % 2 ? "gold" : "silver"));
  }
  records.push_back(json{{"op", "unregister"}, {"user_id", "b0"}, {"company_id", "acme"}, {"service_id", "silver"}}.dump());
  records.push_back(json{{"op", "delete_user"}, {"user_id", "b1"}}.dump());
  relay.send_registry(records);
  relay.start();

  relay.send_job(R"({"job_id":"all","company_id":"acme","to":{"all":true},"content":{"text":"To all"},"channels":{"order":["sms"]}})");
  relay.send_job(R"({"job_id":"gold","company_id":"acme","service_id":"gold","to":{"all":true},"content":{"text":"Gold"},"channels":{"order":["email"]}})");
  relay.send_job(R"({"job_id":"where","company_id":"acme","to":{"where":{"region":["tokyo","osaka"],"gender":"f","birth_year":{"gte":1970,"lt":1990}}},"content":{"text":"Filtered"},"channels":{"order":["email"]}})");
  for (const char* id : {"all", "gold", "where"}) {
    ASSERT_TRUE(wait_until([&] { return relay.job_done(id); }, std::chrono::seconds(30))) << id << relay.log_text();
  }

  std::set<std::string> expected_all, expected_gold, expected_where;
  for (int i = 2; i < 300; ++i) {  // b0 unregistered, b1 deleted
    if (i % 4 == 3) continue;
    const std::string u = "b" + std::to_string(i);
    expected_all.insert(u);
    if (i % 2) expected_gold.insert(u);
    const int year = 1960 + i % 40;
    if (i % 3 != 2 && i % 2 && year >= 1970 && year < 1990) expected_where.insert(u);
  }
  auto users_of = [&](const std::string& job_id, const std::string& channel) {
    std::set<std::string> users;
    size_t lines = 0;
    for (const char* c : {"carrier-a", "carrier-b"}) {
      for (const auto& l : relay.sink(c, channel)) {
        if (l["job_id"] != job_id) continue;
        ++lines;
        users.insert(l["user_id"].get<std::string>());
      }
    }
    EXPECT_EQ(lines, users.size()) << job_id << ": a user got the message twice";
    return users;
  };
  EXPECT_EQ(users_of("all", "sms"), expected_all);
  EXPECT_EQ(users_of("gold", "email"), expected_gold);
  EXPECT_EQ(users_of("where", "email"), expected_where);
  EXPECT_FALSE(expected_where.empty());
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Spine, user_on_several_carriers_gets_it_through_all_and_counts_once) {
  relay_instance::options opt;
  opt.carriers_multi = "all";
  relay_instance relay("multi", opt);
  load_small_registry(relay);
  relay.start();
  relay.send_job(R"({"job_id":"j-multi","company_id":"acme","to":{"users":["u2"]},"content":{"text":"Both"},"channels":{"order":["sms"]}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("j-multi"); }, std::chrono::seconds(30)));
  auto b = relay.sink("carrier-b", "sms");
  auto c = relay.sink("carrier-c", "sms");
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(b[0]["message_id"], c[0]["message_id"]) << "one message, two carriers";
  EXPECT_EQ(relay.job("j-multi")->progress.sent, 1u);
  ASSERT_TRUE(wait_until([&] { return !of_type(relay.events(), "sent").empty(); }));
  EXPECT_EQ(of_type(relay.events(), "sent").size(), 1u);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Spine, the_same_job_produced_twice_is_sent_once) {
  relay_instance relay("twice");
  load_small_registry(relay);
  relay.start();
  const std::string job = R"({"job_id":"j-twice","company_id":"acme","to":{"users":["u1","u2"]},"content":{"text":"Once"}})";
  relay.send_job(job);
  relay.send_job(job);
  ASSERT_TRUE(wait_until([&] { return relay.job_done("j-twice"); }, std::chrono::seconds(30)));
  // The second copy is consumed after the first: wait for it to be counted.
  ASSERT_TRUE(wait_until([&] { return relay.counter_total(counter_kind::duplicate) == 1; },
                         std::chrono::seconds(30)));
  size_t lines = 0;
  for (const char* c : {"carrier-a", "carrier-b", "carrier-c"}) {
    for (const char* ch : {"sms", "email"}) lines += relay.sink_line_count(c, ch);
  }
  EXPECT_EQ(lines, 2u);
  EXPECT_EQ(of_type(relay.events(), "accepted").size(), 1u);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Spine, malformed_jobs_go_to_the_dead_letter_topic_and_the_next_job_is_sent) {
  relay_instance relay("dlq", {.partitions = 1});
  load_small_registry(relay);
  relay.start();
  relay.send_job("{not json");
  relay.send_job(R"({"job_id":"j-bad-channel","company_id":"acme","to":{"users":["u1"]},"content":{"text":"x"},"channels":{"order":["fax"]}})");
  relay.send_job(R"({"job_id":"j-no-company","to":{"users":["u1"]},"content":{"text":"x"}})");
  relay.send_job(R"({"job_id":"j-big","company_id":"acme","to":{"users":["u1"]},"content":{"text":")" +
                 std::string(70000, 'x') + R"("}})");
  relay.send_job(R"({"job_id":"j-good","company_id":"acme","to":{"users":["u1"]},"content":{"text":"fine"}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("j-good"); }, std::chrono::seconds(30)));

  std::vector<kafka_record> dlq;
  ASSERT_TRUE(wait_until([&] { return (dlq = relay.read_topic(relay.topics().dlq)).size() >= 4; }));
  ASSERT_EQ(dlq.size(), 4u);
  EXPECT_EQ(dlq[0].value, "{not json") << "the original bytes";
  EXPECT_NE(dlq[0].headers["error"].find("invalid JSON"), std::string::npos);
  EXPECT_NE(dlq[1].headers["error"].find("channels.order[0]"), std::string::npos) << dlq[1].headers["error"];
  EXPECT_NE(dlq[2].headers["error"].find("company_id"), std::string::npos) << dlq[2].headers["error"];
  EXPECT_NE(dlq[3].headers["error"].find("limits.max_content_bytes"), std::string::npos) << dlq[3].headers["error"];
  for (const auto& r : dlq) EXPECT_EQ(r.headers.at("error").find('\n'), std::string::npos) << "one line";

  std::vector<json> rejected;
  ASSERT_TRUE(wait_until([&] { return (rejected = of_type(relay.events(), "rejected")).size() >= 4; }));
  ASSERT_EQ(rejected.size(), 4u);
  for (const auto& e : rejected) EXPECT_EQ(e["reason"], "invalid_job");
  EXPECT_EQ(rejected[1]["job_id"], "j-bad-channel");
  EXPECT_EQ(relay.sink("carrier-a", "sms").size(), 1u);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Spine, a_malformed_registry_record_is_skipped_whole_and_the_rest_applies) {
  relay_instance relay("badreg");
  relay.send_registry({
      upsert_user("r1", "tokyo", "f", 1990, {{"carrier-a", true}}),
      R"({"op":"upsert_user","user_id":"r2","profile":{"msisdn":"+819000000002"},"carriers":[{"primary":true}]})",
      register_user("r1", "acme", "gold"),
      register_user("r2", "acme", "gold"),
  });
  relay.start();
  relay.send_job(R"({"job_id":"j-reg","company_id":"acme","to":{"users":["r1","r2"]},"content":{"text":"hi"}})");
  ASSERT_TRUE(wait_until([&] { return relay.job_done("j-reg"); }, std::chrono::seconds(30)));
  // r2's upsert was refused whole (no carrier id), so r2 is registered but has no carrier.
  EXPECT_EQ(relay.sink("carrier-a", "sms").size(), 1u);
  EXPECT_EQ(relay.job("j-reg")->progress.no_route, 1u);
  EXPECT_NE(relay.log_text().find("carriers[0].carrier_id"), std::string::npos);
  EXPECT_EQ(relay.log_text().find("+819000000002"), std::string::npos) << "no personal data in logs";
  EXPECT_EQ(relay.stop(), 0);
}

}  // namespace
}  // namespace relay::test
