#include "daemon/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace relay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

// Appended after the text under test so a config is otherwise valid and the
// error lines of the text under test stay where the test says.
constexpr const char* kOneCarrier =
    "\ncarriers:\n"
    "  - id: carrier-a\n"
    "    channels:\n"
    "      sms: {plugin: file_sink, dir: out}\n";

std::string source_file(const char* relative) {
  return std::string(RELAY_SOURCE_DIR) + "/" + relative;
}

config parse_ok(const std::string& text) {
  result<config> r = parse_config(text, "relay.yaml");
  EXPECT_TRUE(r.ok()) << r.err().message;
  return r.ok() ? std::move(r).value() : config{};
}

// The one-line error for `text` (read as "relay.yaml"), or "" if it loads.
std::string error_of(const std::string& text) {
  result<config> r = parse_config(text, "relay.yaml");
  if (r.ok()) return "";
  EXPECT_EQ(r.err().message.find('\n'), std::string::npos)
      << "error must be one line: " << r.err().message;
  return r.err().message;
}

const connector_config& connector(const config& c, size_t carrier, channel ch) {
  static const connector_config kNone;
  if (carrier >= c.carriers.size()) {
    ADD_FAILURE() << "no carrier " << carrier;
    return kNone;
  }
  const auto& slot = c.carriers[carrier].channels[static_cast<int>(ch)];
  if (!slot) {
    ADD_FAILURE() << "carrier " << carrier << " has no " << to_string(ch);
    return kNone;
  }
  return *slot;
}

std::string setting(const connector_config& c, const std::string& key) {
  for (const auto& [k, v] : c.settings) {
    if (k == key) return v;
  }
  return "<absent>";
}

class temp_file {
 public:
  explicit temp_file(const std::string& text) {
    path_ = (std::filesystem::temp_directory_path() /
             ("relay_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++) +
              ".yaml"))
                .string();
    std::ofstream(path_) << text;
  }
  ~temp_file() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

// ---- the shipped files -----------------------------------------------------

TEST(ConfigExamples, demo_yaml_loads_with_three_file_sink_carriers) {
  result<config> r = load_config(source_file("config/demo.yaml"));
  ASSERT_TRUE(r.ok()) << r.err().message;
  const config& c = *r;
  EXPECT_EQ(c.source_path, source_file("config/demo.yaml"));
  EXPECT_EQ(c.data_dir, "var/demo");
  EXPECT_TRUE(c.kafka.embedded());
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.plugins_dir, "");
  ASSERT_EQ(c.carriers.size(), 3u);
  EXPECT_EQ(c.carriers[0].id, "carrier-a");
  EXPECT_EQ(c.carriers[1].id, "carrier-b");
  EXPECT_EQ(c.carriers[2].id, "carrier-c");
  for (channel ch : {channel::rcs, channel::sms, channel::email}) {
    EXPECT_EQ(connector(c, 0, ch).plugin, "file_sink");
    EXPECT_EQ(setting(connector(c, 0, ch), "dir"), "var/demo/outbox/carrier-a");
  }
  EXPECT_FALSE(c.carriers[1].channels[static_cast<int>(channel::rcs)]);
  EXPECT_EQ(setting(connector(c, 1, channel::sms), "dir"), "var/demo/outbox/carrier-b");
  EXPECT_EQ(setting(connector(c, 1, channel::email), "opened_rate"), "0.3");
  EXPECT_FALSE(c.carriers[2].channels[static_cast<int>(channel::rcs)]);
  EXPECT_FALSE(c.carriers[2].channels[static_cast<int>(channel::email)]);
  EXPECT_EQ(setting(connector(c, 2, channel::sms), "dir"), "var/demo/outbox/carrier-c");
  EXPECT_EQ(setting(connector(c, 0, channel::rcs), "delivered_rate"), "0.9");
}

TEST(ConfigExamples, production_example_loads_with_real_plugins) {
  result<config> r = load_config(source_file("config/relay.example.yaml"));
  ASSERT_TRUE(r.ok()) << r.err().message;
  const config& c = *r;
  EXPECT_FALSE(c.kafka.embedded());
  EXPECT_EQ(c.kafka.brokers, "kafka-1.internal:9092,kafka-2.internal:9092,kafka-3.internal:9092");
  EXPECT_THAT(c.kafka.properties[0], Pair("security.protocol", "SASL_SSL"));
  EXPECT_EQ(c.plugins_dir, "/usr/lib/relay/plugins");
  ASSERT_EQ(c.carriers.size(), 3u);
  EXPECT_EQ(connector(c, 0, channel::rcs).plugin, "rcs_rbm");
  EXPECT_EQ(connector(c, 0, channel::sms).plugin, "sms_smpp");
  EXPECT_EQ(setting(connector(c, 0, channel::sms), "port"), "2775");
  EXPECT_EQ(connector(c, 0, channel::email).plugin, "email_smtp");
  EXPECT_EQ(setting(connector(c, 0, channel::email), "tls.mode"), "starttls");
  EXPECT_EQ(c.retry.initial_backoff, std::chrono::milliseconds(200));
  EXPECT_EQ(c.drain_timeout, std::chrono::seconds(10));
}

