// email_smtp against a real SMTP server on loopback (tests/peers/smtp_server.py
// on aiosmtpd): the plug-in is loaded as relayd loads it, messages go over
// real sockets (STARTTLS and AUTH included), and what the server stored is
// parsed back (python's email package, in the peer) and checked.

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/plugin_test_support.h"
#include "tests/peers/smtp_peer.h"
#include "tests/test_support.h"

namespace relay::test {
namespace {

using json = nlohmann::json;

// A self-signed certificate for 127.0.0.1 made with the openssl CLI.
class test_certificate {
 public:
  test_certificate() {
    std::string output;
    const int rc = run_command(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
            shell_quote(key()) + " -out " + shell_quote(cert()),
        output, dir_.path());
    if (rc != 0) throw std::runtime_error("openssl: " + output);
  }
  std::string cert() const { return dir_ / "cert.pem"; }
  std::string key() const { return dir_ / "key.pem"; }

 private:
  temp_dir dir_;
};

plugin_settings base_config(const smtp_peer& peer) {
  return {{"host", "127.0.0.1"},      {"port", peer.port()},
          {"from", "news@acme.example"}, {"helo_name", "relay.test"},
          {"command_timeout", "5s"},  {"connect_timeout", "5s"}};
}

plugin_settings with(plugin_settings s, const plugin_settings& more) {
  s.insert(s.end(), more.begin(), more.end());
  return s;
}

message_spec email(std::string message_id, std::string address = "user@example.org",
                   std::string content = R"({"subject":"Hi","text":"Hello"})") {
  message_spec m;
  m.channel = "email";
  m.message_id = std::move(message_id);
  m.address = std::move(address);
  m.content = std::move(content);
  return m;
}

bool logs_mention(plugin_under_test& p, std::string_view what) {
  for (const auto& l : p.host().logs())
    if (l.find(what) != std::string::npos) return true;
  return false;
}

TEST(email_smtp_delivery, html_mail_arrives_with_encoded_subject_parts_and_tracking_urls_intact) {
  smtp_peer peer({"--pipelining"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer),
                          {{"from_name", "Acme ニュース"},
                           {"reply_to", "help@acme.example"},
                           {"list_unsubscribe", "https://acme.example/u/{message_id}"}})),
            "");
  const std::string subject = "今週のおすすめ：最大50%オフのセールを開催中です。お見逃しなく！";
  const std::string html =
      "<html><body><h1>Sale</h1><p>Up to 50% off. "
      "<a href=\"https://relay.example/t/c/CLICKTOKEN_0123456789abcdefghijklmnopqrstuvwxyz\">Shop now</a>"
      "</p><img src=\"https://relay.example/t/o/OPENTOKEN_0123456789abcdefghijklmnopqrstuvwxyz\" "
      "width=\"1\" height=\"1\" alt=\"\"></body></html>";
  const json content = {{"subject", subject},
                        {"text", "Up to 50% off.\n.\nSee you"},
                        {"html", html},
                        {"link", "https://relay.example/t/c/LINKTOKEN"}};
  const auto outcome = p.send(email("0123456789abcdef0123456789abcdef", "user@example.org", content.dump()));
  ASSERT_EQ(outcome.status, RELAY_SUBMIT_ACCEPTED) << outcome.detail;
  EXPECT_NE(outcome.carrier_ref.find("queued as"), std::string::npos);

  const auto messages = peer.messages();
  ASSERT_EQ(messages.size(), 1u);
  const json& m = messages[0];
  EXPECT_EQ(m["mail_from"], "news@acme.example");
  EXPECT_EQ(m["rcpt_tos"], json::array({"user@example.org"}));
  const json& parsed = m["parsed"];
  EXPECT_EQ(parsed["defects"], json::array());
  const json& h = parsed["headers"];
  EXPECT_EQ(h["subject"], subject);  // RFC 2047 decoded by python's email package
  EXPECT_EQ(h["from"], "Acme ニュース <news@acme.example>");
  EXPECT_EQ(h["to"], "user@example.org");  // python shows a bare angle-addr without <>
  EXPECT_EQ(h["reply-to"], "help@acme.example");
  EXPECT_EQ(h["message-id"], "<0123456789abcdef0123456789abcdef@acme.example>");
  EXPECT_EQ(h["list-unsubscribe"], "<https://acme.example/u/0123456789abcdef0123456789abcdef>");
  EXPECT_EQ(h["mime-version"], "1.0");
  EXPECT_TRUE(h.contains("date"));
  EXPECT_EQ(parsed["content_type"], "multipart/alternative");
  ASSERT_EQ(parsed["parts"].size(), 2u);
  EXPECT_EQ(parsed["parts"][0]["content_type"], "text/plain");
  EXPECT_EQ(parsed["parts"][0]["charset"], "utf-8");
  // CRLF line ends (text/* canonical form); the lone "." line survived dot-stuffing.
  EXPECT_EQ(parsed["parts"][0]["body"], "Up to 50% off.\r\n.\r\nSee you\r\n\r\nhttps://relay.example/t/c/LINKTOKEN");
  EXPECT_EQ(parsed["parts"][1]["content_type"], "text/html");
  EXPECT_EQ(parsed["parts"][1]["body"], html);  // byte-exact after decoding: pixel and tracked link intact

