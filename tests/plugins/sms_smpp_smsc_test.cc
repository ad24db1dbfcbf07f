// sms_smpp against an SMSC relay does not control: tests/peers/smsc.js (the
// `smpp` npm package's server) as a child process on loopback. The peer
// records every PDU it sees as JSON lines; the tests assert on those and on
// what the plug-in reports through the ABI.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/plugin_test_support.h"
#include "tests/test_support.h"

namespace relay::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// One smsc.js process: started in the constructor, killed in the destructor.
class smsc_peer {
 public:
  explicit smsc_peer(std::vector<std::string> args) : log_(dir_ / "smsc.jsonl") {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe");
    args.insert(args.begin(),
                {"node", std::string(RELAY_SOURCE_DIR) + "/tests/peers/smsc.js", "--log", log_});
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[0]), close(in[1]), close(out[0]), close(out[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("node", argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    // The first stdout line is the port.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[64];
      const ssize_t n = read(stdout_, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) throw std::runtime_error("smsc.js did not print its port: " + line);
  }
  ~smsc_peer() {
    close(stdin_);
    close(stdout_);
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }

  std::string port() const { return std::to_string(port_); }

  void command(const json& cmd) {
    const std::string line = cmd.dump() + "\n";
    ASSERT_EQ(write(stdin_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }

  std::vector<json> records(const std::string& event = "") {
    std::vector<json> out;
    for (const auto& line : read_lines(log_)) {
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded()) continue;  // a line still being written
      if (event.empty() || j.value("event", "") == event) out.push_back(std::move(j));
    }
    return out;
  }
  bool wait_for(const std::string& event, size_t n, std::chrono::milliseconds limit = 10s) {
    return wait_until([&] { return records(event).size() >= n; }, limit);
  }

 private:
  temp_dir dir_;
  std::string log_;
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  int port_ = 0;
};

plugin_settings settings(const smsc_peer& smsc, plugin_settings extra = {}) {
  plugin_settings s = {{"host", "127.0.0.1"},        {"port", smsc.port()},
                       {"system_id", "relay"},       {"password", "secret"},
                       {"system_type", "relaytest"}, {"source_addr", "ACME"},
                       {"reconnect_min", "50ms"},    {"reconnect_max", "200ms"}};
  for (auto& [k, v] : extra) {
    auto it = std::find_if(s.begin(), s.end(), [&](auto& kv) { return kv.first == k; });
    if (it != s.end()) {
      it->second = v;
    } else {
      s.emplace_back(k, v);
    }
  }
  return s;
}

std::vector<std::string> creds() { return {"--system-id", "relay", "--password", "secret"}; }
std::vector<std::string> creds(std::vector<std::string> more) {
  auto c = creds();
  c.insert(c.end(), more.begin(), more.end());
  return c;
}

message_spec sms(std::string id, std::string text, std::string address = "+819012345678") {
  message_spec m;
  m.message_id = std::move(id);
  m.address = std::move(address);
  m.content = json{{"text", text}}.dump();
  return m;
}

bool log_contains(recording_host& host, const std::string& needle) {
  for (const auto& l : host.logs()) {
    if (l.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(sms_smpp_smsc, unknown_config_key_is_rejected_naming_it) {
  plugin_under_test p{"sms_smpp"};
  const std::string error = p.create({{"host", "127.0.0.1"}, {"system_id", "x"}, {"windw", "3"}});
  EXPECT_NE(error.find("windw: unknown key"), std::string::npos) << error;
  EXPECT_NE(p.create({{"host", "h"}, {"system_id", "x"}, {"tps", "fast"}}).find("tps:"),
            std::string::npos);
  EXPECT_NE(p.create({{"host", "h"}, {"system_id", "x"}, {"response_timeout", "10"}})
                .find("response_timeout:"),
            std::string::npos);
  EXPECT_NE(p.create({{"host", "h"}}).find("system_id: required"), std::string::npos);
}

TEST(sms_smpp_smsc, binds_submits_and_reports_accepted_with_the_smsc_message_id) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  const auto o = p.send(sms("m1", "Hello from relay"));
  ASSERT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  const auto binds = smsc.records("bind");
  ASSERT_EQ(binds.size(), 1u);
  EXPECT_EQ(binds[0]["system_id"], "relay");
  EXPECT_EQ(binds[0]["system_type"], "relaytest");
  EXPECT_EQ(binds[0]["interface_version"], 0x34);
  const auto submits = smsc.records("submit");
  ASSERT_EQ(submits.size(), 1u);
  const json& s = submits[0];
  EXPECT_EQ(o.carrier_ref, s["message_id"]);
  EXPECT_EQ(s["destination_addr"], "819012345678");  // "+" stripped for TON 1
  EXPECT_EQ(s["dest_addr_ton"], 1);
  EXPECT_EQ(s["dest_addr_npi"], 1);
  EXPECT_EQ(s["source_addr"], "ACME");
  EXPECT_EQ(s["source_addr_ton"], 5);  // alphanumeric
  EXPECT_EQ(s["data_coding"], 0);
  EXPECT_EQ(s["esm_class"], 0);
  EXPECT_EQ(s["registered_delivery"], 1);
  EXPECT_EQ(s["text"], "Hello from relay");
}

TEST(sms_smpp_smsc, link_goes_on_its_own_line_after_the_text) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  message_spec m = sms("m1", "");
  m.content = R"({"text":"Sale today","link":"https://t.example/c/abc","subject":"ignored"})";
  ASSERT_EQ(p.send(m).status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(smsc.records("submit").at(0)["text"], "Sale today\nhttps://t.example/c/abc");
}

TEST(sms_smpp_smsc,
     wrong_password_retries_the_bind_logs_it_and_messages_retry_after_queue_timeout) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc, {{"password", "wrong"}, {"queue_timeout", "400ms"}})), "");
  const auto o = p.send(sms("m1", "hi"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_NE(o.detail.find("not bound to the SMSC within queue_timeout"), std::string::npos)
      << o.detail;
  EXPECT_NE(o.detail.find("ESME_RINVPASWD (0x0e)"), std::string::npos) << o.detail;
  EXPECT_TRUE(smsc.wait_for("bind", 2));  // it keeps trying
  for (const auto& b : smsc.records("bind")) EXPECT_FALSE(b["ok"].get<bool>());
  EXPECT_TRUE(log_contains(p.host(), "bind rejected by the SMSC: SMPP ESME_RINVPASWD (0x0e)"));
  EXPECT_TRUE(smsc.records("submit").empty());
}

TEST(sms_smpp_smsc, messages_submitted_before_the_bind_wait_for_it) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  // Submitted at once, while connecting: queued, sent after bind_transceiver_resp.
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(p.submit(sms("m" + std::to_string(i), "hi")));
  ASSERT_TRUE(p.host().wait_for_outcomes(5));
  for (auto& o : p.host().outcomes()) EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
}

TEST(sms_smpp_smsc, throttled_submit_is_retried_and_later_submits_pause_for_throttle_pause) {
  smsc_peer smsc(creds({"--throttle", "1"}));
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc, {{"throttle_pause", "400ms"}})), "");
  const auto first = p.send(sms("m1", "one"));
  EXPECT_EQ(first.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(first.detail, "SMPP ESME_RTHROTTLED (0x58)");
  const auto second = p.send(sms("m2", "two"));
  EXPECT_EQ(second.status, RELAY_SUBMIT_ACCEPTED) << second.detail;
  const auto submits = smsc.records("submit");
  ASSERT_EQ(submits.size(), 2u);
  const double gap = submits[1]["t"].get<double>() - submits[0]["t"].get<double>();
  EXPECT_GE(gap, 400.0);   // the pause
  EXPECT_LT(gap, 2000.0);  // and not much more
}