// ---- defaults --------------------------------------------------------------

TEST(ConfigDefaults, absent_keys_take_the_documented_defaults) {
  const config c = parse_ok(std::string("# only what is required") + kOneCarrier);
  const config d;
  EXPECT_EQ(c.source_path, "relay.yaml");
  EXPECT_EQ(c.data_dir, "var");
  EXPECT_EQ(c.kafka.brokers, "embedded");
  EXPECT_TRUE(c.kafka.embedded());
  EXPECT_EQ(c.kafka.group_id, "relay");
  EXPECT_EQ(c.kafka.topics.jobs, "relay.jobs");
  EXPECT_EQ(c.kafka.topics.registry, "relay.registry");
  EXPECT_EQ(c.kafka.topics.events, "relay.events");
  EXPECT_EQ(c.kafka.topics.dlq, "relay.jobs.dlq");
  EXPECT_EQ(c.kafka.topics.bids, "relay.bids");
  EXPECT_TRUE(c.kafka.properties.empty());
  EXPECT_EQ(c.kafka.embedded_partitions, 4);
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.plugins_dir, "");
  EXPECT_EQ(c.carriers_multi, multi_carrier::primary);
  EXPECT_THAT(c.default_order, ElementsAre(channel::rcs, channel::sms, channel::email));
  EXPECT_EQ(c.retry.initial_backoff, d.retry.initial_backoff);
  EXPECT_EQ(c.retry.max_backoff, d.retry.max_backoff);
  EXPECT_EQ(c.retry.max_attempts, 8);
  EXPECT_DOUBLE_EQ(c.retry.jitter, 0.2);
  EXPECT_EQ(c.limits.job.max_job_bytes, d.limits.job.max_job_bytes);
  EXPECT_EQ(c.limits.job.max_content_bytes, d.limits.job.max_content_bytes);
  EXPECT_EQ(c.limits.job.max_users, d.limits.job.max_users);
  EXPECT_EQ(c.limits.connector_queue, 20000u);
  EXPECT_EQ(c.limits.pending_jobs_per_partition, 2000u);
  EXPECT_EQ(c.limits.fanout_chunk, 1024u);
  EXPECT_EQ(c.drain_timeout, std::chrono::seconds(10));
  EXPECT_FALSE(c.sync_writes);
  EXPECT_EQ(c.log_level, "info");
}

TEST(ConfigDefaults, sections_with_every_key_commented_out_take_defaults) {
  const config c = parse_ok(
      "kafka:\n"
      "  # brokers: k1:9092\n"
      "http:\n"
      "retry:\n"
      "limits:\n"
      "shutdown:\n"
      "storage:\n"
      "log:\n" +
      std::string(kOneCarrier));
  EXPECT_TRUE(c.kafka.embedded());
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.retry.max_attempts, 8);
  EXPECT_EQ(c.log_level, "info");
}

