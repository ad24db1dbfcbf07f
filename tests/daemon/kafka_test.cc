// relay's Kafka clients against librdkafka's mock cluster, hosted in this test
// process and reached over TCP on 127.0.0.1 (the same protocol a real cluster
// speaks). One cluster for the whole suite: a group's first join takes ~4 s on
// this mock, so only the tests that need a group join one.

#include "daemon/kafka.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace relay {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto kJoinDeadline = 30s;  // a group join (~4-5 s on the mock) plus margin
constexpr auto kDeadline = 10s;      // anything else

struct record {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

record to_record(const rd_kafka_message_t* m) {
  record r;
  r.partition = m->partition;
  r.offset = m->offset;
  r.key = std::string(relay::key(m));
  r.value = std::string(payload(m));
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == 0; ++i) {
      r.headers[name] = std::string(static_cast<const char*>(value), size);
    }
  }
  return r;
}

// Consumes into `seen` until `done(seen)` holds or the deadline passes.
bool consume_until(kafka_consumer& c, std::vector<record>& seen,
                   const std::function<bool(const std::vector<record>&)>& done,
                   steady::duration within) {
  const auto deadline = steady::now() + within;
  message_batch batch;
  while (!done(seen)) {
    if (steady::now() >= deadline) return false;
    c.consume(batch, 100, 200ms);
    for (size_t i = 0; i < batch.size(); ++i) seen.push_back(to_record(batch[i]));
    batch.clear();
  }
  return true;
}

bool has_value(const std::vector<record>& rs, std::string_view v) {
  return std::any_of(rs.begin(), rs.end(), [&](const record& r) { return r.value == v; });
}

// Produces to one partition (relay's produce() partitions by key).
void produce_to(kafka_producer& p, const std::string& topic, int32_t partition,
                std::string_view value) {
  ASSERT_EQ(rd_kafka_producev(
                p.handle(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
}

struct recording_listener : kafka_consumer::rebalance_listener {
  std::vector<int32_t> assigned;
  std::vector<int32_t> revoked;
  std::function<void(std::span<const int32_t>)> revoke_hook;
  void on_assigned(std::span<const int32_t> ps) override {
    assigned.insert(assigned.end(), ps.begin(), ps.end());
  }
  void on_revoked(std::span<const int32_t> ps) override {
    if (revoke_hook) revoke_hook(ps);
    revoked.insert(revoked.end(), ps.begin(), ps.end());
  }
};

// One embedded cluster for every Kafka test of this binary, started by the
// first test that needs it and stopped when the test program ends.
class kafka_environment : public ::testing::Environment {
 public:
  static embedded_kafka* cluster() {
    if (!cluster_) {
      auto k = embedded_kafka::start(kafka_topics{}, 2);
      if (!k.ok()) {
        ADD_FAILURE() << k.err().message;
        return nullptr;
      }
      cluster_ = std::move(*k);
    }
    return cluster_.get();
  }
  void TearDown() override { cluster_.reset(); }

 private:
  static inline std::unique_ptr<embedded_kafka> cluster_;
};
// gtest owns registered environments.
[[maybe_unused]] ::testing::Environment* const kKafkaEnvironment =
    ::testing::AddGlobalTestEnvironment(new kafka_environment);

class KafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = kafka_environment::cluster();
    ASSERT_NE(cluster_, nullptr);
  }

  static kafka_config config_for_tests() {
    kafka_config cfg;
    // A rebalance of a non-empty group waits about a session timeout on the mock.
    cfg.properties = {{"session.timeout.ms", "4000"}, {"heartbeat.interval.ms", "400"}};
    return cfg;
  }
  const std::string& bootstrap() const { return cluster_->bootstrap(); }
  std::unique_ptr<kafka_producer> producer() const {
    auto p = kafka_producer::create(config_for_tests(), bootstrap());
    EXPECT_TRUE(p.ok()) << p.err().message;
    return p.ok() ? std::move(*p) : nullptr;
  }
  void create_topic(const std::string& topic, int partitions) const {
    auto r = cluster_->create_topic(topic, partitions);
    ASSERT_TRUE(r.ok()) << r.err().message;
  }

  embedded_kafka* cluster_ = nullptr;
};

TEST_F(KafkaTest, embedded_cluster_listens_on_loopback_only) {
  const std::string& b = bootstrap();
  ASSERT_EQ(b.rfind("127.0.0.1:", 0), 0u) << b;
  const unsigned port = std::stoul(b.substr(b.find(':') + 1));
  // Every listening socket on that port is bound to 127.0.0.1 (0100007F), none
  // to a wildcard or IPv6 address.
  int listeners = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      char local[64] = {}, remote[64] = {};
      unsigned state = 0;
      if (std::sscanf(line.c_str(), "%*d: %63s %63s %x", local, remote, &state) != 3) continue;
      std::string l(local);
      const unsigned lport = std::stoul(l.substr(l.find(':') + 1), nullptr, 16);
      if (state != 0x0A || lport != port) continue;  // 0x0A: LISTEN
      ++listeners;
      EXPECT_EQ(std::string(table), "/proc/net/tcp") << line;
      EXPECT_EQ(l.substr(0, l.find(':')), "0100007F") << line;
    }
  }
  EXPECT_EQ(listeners, 1);
}

