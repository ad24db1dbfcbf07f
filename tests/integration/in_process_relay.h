#pragma once
// relayd's service run inside the test process on a clock the test moves, so
// send windows, quiet periods, fallbacks and daily caps are tested in hours
// and days of relay's time within seconds of the test's — with the same
// Kafka (the shared mock cluster over TCP), RocksDB on disk, plug-ins and
// HTTP server as relayd as a child process (relay_harness.h, whose files,
// topics and Kafka helpers it shares).

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "daemon/config.h"
#include "daemon/relay_service.h"
#include "routing/clock.h"
#include "tests/integration/relay_harness.h"
#include "tests/test_support.h"

namespace relay::test {

// A clock only the test moves; read by relay's core thread meanwhile.
class test_clock final : public clock {
 public:
  explicit test_clock(sys_time start) : ms_(to_unix_ms(start)) {}
  sys_time now() const override { return sys_time(std::chrono::milliseconds(ms_.load())); }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }
  void set(sys_time t) { ms_ = to_unix_ms(t); }

 private:
  std::atomic<int64_t> ms_;
};

class in_process_relay {
 public:
  in_process_relay(relay_instance& files, const clock& clk) : files_(files), clock_(clk) {}
  ~in_process_relay() { stop(); }

  // Starts the service on its own core thread and waits until it consumes jobs.
  void start() {
    auto cfg = load_config(files_.config_path());
    ASSERT_TRUE(cfg) << cfg.err().message;
    service_ = std::make_unique<relay_service>(std::move(*cfg), std::string(RELAY_BINARY_DIR) + "/relayd", &clock_);
    auto started = service_->start();
    ASSERT_TRUE(started) << started.err().message;
    core_ = std::thread([this] { service_->run(); });
    ASSERT_TRUE(wait_until([&] { return service_->consuming(); }, std::chrono::seconds(60)))
        << "the service never got its partitions";
  }

  void stop() {
    if (!service_) return;
    service_->request_stop();
    if (core_.joinable()) core_.join();
    service_.reset();
  }

 private:
  relay_instance& files_;
  const clock& clock_;
  std::unique_ptr<relay_service> service_;
  std::thread core_;
};

}  // namespace relay::test