TEST(ConfigDefaults, every_key_is_read) {
  const config c = parse_ok(
      "data_dir: /var/lib/relay\n"
      "kafka:\n"
      "  brokers: k1:9092,k2:9092\n"
      "  group_id: relay-eu\n"
      "  topics: {jobs: j, registry: r, events: e, dlq: d, bids: b}\n"
      "  properties: {security.protocol: SASL_SSL, enable.idempotence: true, linger.ms: 5}\n"
      "  embedded_partitions: 8\n"
      "http: {listen: \"[::1]:9000\"}\n"
      "plugins_dir: /opt/relay/plugins\n"
      "carriers_multi: all\n"
      "default_order: [email, sms]\n"
      "retry: {initial_backoff: 1s, max_backoff: 2m, max_attempts: 3, jitter: 0}\n"
      "limits: {max_job_bytes: 2000000, max_content_bytes: 1000, max_users_per_job: 50,\n"
      "         connector_queue: 10, pending_jobs_per_partition: 20, fanout_chunk: 30}\n"
      "shutdown: {drain_timeout: 45s}\n"
      "storage: {sync: true}\n"
      "log: {level: debug}\n" +
      std::string(kOneCarrier));
  EXPECT_EQ(c.data_dir, "/var/lib/relay");
  EXPECT_EQ(c.kafka.brokers, "k1:9092,k2:9092");
  EXPECT_FALSE(c.kafka.embedded());
  EXPECT_EQ(c.kafka.group_id, "relay-eu");
  EXPECT_EQ(c.kafka.topics.jobs, "j");
  EXPECT_EQ(c.kafka.topics.registry, "r");
  EXPECT_EQ(c.kafka.topics.events, "e");
  EXPECT_EQ(c.kafka.topics.dlq, "d");
  EXPECT_EQ(c.kafka.topics.bids, "b");
  EXPECT_THAT(c.kafka.properties,
              ElementsAre(Pair("security.protocol", "SASL_SSL"), Pair("enable.idempotence", "true"),
                          Pair("linger.ms", "5")));
  EXPECT_EQ(c.kafka.embedded_partitions, 8);
  EXPECT_EQ(c.http.listen, "[::1]:9000");
  EXPECT_EQ(c.plugins_dir, "/opt/relay/plugins");
  EXPECT_EQ(c.carriers_multi, multi_carrier::all);
  EXPECT_THAT(c.default_order, ElementsAre(channel::email, channel::sms));
  EXPECT_EQ(c.retry.initial_backoff, std::chrono::seconds(1));
  EXPECT_EQ(c.retry.max_backoff, std::chrono::minutes(2));
  EXPECT_EQ(c.retry.max_attempts, 3);
  EXPECT_DOUBLE_EQ(c.retry.jitter, 0.0);
  EXPECT_EQ(c.limits.job.max_job_bytes, 2000000u);
  EXPECT_EQ(c.limits.job.max_content_bytes, 1000u);
  EXPECT_EQ(c.limits.job.max_users, 50u);
  EXPECT_EQ(c.limits.connector_queue, 10u);
  EXPECT_EQ(c.limits.pending_jobs_per_partition, 20u);
  EXPECT_EQ(c.limits.fanout_chunk, 30u);
  EXPECT_EQ(c.drain_timeout, std::chrono::seconds(45));
  EXPECT_TRUE(c.sync_writes);
  EXPECT_EQ(c.log_level, "debug");
}

TEST(ConfigEngagement, every_engagement_key_is_read) {
  const config c = parse_ok(
      "engagement:\n"
      "  segment: [region, gender]\n"
      "  prior_weight: 50\n"
      "  lookback: 14d\n"
      "  hourly_buckets_for: 2d\n"
      "  daily_buckets_for: 30d\n"
      "  quiet_period: {before: 10m, after: 1h}\n"
      "  throttle:\n"
      "    daily: 4\n"
      "    weekly: 12\n"
      "    companies: {acme: {daily: 2}, globex: {weekly: 5}}\n"
      "    low_open_rate: 0.05\n"
      "    floor_daily: 1\n"
      "    low_rate_daily: 2\n"
      "    min_recent_sends: 8\n"
      "    recent_half_life: 7d\n" +
      std::string(kOneCarrier));
  const engagement_config& e = c.engagement;
  EXPECT_THAT(e.segment, ElementsAre("region", "gender"));
  EXPECT_DOUBLE_EQ(e.prior_weight, 50);
  EXPECT_EQ(e.lookback, std::chrono::hours(24 * 14));
  EXPECT_EQ(e.hourly_buckets_for, std::chrono::hours(48));
  EXPECT_EQ(e.daily_buckets_for, std::chrono::hours(24 * 30));
  EXPECT_EQ(e.quiet_before, std::chrono::minutes(10));
  EXPECT_EQ(e.quiet_after, std::chrono::hours(1));
  EXPECT_EQ(e.caps.daily, 4u);
  EXPECT_EQ(e.caps.weekly, 12u);
  ASSERT_EQ(e.company_caps.size(), 2u);
  EXPECT_EQ(e.company_caps[0].first, "acme");
  EXPECT_EQ(e.company_caps[0].second.daily, 2u);
  EXPECT_EQ(e.company_caps[0].second.weekly, 0u);
  EXPECT_EQ(e.company_caps[1].second.weekly, 5u);
  EXPECT_DOUBLE_EQ(e.low_open_rate, 0.05);
  EXPECT_EQ(e.low_rate_daily, 2u);
  EXPECT_DOUBLE_EQ(e.min_recent_sends, 8);
  EXPECT_EQ(e.recent_half_life, std::chrono::hours(24 * 7));
}