TEST_F(KafkaTest, produced_messages_reach_a_group_consumer_with_headers) {
  const std::string topic = "t.dlq";
  create_topic(topic, 2);
  auto p = producer();
  ASSERT_TRUE(p);
  for (int i = 0; i < 10; ++i) {
    const std::string key = "company-" + std::to_string(i % 3);
    const std::string value = "job-" + std::to_string(i);
    const std::string reason = "invalid_job: line " + std::to_string(i);
    const kafka_header h[] = {{"error", reason}, {"origin", "relay"}};
    auto r = p->produce(topic, key, value, h);
    ASSERT_TRUE(r.ok()) << r.err().message;
  }
  ASSERT_TRUE(p->flush(kDeadline).ok());
  EXPECT_EQ(p->delivered(), 10u);
  EXPECT_EQ(p->failed(), 0u);
  EXPECT_EQ(p->queued(), 0u);

  kafka_config cfg = config_for_tests();
  cfg.group_id = "g-headers";
  recording_listener listener;
  auto c = kafka_consumer::subscribe(cfg, bootstrap(), topic, &listener);
  ASSERT_TRUE(c.ok()) << c.err().message;
  std::vector<record> seen;
  ASSERT_TRUE(consume_until(
      **c, seen, [](auto& s) { return s.size() >= 10; }, kJoinDeadline))
      << "got " << seen.size();
  EXPECT_EQ(seen.size(), 10u);
  std::sort(listener.assigned.begin(), listener.assigned.end());
  EXPECT_EQ(listener.assigned, (std::vector<int32_t>{0, 1}));
  for (const record& r : seen) {
    const int i = std::stoi(r.value.substr(4));
    EXPECT_EQ(r.key, "company-" + std::to_string(i % 3));
    EXPECT_EQ(r.headers.at("error"), "invalid_job: line " + std::to_string(i));
    EXPECT_EQ(r.headers.at("origin"), "relay");
  }
  EXPECT_FALSE((*c)->cluster_id(kDeadline).empty());
  EXPECT_EQ((*c)->partition_count(topic, kDeadline), 2);
}