  const std::string raw = peer.raw(m);
  EXPECT_EQ(raw.find("OPENTOKEN_0123456789abcdefghijklmnopqrstuvwxyz\""), std::string::npos)
      << "the long URL is soft-broken on the wire, so this test proves decoding restores it";
  size_t start = 0;
  for (size_t nl; (nl = raw.find("\r\n", start)) != std::string::npos; start = nl + 2)
    EXPECT_LE(nl - start, 78u);
}

TEST(email_smtp_delivery, many_messages_travel_over_one_connection) {
  smtp_peer peer({"--pipelining"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"connections", "1"}})), "");
  for (int i = 0; i < 50; ++i) p.submit(email("m" + std::to_string(i)));
  ASSERT_TRUE(p.host().wait_for_outcomes(50));
  for (const auto& o : p.host().outcomes()) EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_EQ(peer.stat("messages"), 50);
  EXPECT_EQ(peer.stat("connections"), 1);
  EXPECT_EQ(peer.stat("duplicates"), 0);
}

TEST(email_smtp_delivery, without_pipelining_commands_go_one_by_one_and_still_share_a_connection) {
  smtp_peer peer;
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"connections", "1"}})), "");
  for (int i = 0; i < 10; ++i) p.submit(email("m" + std::to_string(i)));
  ASSERT_TRUE(p.host().wait_for_outcomes(10));
  for (const auto& o : p.host().outcomes()) EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_EQ(peer.stat("connections"), 1);
}

TEST(email_smtp_delivery, a_connection_is_replaced_after_max_messages_per_connection) {
  smtp_peer peer({"--pipelining"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"connections", "1"}, {"max_messages_per_connection", "10"}})), "");
  for (int i = 0; i < 30; ++i) p.submit(email("m" + std::to_string(i)));
  ASSERT_TRUE(p.host().wait_for_outcomes(30));
  for (const auto& o : p.host().outcomes()) EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_EQ(peer.stat("connections"), 3);
}

TEST(email_smtp_delivery, a_pool_of_four_connections_delivers_in_parallel) {
  // The peer holds every DATA reply until four transactions are in DATA at
  // once: only four parallel connections can get these messages through.
  smtp_peer peer({"--pipelining", "--data-barrier", "4"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"connections", "4"}})), "");
  for (int i = 0; i < 8; ++i) p.submit(email("m" + std::to_string(i)));
  ASSERT_TRUE(p.host().wait_for_outcomes(8));
  for (const auto& o : p.host().outcomes()) EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_EQ(peer.stat("connections"), 4);
  EXPECT_EQ(peer.stat("max_in_data"), 4);
}

TEST(email_smtp_delivery, idle_connections_are_closed_after_idle_timeout) {
  smtp_peer peer({"--pipelining"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"idle_timeout", "200ms"}})), "");
  ASSERT_EQ(p.send(email("m1")).status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_TRUE(wait_until([&] { return peer.stat("open_connections") == 0; }, std::chrono::seconds(5)));
  ASSERT_EQ(p.send(email("m2")).status, RELAY_SUBMIT_ACCEPTED);  // a new connection
  EXPECT_EQ(peer.stat("connections"), 2);
}