TEST(ConfigEngagement, bad_engagement_keys_stop_start_up_naming_the_key) {
  EXPECT_THAT(error_of("engagement: {segment: [gender, shoe_size]}\n" + std::string(kOneCarrier)),
              HasSubstr("engagement.segment[1]: unknown attribute \"shoe_size\""));
  EXPECT_THAT(error_of("engagement: {throttle: {daily: -1}}\n" + std::string(kOneCarrier)),
              HasSubstr("engagement.throttle.daily: must be a positive integer"));
  EXPECT_THAT(error_of("engagement: {throttle: {low_open_rate: 2}}\n" + std::string(kOneCarrier)),
              HasSubstr("engagement.throttle.low_open_rate: must be a number from 0 to 1"));
  EXPECT_THAT(error_of("engagement: {throttle: {companies: {acme: {dayly: 2}}}}\n" + std::string(kOneCarrier)),
              HasSubstr("engagement.throttle.companies.acme.dayly"));
  EXPECT_THAT(error_of("engagement: {quiet_period: {before: soon}}\n" + std::string(kOneCarrier)),
              HasSubstr("engagement.quiet_period.before"));
  EXPECT_THAT(error_of("engagement: {hourly_buckets_for: 10d, daily_buckets_for: 2d}\n" + std::string(kOneCarrier)),
              HasSubstr("engagement.daily_buckets_for: must not be shorter"));
}

// ---- settings flattening ---------------------------------------------------

TEST(ConfigSettings, channel_keys_are_flattened_in_document_order) {
  const config c = parse_ok(
      "carriers:\n"
      "  - id: c1\n"
      "    channels:\n"
      "      email:\n"
      "        plugin: email_smtp\n"
      "        host: smtp.example\n"
      "        port: 587\n"
      "        tls: {mode: starttls, client: {cert: /c.pem, key: /k.pem}}\n"
      "        tags: [a, 1, true, null, '2', {k: v}, [x]]\n"
      "        quote: 'say \"hi\"\\n'\n"
      "        empty:\n"
      "        nothing: {}\n"
      "        flag: yes\n");
  EXPECT_THAT(
      connector(c, 0, channel::email).settings,
      ElementsAre(Pair("host", "smtp.example"), Pair("port", "587"), Pair("tls.mode", "starttls"),
                  Pair("tls.client.cert", "/c.pem"), Pair("tls.client.key", "/k.pem"),
                  Pair("tags", R"(["a",1,true,null,"2",{"k":"v"},["x"]])"),
                  Pair("quote", "say \"hi\"\\n"), Pair("empty", ""), Pair("flag", "yes")));
}

TEST(ConfigSettings, list_text_is_escaped_json) {
  const config c = parse_ok(
      "carriers:\n"
      "  - id: c1\n"
      "    channels:\n"
      "      sms:\n"
      "        plugin: p\n"
      "        lines: [\"a\\\"b\", \"c\\\\d\", \"tab\\there\", \"\\u0001\", \"日本\", 1.5e3, 01, "
      "-0]\n");
  EXPECT_EQ(setting(connector(c, 0, channel::sms), "lines"),
            R"(["a\"b","c\\d","tab\there","\u0001","日本",1.5e3,"01",-0])");
}

TEST(ConfigSettings, the_same_flattened_key_twice_is_an_error) {
  EXPECT_EQ(error_of("carriers:\n"
                     "  - id: c1\n"
                     "    channels:\n"
                     "      sms:\n"
                     "        plugin: p\n"
                     "        tls.mode: a\n"
                     "        tls: {mode: b}\n"),
            "relay.yaml:7: carriers[0].channels.sms.tls.mode: setting \"tls.mode\" is given twice "
            "(first at line 6)");
}

TEST(ConfigSettings, merge_keys_share_settings_between_connectors) {
  const config c = parse_ok(
      "carriers:\n"
      "  - id: c1\n"
      "    channels:\n"
      "      sms: &smpp {plugin: sms_smpp, host: smsc.example, port: 2775, window: 10}\n"
      "  - id: c2\n"
      "    channels:\n"
      "      sms:\n"
      "        <<: *smpp\n"
      "        host: smsc2.example\n"
      "      email:\n"
      "        <<: [{plugin: email_smtp, port: 25}, {port: 587, from: a@example.jp}]\n");
  const connector_config& sms = connector(c, 1, channel::sms);
  EXPECT_EQ(sms.plugin, "sms_smpp");
  EXPECT_THAT(sms.settings, ElementsAre(Pair("host", "smsc2.example"), Pair("port", "2775"),
                                        Pair("window", "10")));
  const connector_config& email = connector(c, 1, channel::email);
  EXPECT_EQ(email.plugin, "email_smtp");
  EXPECT_THAT(email.settings, ElementsAre(Pair("port", "25"), Pair("from", "a@example.jp")));
}