// Both rebalance protocols: EAGER (range) and COOPERATIVE (incremental).
class KafkaGroupTest : public KafkaTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(KafkaGroupTest, stored_offsets_are_committed_and_the_next_member_resumes_after_them) {
  const std::string strategy = GetParam();
  const std::string topic = "t.commit." + strategy;
  create_topic(topic, 1);
  auto p = producer();
  ASSERT_TRUE(p);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p->produce(topic, "k", "m" + std::to_string(i)).ok());
  ASSERT_TRUE(p->flush(kDeadline).ok());

  kafka_config cfg = config_for_tests();
  cfg.group_id = "g-commit-" + strategy;
  cfg.properties.push_back({"partition.assignment.strategy", strategy});
  {
    recording_listener listener;
    auto c = kafka_consumer::subscribe(cfg, bootstrap(), topic, &listener);
    ASSERT_TRUE(c.ok()) << c.err().message;
    kafka_consumer& first = **c;
    std::vector<record> seen;
    ASSERT_TRUE(consume_until(
        first, seen, [](auto& s) { return s.size() >= 10; }, kJoinDeadline));
    ASSERT_EQ(seen.front().offset, 0);
    auto hw = first.high_watermark(0, kDeadline);
    ASSERT_TRUE(hw.ok()) << hw.err().message;
    EXPECT_EQ(*hw, 10);

    // m0..m3 done and committed explicitly; m4, m5 finish while the partition
    // is being revoked (close), which is where relay flushes.
    first.store_offset(0, 4);
    ASSERT_TRUE(first.commit().ok());
    listener.revoke_hook = [&first](std::span<const int32_t> ps) {
      for (int32_t partition : ps) first.store_offset(partition, 6);
    };
    first.close();
    first.close();  // idempotent
    EXPECT_EQ(listener.revoked, (std::vector<int32_t>{0}));
    first.store_offset(0, 8);  // after close: ignored, no crash
    EXPECT_EQ(first.wake_fd(), -1);
  }

  auto c = kafka_consumer::subscribe(cfg, bootstrap(), topic, nullptr);
  ASSERT_TRUE(c.ok()) << c.err().message;
  std::vector<record> seen;
  ASSERT_TRUE(consume_until(
      **c, seen, [](auto& s) { return has_value(s, "m9"); }, kJoinDeadline));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front().value, "m6")
      << "the second member must start after the last stored offset";
  EXPECT_EQ(seen.size(), 4u);
}

