// file_sink driven through its C table, as relay drives it, with a recording
// host table.

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/plugin_host.h"
#include "relay/plugin.h"
#include "tests/plugin_test_support.h"
#include "tests/test_support.h"

namespace relay {
namespace {

using namespace std::chrono_literals;

using test::rs;
using test::str;

using test::message_spec;
using test::recording_host;

class file_sink_test : public ::testing::Test {
 protected:
  using settings = test::plugin_settings;

  std::string create(const settings& config) { return plugin_.create(config); }
  void create_ok(settings config = {}) {
    if (std::none_of(config.begin(), config.end(), [](auto& kv) { return kv.first == "dir"; })) {
      config.emplace_back("dir", dir_.path());
    }
    ASSERT_EQ(create(config), "");
  }
  void destroy() { plugin_.destroy(); }
  uint64_t submit(const message_spec& s) { return plugin_.submit(s); }
  recording_host::outcome send(const message_spec& s) { return plugin_.send(s); }
  const relay_plugin& table() { return plugin_.library().table(); }

  test::temp_dir dir_;
  test::plugin_under_test plugin_{"file_sink"};
  recording_host& host_ = plugin_.host();
};

TEST_F(file_sink_test, writes_one_line_per_message_with_the_contract_fields_in_order) {
  create_ok();
  auto o = send({});
  EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(o.carrier_ref, "sms.jsonl:1");
  message_spec second;
  second.message_id = "m2";
  second.attempt = 3;
  second.content = R"({"subject":"Hi","html":"<p>x</p>","link":"https://a.example/?q=1"})";
  EXPECT_EQ(send(second).carrier_ref, "sms.jsonl:2");
  message_spec mail;
  mail.message_id = "m3";
  mail.channel = "email";
  mail.address = "u1@example.jp";
  EXPECT_EQ(send(mail).carrier_ref, "email.jsonl:1");

  EXPECT_EQ(
      test::read_file(dir_ / "sms.jsonl"),
      R"({"message_id":"m1","job_id":"job-1","company_id":"acme","user_id":"u1","carrier_id":"carrier-a","channel":"sms","address":"+819012345678","content":{"text":"hi"},"attempt":1})"
      "\n"
      R"({"message_id":"m2","job_id":"job-1","company_id":"acme","user_id":"u1","carrier_id":"carrier-a","channel":"sms","address":"+819012345678","content":{"subject":"Hi","html":"<p>x</p>","link":"https://a.example/?q=1"},"attempt":3})"
      "\n");
  EXPECT_EQ(
      test::read_file(dir_ / "email.jsonl"),
      R"({"message_id":"m3","job_id":"job-1","company_id":"acme","user_id":"u1","carrier_id":"carrier-a","channel":"email","address":"u1@example.jp","content":{"text":"hi"},"attempt":1})"
      "\n");
}

TEST_F(file_sink_test, escapes_strings_as_rfc_8259_json_and_keeps_one_object_per_line) {
  create_ok();
  message_spec s;
  s.user_id =
      std::string("a\"b\\c\x01\n\t\x7f") + "\xc3\xa9";  // quote, backslash, controls, DEL, é
  s.address = "bad\xff utf8";
  s.content = "{\n  \"text\": \"line1\\nline2 \\u00e9\",\n  \"subject\": \"x y\"\n}";
  EXPECT_EQ(send(s).status, RELAY_SUBMIT_ACCEPTED);
  const auto lines = test::read_lines(dir_ / "sms.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"("user_id":"a\"b\\c\u0001\u000a\u0009)"
                          "\x7f\xc3\xa9\""),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find(R"("address":"bad\ufffd utf8")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"("content":{"text":"line1\nline2 \u00e9","subject":"x y"},)"),
            std::string::npos)
      << lines[0];
}

TEST_F(file_sink_test, content_that_is_not_a_json_object_fails_permanently) {
  create_ok();
  for (const char* bad : {"{", "[1,2]", R"({"text":"x",})", "{\"a\":\"\x01\"}", "{} {}"}) {
    message_spec s;
    s.content = bad;
    const auto o = send(s);
    EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED) << bad;
    EXPECT_NE(o.detail.find("content_json"), std::string::npos) << o.detail;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "sms.jsonl"));
}

TEST_F(file_sink_test, a_possible_duplicate_already_written_is_accepted_without_writing) {
  create_ok();
  EXPECT_EQ(send({}).carrier_ref, "sms.jsonl:1");
  message_spec again;
  again.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
  again.attempt = 1;
  const auto o = send(again);
  EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(o.detail, "duplicate");
  EXPECT_EQ(o.carrier_ref, "sms.jsonl:1");

  message_spec fresh = again;  // flagged, but never written before
  fresh.message_id = "m2";
  const auto f = send(fresh);
  EXPECT_EQ(f.detail, "");
  EXPECT_EQ(f.carrier_ref, "sms.jsonl:2");
  EXPECT_EQ(send(fresh).detail, "duplicate") << "the id set is kept up to date after loading";
  EXPECT_EQ(test::read_lines(dir_ / "sms.jsonl").size(), 2u);
}

TEST_F(file_sink_test, duplicates_are_detected_across_a_destroy_and_create_on_the_same_dir) {
  create_ok();
  send({});
  message_spec b;
  b.message_id = "m2";
  send(b);
  destroy();

  create_ok();
  message_spec again;
  again.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
  const auto o = send(again);
  EXPECT_EQ(o.detail, "duplicate");
  EXPECT_EQ(o.carrier_ref, "sms.jsonl:1");
  message_spec c;
  c.message_id = "m3";
  c.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
  EXPECT_EQ(send(c).carrier_ref, "sms.jsonl:3");
  EXPECT_EQ(test::read_lines(dir_ / "sms.jsonl").size(), 3u);
}

TEST_F(file_sink_test, a_duplicate_within_one_batch_is_written_once) {
  create_ok({{"latency_ms", "600000"}});  // hold everything until destroy flushes one batch
  message_spec first;
  message_spec repeat;
  repeat.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
  submit(first);
  submit(repeat);
  destroy();
  const auto out = host_.outcomes();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].detail, "");
  EXPECT_EQ(out[1].detail, "duplicate");
  EXPECT_EQ(test::read_lines(dir_ / "sms.jsonl").size(), 1u);
}