TEST(ConfigSettings, merge_keys_work_in_relay_sections_and_are_checked) {
  EXPECT_EQ(parse_ok("retry: {<<: {max_attempts: 3}, jitter: 0.5}\n" + std::string(kOneCarrier))
                .retry.max_attempts,
            3);
  EXPECT_THAT(error_of("retry: {<<: {max_attemps: 3}}\n" + std::string(kOneCarrier)),
              StartsWith("relay.yaml:1: retry.max_attemps: unknown key"));
  EXPECT_EQ(error_of("retry: {<<: 3}\n" + std::string(kOneCarrier)),
            "relay.yaml:1: retry.<<: a merge key (<<) needs a map or a list of maps");
}

TEST(ConfigSettings, kafka_properties_are_passed_as_text) {
  const config c = parse_ok(
      "kafka:\n"
      "  properties:\n"
      "    sasl.username: relay\n"
      "    message.timeout.ms: 30000\n"
      "    \"debug\": \"broker,topic\"\n" +
      std::string(kOneCarrier));
  EXPECT_THAT(c.kafka.properties,
              ElementsAre(Pair("sasl.username", "relay"), Pair("message.timeout.ms", "30000"),
                          Pair("debug", "broker,topic")));
}

// ---- durations -------------------------------------------------------------

TEST(ConfigDurations, every_unit_is_understood) {
  const config c = parse_ok(
      "retry: {initial_backoff: 250ms, max_backoff: 1d}\n"
      "shutdown: {drain_timeout: 2h}\n" +
      std::string(kOneCarrier));
  EXPECT_EQ(c.retry.initial_backoff, std::chrono::milliseconds(250));
  EXPECT_EQ(c.retry.max_backoff, std::chrono::hours(24));
  EXPECT_EQ(c.drain_timeout, std::chrono::hours(2));
  EXPECT_EQ(parse_ok("retry: {initial_backoff: 30s, max_backoff: 10m}\n" + std::string(kOneCarrier))
                .retry.max_backoff,
            std::chrono::minutes(10));
  EXPECT_EQ(parse_ok("shutdown: {drain_timeout: 0s}\n" + std::string(kOneCarrier)).drain_timeout,
            std::chrono::milliseconds(0));
}

TEST(ConfigDurations, a_number_without_unit_is_an_error) {
  EXPECT_THAT(
      error_of("retry:\n  initial_backoff: 200\n" + std::string(kOneCarrier)),
      StartsWith(
          "relay.yaml:2: retry.initial_backoff: invalid duration \"200\": duration has no unit"));
}

TEST(ConfigDurations, an_unknown_unit_is_an_error) {
  EXPECT_THAT(error_of("shutdown:\n  drain_timeout: 5 minutes\n" + std::string(kOneCarrier)),
              StartsWith("relay.yaml:2: shutdown.drain_timeout: invalid duration \"5 minutes\""));
}

TEST(ConfigDurations, zero_initial_backoff_is_an_error) {
  EXPECT_EQ(error_of("retry:\n  initial_backoff: 0ms\n" + std::string(kOneCarrier)),
            "relay.yaml:2: retry.initial_backoff: must be greater than 0");
}

TEST(ConfigDurations, max_backoff_below_initial_backoff_is_an_error) {
  EXPECT_EQ(
      error_of("retry:\n  initial_backoff: 5s\n  max_backoff: 1s\n" + std::string(kOneCarrier)),
      "relay.yaml:3: retry.max_backoff: must not be shorter than retry.initial_backoff");
  // Only initial_backoff given, above the default max_backoff (30s).
  EXPECT_EQ(error_of("retry:\n  initial_backoff: 1m\n" + std::string(kOneCarrier)),
            "relay.yaml:2: retry.max_backoff: must not be shorter than retry.initial_backoff");
}

// ---- errors: one test per kind ---------------------------------------------

TEST(ConfigErrors, wrong_type_names_key_and_line) {
  EXPECT_EQ(error_of("data_dir: var\n"
                     "kafka:\n"
                     "  group_id: relay\n"
                     "  brokers: [k1, k2]\n" +
                     std::string(kOneCarrier)),
            "relay.yaml:4: kafka.brokers: must be a string");
  EXPECT_EQ(error_of("kafka: k1:9092\n" + std::string(kOneCarrier)),
            "relay.yaml:1: kafka: must be a map (key: value)");
  EXPECT_EQ(error_of("carriers: carrier-a\n"), "relay.yaml:1: carriers: must be a list");
}