INSTANTIATE_TEST_SUITE_P(Kafka, KafkaGroupTest, ::testing::Values("range", "cooperative-sticky"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST_F(KafkaTest, pause_stops_a_partition_until_resume) {
  const std::string topic = "t.pause";
  create_topic(topic, 2);
  auto p = producer();
  ASSERT_TRUE(p);
  kafka_config cfg = config_for_tests();
  // Fetch cycles of ~10 ms instead of up to 500 ms, so the rounds below each
  // cover a fresh fetch of both partitions.
  cfg.properties.push_back({"fetch.wait.max.ms", "10"});
  cfg.properties.push_back({"fetch.error.backoff.ms", "10"});
  auto c = kafka_consumer::assign_all(cfg, bootstrap(), topic, {}, kDeadline);
  ASSERT_TRUE(c.ok()) << c.err().message;
  kafka_consumer& reader = **c;

  produce_to(*p, topic, 0, "a0");
  produce_to(*p, topic, 1, "b0");
  ASSERT_TRUE(p->flush(kDeadline).ok());
  std::vector<record> seen;
  ASSERT_TRUE(consume_until(
      reader, seen, [](auto& s) { return has_value(s, "a0") && has_value(s, "b0"); }, kDeadline));

  reader.pause(0);
  produce_to(*p, topic, 0, "a1");
  ASSERT_TRUE(p->flush(kDeadline).ok());  // a1 is on the broker from here on
  // Partition 1 keeps flowing: each marker is sent once the previous one came
  // back, so every round is a new fetch from the broker that already holds a1
  // (one broker serves both partitions in the same fetch request).
  for (int round = 1; round <= 5; ++round) {
    const std::string marker = "b" + std::to_string(round);
    produce_to(*p, topic, 1, marker);
    ASSERT_TRUE(p->flush(kDeadline).ok());
    ASSERT_TRUE(consume_until(
        reader, seen, [&](auto& s) { return has_value(s, marker); }, kDeadline));
    ASSERT_FALSE(has_value(seen, "a1"))
        << "a paused partition delivered a message (round " << round << ")";
  }

  reader.resume(0);
  ASSERT_TRUE(consume_until(
      reader, seen, [](auto& s) { return has_value(s, "a1"); }, kDeadline));
  EXPECT_EQ(std::count_if(seen.begin(), seen.end(), [](auto& r) { return r.value == "a1"; }), 1);
}

TEST_F(KafkaTest, assign_all_reads_every_partition_from_the_given_offsets) {
  const std::string topic = "t.assign";
  create_topic(topic, 2);
  auto p = producer();
  ASSERT_TRUE(p);
  for (int i = 0; i < 5; ++i) {
    produce_to(*p, topic, 0, "p0-" + std::to_string(i));
    produce_to(*p, topic, 1, "p1-" + std::to_string(i));
  }
  ASSERT_TRUE(p->flush(kDeadline).ok());

  // Partition 0 resumes at offset 3; partition 1 has no stored offset.
  const std::pair<int32_t, int64_t> start[] = {{0, 3}};
  auto c = kafka_consumer::assign_all(config_for_tests(), bootstrap(), topic, start, kDeadline);
  ASSERT_TRUE(c.ok()) << c.err().message;
  std::vector<record> seen;
  ASSERT_TRUE(consume_until(
      **c, seen, [](auto& s) { return s.size() >= 7; }, kDeadline));
  std::vector<std::string> values;
  for (const auto& r : seen) values.push_back(r.value);
  std::sort(values.begin(), values.end());
  EXPECT_EQ(values,
            (std::vector<std::string>{"p0-3", "p0-4", "p1-0", "p1-1", "p1-2", "p1-3", "p1-4"}));
  EXPECT_EQ((*c)->partition_count(topic, kDeadline), 2);
  auto hw = (*c)->high_watermark(1, kDeadline);
  ASSERT_TRUE(hw.ok()) << hw.err().message;
  EXPECT_EQ(*hw, 5);
  EXPECT_TRUE((*c)->commit().ok());  // a reader never commits; not an error
}

TEST_F(KafkaTest, consume_returns_what_is_there_without_waiting_for_a_full_batch) {
  const std::string topic = "t.quick";
  create_topic(topic, 1);
  auto p = producer();
  ASSERT_TRUE(p);
  for (int i = 0; i < 3; ++i) produce_to(*p, topic, 0, "q" + std::to_string(i));
  ASSERT_TRUE(p->flush(kDeadline).ok());
  auto c = kafka_consumer::assign_all(config_for_tests(), bootstrap(), topic, {}, kDeadline);
  ASSERT_TRUE(c.ok()) << c.err().message;

  // librdkafka's batch call alone would hold each call for the full 8 s
  // while fewer than 1000 messages are there.
  const auto started = steady::now();
  message_batch batch;
  while (batch.size() < 3 && steady::now() - started < 8s) (*c)->consume(batch, 1000, 8s);
  EXPECT_EQ(batch.size(), 3u);
  EXPECT_LT(steady::now() - started, 4s);
}

TEST_F(KafkaTest, assign_all_fails_naming_a_topic_that_never_appears) {
  auto c = kafka_consumer::assign_all(config_for_tests(), bootstrap(), "t.never", {}, 300ms);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.err().code, errc::not_found);
  EXPECT_NE(c.err().message.find("\"t.never\""), std::string::npos) << c.err().message;
}

TEST_F(KafkaTest, wake_fd_becomes_readable_when_a_message_arrives) {
  const std::string topic = "t.wake";
  create_topic(topic, 1);
  auto c = kafka_consumer::assign_all(config_for_tests(), bootstrap(), topic, {}, kDeadline);
  ASSERT_TRUE(c.ok()) << c.err().message;
  kafka_consumer& reader = **c;
  ASSERT_GE(reader.wake_fd(), 0);
  message_batch batch;
  reader.clear_wake();
  EXPECT_EQ(reader.consume(batch, 10, 0ms), 0u);

  auto p = producer();
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->produce(topic, "k", "wake-up").ok());
  ASSERT_TRUE(p->flush(kDeadline).ok());

  // The core loop's pattern: wait on the descriptor, drain it, take what is
  // queued without blocking.
  const auto deadline = steady::now() + kDeadline;
  int wakeups = 0;
  while (batch.size() == 0 && steady::now() < deadline) {
    pollfd pfd{reader.wake_fd(), POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) != 1) break;
    ASSERT_TRUE(pfd.revents & POLLIN);
    ++wakeups;
    reader.clear_wake();
    reader.consume(batch, 10, 0ms);
  }
  EXPECT_GE(wakeups, 1);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(payload(batch[0]), "wake-up");
  // Drained: nothing more to wake for.
  pollfd pfd{reader.wake_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 0), 0);
}

