#include "daemon/http_routes.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/metrics_text.h"
#include "tests/daemon/raw_http_client.h"
#include "tests/plugin_test_support.h"
#include "tests/test_support.h"

namespace relay {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;
using test::field;
using test::raw_client;
using test::response;
using test::rs;
using test::str;

message_id id_of(std::string_view hex) {
  message_id id{};
  std::copy(hex.begin(), hex.end(), id.begin());
  return id;
}

// ---------------------------------------------------------------------------
// A fake plug-in whose on_webhook records what it was given.

struct seen_webhook {
  std::string method, path, query, body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct webhook_plugin {
  std::mutex mu;
  std::vector<seen_webhook> seen;
  std::atomic<int> status{204};
};
webhook_plugin* g_plugin = nullptr;

void* wp_create(const relay_host*, const relay_kv*, size_t, char*, size_t) { return g_plugin; }
void wp_destroy(void*) {}
void wp_submit(void*, uint64_t, const relay_message*) {}
int wp_webhook(void* instance, const relay_http_request* r) {
  auto& p = *static_cast<webhook_plugin*>(instance);
  seen_webhook s{str(r->method), str(r->path), str(r->query), str(r->body), {}};
  for (size_t i = 0; i < r->header_count; ++i) {
    s.headers.emplace_back(str(r->headers[i].key), str(r->headers[i].value));
  }
  std::lock_guard lock(p.mu);
  p.seen.push_back(std::move(s));
  return p.status.load();
}

const relay_plugin kWebhookTable = {RELAY_PLUGIN_ABI_VERSION,
                                    sizeof(relay_plugin),
                                    "webhook_fake",
                                    "0.1",
                                    &wp_create,
                                    &wp_destroy,
                                    &wp_submit,
                                    &wp_webhook};
const relay_plugin kNoWebhookTable = {RELAY_PLUGIN_ABI_VERSION,
                                      sizeof(relay_plugin),
                                      "plain_fake",
                                      "0.1",
                                      &wp_create,
                                      &wp_destroy,
                                      &wp_submit,
                                      nullptr};

class null_listener : public connector_listener {
 public:
  void on_outcome(connector&, const connector_outcome&) override {}
  void on_event(connector&, const plugin_event&) override {}
};

class http_routes_test : public ::testing::Test {
 protected:
  void SetUp() override {
    g_plugin = &plugin_;
    hooked_ = make_connector(&kWebhookTable, "carrier-a", channel::sms);
    plain_ = make_connector(&kNoWebhookTable, "carrier-a", channel::email);
    ASSERT_TRUE(hooked_->start());
    ASSERT_TRUE(plain_->start());
  }
  void TearDown() override {
    server_.reset();  // stops the server before what its routes refer to
    hooked_->stop(0ms);
    plain_->stop(0ms);
    g_plugin = nullptr;
  }

  std::unique_ptr<connector> make_connector(const relay_plugin* table, const std::string& carrier,
                                            channel ch) {
    auto lib = plugin_library::from_table_for_test(table, table->name);
    EXPECT_TRUE(lib);
    return std::make_unique<connector>(carrier, ch, *lib, connector_config{table->name, {}}, 4,
                                       retry_policy{}, clock_, 1, listener_, nullptr);
  }

  // Starts the routes on 127.0.0.1:0 with the given signer (or none).
  void serve(const tracking_signer* signer) {
    http_routes_config c;
    c.find_connector = [this](std::string_view carrier, std::string_view ch) -> connector* {
      if (carrier != "carrier-a") return nullptr;
      if (ch == "sms") return hooked_.get();
      if (ch == "email") return plain_.get();
      if (ch == "rcs" && unstarted_) return unstarted_.get();
      return nullptr;
    };
    c.signer = signer;
    c.location_header = "cf-ipcountry";
    c.on_tracking = [this](const tracking_claim& claim, std::string_view location) {
      std::lock_guard lock(mu_);
      claims_.push_back(claim);
      locations_.emplace_back(location);
    };
    c.metrics_text = [] { return std::string("relay_up 1\n"); };
    c.ready = [this] { return ready_.load(); };
    c.stopping = [this] { return stopping_.load(); };
    auto s = http_server::start("127.0.0.1:0", make_http_routes(std::move(c)));
    ASSERT_TRUE(s) << s.err().message;
    server_ = std::move(*s);
  }