TEST(sms_smpp_smsc, a_refused_part_fails_the_whole_long_message_once) {
  smsc_peer smsc(creds({"--throttle", "1"}));
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc, {{"throttle_pause", "10ms"}})), "");
  const auto o = p.send(sms("m1", std::string(200, 'x')));  // 2 parts, the first throttled
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(o.detail, "SMPP ESME_RTHROTTLED (0x58) (part 1 of 2)");
  // The retry sends every part again, with a new concatenation reference.
  const auto again = p.send(sms("m1", std::string(200, 'x')));
  EXPECT_EQ(again.status, RELAY_SUBMIT_ACCEPTED) << again.detail;
  const auto submits = smsc.records("submit");
  ASSERT_EQ(submits.size(), 4u);
  EXPECT_NE(submits[0]["udh_hex"].get<std::string>().substr(6, 2),
            submits[2]["udh_hex"].get<std::string>().substr(6, 2));
  EXPECT_EQ(p.host().outcomes().size(), 2u);  // one outcome per submit, not per part
}

TEST(sms_smpp_smsc, queue_full_is_retried) {
  smsc_peer smsc(creds({"--queue-full", "1"}));
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc, {{"throttle_pause", "10ms"}})), "");
  const auto o = p.send(sms("m1", "one"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(o.detail, "SMPP ESME_RMSGQFUL (0x14)");
}

TEST(sms_smpp_smsc, permanent_error_fails_naming_the_status_and_transient_ones_retry) {
  smsc_peer smsc(creds({"--fail-dest", "819000000000", "--fail-dest", "819000000008=8",
                        "--fail-dest", "819000000064=100", "--fail-dest", "819000000045=69"}));
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  auto o = p.send(sms("m1", "x", "+819000000000"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(o.detail, "SMPP ESME_RINVDSTADR (0x0b)");
  o = p.send(sms("m2", "x", "+819000000008"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(o.detail, "SMPP ESME_RSYSERR (0x08)");
  o = p.send(sms("m3", "x", "+819000000064"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(o.detail, "SMPP ESME_RX_T_APPN (0x64)");
  o = p.send(sms("m4", "x", "+819000000045"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(o.detail, "SMPP ESME_RSUBMITFAIL (0x45)");
  // A bad address never reaches the SMSC.
  o = p.send(sms("m5", "x", "not-a-number"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(smsc.records("submit").size(), 4u);
}

TEST(sms_smpp_smsc, connection_drop_retries_outstanding_then_reconnects_and_accepts) {
  smsc_peer smsc(creds({"--drop-after", "1"}));
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  const auto lost = p.send(sms("m1", "one"));
  EXPECT_EQ(lost.status, RELAY_SUBMIT_RETRY);
  EXPECT_NE(lost.detail.find("connection to the SMSC lost"), std::string::npos) << lost.detail;
  const auto next = p.send(sms("m2", "two"));
  EXPECT_EQ(next.status, RELAY_SUBMIT_ACCEPTED) << next.detail;
  EXPECT_EQ(smsc.records("bind").size(), 2u);
  EXPECT_TRUE(log_contains(p.host(), "SMPP bind lost"));
}

TEST(sms_smpp_smsc, no_response_within_response_timeout_is_retried) {
  smsc_peer smsc(creds({"--delay-ms", "1000"}));
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc, {{"response_timeout", "150ms"}})), "");
  const auto o = p.send(sms("m1", "one"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(o.detail, "no submit_sm_resp within 150ms");
}

TEST(sms_smpp_smsc, window_of_outstanding_submits_is_never_exceeded) {
  smsc_peer smsc(creds({"--delay-ms", "30"}));
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc, {{"window", "4"}})), "");
  for (int i = 0; i < 24; ++i) p.submit(sms("m" + std::to_string(i), "hi"));
  ASSERT_TRUE(p.host().wait_for_outcomes(24));
  for (auto& o : p.host().outcomes()) EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  int max_outstanding = 0;
  for (const auto& s : smsc.records("submit"))
    max_outstanding = std::max(max_outstanding, s["outstanding"].get<int>());
  EXPECT_EQ(max_outstanding, 4);  // used in full, never above
}

TEST(sms_smpp_smsc, tps_limit_is_respected) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc, {{"tps", "20"}})), "");
  ASSERT_EQ(p.send(sms("warm", "hi")).status, RELAY_SUBMIT_ACCEPTED);
  for (int i = 0; i < 30; ++i) p.submit(sms("m" + std::to_string(i), "hi"));
  ASSERT_TRUE(p.host().wait_for_outcomes(31));
  std::vector<double> t;
  for (const auto& s : smsc.records("submit")) t.push_back(s["t"].get<double>());
  ASSERT_EQ(t.size(), 31u);
  // In any one-second window: at most the rate plus the bucket's one token.
  for (size_t i = 0; i < t.size(); ++i) {
    size_t in_window = 0;
    for (size_t k = i; k < t.size() && t[k] - t[i] < 1000.0; ++k) ++in_window;
    EXPECT_LE(in_window, 21u) << "window starting at submit " << i;
  }
  EXPECT_GE(t.back() - t[1], 29 * 50.0 - 60.0);  // 30 submits at 20/s
}

TEST(sms_smpp_smsc, long_japanese_text_arrives_as_ucs2_parts_that_reassemble) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  std::string text;
  for (int i = 0; i < 15; ++i) text += "日本語のテキストです。";  // 11 chars x 15 = 165
  const auto o = p.send(sms("m1", text));
  ASSERT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  const auto submits = smsc.records("submit");
  ASSERT_EQ(submits.size(), 3u);  // 67 + 67 + 31
  std::string joined;
  std::string ref;
  for (size_t i = 0; i < submits.size(); ++i) {
    const json& s = submits[i];
    EXPECT_EQ(s["data_coding"], 8);
    EXPECT_EQ(s["esm_class"], 0x40);
    const std::string udh = s["udh_hex"];
    ASSERT_EQ(udh.size(), 12u);
    EXPECT_EQ(udh.substr(0, 6), "050003");
    if (i == 0) ref = udh.substr(6, 2);
    EXPECT_EQ(udh.substr(6, 2), ref);  // one reference for all parts
    EXPECT_EQ(udh.substr(8, 2), "03");
    EXPECT_EQ(udh.substr(10, 2), "0" + std::to_string(i + 1));
    joined += s["text"].get<std::string>();
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(submits[0]["sm_hex"].get<std::string>().size(), 2u * (6 + 134));
  EXPECT_EQ(o.carrier_ref, submits[0]["message_id"]);
}

TEST(sms_smpp_smsc, gsm_escapes_arrive_as_escape_sequences) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  ASSERT_EQ(p.send(sms("m1", "Price: 5€ [x] {y} ~ \\ ^ |")).status, RELAY_SUBMIT_ACCEPTED);
  const json s = smsc.records("submit").at(0);
  EXPECT_EQ(s["data_coding"], 0);
  EXPECT_EQ(s["text"], "Price: 5€ [x] {y} ~ \\ ^ |");
  EXPECT_NE(s["sm_hex"].get<std::string>().find("1b65"), std::string::npos);  // € = ESC 0x65
}

TEST(sms_smpp_smsc, tlv_receipts_become_delivered_and_failed_events_matched_to_message_id) {
  smsc_peer smsc(creds({"--receipts", "tlv", "--undeliv-dest", "819000000001"}));
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  const auto ok = p.send(sms("m-ok", "hi"));
  const auto bad = p.send(sms("m-bad", "hi", "+819000000001"));
  ASSERT_EQ(ok.status, RELAY_SUBMIT_ACCEPTED);
  ASSERT_EQ(bad.status, RELAY_SUBMIT_ACCEPTED);
  ASSERT_TRUE(p.host().wait_for_events(2));
  auto events = p.host().events();
  std::sort(events.begin(), events.end(),
            [](auto& a, auto& b) { return a.message_id < b.message_id; });
  EXPECT_EQ(events[0].type, RELAY_EVENT_FAILED);
  EXPECT_EQ(events[0].message_id, "m-bad");
  EXPECT_EQ(events[0].carrier_ref, bad.carrier_ref);
  EXPECT_EQ(events[0].reason, "undeliverable");
  EXPECT_NE(events[0].detail.find("UNDELIV"), std::string::npos) << events[0].detail;
  EXPECT_EQ(events[1].type, RELAY_EVENT_DELIVERED);
  EXPECT_EQ(events[1].message_id, "m-ok");
  EXPECT_EQ(events[1].carrier_ref, ok.carrier_ref);
  EXPECT_TRUE(smsc.wait_for("deliver_sm_resp", 2));
  for (const auto& r : smsc.records("deliver_sm_resp")) EXPECT_EQ(r["status"], 0);
}

TEST(sms_smpp_smsc, text_receipts_become_events_and_a_long_message_is_delivered_once) {
  smsc_peer smsc(creds({"--receipts", "text"}));
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  const auto o = p.send(sms("m-long", std::string(300, 'a')));  // 2 GSM parts
  ASSERT_EQ(o.status, RELAY_SUBMIT_ACCEPTED);
  ASSERT_EQ(smsc.records("submit").size(), 2u);
  ASSERT_TRUE(smsc.wait_for("deliver_sm_resp", 2));
  ASSERT_TRUE(p.host().wait_for_events(1));
  // Both parts' receipts are answered; one event for the message.
  ASSERT_TRUE(p.send(sms("m-after", "x")).status == RELAY_SUBMIT_ACCEPTED);
  ASSERT_TRUE(p.host().wait_for_events(2));
  const auto events = p.host().events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, RELAY_EVENT_DELIVERED);
  EXPECT_EQ(events[0].message_id, "m-long");
  EXPECT_EQ(events[0].carrier_ref, o.carrier_ref);
  EXPECT_EQ(events[1].message_id, "m-after");
}

TEST(sms_smpp_smsc, receipt_for_an_unknown_id_still_carries_carrier_ref) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  ASSERT_EQ(p.send(sms("m1", "x")).status, RELAY_SUBMIT_ACCEPTED);
  smsc.command({{"cmd", "receipt"}, {"id", "ffff01"}, {"stat", "EXPIRED"}, {"form", "text"}});
  ASSERT_TRUE(p.host().wait_for_events(1));
  const auto e = p.host().events().at(0);
  EXPECT_EQ(e.type, RELAY_EVENT_FAILED);
  EXPECT_EQ(e.carrier_ref, "ffff01");
  EXPECT_EQ(e.message_id, "");
  EXPECT_EQ(e.reason, "expired");
}

