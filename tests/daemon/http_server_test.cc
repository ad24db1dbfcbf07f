#include "daemon/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/daemon/raw_http_client.h"
#include "tests/test_support.h"

namespace relay {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;
using test::raw_client;
using test::field;
using test::response;

std::unique_ptr<http_server> start_server(http_handler handler, http_server_options options = {}) {
  auto s = http_server::start("127.0.0.1:0", std::move(handler), options);
  EXPECT_TRUE(s) << s.err().message;
  if (!s) return nullptr;
  EXPECT_NE((*s)->port(), 0);
  return std::move(*s);
}

// Echoes what the handler saw, so tests can check the request view.
http_response echo(const http_request& req) {
  http_response r;
  r.body = std::string(req.method) + "|" + std::string(req.path) + "|" + std::string(req.query) +
           "|" + std::string(req.body) + "|" + std::string(req.header("x-test-header"));
  return r;
}

TEST(http_server, keep_alive_serves_many_requests_on_one_connection) {
  auto server = start_server(echo);
  ASSERT_TRUE(server);
  raw_client c(server->port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 200; ++i) {
    const std::string body = "body-" + std::to_string(i);
    auto r = c.request("POST", "/echo/" + std::to_string(i) + "?a=1&b=" + std::to_string(i), body,
                       "X-Test-Header: v" + std::to_string(i) + "\r\n");
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->result_int(), 200);
    EXPECT_TRUE(r->keep_alive());
    EXPECT_EQ(r->body(), "POST|/echo/" + std::to_string(i) + "|a=1&b=" + std::to_string(i) + "|" +
                             body + "|v" + std::to_string(i));
  }
  EXPECT_EQ(server->connections_for_test(), 1u);
}

TEST(http_server, request_header_names_reach_the_handler_lower_case) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;
  auto server = start_server([&](const http_request& req) {
    std::lock_guard lock(mu);
    seen = req.headers;
    return http_response{200, "text/plain", std::string(req.header("x-mixed-case")), {}};
  });
  raw_client c(server->port());
  auto r = c.request("GET", "/", {}, "X-Mixed-CASE: Value Kept\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body(), "Value Kept");
  std::lock_guard lock(mu);
  EXPECT_NE(
      std::find(seen.begin(), seen.end(), std::pair<std::string, std::string>{"host", "relay.test"}),
      seen.end());
  EXPECT_NE(std::find(seen.begin(), seen.end(),
                      std::pair<std::string, std::string>{"x-mixed-case", "Value Kept"}),
            seen.end());
}

TEST(http_server, status_content_type_and_extra_headers_are_sent) {
  auto server = start_server([](const http_request&) {
    return http_response{302,
                         "text/html",
                         "<p>moved</p>",
                         {{"Location", "https://acme.example/"}, {"Cache-Control", "no-store"}}};
  });
  raw_client c(server->port());
  auto r = c.request("GET", "/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 302);
  EXPECT_EQ(field(*r, "Content-Type"), "text/html");
  EXPECT_EQ(field(*r, "Location"), "https://acme.example/");
  EXPECT_EQ(field(*r, "Cache-Control"), "no-store");
  EXPECT_EQ(r->body(), "<p>moved</p>");
}

TEST(http_server, a_body_over_the_limit_gets_413_and_the_connection_closes) {
  std::atomic<int> calls{0};
  http_server_options o;
  o.max_body_bytes = 1000;
  auto server = start_server(
      [&](const http_request&) {
        ++calls;
        return http_response{};
      },
      o);
  {
    raw_client c(server->port());
    ASSERT_TRUE(c.send("POST /hooks/a/b HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n"));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_FALSE(r->keep_alive());
    EXPECT_TRUE(c.closed_by_server());
  }
  {  // chunked: the limit applies as the body arrives
    raw_client c(server->port());
    ASSERT_TRUE(
        c.send("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3e8\r\n" +
               std::string(1000, 'x') + "\r\n10\r\n" + std::string(16, 'y') + "\r\n0\r\n\r\n"));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
  }
  {  // exactly at the limit is fine
    raw_client c(server->port());
    auto r = c.request("POST", "/", std::string(1000, 'x'));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 200);
  }
  EXPECT_EQ(calls.load(), 1);
}