  std::vector<tracking_claim> claims() {
    std::lock_guard lock(mu_);
    return claims_;
  }
  std::vector<std::string> locations() {
    std::lock_guard lock(mu_);
    return locations_;
  }
  std::vector<seen_webhook> seen() {
    std::lock_guard lock(plugin_.mu);
    return plugin_.seen;
  }

  webhook_plugin plugin_;
  system_clock clock_;
  null_listener listener_;
  std::unique_ptr<connector> hooked_, plain_, unstarted_;
  tracking_signer signer_{"http-routes-test-secret-0123456789"};
  std::atomic<bool> ready_{false}, stopping_{false};
  std::mutex mu_;
  std::vector<tracking_claim> claims_;
  std::vector<std::string> locations_;
  std::unique_ptr<http_server> server_;
  const message_id id_ = id_of("0123456789abcdef0123456789abcdef");
};

TEST_F(http_routes_test, healthz_answers_ok_and_readyz_follows_ready_and_stopping) {
  serve(&signer_);
  raw_client c(server_->port());
  auto h = c.request("GET", "/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->result_int(), 200);
  EXPECT_EQ(h->body(), "ok\n");

  auto r = c.request("GET", "/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 503);
  EXPECT_EQ(r->body(), "starting\n");
  ready_ = true;
  r = c.request("GET", "/readyz");
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), "ready\n");
  ready_ = false;
  stopping_ = true;
  r = c.request("GET", "/readyz");
  EXPECT_EQ(r->result_int(), 503);
  EXPECT_EQ(r->body(), "stopping\n");

  auto head = c.request("HEAD", "/healthz");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->result_int(), 200);
  EXPECT_EQ(field(*head, "Content-Length"), "3");
}

TEST_F(http_routes_test, metrics_serves_prometheus_text_with_its_content_type) {
  serve(&signer_);
  raw_client c(server_->port());
  auto m = c.request("GET", "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->result_int(), 200);
  EXPECT_EQ(field(*m, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(m->body(), "relay_up 1\n");
}

TEST_F(http_routes_test, unknown_paths_are_404_and_wrong_methods_405_with_allow) {
  serve(&signer_);
  raw_client c(server_->port());
  for (const char* path : {"/", "/nope", "/healthz/x", "/t/", "/t/x/abc", "/hooks", "/hooks/",
                           "/hooks/carrier-a", "/hooks/carrier-a/", "/hooks//sms"}) {
    auto r = c.request("GET", path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->result_int(), 404) << path;
  }
  auto post = c.request("POST", "/healthz", "x");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->result_int(), 405);
  EXPECT_EQ(field(*post, "Allow"), "GET, HEAD");
  auto del = c.request("DELETE", "/metrics");
  EXPECT_EQ(del->result_int(), 405);
  auto get_hook = c.request("GET", "/hooks/carrier-a/sms");
  ASSERT_TRUE(get_hook);
  EXPECT_EQ(get_hook->result_int(), 405);
  EXPECT_EQ(field(*get_hook, "Allow"), "POST");
  auto post_pixel = c.request("POST", "/t/o/" + signer_.open_token(id_), "x");
  EXPECT_EQ(post_pixel->result_int(), 405);
  EXPECT_TRUE(seen().empty());
  EXPECT_TRUE(claims().empty());
}

TEST_F(http_routes_test, webhook_reaches_the_plugin_with_lower_case_headers_and_the_exact_body) {
  serve(&signer_);
  plugin_.status = 200;
  raw_client c(server_->port());
  const std::string body = std::string("{\"message\":{\"data\":\"e30=\"}}\0\xff\r\n", 31);
  auto r = c.request("POST", "/hooks/carrier-a/sms/dlr?token=abc&x=%20", body,
                     "X-Goog-Signature: SiGn==\r\nContent-Type: application/json\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  const auto s = seen();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].method, "POST");
  EXPECT_EQ(s[0].path, "/hooks/carrier-a/sms/dlr");
  EXPECT_EQ(s[0].query, "token=abc&x=%20");
  EXPECT_EQ(s[0].body, body);
  using kv = std::pair<std::string, std::string>;
  EXPECT_NE(std::find(s[0].headers.begin(), s[0].headers.end(), kv{"x-goog-signature", "SiGn=="}),
            s[0].headers.end());
  EXPECT_NE(
      std::find(s[0].headers.begin(), s[0].headers.end(), kv{"content-type", "application/json"}),
      s[0].headers.end());
  for (const auto& [name, value] : s[0].headers) {
    for (char ch : name) EXPECT_FALSE(ch >= 'A' && ch <= 'Z') << name;
  }
}

TEST_F(http_routes_test, webhook_status_passes_through_from_the_plugin) {
  serve(&signer_);
  raw_client c(server_->port());
  for (int status : {200, 204, 400, 401, 409, 503}) {
    plugin_.status = status;
    auto r = c.request("POST", "/hooks/carrier-a/sms", "{}");
    ASSERT_TRUE(r) << status;
    EXPECT_EQ(r->result_int(), status);
  }
  plugin_.status = 42;  // nonsense from a plug-in
  auto r = c.request("POST", "/hooks/carrier-a/sms", "{}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
}

TEST_F(http_routes_test, webhook_for_an_unknown_connector_or_a_plugin_without_hooks_is_404) {
  unstarted_ = make_connector(&kWebhookTable, "carrier-a", channel::rcs);  // never started
  serve(&signer_);
  raw_client c(server_->port());
  EXPECT_EQ(c.request("POST", "/hooks/carrier-b/sms", "{}")->result_int(), 404);
  EXPECT_EQ(c.request("POST", "/hooks/carrier-a/fax", "{}")->result_int(), 404);
  EXPECT_EQ(c.request("POST", "/hooks/carrier-a/email", "{}")->result_int(), 404);
  EXPECT_EQ(c.request("POST", "/hooks/carrier-a/rcs", "{}")->result_int(), 503)
      << "a connector that is not running answers 503 so the carrier retries";
  EXPECT_TRUE(seen().empty());
}

TEST_F(http_routes_test, open_pixel_records_the_open_and_answers_an_uncacheable_gif) {
  serve(&signer_);
  raw_client c(server_->port());
  auto r = c.request("GET", "/t/o/" + signer_.open_token(id_));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(field(*r, "Content-Type"), "image/gif");
  EXPECT_EQ(field(*r, "Cache-Control"), "no-store, max-age=0");
  EXPECT_EQ(r->body().size(), 43u);
  EXPECT_EQ(r->body(), tracking_pixel_gif());
  EXPECT_EQ(r->body().substr(0, 6), "GIF89a");
  const auto got = claims();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, tracking_kind::open);
  EXPECT_EQ(got[0].id, id_);
}

TEST_F(http_routes_test, click_records_the_click_and_redirects_to_the_signed_url) {
  serve(&signer_);
  raw_client c(server_->port());
  const std::string url = "https://acme.example/offer?id=7&q=日本";
  auto r = c.request("GET", "/t/c/" + signer_.click_token(id_, url));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 302);
  EXPECT_EQ(field(*r, "Location"), url);
  EXPECT_EQ(field(*r, "Cache-Control"), "no-store, max-age=0");
  const auto got = claims();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, tracking_kind::click);
  EXPECT_EQ(got[0].id, id_);
  EXPECT_EQ(got[0].url, url);
}

TEST_F(http_routes_test, forged_and_mutated_tokens_count_nothing) {
  serve(&signer_);
  raw_client c(server_->port());
  const std::string open = signer_.open_token(id_);
  const std::string click = signer_.click_token(id_, "https://acme.example/");
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  int requests = 0;
  for (const auto& [route, token] : {std::pair{std::string("/t/o/"), open}, {"/t/c/", click}}) {
    for (size_t i = 0; i < token.size(); ++i) {
      std::string mutated = token;
      mutated[i] = alphabet[(alphabet.find(token[i]) + 1) % alphabet.size()];
      auto r = c.request("GET", route + mutated);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->result_int(), 404) << route << mutated;
      EXPECT_EQ(field(*r, "Location"), "");
      ++requests;
    }
  }
  tracking_signer forger("a-different-secret-entirely-000");
  EXPECT_EQ(c.request("GET", "/t/o/" + forger.open_token(id_))->result_int(), 404);
  EXPECT_EQ(
      c.request("GET", "/t/c/" + forger.click_token(id_, "https://evil.example/"))->result_int(),
      404);
  EXPECT_EQ(c.request("GET", "/t/c/")->result_int(), 404);
  EXPECT_EQ(c.request("GET", "/t/c/" + click + "/extra")->result_int(), 404);
  EXPECT_EQ(c.request("GET", "/t/c/https%3A%2F%2Fevil.example")->result_int(), 404);
  EXPECT_GT(requests, 80);
  EXPECT_TRUE(claims().empty());
}

TEST_F(http_routes_test, a_token_on_the_other_route_is_404_and_counts_nothing) {
  serve(&signer_);
  raw_client c(server_->port());
  EXPECT_EQ(c.request("GET", "/t/c/" + signer_.open_token(id_))->result_int(), 404);
  EXPECT_EQ(
      c.request("GET", "/t/o/" + signer_.click_token(id_, "https://acme.example/"))->result_int(),
      404);
  EXPECT_TRUE(claims().empty());
}

TEST_F(http_routes_test, head_on_tracking_links_answers_but_counts_nothing) {
  serve(&signer_);
  raw_client c(server_->port());
  auto o = c.request("HEAD", "/t/o/" + signer_.open_token(id_));
  ASSERT_TRUE(o);
  EXPECT_EQ(o->result_int(), 200);
  EXPECT_EQ(field(*o, "Content-Length"), "43");
  auto k = c.request("HEAD", "/t/c/" + signer_.click_token(id_, "https://acme.example/"));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->result_int(), 302);
  EXPECT_EQ(field(*k, "Location"), "https://acme.example/");
  EXPECT_TRUE(claims().empty()) << "link scanners probe with HEAD";
}