TEST(sms_smpp_smsc, user_replies_become_inbound_events_reassembled_from_parts) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  ASSERT_EQ(p.send(sms("m1", "x")).status, RELAY_SUBMIT_ACCEPTED);  // bound
  smsc.command({{"cmd", "mo"},
                {"from", "819011112222"},
                {"to", "12345"},
                {"text", "はい、参加します 😀"},
                {"coding", "ucs2"}});
  ASSERT_TRUE(p.host().wait_for_events(1));
  smsc.command({{"cmd", "mo"},
                {"from", "819011113333"},
                {"to", "12345"},
                {"coding", "gsm"},
                {"text", "STOP please, and {thanks} for all the messages, they were nice"},
                {"parts", 3}});
  ASSERT_TRUE(p.host().wait_for_events(2));
  const auto events = p.host().events();
  EXPECT_EQ(events[0].type, RELAY_EVENT_INBOUND);
  EXPECT_EQ(events[0].from, "+819011112222");
  EXPECT_EQ(events[0].to, "12345");
  EXPECT_EQ(events[0].text, "はい、参加します 😀");
  EXPECT_EQ(events[1].from, "+819011113333");
  EXPECT_EQ(events[1].text, "STOP please, and {thanks} for all the messages, they were nice");
  EXPECT_TRUE(smsc.wait_for("deliver_sm_resp", 4));
}