TEST_F(file_sink_test, tolerates_a_torn_last_line) {
  const std::string full =
      R"({"message_id":"m1","job_id":"job-1","company_id":"acme","user_id":"u1","carrier_id":"carrier-a","channel":"sms","address":"+819012345678","content":{"text":"hi"},"attempt":1})";
  // A crash cut the write of m2 just after its id.
  test::write_file(dir_ / "sms.jsonl", full + "\n" + R"({"message_id":"m2","job_id":"jo)");
  create_ok();

  message_spec m2;
  m2.message_id = "m2";
  m2.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
  const auto o2 = send(m2);
  EXPECT_EQ(o2.status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(o2.detail, "") << "a torn line does not count as written";
  EXPECT_EQ(o2.carrier_ref, "sms.jsonl:3");

  message_spec m1;
  m1.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
  EXPECT_EQ(send(m1).detail, "duplicate");

  const auto lines = test::read_lines(dir_ / "sms.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], full);
  EXPECT_EQ(lines[1], R"({"message_id":"m2","job_id":"jo)");
  EXPECT_EQ(lines[2].rfind(R"({"message_id":"m2","job_id":"job-1",)", 0), 0u) << lines[2];
  EXPECT_EQ(test::read_file(dir_ / "sms.jsonl").back(), '\n');
}

TEST_F(file_sink_test, a_torn_line_that_ends_after_the_id_is_still_not_an_id) {
  test::write_file(dir_ / "sms.jsonl", R"({"message_id":"m1","job_id":"job-1",)");
  create_ok();
  message_spec m1;
  m1.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
  const auto o = send(m1);
  EXPECT_EQ(o.detail, "");
  EXPECT_EQ(o.carrier_ref, "sms.jsonl:2");
  destroy();
  // After a restart the fragment is an invalid line and is still ignored,
  // while the real line is found.
  create_ok();
  const auto again = send(m1);
  EXPECT_EQ(again.detail, "duplicate");
  EXPECT_EQ(again.carrier_ref, "sms.jsonl:2");
}

TEST_F(file_sink_test, a_last_line_missing_only_its_newline_is_a_complete_record) {
  const std::string full =
      R"({"message_id":"m1","job_id":"job-1","company_id":"acme","user_id":"u1","carrier_id":"carrier-a","channel":"sms","address":"+819012345678","content":{"text":"hi"},"attempt":1})";
  test::write_file(dir_ / "sms.jsonl", full);
  create_ok();
  message_spec m1;
  m1.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
  const auto dup = send(m1);
  EXPECT_EQ(dup.detail, "duplicate");
  EXPECT_EQ(dup.carrier_ref, "sms.jsonl:1");
  message_spec m2;
  m2.message_id = "m2";
  EXPECT_EQ(send(m2).carrier_ref, "sms.jsonl:2");
  const auto lines = test::read_lines(dir_ / "sms.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], full);
  EXPECT_EQ(lines[1].rfind(R"({"message_id":"m2",)", 0), 0u) << lines[1];
}

TEST_F(file_sink_test, emits_delivered_and_opened_events_at_the_configured_rates) {
  create_ok({{"delivered_rate", "0.5"}, {"opened_rate", "0.2"}});
  constexpr int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) {
    message_spec s;
    s.message_id = "msg-" + std::to_string(i);
    submit(s);
  }
  ASSERT_TRUE(host_.wait_for_outcomes(kMessages));
  destroy();  // all events are reported before on_destroy returns
  std::set<std::string> delivered, opened;
  for (const auto& e : host_.events()) {
    EXPECT_FALSE(e.carrier_ref.empty());
    (e.type == RELAY_EVENT_DELIVERED ? delivered : opened).insert(e.message_id);
  }
  EXPECT_NEAR(delivered.size(), kMessages * 0.5, kMessages * 0.05);
  EXPECT_NEAR(opened.size(), kMessages * 0.2, kMessages * 0.05);
  for (const auto& id : opened)
    EXPECT_EQ(delivered.count(id), 1u) << id << " opened but not delivered";

  // Deterministic: a second run over the same ids picks the same messages.
  test::temp_dir other;
  recording_host host2;
  std::vector<relay_kv> kv{{rs("dir"), rs(other.path())}, {rs("delivered_rate"), rs("0.5")}};
  char error[128] = {};
  void* inst = table().on_create(host2.table(), kv.data(), kv.size(), error, sizeof(error));
  ASSERT_NE(inst, nullptr) << error;
  for (int i = 0; i < kMessages; ++i) {
    const std::string id = "msg-" + std::to_string(i);
    relay_message m{};
    m.struct_size = sizeof(relay_message);
    m.attempt = 1;
    m.message_id = rs(id);
    m.channel = rs("sms");
    m.content_json = rs("{}");
    table().on_submit(inst, static_cast<uint64_t>(i + 1), &m);
  }
  table().on_destroy(inst);
  std::set<std::string> delivered2;
  for (const auto& e : host2.events()) delivered2.insert(e.message_id);
  EXPECT_EQ(delivered2, delivered);
}

TEST_F(file_sink_test, no_events_by_default) {
  create_ok();
  send({});
  destroy();
  EXPECT_TRUE(host_.events().empty());
}

TEST_F(file_sink_test, simulates_permanent_and_transient_failures) {
  create_ok({{"permanent_failure_rate", "1"}});
  auto o = send({});
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(o.detail, "simulated permanent failure");
  destroy();
  EXPECT_FALSE(std::filesystem::exists(dir_ / "sms.jsonl"));

  create_ok({{"transient_failure_rate", "0.5"}});
  // Some attempt of each message fails and a later one passes; which is
  // decided by (message_id, attempt), so it is the same every run.
  int retried = 0;
  for (int i = 0; i < 20; ++i) {
    message_spec s;
    s.message_id = "t-" + std::to_string(i);
    for (s.attempt = 1; s.attempt <= 30; ++s.attempt) {
      const auto r = send(s);
      if (r.status == RELAY_SUBMIT_ACCEPTED) break;
      EXPECT_EQ(r.status, RELAY_SUBMIT_RETRY);
      EXPECT_EQ(r.detail, "simulated transient failure");
      ++retried;
    }
    EXPECT_LE(s.attempt, 30u);
  }
  EXPECT_GT(retried, 0);
  EXPECT_EQ(test::read_lines(dir_ / "sms.jsonl").size(), 20u);
}

TEST_F(file_sink_test, latency_delays_the_outcome) {
  create_ok({{"latency_ms", "150"}});
  const auto t0 = std::chrono::steady_clock::now();
  const auto o = send({});
  EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_GE(o.at - t0, 150ms);
}

TEST_F(file_sink_test, destroy_writes_and_reports_what_is_queued) {
  create_ok({{"latency_ms", "600000"}, {"fsync", "true"}});
  for (int i = 0; i < 3; ++i) {
    message_spec s;
    s.message_id = "q" + std::to_string(i);
    submit(s);
  }
  EXPECT_TRUE(host_.outcomes().empty());
  destroy();
  const auto out = host_.outcomes();
  ASSERT_EQ(out.size(), 3u);
  for (const auto& o : out) EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(test::read_lines(dir_ / "sms.jsonl").size(), 3u);
}

TEST_F(file_sink_test, a_failed_write_accepts_the_complete_lines_and_retries_the_rest) {
  // Let the file grow to one and a half lines: the batch's write() comes back
  // short and the next one fails with EFBIG (SIGXFSZ ignored).
  message_spec probe;
  const std::string one_line =
      R"({"message_id":"w0","job_id":"job-1","company_id":"acme","user_id":"u1","carrier_id":"carrier-a","channel":"sms","address":"+819012345678","content":{"text":"hi"},"attempt":1})"
      "\n";
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = one_line.size() + one_line.size() / 2;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);

  create_ok({{"latency_ms", "600000"}});  // one batch, written when destroy flushes
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    message_spec s;
    s.message_id = "w" + std::to_string(i);
    ids.push_back(submit(s));
  }
  destroy();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  std::signal(SIGXFSZ, old_handler);

  auto out = host_.outcomes_by_id();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[ids[0]].status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(out[ids[0]].carrier_ref, "sms.jsonl:1");
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(out[ids[i]].status, RELAY_SUBMIT_RETRY) << i;
    EXPECT_EQ(out[ids[i]].detail.rfind("write sms.jsonl: ", 0), 0u) << out[ids[i]].detail;
  }
  EXPECT_EQ(test::read_file(dir_ / "sms.jsonl"),
            one_line + one_line.substr(0, one_line.size() / 2).replace(15, 2, "w1"));

  // The retries (flagged: relay cannot know how far the write got) land on
  // fresh lines after the torn one; the complete line is not written again.
  create_ok();
  for (int i = 0; i < 3; ++i) {
    message_spec s;
    s.message_id = "w" + std::to_string(i);
    s.attempt = 2;
    s.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
    const auto o = send(s);
    EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED);
    EXPECT_EQ(o.detail, i == 0 ? "duplicate" : "") << i;
  }
  const auto lines = test::read_lines(dir_ / "sms.jsonl");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2].rfind(R"({"message_id":"w1",)", 0), 0u) << lines[2];
  EXPECT_EQ(lines[3].rfind(R"({"message_id":"w2",)", 0), 0u) << lines[3];
}