TEST_F(http_routes_test, an_open_carries_the_readers_location_from_the_configured_header_when_it_is_a_code) {
  serve(&signer_);
  raw_client c(server_->port());
  const std::string pixel = "/t/o/" + signer_.open_token(id_);
  EXPECT_EQ(c.request("GET", pixel, {}, "CF-IPCountry: JP\r\n")->result_int(), 200);
  EXPECT_EQ(c.request("GET", pixel, {}, "CF-IPCountry: <script>\r\n")->result_int(), 200);
  EXPECT_EQ(c.request("GET", pixel)->result_int(), 200);
  EXPECT_EQ(locations(), (std::vector<std::string>{"JP", "", ""}));
}

TEST_F(http_routes_test, signed_urls_that_could_split_headers_or_run_script_never_redirect) {
  serve(&signer_);
  raw_client c(server_->port());
  for (const std::string url : {"https://acme.example/\r\nSet-Cookie: x=1", "javascript:alert(1)",
                                "//evil.example/", "data:text/html,hi"}) {
    auto r = c.request("GET", "/t/c/" + signer_.click_token(id_, url));
    ASSERT_TRUE(r) << url;
    EXPECT_EQ(r->result_int(), 404) << url;
    EXPECT_EQ(field(*r, "Set-Cookie"), "");
  }
  EXPECT_TRUE(claims().empty());
}