TEST(sms_smpp_smsc, enquire_link_is_sent_when_idle_and_answered_when_asked) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc, {{"enquire_link_interval", "100ms"}})), "");
  EXPECT_TRUE(smsc.wait_for("enquire_link", 2));
  smsc.command({{"cmd", "enquire_link"}});
  ASSERT_TRUE(smsc.wait_for("enquire_link_resp", 1));
  EXPECT_EQ(smsc.records("enquire_link_resp")[0]["status"], 0);
}

TEST(sms_smpp_smsc, destroy_sends_unbind_and_reports_everything) {
  smsc_peer smsc(creds());
  plugin_under_test p{"sms_smpp"};
  ASSERT_EQ(p.create(settings(smsc)), "");
  ASSERT_EQ(p.send(sms("m1", "x")).status, RELAY_SUBMIT_ACCEPTED);
  p.destroy();
  EXPECT_TRUE(smsc.wait_for("unbind", 1));
  EXPECT_EQ(p.host().outcomes().size(), 1u);
}

TEST(sms_smpp_smsc, destroy_while_unbound_retries_queued_messages) {
  plugin_under_test p{"sms_smpp"};
  // Nothing listens on this port (the peer is gone): connects keep failing.
  std::string port;
  {
    smsc_peer gone(creds());
    port = gone.port();
  }
  ASSERT_EQ(p.create({{"host", "127.0.0.1"},
                      {"port", port},
                      {"system_id", "relay"},
                      {"reconnect_min", "20ms"}}),
            "");
  p.submit(sms("m1", "x"));
  p.destroy();
  const auto outcomes = p.host().outcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].status, RELAY_SUBMIT_RETRY);
}

}  // namespace
}  // namespace relay::test