TEST_F(file_sink_test, instances_sharing_a_file_number_their_lines_consistently) {
  create_ok();
  recording_host other_host;
  std::vector<relay_kv> kv{{rs("dir"), rs(dir_.path())}};
  char error[128] = {};
  void* other =
      table().on_create(other_host.table(), kv.data(), kv.size(), error, sizeof(error));
  ASSERT_NE(other, nullptr) << error;
  constexpr int kEach = 200;
  for (int i = 0; i < kEach; ++i) {
    message_spec a;
    a.message_id = "a" + std::to_string(i);
    submit(a);
    const std::string id = "b" + std::to_string(i);
    relay_message m{};
    m.struct_size = sizeof(relay_message);
    m.attempt = 1;
    m.message_id = rs(id);
    m.channel = rs("sms");
    m.content_json = rs("{}");
    table().on_submit(other, static_cast<uint64_t>(i + 1), &m);
  }
  table().on_destroy(other);
  destroy();
  std::set<std::string> refs;
  for (const auto& o : host_.outcomes()) refs.insert(o.carrier_ref);
  for (const auto& o : other_host.outcomes()) refs.insert(o.carrier_ref);
  EXPECT_EQ(refs.size(), 2u * kEach) << "two messages got the same line number";
  const auto lines = test::read_lines(dir_ / "sms.jsonl");
  ASSERT_EQ(lines.size(), 2u * kEach);
  for (const auto& o : host_.outcomes()) {
    const size_t n = std::stoul(o.carrier_ref.substr(o.carrier_ref.find(':') + 1));
    ASSERT_GE(n, 1u);
    ASSERT_LE(n, lines.size());
    EXPECT_NE(lines[n - 1].find("\"message_id\":\"a"), std::string::npos) << o.carrier_ref;
  }
}