TEST_F(http_routes_test, without_a_signer_tracking_routes_are_404) {
  serve(nullptr);
  raw_client c(server_->port());
  EXPECT_EQ(c.request("GET", "/t/o/" + signer_.open_token(id_))->result_int(), 404);
  EXPECT_EQ(
      c.request("GET", "/t/c/" + signer_.click_token(id_, "https://a.example/"))->result_int(),
      404);
  EXPECT_TRUE(claims().empty());
}

TEST_F(http_routes_test, concurrent_opens_are_each_recorded_once) {
  serve(&signer_);
  constexpr int kClients = 6, kEach = 40;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      raw_client c(server_->port());
      for (int i = 0; i < kEach; ++i) {
        char hex[33];
        std::snprintf(hex, sizeof(hex), "%016x%016x", t, i);
        auto r = c.request("GET", "/t/o/" + signer_.open_token(id_of(hex)));
        if (r && r->result_int() == 200) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * kEach);
  EXPECT_EQ(claims().size(), static_cast<size_t>(kClients * kEach));
}

// ---------------------------------------------------------------------------

TEST(metrics_text, renders_families_in_the_0_0_4_text_format) {
  const std::vector<metric_family> families = {
      {"relay_messages_sent_total",
       "Messages accepted by carriers.",
       "counter",
       {{{{"carrier", "carrier-a"}, {"channel", "sms"}}, 1234567},
        {{{"carrier", "carrier-b"}, {"channel", "email"}}, 0}}},
      {"relay_connector_in_flight", "", "gauge", {{{}, 3}}},
      {"relay_ratio", "A ratio.", "gauge", {{{}, 0.25}, {{{"k", "v"}}, -1.5}}},
  };
  EXPECT_EQ(render_prometheus(families),
            "# HELP relay_messages_sent_total Messages accepted by carriers.\n"
            "# TYPE relay_messages_sent_total counter\n"
            "relay_messages_sent_total{carrier=\"carrier-a\",channel=\"sms\"} 1234567\n"
            "relay_messages_sent_total{carrier=\"carrier-b\",channel=\"email\"} 0\n"
            "# TYPE relay_connector_in_flight gauge\n"
            "relay_connector_in_flight 3\n"
            "# HELP relay_ratio A ratio.\n"
            "# TYPE relay_ratio gauge\n"
            "relay_ratio 0.25\n"
            "relay_ratio{k=\"v\"} -1.5\n");
}

