// relay's URL space through a real http_server on 127.0.0.1 (a free port).

#include "daemon/http_routes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "daemon/metrics_text.h"
#include "tests/integration/http_client.h"

namespace relay {
namespace {

using test::http_get;
using test::http_request;

class http_routes_test : public ::testing::Test {
 protected:
  void SetUp() override {
    http_routes_config c;
    c.signer = &signer_;
    c.on_tracking = [this](const tracking_claim& claim) {
      std::lock_guard lock(mu_);
      claims_.push_back(claim);
    };
    c.metrics_text = [] {
      const std::vector<metric_family> f{{"relay_x_total", "X \"things\".", "counter", {{{{"carrier", "a\"b"}}, 3}}}};
      return render_prometheus(f);
    };
    c.ready = [this] { return ready_.load(); };
    c.find_connector = [](std::string_view, std::string_view) -> connector* { return nullptr; };
    auto s = http_server::start("127.0.0.1:0", make_http_routes(std::move(c)));
    ASSERT_TRUE(s.ok()) << s.err().message;
    server_ = std::move(*s);
    address_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  size_t claims() {
    std::lock_guard lock(mu_);
    return claims_.size();
  }

  tracking_signer signer_{"0123456789abcdef-secret"};
  std::atomic<bool> ready_{false};
  std::mutex mu_;
  std::vector<tracking_claim> claims_;
  std::unique_ptr<http_server> server_;
  std::string address_;
};

message_id an_id() {
  message_id id;
  id.fill('e');
  return id;
}

TEST_F(http_routes_test, health_readiness_and_metrics) {
  EXPECT_EQ(http_get(address_, "/healthz").status, 200);
  EXPECT_EQ(http_get(address_, "/readyz").status, 503);
  ready_ = true;
  EXPECT_EQ(http_get(address_, "/readyz").status, 200);
  const auto m = http_get(address_, "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(m.body, "# HELP relay_x_total X \"things\".\n# TYPE relay_x_total counter\nrelay_x_total{carrier=\"a\\\"b\"} 3\n");
  EXPECT_EQ(http_get(address_, "/nothing").status, 404);
}

TEST_F(http_routes_test, pixel_and_click_record_signed_tokens_only) {
  const auto pixel = http_get(address_, "/t/o/" + signer_.open_token(an_id()));
  EXPECT_EQ(pixel.status, 200);
  EXPECT_EQ(pixel.headers.at("content-type"), "image/gif");
  EXPECT_EQ(pixel.body.size(), 43u);
  EXPECT_EQ(pixel.headers.at("cache-control"), "no-store, max-age=0");
  const auto click = http_get(address_, "/t/c/" + signer_.click_token(an_id(), "https://a.example/?q=1"));
  EXPECT_EQ(click.status, 302);
  EXPECT_EQ(click.headers.at("location"), "https://a.example/?q=1");
  EXPECT_EQ(claims(), 2u);

  const tracking_signer other("another-secret-of-16+");
  EXPECT_EQ(http_get(address_, "/t/o/" + other.open_token(an_id())).status, 404);
  EXPECT_EQ(http_get(address_, "/t/c/" + signer_.open_token(an_id())).status, 404);  // open token as click
  EXPECT_EQ(http_get(address_, "/t/o/" + signer_.click_token(an_id(), "https://a.example/")).status, 404);
  EXPECT_EQ(http_get(address_, "/t/o/garbage").status, 404);
  EXPECT_EQ(claims(), 2u);
}

TEST_F(http_routes_test, unknown_webhooks_are_404_and_oversized_bodies_413) {
  EXPECT_EQ(http_request(address_, "POST", "/hooks/carrier-a/rcs", "{}").status, 404);
  EXPECT_EQ(http_request(address_, "POST", "/hooks/carrier-a/rcs", std::string(2 << 20, 'x')).status, 413);
  EXPECT_EQ(http_get(address_, "/healthz").status, 200);  // still serving
}

TEST_F(http_routes_test, stop_returns_promptly_with_a_client_connected) {
  // A client that connects and says nothing.
  std::thread idle([&] { (void)http_request(address_, "GET", "/healthz"); });
  server_->stop();
  idle.join();
  SUCCEED();
}

}  // namespace
}  // namespace relay