TEST(ConfigErrors, empty_string_is_an_error) {
  EXPECT_EQ(error_of("data_dir: \"\"\n" + std::string(kOneCarrier)),
            "relay.yaml:1: data_dir: must not be empty");
  EXPECT_EQ(error_of("kafka:\n  brokers:\n" + std::string(kOneCarrier)),
            "relay.yaml:2: kafka.brokers: must be a string");
}

TEST(ConfigErrors, unknown_top_level_key) {
  EXPECT_THAT(
      error_of("data_dir: var\nkafak:\n  brokers: embedded\n" + std::string(kOneCarrier)),
      StartsWith("relay.yaml:2: kafak: unknown key (expected one of: data_dir, kafka, http"));
}

TEST(ConfigErrors, unknown_nested_key) {
  EXPECT_EQ(error_of("kafka:\n  topics:\n    jobs: j\n    job: x\n" + std::string(kOneCarrier)),
            "relay.yaml:4: kafka.topics.job: unknown key (expected one of: jobs, registry, events, "
            "dlq, bids)");
  EXPECT_THAT(error_of("retry: {max_attempt: 3}\n" + std::string(kOneCarrier)),
              StartsWith("relay.yaml:1: retry.max_attempt: unknown key"));
  EXPECT_THAT(
      error_of("carriers:\n  - id: a\n    channel: {sms: {plugin: p}}\n"),
      StartsWith("relay.yaml:3: carriers[0].channel: unknown key (expected one of: id, channels)"));
}

TEST(ConfigErrors, duplicate_key) {
  EXPECT_EQ(error_of("data_dir: a\nlog: {level: info}\ndata_dir: b\n" + std::string(kOneCarrier)),
            "relay.yaml:3: data_dir: duplicate key (first at line 1)");
}

TEST(ConfigErrors, unknown_channel) {
  EXPECT_EQ(error_of("carriers:\n"
                     "  - id: a\n"
                     "    channels: {sms: {plugin: p}}\n"
                     "  - id: b\n"
                     "    channels:\n"
                     "      sms: {plugin: p}\n"
                     "      fax: {plugin: p}\n"),
            "relay.yaml:7: carriers[1].channels.fax: unknown channel (expected rcs, sms or email)");
}

TEST(ConfigErrors, channel_without_plugin) {
  EXPECT_EQ(error_of("carriers:\n"
                     "  - id: a\n"
                     "    channels:\n"
                     "      sms: {dir: out}\n"),
            "relay.yaml:4: carriers[0].channels.sms.plugin: is required (the plug-in that serves "
            "this channel)");
  EXPECT_EQ(error_of("carriers:\n"
                     "  - id: a\n"
                     "    channels:\n"
                     "      sms:\n"),
            "relay.yaml:4: carriers[0].channels.sms: must be a map with at least `plugin: NAME`");
}

TEST(ConfigErrors, plugin_name_with_a_path) {
  EXPECT_EQ(error_of("carriers:\n  - id: a\n    channels:\n      sms: {plugin: ../evil}\n"),
            "relay.yaml:4: carriers[0].channels.sms.plugin: must be a plug-in name "
            "([A-Za-z0-9._-], no path)");
}

TEST(ConfigErrors, carrier_without_channels) {
  EXPECT_EQ(error_of("carriers:\n  - id: a\n"),
            "relay.yaml:2: carriers[0].channels: is required (at least one of rcs, sms, email)");
  EXPECT_EQ(
      error_of("carriers:\n  - id: a\n    channels: {}\n"),
      "relay.yaml:3: carriers[0].channels: must name at least one channel (rcs, sms or email)");
}

TEST(ConfigErrors, duplicate_carrier_id) {
  EXPECT_EQ(error_of("carriers:\n"
                     "  - id: carrier-a\n"
                     "    channels: {sms: {plugin: p}}\n"
                     "  - id: carrier-a\n"
                     "    channels: {email: {plugin: p}}\n"),
            "relay.yaml:4: carriers[1].id: duplicate carrier id \"carrier-a\" (first at line 2)");
}

TEST(ConfigErrors, invalid_carrier_id) {
  EXPECT_EQ(error_of("carriers:\n  - id: carrier a\n    channels: {sms: {plugin: p}}\n"),
            "relay.yaml:2: carriers[0].id: must use only letters, digits, '.', '_' and '-'");
  EXPECT_EQ(error_of("carriers:\n  - id: ''\n    channels: {sms: {plugin: p}}\n"),
            "relay.yaml:2: carriers[0].id: must not be empty");
  EXPECT_EQ(error_of("carriers:\n  - channels: {sms: {plugin: p}}\n"),
            "relay.yaml:2: carriers[0].id: is required");
}