TEST(metrics_text, escapes_label_values_and_help) {
  const std::vector<metric_family> families = {{"m",
                                                "Help with \\ and\nnewline and \"quotes\".",
                                                "counter",
                                                {{{{"path", "C:\\dir\n\"x\""}}, 1}}}};
  EXPECT_EQ(render_prometheus(families),
            "# HELP m Help with \\\\ and\\nnewline and \"quotes\".\n"
            "# TYPE m counter\n"
            "m{path=\"C:\\\\dir\\n\\\"x\\\"\"} 1\n");
}

TEST(metrics_text, integers_print_without_exponent_and_specials_by_name) {
  const std::vector<metric_family> families = {
      {"v",
       "",
       "gauge",
       {{{{"i", "big"}}, 1e15},
        {{{"i", "huge"}}, 1e20},
        {{{"i", "neg"}}, -42},
        {{{"i", "negzero"}}, -0.0},
        {{{"i", "nan"}}, std::numeric_limits<double>::quiet_NaN()},
        {{{"i", "inf"}}, std::numeric_limits<double>::infinity()},
        {{{"i", "ninf"}}, -std::numeric_limits<double>::infinity()},
        {{{"i", "small"}}, 1e-7}}}};
  EXPECT_EQ(render_prometheus(families),
            "# TYPE v gauge\n"
            "v{i=\"big\"} 1000000000000000\n"
            "v{i=\"huge\"} 100000000000000000000\n"
            "v{i=\"neg\"} -42\n"
            "v{i=\"negzero\"} 0\n"
            "v{i=\"nan\"} NaN\n"
            "v{i=\"inf\"} +Inf\n"
            "v{i=\"ninf\"} -Inf\n"
            "v{i=\"small\"} 1e-07\n");
  EXPECT_EQ(render_prometheus({}), "");
}

}  // namespace
}  // namespace relay
