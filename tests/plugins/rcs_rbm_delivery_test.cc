// rcs_rbm against a loopback RBM API server (tests/peers/rbm_server.js, on
// Node's http module, written to the published REST reference): the plug-in
// is loaded as relayd loads it and talks HTTP/1.1 over real sockets. The
// peer's Pub/Sub pushes go to a small HTTP server in this test that hands
// each request to the plug-in's on_webhook, as relay's HTTP server does.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/plugin_test_support.h"
#include "tests/test_support.h"

extern char** environ;

namespace relay::test {
namespace {

using json = nlohmann::json;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One blocking HTTP/1.1 exchange with 127.0.0.1:port (the peer's /_test API).
std::pair<int, std::string> http_exchange(int port, http::verb method, const std::string& target,
                                          const std::string& body = {}) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.keep_alive(false);
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(s, buffer, res);
  return {static_cast<int>(res.result_int()), res.body()};
}

// tests/peers/rbm_server.js as a child process; killed by the destructor.
class rbm_peer {
 public:
  explicit rbm_peer(std::vector<std::string> options = {}) {
    std::vector<std::string> argv = {"node",
                                     std::string(RELAY_SOURCE_DIR) + "/tests/peers/rbm_server.js"};
    argv.insert(argv.end(), options.begin(), options.end());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    const int rc = posix_spawnp(&pid_, "node", &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) throw std::runtime_error("cannot start the RBM peer");
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[64];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) throw std::runtime_error("the RBM peer did not print its port");
  }
  ~rbm_peer() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  json get(const std::string& path) const {
    return json::parse(http_exchange(port_, http::verb::get, path).second);
  }
  json post(const std::string& path, const json& body) const {
    return json::parse(http_exchange(port_, http::verb::post, path, body.dump()).second);
  }
  json messages() const { return get("/_test/messages"); }
  int stat(const char* name) const { return get("/_test/stats").value(name, 0); }
  void configure(const json& c) const { post("/_test/config", c); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// relay's HTTP server in miniature: each request to /hooks/... goes to the
// plug-in's on_webhook; its return value is the answer's status.
class webhook_receiver {
 public:
  explicit webhook_receiver(plugin_under_test& p)
      : p_(p), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~webhook_receiver() {
    stopping_ = true;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    accept_thread_.join();
    {
      std::lock_guard lock(mu_);
      for (auto& s : sockets_) ::shutdown(s->native_handle(), SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) +
           "/hooks/carrier-a/rcs";
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      auto s = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*s, ec);
      if (ec || stopping_) return;
      std::lock_guard lock(mu_);
      sockets_.push_back(s);
      threads_.emplace_back([this, s] { serve(*s); });
    }
  }
  void serve(tcp::socket& s) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(s, buffer, req, ec);
      if (ec) return;
      std::vector<std::pair<std::string, std::string>> headers;
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        headers.emplace_back(name, std::string(f.value()));
      }
      const std::string target(req.target());
      const int status = p_.webhook(std::string(req.method_string()),
                                    target.substr(0, target.find('?')), headers, req.body());
      http::response<http::string_body> res{static_cast<http::status>(status), 11};
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(s, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

  plugin_under_test& p_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> threads_;
};

plugin_settings base_config(const rbm_peer& peer, const plugin_settings& more = {}) {
  plugin_settings s = {{"endpoint", peer.endpoint()},
                       {"agent_id", "acme-agent"},
                       {"auth_token", "test-token"},
                       {"webhook_secret", "client-token"},
                       {"request_timeout", "5s"}};
  s.insert(s.end(), more.begin(), more.end());
  return s;
}

message_spec rcs(std::string message_id, std::string content = R"({"text":"Hello"})",
                 std::string address = "+819012345678") {
  message_spec m;
  m.channel = "rcs";
  m.message_id = std::move(message_id);
  m.content = std::move(content);
  m.address = std::move(address);
  return m;
}

TEST(rcs_rbm_delivery, text_card_and_suggestions_arrive_in_the_api_shape) {
  rbm_peer peer;
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer, {{"ttl", "1h"}})), "");
  auto o = p.send(
      rcs("job-1.u1.rcs", R"({"text":"Sale today","link":"https://relay.example/t/c/TOKEN"})"));
  ASSERT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_EQ(o.carrier_ref, "phones/+819012345678/agentMessages/job-1.u1.rcs");
  o = p.send(rcs("job-1.u2.rcs",
                 R"({"text":"Autumn","rcs":{"card":{"title":"Autumn sale","description":"50% off",
      "media_url":"https://cdn.example/a.jpg","suggestions":[{"reply":"Later","postback":"later"}]},
      "suggestions":[{"reply":"Yes","postback":"yes"},{"open_url":"https://acme.example","text":"Site"}]}})",
                 "+819087654321"));
  ASSERT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;

  const json m = peer.messages();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0]["messageId"], "job-1.u1.rcs");
  EXPECT_EQ(m[0]["phone"], "+819012345678");
  EXPECT_EQ(m[0]["agentId"], "acme-agent");
  EXPECT_EQ(m[0]["authorization"], "Bearer test-token");
  EXPECT_EQ(m[0]["body"],
            json::parse(R"({"contentMessage":{"text":"Sale today","suggestions":[{"action":{
      "text":"Open","postbackData":"open_link","openUrlAction":{"url":"https://relay.example/t/c/TOKEN"}}}]},
      "ttl":"3600s"})"));
  const json& card = m[1]["body"]["contentMessage"]["richCard"]["standaloneCard"];
  EXPECT_EQ(card["cardContent"]["title"], "Autumn sale");
  EXPECT_EQ(card["cardContent"]["media"]["contentInfo"]["fileUrl"], "https://cdn.example/a.jpg");
  EXPECT_EQ(card["cardContent"]["suggestions"][0]["reply"]["postbackData"], "later");
  EXPECT_EQ(m[1]["body"]["contentMessage"]["suggestions"].size(), 2u);
  EXPECT_EQ(peer.stat("rejected"), 0);
}