TEST(ConfigErrors, no_carrier) {
  EXPECT_EQ(error_of("data_dir: var\n"),
            "relay.yaml:1: carriers: at least one carrier is required");
  EXPECT_EQ(error_of("data_dir: var\ncarriers: []\n"),
            "relay.yaml:2: carriers: at least one carrier is required");
  EXPECT_EQ(error_of(""), "relay.yaml:1: carriers: at least one carrier is required");
}

TEST(ConfigErrors, positive_integer) {
  for (const char* bad : {"0", "-1", "1.5", "many", "[1]", "99999999999999999999999"}) {
    EXPECT_THAT(error_of("data_dir: var\nlog: {level: info}\nlimits: {connector_queue: " +
                         std::string(bad) + "}\n" + kOneCarrier),
                StartsWith("relay.yaml:3: limits.connector_queue: must be a positive integer"))
        << bad;
  }
  EXPECT_EQ(error_of("retry: {max_attempts: 0}\n" + std::string(kOneCarrier)),
            "relay.yaml:1: retry.max_attempts: must be a positive integer");
  EXPECT_EQ(
      error_of("kafka: {embedded_partitions: 5000}\n" + std::string(kOneCarrier)),
      "relay.yaml:1: kafka.embedded_partitions: must be a positive integer no greater than 1024");
}

TEST(ConfigErrors, jitter_out_of_range) {
  for (const char* bad : {"1.5", "-0.1", "nan", "lots"}) {
    EXPECT_EQ(error_of("retry:\n  jitter: " + std::string(bad) + "\n" + kOneCarrier),
              "relay.yaml:2: retry.jitter: must be a number from 0 to 1")
        << bad;
  }
}

TEST(ConfigErrors, listen_address) {
  EXPECT_EQ(error_of("http:\n  listen: 127.0.0.1:99999\n" + std::string(kOneCarrier)),
            "relay.yaml:2: http.listen: port \"99999\" must be a number from 0 to 65535");
  EXPECT_EQ(error_of("http:\n  listen: \"127.0.0.1:\"\n" + std::string(kOneCarrier)),
            "relay.yaml:2: http.listen: port \"\" must be a number from 0 to 65535");
  EXPECT_THAT(error_of("http:\n  listen: localhost\n" + std::string(kOneCarrier)),
              StartsWith("relay.yaml:2: http.listen: must be host:port"));
  EXPECT_THAT(error_of("http:\n  listen: \"::1:8080\"\n" + std::string(kOneCarrier)),
              HasSubstr("put an IPv6 address in brackets"));
}

TEST(ConfigErrors, enumerations) {
  EXPECT_EQ(error_of("carriers_multi: some\n" + std::string(kOneCarrier)),
            "relay.yaml:1: carriers_multi: must be primary or all");
  EXPECT_EQ(error_of("log:\n  level: verbose\n" + std::string(kOneCarrier)),
            "relay.yaml:2: log.level: must be one of trace, debug, info, warn, error");
  EXPECT_EQ(error_of("storage:\n  sync: maybe\n" + std::string(kOneCarrier)),
            "relay.yaml:2: storage.sync: must be true or false");
}

TEST(ConfigErrors, default_order) {
  EXPECT_EQ(error_of("default_order:\n  - sms\n  - fax\n" + std::string(kOneCarrier)),
            "relay.yaml:3: default_order[1]: unknown channel \"fax\" (expected rcs, sms or email)");
  EXPECT_EQ(error_of("default_order: [sms, email, sms]\n" + std::string(kOneCarrier)),
            "relay.yaml:1: default_order[2]: channel \"sms\" is listed twice");
  EXPECT_EQ(error_of("default_order: []\n" + std::string(kOneCarrier)),
            "relay.yaml:1: default_order: must name at least one channel");
}

TEST(ConfigErrors, kafka_properties) {
  EXPECT_EQ(error_of("kafka:\n  properties:\n    sasl: {username: u}\n" + std::string(kOneCarrier)),
            "relay.yaml:3: kafka.properties.sasl: must be a single value (a string, number or "
            "true/false)");
  EXPECT_EQ(
      error_of("kafka:\n  properties:\n    bootstrap.servers: k:9092\n" + std::string(kOneCarrier)),
      "relay.yaml:3: kafka.properties.bootstrap.servers: set kafka.brokers instead");
  EXPECT_EQ(error_of("kafka:\n  properties:\n    group.id: g\n" + std::string(kOneCarrier)),
            "relay.yaml:3: kafka.properties.group.id: set kafka.group_id instead");
}