TEST(email_smtp_delivery, starttls_then_auth_plain_delivers_over_a_verified_tls_connection) {
  test_certificate cert;
  smtp_peer peer({"--pipelining", "--tls-cert", cert.cert(), "--tls-key", cert.key(), "--auth", "relay:s3cret"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"tls_ca_file", cert.cert()},
                                              {"username", "relay"}, {"password", "s3cret"}})),
            "");
  const auto o = p.send(email("m1"));
  ASSERT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  const auto messages = peer.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_TRUE(messages[0]["tls"].get<bool>());
  EXPECT_TRUE(messages[0]["authenticated"].get<bool>());
}

TEST(email_smtp_delivery, auth_login_is_used_when_it_is_the_only_mechanism_offered) {
  test_certificate cert;
  smtp_peer peer({"--tls-cert", cert.cert(), "--tls-key", cert.key(), "--auth", "relay:s3cret",
                  "--auth-mechanism", "LOGIN"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"tls_ca_file", cert.cert()},
                                              {"username", "relay"}, {"password", "s3cret"}})),
            "");
  const auto o = p.send(email("m1"));
  ASSERT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_TRUE(peer.messages().at(0)["authenticated"].get<bool>());
}

TEST(email_smtp_delivery, wrong_password_fails_with_the_servers_reply) {
  test_certificate cert;
  smtp_peer peer({"--tls-cert", cert.cert(), "--tls-key", cert.key(), "--auth", "relay:s3cret"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"tls_ca_file", cert.cert()},
                                              {"username", "relay"}, {"password", "wrong"}})),
            "");
  const auto o = p.send(email("m1"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(o.detail.rfind("AUTH: SMTP 535", 0), 0u) << o.detail;
  EXPECT_EQ(peer.stat("messages"), 0);
}

TEST(email_smtp_delivery, an_untrusted_certificate_fails_unless_tls_verify_is_off) {
  test_certificate cert;
  smtp_peer peer({"--tls-cert", cert.cert(), "--tls-key", cert.key()});
  {
    plugin_under_test p("email_smtp");
    ASSERT_EQ(p.create(base_config(peer)), "");  // the system store does not know this CA
    const auto o = p.send(email("m1"));
    EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
    EXPECT_NE(o.detail.find("TLS certificate verification failed"), std::string::npos) << o.detail;
  }
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"tls_verify", "false"}})), "");
  const auto o = p.send(email("m2"));
  ASSERT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_TRUE(peer.messages().at(0)["tls"].get<bool>());
}

TEST(email_smtp_delivery, starttls_required_but_not_offered_fails_clearly) {
  smtp_peer peer({"--pipelining"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"starttls", "required"}})), "");
  const auto o = p.send(email("m1"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(o.detail, "STARTTLS is required (starttls: required) but the server did not offer it");
  EXPECT_EQ(peer.stat("messages"), 0);
}

TEST(email_smtp_delivery, auth_is_never_sent_in_plain_text_unless_allowed) {
  smtp_peer peer({"--auth", "relay:s3cret", "--auth-without-tls"});
  {
    plugin_under_test p("email_smtp");
    ASSERT_EQ(p.create(with(base_config(peer), {{"username", "relay"}, {"password", "s3cret"}})), "");
    const auto o = p.send(email("m1"));
    EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
    EXPECT_NE(o.detail.find("refusing AUTH over an unencrypted connection"), std::string::npos) << o.detail;
  }
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"username", "relay"}, {"password", "s3cret"},
                                              {"allow_plain_auth", "true"}})),
            "");
  const auto o = p.send(email("m2"));
  ASSERT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_FALSE(peer.messages().at(0)["tls"].get<bool>());
}