TEST(rcs_rbm_delivery, many_messages_reuse_keep_alive_connections_within_the_pool_size) {
  rbm_peer peer;
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer, {{"connections", "4"}})), "");
  constexpr int kMessages = 300;
  for (int k = 0; k < kMessages; ++k) p.submit(rcs("m" + std::to_string(k)));
  ASSERT_TRUE(p.host().wait_for_outcomes(kMessages));
  for (const auto& o : p.host().outcomes()) EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_EQ(peer.stat("creates"), kMessages);
  EXPECT_LE(peer.stat("api_connections"), 4);
  EXPECT_GE(peer.stat("api_connections"), 1);
}

TEST(rcs_rbm_delivery, keep_alive_connection_closed_by_the_server_is_replaced_without_a_retry) {
  rbm_peer peer;
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer, {{"connections", "1"}})), "");
  EXPECT_EQ(p.send(rcs("m1")).status, RELAY_SUBMIT_ACCEPTED);
  peer.post("/_test/drop_connections", json::object());
  const auto o = p.send(rcs("m2"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  EXPECT_EQ(peer.stat("api_connections"), 2);
  EXPECT_EQ(peer.stat("creates"), 2);
}

TEST(rcs_rbm_delivery, throttled_429_and_server_errors_are_retried_naming_the_status) {
  rbm_peer peer;
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer)), "");
  peer.configure({{"fail", {{"status", 429}, {"count", 1}}}});
  auto o = p.send(rcs("m1"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(o.detail.rfind("RBM 429 RESOURCE_EXHAUSTED", 0), 0u) << o.detail;
  peer.configure({{"fail", {{"status", 500}, {"count", 1}}}});
  o = p.send(rcs("m1"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(o.detail.rfind("RBM 500 INTERNAL", 0), 0u) << o.detail;
  auto retry = rcs("m1");
  retry.attempt = 3;
  EXPECT_EQ(p.send(retry).status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(peer.stat("creates"), 1);
}

TEST(rcs_rbm_delivery, user_without_rcs_is_failed_with_status_and_message_but_no_number) {
  rbm_peer peer({"--not-capable", "+819011112222"});
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer)), "");
  const auto o = p.send(rcs("m1", R"({"text":"Hi"})", "+819011112222"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(o.detail, "RBM 404 NOT_FOUND: Requested entity was not found.");
  EXPECT_EQ(o.detail.find("9011112222"), std::string::npos);
}

TEST(rcs_rbm_delivery, invalid_content_fails_before_anything_is_sent) {
  rbm_peer peer;
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer)), "");
  EXPECT_EQ(p.send(rcs("m1", R"({"subject":"mail only"})")).detail,
            "content has neither text nor rcs.card");
  EXPECT_EQ(p.send(rcs("m2", R"({"text":"x"})", "user@example.org")).detail,
            "address is not an E.164 phone number");
  EXPECT_EQ(peer.stat("api_requests"), 0);
}

TEST(rcs_rbm_delivery, duplicate_resend_is_accepted_without_a_second_message) {
  rbm_peer peer;
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer)), "");
  EXPECT_EQ(p.send(rcs("job-9.u1.rcs")).status, RELAY_SUBMIT_ACCEPTED);
  auto again = rcs("job-9.u1.rcs");
  again.flags = RELAY_MESSAGE_MAY_BE_DUPLICATE;
  again.attempt = 2;
  const auto o = p.send(again);
  EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(o.detail, "duplicate");
  EXPECT_EQ(o.carrier_ref, "phones/+819012345678/agentMessages/job-9.u1.rcs");
  EXPECT_EQ(peer.stat("creates"), 1);
  EXPECT_EQ(peer.stat("duplicates"), 1);
  EXPECT_EQ(peer.messages().size(), 1u);
}