TEST(http_server, malformed_requests_get_400_and_the_connection_closes) {
  std::atomic<int> calls{0};
  auto server = start_server([&](const http_request&) {
    ++calls;
    return http_response{};
  });
  for (const std::string bad :
       {"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
    raw_client c(server->port());
    ASSERT_TRUE(c.send(bad));
    auto r = c.read();
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->result_int(), 400) << bad;
    EXPECT_TRUE(c.closed_by_server()) << bad;
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST(http_server, head_is_answered_with_headers_and_length_but_no_body) {
  std::atomic<int> heads{0};
  auto server = start_server([&](const http_request& req) {
    if (req.method == "HEAD") ++heads;
    return http_response{200, "text/plain", "twelve bytes", {}};
  });
  raw_client c(server->port());
  auto h = c.request("HEAD", "/metrics");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->result_int(), 200);
  EXPECT_EQ(field(*h, "Content-Length"), "12");
  EXPECT_TRUE(c.pending().empty()) << "body bytes after a HEAD response: " << c.pending();
  // The connection is still in step: the next response parses cleanly.
  auto g = c.request("GET", "/metrics");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->body(), "twelve bytes");
  EXPECT_EQ(heads.load(), 1);
}

TEST(http_server, a_handler_exception_becomes_500_and_the_connection_survives) {
  auto server = start_server([](const http_request& req) -> http_response {
    if (req.path == "/throw") throw std::runtime_error("boom");
    return http_response{200, "text/plain", "fine", {}};
  });
  raw_client c(server->port());
  auto r = c.request("GET", "/throw");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
  auto ok = c.request("GET", "/ok");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->body(), "fine");
}

TEST(http_server, no_content_answers_carry_no_body) {
  auto server = start_server([](const http_request&) {
    return http_response{204, "text/plain", "ignored", {}};
  });
  raw_client c(server->port());
  auto r = c.request("POST", "/hooks/x/y", "{}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 204);
  EXPECT_EQ(r->body(), "");
  EXPECT_TRUE(c.request("GET", "/again"));
}

TEST(http_server, pipelined_requests_are_answered_in_order) {
  auto server = start_server(echo);
  raw_client c(server->port());
  std::string batch;
  for (int i = 0; i < 10; ++i)
    batch += "GET /p" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_TRUE(c.send(batch));
  for (int i = 0; i < 10; ++i) {
    auto r = c.read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body(), "GET|/p" + std::to_string(i) + "|||");
  }
}

TEST(http_server, expect_100_continue_gets_an_interim_answer_before_the_body) {
  auto server = start_server(echo);
  raw_client c(server->port());
  ASSERT_TRUE(
      c.send("POST /big HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = c.read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->result_int(), 100);
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), "POST|/big||hello|");
}

TEST(http_server, connection_close_is_honoured) {
  auto server = start_server(echo);
  raw_client c(server->port());
  auto r = c.request("GET", "/", {}, "Connection: close\r\n");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(c.closed_by_server());
}

TEST(http_server, concurrent_clients_are_served_on_several_threads_at_once) {
  // Two requests must be inside the handler together before either returns:
  // proves the handler runs concurrently (threads = 2).
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;
  bool met = false;
  std::atomic<int> calls{0};
  auto server = start_server([&](const http_request& req) {
    ++calls;
    if (req.path == "/meet") {
      std::unique_lock lock(mu);
      ++inside;
      cv.notify_all();
      met = cv.wait_for(lock, 10s, [&] { return inside >= 2; }) || met;
    }
    return echo(req);
  });
  {
    std::thread a([&] { raw_client(server->port()).request("GET", "/meet"); });
    std::thread b([&] { raw_client(server->port()).request("GET", "/meet"); });
    a.join();
    b.join();
    EXPECT_TRUE(met);
  }

  constexpr int kClients = 8, kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      raw_client c(server->port());
      for (int i = 0; i < kRequests; ++i) {
        const std::string path = "/c" + std::to_string(t) + "/" + std::to_string(i);
        auto r = c.request("GET", path);
        if (r && r->body() == "GET|" + path + "|||") ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
  EXPECT_EQ(calls.load(), 2 + kClients * kRequests);
}

TEST(http_server, stop_with_clients_connected_returns_promptly_and_closes_them) {
  http_server_options o;
  o.idle_timeout = 60s;
  auto server = start_server(echo, o);
  std::vector<std::unique_ptr<raw_client>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<raw_client>(server->port()));
    ASSERT_TRUE(clients.back()->request("GET", "/warm"));  // idle keep-alive connection
  }
  auto half = std::make_unique<raw_client>(server->port());
  ASSERT_TRUE(half->send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npartial"));
  ASSERT_TRUE(test::wait_until([&] { return server->connections_for_test() == 6; }));

  const auto t0 = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(server->connections_for_test(), 0u);
  for (auto& c : clients) EXPECT_TRUE(c->closed_by_server());
  EXPECT_TRUE(half->closed_by_server());
  server->stop();  // idempotent
  raw_client late(server->port());
  EXPECT_FALSE(late.connected() && late.request("GET", "/"));
}

