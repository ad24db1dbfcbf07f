#pragma once
// relayd's process: wires the store, Kafka, plug-ins and the fan-out to one
// Asio event loop on the core thread, and stops gracefully on SIGTERM.
//
// The core thread runs everything of relay's own; librdkafka and plug-ins
// have their own threads and wake the core through file descriptors
// (librdkafka's queue io-event pipe, an eventfd for plug-in completions).

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/connector.h"
#include "daemon/delivery_events.h"
#include "daemon/http_server.h"
#include "daemon/metrics_text.h"
#include "daemon/event_publisher.h"
#include "daemon/fanout.h"
#include "daemon/job_intake.h"
#include "daemon/kafka.h"
#include "daemon/plugin_host.h"
#include "daemon/registry_intake.h"
#include "routing/clock.h"
#include "routing/store.h"
#include "routing/tracking_token.h"

namespace relay {

class relay_service final : private kafka_consumer::rebalance_listener {
 public:
  // `clk`: where relay's time comes from (tests pass a controllable one);
  // null: the system clock. Must outlive the service.
  relay_service(config cfg, std::string exe_path, const clock* clk = nullptr);
  ~relay_service() override;

  // Opens everything; on error nothing keeps running and the message says
  // what failed (file, key, plug-in, broker).
  result<void> start();

  // Runs until SIGTERM/SIGINT (or request_stop) and a graceful stop. Returns
  // the process exit code.
  int run();
  void request_stop();
  // True once the jobs topic's partitions were assigned (any thread).
  bool consuming() const { return consuming_.load(); }

 private:
  void on_assigned(std::span<const int32_t> partitions) override;
  void on_revoked(std::span<const int32_t> partitions) override;

  void wait_for_signal();
  void pump();
  void schedule_pump();
  void arm_waits();
  void arm(boost::asio::posix::stream_descriptor& d, bool& armed, int which);
  void apply_back_pressure();
  void begin_stop();
  void finish_stop();
  void log_stats();
  void roll_up_counts();
  result<void> start_http();
  // /metrics: built on the core thread (relay_service_metrics.cc).
  std::vector<metric_family> metrics() const;
  std::string metrics_text_from_http_thread();

  config config_;
  std::string exe_path_;
  system_clock system_clock_;
  const clock& clock_;
  std::atomic<bool> consuming_{false};
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer timer_;

  std::unique_ptr<store> db_;
  std::unique_ptr<embedded_kafka> embedded_;
  std::string bootstrap_;
  std::unique_ptr<kafka_producer> producer_;
  std::unique_ptr<event_publisher> events_;
  std::unique_ptr<engagement> engagement_;  // before delivery_ and fanout_, which use it
  std::unique_ptr<delivery_events> delivery_;
  std::unique_ptr<tracking_signer> signer_;
  std::unique_ptr<http_server> http_;
  std::atomic<bool> ready_{false};
  std::unique_ptr<plugin_loader> plugins_;
  std::vector<std::unique_ptr<connector>> connectors_;  // carrier * kChannelCount + channel
  std::unique_ptr<fanout> fanout_;
  std::unique_ptr<job_intake> intake_;
  std::unique_ptr<registry_intake> registry_;
  std::unique_ptr<kafka_consumer> jobs_;
  message_batch batch_;

  int completion_fd_ = -1;  // eventfd written by plug-in threads
  std::unique_ptr<boost::asio::posix::stream_descriptor> completion_wake_, jobs_wake_, registry_wake_;
  bool completion_armed_ = false, jobs_armed_ = false, registry_armed_ = false;
  bool pump_posted_ = false;
  std::atomic<bool> wake_pending_{false};

  std::vector<bool> paused_;  // by partition of relay.jobs
  std::vector<int32_t> assigned_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::chrono::steady_clock::time_point next_stats_;
  std::chrono::steady_clock::time_point next_watchdog_;
  uint64_t watchdog_usec_ = 0;
};

}  // namespace relay