TEST(rcs_rbm_delivery, capability_check_skips_non_capable_numbers_and_remembers_the_answer) {
  rbm_peer peer({"--not-capable", "+819011112222"});
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer, {{"capability_check", "true"}})), "");
  auto o = p.send(rcs("m1", R"({"text":"Hi"})", "+819011112222"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(o.detail.rfind("not_rcs_capable", 0), 0u) << o.detail;
  o = p.send(rcs("m2", R"({"text":"Hi"})", "+819011112222"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(peer.stat("capability_requests"), 1);  // the second answer came from the cache
  EXPECT_EQ(p.send(rcs("m3")).status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(p.send(rcs("m4")).status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(peer.stat("capability_requests"), 2);
  EXPECT_EQ(peer.stat("creates"), 2);
  EXPECT_EQ(peer.stat("api_requests"), 4);  // nothing was ever sent to the non-capable number
}

TEST(rcs_rbm_delivery, slow_api_is_a_timeout_and_retried) {
  rbm_peer peer({"--delay-ms", "3000"});
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer, {{"request_timeout", "200ms"}})), "");
  const auto o = p.send(rcs("m1"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(o.detail, "RBM request timed out: no answer within 0.2s");
}

TEST(rcs_rbm_delivery, unreachable_api_is_retried) {
  // A port nobody listens on: bind one, note it, close it.
  asio::io_context io;
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = a.local_endpoint().port();
  a.close();
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create({{"endpoint", "http://127.0.0.1:" + std::to_string(port)},
                      {"agent_id", "a"},
                      {"auth_token", "t"}}),
            "");
  const auto o = p.send(rcs("m1"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_EQ(o.detail.rfind("RBM connection error: connect", 0), 0u) << o.detail;
}

// A self-signed certificate for 127.0.0.1 made with the openssl CLI.
struct test_certificate {
  test_certificate() {
    std::string output;
    const int rc = run_command(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
            shell_quote(dir / "key.pem") + " -out " + shell_quote(dir / "cert.pem"),
        output, dir.path());
    if (rc != 0) throw std::runtime_error("openssl: " + output);
  }
  temp_dir dir;
};

TEST(rcs_rbm_delivery, https_endpoint_is_verified_against_the_given_ca) {
  test_certificate cert;
  rbm_peer peer({"--tls-cert", cert.dir / "cert.pem", "--tls-key", cert.dir / "key.pem"});
  const std::string https = "https" + peer.endpoint().substr(4);
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create({{"endpoint", https},
                      {"agent_id", "a"},
                      {"auth_token", "test-token"},
                      {"tls_ca_file", cert.dir / "cert.pem"}}),
            "");
  for (int k = 0; k < 3; ++k) {
    const auto o = p.send(rcs("m" + std::to_string(k)));
    EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
  }
  // Without the CA the self-signed certificate is refused.
  plugin_under_test untrusting("rcs_rbm");
  ASSERT_EQ(
      untrusting.create({{"endpoint", https}, {"agent_id", "a"}, {"auth_token", "test-token"}}),
      "");
  const auto o = untrusting.send(rcs("m9"));
  EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY);
  EXPECT_NE(o.detail.find("TLS handshake"), std::string::npos) << o.detail;
}

TEST(rcs_rbm_delivery, token_file_is_reread_when_it_changes) {
  temp_dir dir;
  write_file(dir / "token", "tok-1\n");
  rbm_peer peer({"--token", "tok-1", "--token", "tok-2-refreshed"});
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(
      p.create(
          {{"endpoint", peer.endpoint()}, {"agent_id", "a"}, {"auth_token_file", dir / "token"}}),
      "");
  EXPECT_EQ(p.send(rcs("m1")).status, RELAY_SUBMIT_ACCEPTED);
  write_file(dir / "token.new", "tok-2-refreshed\n");
  std::filesystem::rename(dir / "token.new", dir / "token");
  peer.configure({{"tokens", {"tok-2-refreshed"}}});
  EXPECT_EQ(p.send(rcs("m2")).status, RELAY_SUBMIT_ACCEPTED);
  const json m = peer.messages();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[1]["authorization"], "Bearer tok-2-refreshed");
}

TEST(rcs_rbm_delivery, webhooks_pushed_by_the_api_become_delivered_opened_and_inbound_events) {
  rbm_peer peer({"--auto-events", "delivered,read", "--webhook-secret", "client-token"});
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer)), "");
  webhook_receiver hooks(p);
  peer.configure({{"webhook_url", hooks.url()}});
  ASSERT_EQ(p.send(rcs("job-3.u1.rcs")).status, RELAY_SUBMIT_ACCEPTED);
  ASSERT_TRUE(p.host().wait_for_events(2));
  json r =
      peer.post("/_test/push",
                {{"messageId", "job-3.u1.rcs"}, {"type", "TEXT"}, {"text", "When do you open?"}});
  EXPECT_EQ(r["status"], 200);
  ASSERT_TRUE(p.host().wait_for_events(3));
  const auto e = p.host().events();
  EXPECT_EQ(e[0].type, RELAY_EVENT_DELIVERED);
  EXPECT_EQ(e[0].message_id, "job-3.u1.rcs");
  EXPECT_EQ(e[1].type, RELAY_EVENT_OPENED);
  EXPECT_EQ(e[1].message_id, "job-3.u1.rcs");
  EXPECT_EQ(e[2].type, RELAY_EVENT_INBOUND);
  EXPECT_EQ(e[2].from, "+819012345678");
  EXPECT_EQ(e[2].text, "When do you open?");

  // Google retries: the same event again is a 409; a forged one a 401.
  r = peer.post("/_test/push",
                {{"messageId", "job-3.u1.rcs"}, {"type", "READ"}, {"eventId", "ev-1"}});
  EXPECT_EQ(r["status"], 200);
  r = peer.post("/_test/push",
                {{"messageId", "job-3.u1.rcs"}, {"type", "READ"}, {"eventId", "ev-1"}});
  EXPECT_EQ(r["status"], 409);
  r = peer.post("/_test/push",
                {{"messageId", "job-3.u1.rcs"}, {"type", "READ"}, {"signature", "bad"}});
  EXPECT_EQ(r["status"], 401);
  r = peer.post("/_test/push",
                {{"messageId", "job-3.u1.rcs"}, {"type", "READ"}, {"signature", "none"}});
  EXPECT_EQ(r["status"], 401);
  EXPECT_EQ(p.host().events().size(), 4u);
}