TEST(http_server, stop_waits_for_a_running_handler_and_no_handler_runs_after_it) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  std::atomic<int> after_stop{0};
  std::atomic<bool> stopped{false};
  auto server = start_server([&](const http_request&) {
    if (stopped) ++after_stop;
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait_for(lock, 10s, [&] { return release; });
    return http_response{};
  });
  std::thread client([&] { raw_client(server->port()).request("GET", "/slow"); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return entered; }));
  }
  std::atomic<bool> stop_returned{false};
  std::thread stopper([&] {
    server->stop();
    stop_returned = true;
  });
  // stop() cannot finish while the handler is inside: it joins its thread.
  EXPECT_FALSE(test::wait_until([&] { return stop_returned.load(); }, 200ms));
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  stopper.join();
  stopped = true;
  client.join();
  EXPECT_TRUE(stop_returned);
  EXPECT_EQ(after_stop.load(), 0);
}

TEST(http_server, idle_connections_are_closed_after_the_idle_timeout) {
  http_server_options o;
  o.idle_timeout = 200ms;
  auto server = start_server(echo, o);
  raw_client idle(server->port());
  ASSERT_TRUE(idle.request("GET", "/"));
  EXPECT_TRUE(idle.closed_by_server());  // within the client's 10 s read bound
  raw_client slow(server->port());
  ASSERT_TRUE(slow.send("GET / HTTP/1.1\r\nHost:"));  // headers never finish
  EXPECT_TRUE(slow.closed_by_server());
  EXPECT_TRUE(test::wait_until([&] { return server->connections_for_test() == 0; }));
}

TEST(http_server, connections_beyond_the_cap_get_503) {
  http_server_options o;
  o.max_connections = 2;
  auto server = start_server(echo, o);
  raw_client a(server->port()), b(server->port());
  ASSERT_TRUE(a.request("GET", "/a"));
  ASSERT_TRUE(b.request("GET", "/b"));
  raw_client c(server->port());
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 503);
  EXPECT_EQ(field(*r, "Retry-After"), "1");
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(a.request("GET", "/still-served"));
}

TEST(http_server, start_errors_name_the_address_and_the_reason) {
  auto first = start_server(echo);
  const std::string taken = "127.0.0.1:" + std::to_string(first->port());
  auto second = http_server::start(taken, echo);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.err().message, "http listen " + taken + ": Address already in use");

  auto bad_port = http_server::start("127.0.0.1:http", echo);
  ASSERT_FALSE(bad_port);
  EXPECT_EQ(bad_port.err().message, "http listen 127.0.0.1:http: port must be a number 0-65535");
  auto no_port = http_server::start("127.0.0.1", echo);
  ASSERT_FALSE(no_port);
  EXPECT_EQ(no_port.err().message, "http listen 127.0.0.1: expected host:port");
  auto bad_host = http_server::start("192.0.2.1:0", echo);  // TEST-NET: not ours
  ASSERT_FALSE(bad_host);
  EXPECT_EQ(bad_host.err().message, "http listen 192.0.2.1:0: Cannot assign requested address");
}

TEST(http_server, listens_on_ipv6_loopback_and_names) {
  auto v6 = http_server::start("[::1]:0", echo);
  if (v6) EXPECT_NE((*v6)->port(), 0);  // hosts without IPv6 fail to bind; that is fine
  auto named = http_server::start("localhost:0", echo);
  ASSERT_TRUE(named) << named.err().message;
}

}  // namespace
}  // namespace relay