TEST(ConfigErrors, topics) {
  EXPECT_EQ(
      error_of("kafka:\n  topics:\n    events: relay.jobs\n" + std::string(kOneCarrier)),
      "relay.yaml:3: kafka.topics.events: topic \"relay.jobs\" is used for both jobs and events");
  EXPECT_EQ(error_of("kafka:\n  topics:\n    jobs: \"my jobs\"\n" + std::string(kOneCarrier)),
            "relay.yaml:3: kafka.topics.jobs: must be a Kafka topic name ([A-Za-z0-9._-], at most "
            "249 characters)");
}

TEST(ConfigErrors, yaml_syntax_error_names_its_line) {
  EXPECT_EQ(error_of("data_dir: var\nkafka:\n  brokers: k1\n group_id: x\n"),
            "relay.yaml:4: YAML syntax error: end of map not found");
  EXPECT_EQ(error_of("data_dir: var\nkafka:\n  brokers: k1\n\tgroup_id: x\n"),
            "relay.yaml:4: YAML syntax error: illegal tab when looking for indentation");
  // yaml-cpp notices an unclosed list at the end of the input; the line is
  // clamped to the file's last line rather than the empty one after it.
  EXPECT_THAT(error_of("data_dir: var\nkafka:\n  brokers: [k1,\nhttp: {}\n"),
              StartsWith("relay.yaml:4: YAML syntax error: "));
  EXPECT_THAT(error_of("data_dir: *nowhere\n"), StartsWith("relay.yaml:1: YAML syntax error: "));
}

TEST(ConfigErrors, stray_character_at_document_level_is_a_syntax_error) {
  // yaml-cpp 0.7 neither consumes nor rejects this comma; it must not read
  // as an empty file ("at least one carrier") or loop.
  EXPECT_EQ(error_of("# relay\n, carrier\n" + std::string(kOneCarrier)),
            "relay.yaml:2: YAML syntax error: unexpected \",\"");
}

TEST(ConfigErrors, deep_nesting_is_a_syntax_error) {
  EXPECT_THAT(error_of("data_dir: " + std::string(100000, '[')),
              StartsWith("relay.yaml:1: YAML syntax error: "));
}

TEST(ConfigErrors, an_alias_that_contains_itself) {
  const std::string head = "carriers:\n  - id: a\n    channels:\n      sms:\n        plugin: p\n";
  EXPECT_THAT(error_of(head + "        loop: &x [1, *x]\n"),
              HasSubstr("carriers[0].channels.sms.loop: nested more than 32 levels deep (or an "
                        "alias refers to itself)"));
  EXPECT_THAT(error_of(head + "        loop: &x {k: *x}\n"),
              HasSubstr("(or an alias refers to itself)"));
  EXPECT_THAT(error_of(head + "        loop: &x {<<: *x}\n"),
              HasSubstr("(or an alias refers to itself)"));
}

TEST(ConfigErrors, not_a_map_at_the_top) {
  EXPECT_EQ(error_of("- a\n- b\n"),
            "relay.yaml:1: the file must be a YAML map of settings (key: value)");
}

TEST(ConfigErrors, several_documents) {
  EXPECT_EQ(error_of(std::string(kOneCarrier) + "---\ndata_dir: x\n"),
            "relay.yaml:6: only one YAML document is allowed");
  // An explicit start and end, or a trailing separator, are fine.
  EXPECT_EQ(error_of("---" + std::string(kOneCarrier) + "...\n"), "");
  EXPECT_EQ(error_of(std::string(kOneCarrier) + "---\n"), "");
}

TEST(ConfigErrors, missing_file) {
  result<config> r = load_config("/nonexistent/relay.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message,
            "/nonexistent/relay.yaml: cannot read file: No such file or directory");
}

TEST(ConfigErrors, directory_instead_of_file) {
  result<config> r = load_config(std::filesystem::temp_directory_path().string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message,
            std::filesystem::temp_directory_path().string() + ": cannot read file: Is a directory");
}

TEST(ConfigErrors, errors_from_a_file_name_the_file) {
  temp_file f("data_dir: var\nlimits:\n  connector_queue: -5\n" + std::string(kOneCarrier));
  result<config> r = load_config(f.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message, f.path() + ":3: limits.connector_queue: must be a positive integer");
}

TEST(ConfigLoad, a_valid_file_records_its_path) {
  temp_file f(kOneCarrier);
  result<config> r = load_config(f.path());
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->source_path, f.path());
  EXPECT_EQ(connector(*r, 0, channel::sms).plugin, "file_sink");
}

}  // namespace
}  // namespace relay