TEST(rcs_rbm_delivery, undelivered_message_is_revoked_after_revoke_after_and_reported_expired) {
  rbm_peer peer({"--webhook-secret", "client-token"});
  plugin_under_test p("rcs_rbm");
  // One connection: calls are served in order, so a revoke of m-delivered
  // (which must not happen) would reach the peer before m-silent's.
  ASSERT_EQ(p.create(base_config(peer, {{"revoke_after", "300ms"}, {"connections", "1"}})), "");
  webhook_receiver hooks(p);
  peer.configure({{"webhook_url", hooks.url()}, {"auto_events", {"delivered"}}});
  ASSERT_EQ(p.send(rcs("m-delivered")).status, RELAY_SUBMIT_ACCEPTED);
  ASSERT_TRUE(p.host().wait_for_events(1));
  peer.configure({{"auto_events", json::array()}});
  ASSERT_EQ(p.send(rcs("m-silent")).status, RELAY_SUBMIT_ACCEPTED);
  ASSERT_TRUE(p.host().wait_for_events(2));
  const auto e = p.host().events();
  EXPECT_EQ(e[0].type, RELAY_EVENT_DELIVERED);
  EXPECT_EQ(e[1].type, RELAY_EVENT_FAILED);
  EXPECT_EQ(e[1].message_id, "m-silent");
  EXPECT_EQ(e[1].reason, "expired");
  EXPECT_EQ(e[1].detail, "revoked: not delivered within 0.3s");
  EXPECT_EQ(peer.stat("deletes"), 1);
  EXPECT_EQ(peer.stat("revoked"), 1);
  const json m = peer.messages();
  EXPECT_EQ(m[1]["messageId"], "m-silent");
  EXPECT_EQ(m[1]["revoked"], true);
}

TEST(rcs_rbm_delivery, destroy_reports_every_message_in_flight) {
  rbm_peer peer({"--delay-ms", "5000"});
  plugin_under_test p("rcs_rbm");
  ASSERT_EQ(p.create(base_config(peer, {{"connections", "2"}})), "");
  for (int k = 0; k < 5; ++k) p.submit(rcs("m" + std::to_string(k)));
  ASSERT_TRUE(wait_until([&] { return peer.stat("api_requests") >= 2; }));
  p.destroy();
  const auto outcomes = p.host().outcomes();
  ASSERT_EQ(outcomes.size(), 5u);
  for (const auto& o : outcomes) EXPECT_EQ(o.status, RELAY_SUBMIT_RETRY) << o.detail;
}

}  // namespace
}  // namespace relay::test