TEST(email_smtp_delivery, temporary_failures_after_the_body_are_retried_with_the_reply) {
  smtp_peer peer({"--pipelining", "--tempfail-first", "2"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"connections", "1"}})), "");
  const auto first = p.send(email("m1"));
  EXPECT_EQ(first.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(first.detail, "SMTP 451 4.3.0 Temporary failure, please try again later");
  EXPECT_EQ(p.send(email("m2")).status, RELAY_SUBMIT_RETRY);
  auto retry = email("m1");
  retry.attempt = 2;
  EXPECT_EQ(p.send(retry).status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(peer.stat("messages"), 1);
  EXPECT_EQ(peer.stat("connections"), 1);  // RSET, not a new connection, after a 4xx
}

TEST(email_smtp_delivery, a_rejected_recipient_fails_with_the_reply_text_but_not_the_address) {
  smtp_peer peer({"--pipelining", "--reject-rcpt", "nobody@example.org"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"connections", "1"}})), "");
  const auto o = p.send(email("m1", "nobody@example.org"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(o.detail, "SMTP 550 5.1.1 <...>: Recipient address rejected: User unknown");
  // The connection stays usable for the next recipient.
  EXPECT_EQ(p.send(email("m2", "somebody@example.org")).status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(peer.stat("connections"), 1);
  EXPECT_FALSE(logs_mention(p, "nobody@"));
}

TEST(email_smtp_delivery, a_connection_dropped_after_the_body_is_retried_and_the_resend_keeps_the_message_id) {
  smtp_peer peer({"--pipelining", "--drop-first-data"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(base_config(peer)), "");
  const auto first = p.send(email("0123456789abcdef0123456789abcdef"));
  EXPECT_EQ(first.status, RELAY_SUBMIT_RETRY);
  EXPECT_NE(first.detail.find("after the message body was sent"), std::string::npos) << first.detail;
  auto again = email("0123456789abcdef0123456789abcdef");
  again.attempt = 2;
  const auto second = p.send(again);
  ASSERT_EQ(second.status, RELAY_SUBMIT_ACCEPTED) << second.detail;
  const auto messages = peer.messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0]["message_id"], "<0123456789abcdef0123456789abcdef@acme.example>");
  EXPECT_EQ(messages[1]["message_id"], messages[0]["message_id"]);
  EXPECT_FALSE(messages[0]["duplicate"].get<bool>());
  EXPECT_TRUE(messages[1]["duplicate"].get<bool>());  // the receiver can drop the copy
  EXPECT_EQ(peer.stat("connections"), 2);
}

TEST(email_smtp_delivery, an_old_server_without_ehlo_is_greeted_with_helo) {
  smtp_peer peer({"--no-ehlo"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(base_config(peer)), "");
  const auto o = p.send(email("m1"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
}

TEST(email_smtp_delivery, an_unreachable_server_is_a_temporary_failure) {
  // A port that was free a moment ago: nothing listens on it.
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create({{"host", "127.0.0.1"}, {"port", std::to_string(ntohs(a.sin_port))},
                      {"from", "news@acme.example"}}),
            "");
  const auto o = p.send(email("m1"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_NE(o.detail.find("connecting to 127.0.0.1"), std::string::npos) << o.detail;
}

TEST(email_smtp_delivery, invalid_content_or_address_fails_without_reaching_the_server) {
  smtp_peer peer({"--pipelining"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(base_config(peer)), "");
  EXPECT_EQ(p.send(email("m1", "not an address")).status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(p.send(email("m2", "u@example.org", R"({"subject":"only a subject"})")).detail,
            "content has neither text nor html");
  EXPECT_EQ(p.send(email("m3", "u@example.org", "not json")).status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(peer.stat("messages"), 0);
}

TEST(email_smtp_delivery, destroy_reports_every_message_in_flight_or_queued) {
  // The peer holds DATA replies (a barrier of 100 that is never reached).
  smtp_peer peer({"--pipelining", "--data-barrier", "100"});
  plugin_under_test p("email_smtp");
  ASSERT_EQ(p.create(with(base_config(peer), {{"connections", "2"}})), "");
  for (int i = 0; i < 6; ++i) p.submit(email("m" + std::to_string(i)));
  ASSERT_TRUE(wait_until([&] { return peer.stat("max_in_data") == 2; }));
  p.destroy();
  const auto outcomes = p.host().outcomes();
  EXPECT_EQ(outcomes.size(), 6u);
  for (const auto& o : outcomes) EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(peer.stat("connections"), 2);  // no reconnect while stopping
}

TEST(email_smtp_delivery, unknown_config_keys_are_rejected_naming_the_key) {
  plugin_under_test p("email_smtp");
  const std::string error = p.create({{"host", "127.0.0.1"}, {"from", "news@acme.example"}, {"conections", "4"}});
  EXPECT_EQ(error.rfind("conections: unknown key", 0), 0u) << error;
  EXPECT_EQ(p.create({{"host", "127.0.0.1"}, {"from", "news@acme.example"}, {"tls_ca_file", "/nonexistent.pem"}})
                .rfind("tls_ca_file:", 0),
            0u);
}

}  // namespace
}  // namespace relay::test