TEST_F(file_sink_test, bad_config_is_refused_naming_the_key) {
  struct bad_case {
    settings config;
    std::string starts_with;
  };
  const std::string dir = dir_.path();
  const std::vector<bad_case> cases{
      {{{"dir", dir}, {"dirr", "x"}}, "dirr: unknown key"},
      {{{"delivered_rate", "0.1"}}, "dir: required"},
      {{{"dir", ""}}, "dir: must not be empty"},
      {{{"dir", dir}, {"delivered_rate", "1.5"}}, "delivered_rate: must be a number from 0 to 1"},
      {{{"dir", dir}, {"opened_rate", "often"}}, "opened_rate: "},
      {{{"dir", dir}, {"transient_failure_rate", "-0.1"}}, "transient_failure_rate: "},
      {{{"dir", dir}, {"permanent_failure_rate", "nan"}}, "permanent_failure_rate: "},
      {{{"dir", dir}, {"latency_ms", "-5"}}, "latency_ms: "},
      {{{"dir", dir}, {"latency_ms", "10s"}}, "latency_ms: "},
      {{{"dir", dir}, {"fsync", "maybe"}}, "fsync: must be true or false"},
      {{{"dir", dir}, {"fsync", "true"}, {"fsync", "false"}}, "fsync: given twice"},
  };
  for (const auto& c : cases) {
    const std::string err = create(c.config);
    EXPECT_EQ(plugin_.instance(), nullptr);
    EXPECT_EQ(err.rfind(c.starts_with, 0), 0u) << "got: " << err;
    destroy();
  }
  // A dir that is a file.
  test::write_file(dir_ / "plain", "x");
  const std::string err = create({{"dir", dir_ / "plain"}});
  EXPECT_EQ(err.rfind("dir: ", 0), 0u) << err;
}

TEST_F(file_sink_test, creates_a_missing_dir) {
  create_ok({{"dir", dir_ / "outbox/carrier-a"}});
  send({});
  EXPECT_TRUE(std::filesystem::exists(dir_ / "outbox/carrier-a/sms.jsonl"));
}

TEST_F(file_sink_test, refuses_a_channel_name_that_would_leave_the_dir) {
  create_ok();
  message_spec s;
  s.channel = "../evil";
  const auto o = send(s);
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "../evil.jsonl"));
}

}  // namespace
}  // namespace relay