TEST_F(KafkaTest, producer_with_an_invalid_property_fails_naming_it) {
  kafka_config cfg;
  cfg.properties = {{"no.such.property", "1"}};
  auto p = kafka_producer::create(cfg, bootstrap());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.err().code, errc::invalid_argument);
  EXPECT_NE(p.err().message.find("kafka.properties.no.such.property"), std::string::npos)
      << p.err().message;
  EXPECT_NE(p.err().message.find("No such configuration property"), std::string::npos)
      << p.err().message;

  cfg.properties = {{"linger.ms", "soon"}};
  p = kafka_producer::create(cfg, bootstrap());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("kafka.properties.linger.ms"), std::string::npos)
      << p.err().message;

  cfg.properties = {{"enable.auto.offset.store", "true"}};
  auto c = kafka_consumer::subscribe(cfg, bootstrap(), "t.any", nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.err().message.find("kafka.properties.enable.auto.offset.store"), std::string::npos)
      << c.err().message;
}

TEST_F(KafkaTest, producing_to_a_missing_topic_fails_naming_it) {
  auto p = producer();
  ASSERT_TRUE(p);
  auto r = p->produce("t.missing", "k", "v");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::not_found);
  EXPECT_NE(r.err().message.find("\"t.missing\""), std::string::npos) << r.err().message;
}

// ---------------------------------------------------------------- bootstrap file

class KafkaBootstrap : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "relay-kafka-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    cfg_.data_dir = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(cfg_.data_dir); }
  config cfg_;
};

TEST_F(KafkaBootstrap, embedded_clients_read_the_address_relayd_wrote) {
  ASSERT_TRUE(write_bootstrap_file(cfg_, "127.0.0.1:39092").ok());
  auto b = resolve_bootstrap(cfg_);
  ASSERT_TRUE(b.ok()) << b.err().message;
  EXPECT_EQ(*b, "127.0.0.1:39092");

  std::ofstream(bootstrap_file(cfg_)) << "  127.0.0.1:40000 \r\nsecond line ignored\n";
  b = resolve_bootstrap(cfg_);
  ASSERT_TRUE(b.ok()) << b.err().message;
  EXPECT_EQ(*b, "127.0.0.1:40000");
}

TEST_F(KafkaBootstrap, a_missing_address_file_is_a_clear_error) {
  auto b = resolve_bootstrap(cfg_);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code, errc::not_found);
  EXPECT_EQ(b.err().message, bootstrap_file(cfg_) +
                                 ": no embedded Kafka address; is relayd running with "
                                 "kafka.brokers: embedded?");
}

TEST_F(KafkaBootstrap, a_broker_list_is_used_as_given) {
  cfg_.kafka.brokers = "k1:9092,k2:9092";
  auto b = resolve_bootstrap(cfg_);
  ASSERT_TRUE(b.ok()) << b.err().message;
  EXPECT_EQ(*b, "k1:9092,k2:9092");
  EXPECT_EQ(bootstrap_file(cfg_), cfg_.data_dir + "/kafka.bootstrap");
}

}  // namespace
}  // namespace relay
