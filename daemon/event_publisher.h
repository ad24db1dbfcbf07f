#pragma once
// Publishes relay's events to relay.events, keyed by job_id.
// @locality: core thread.

#include <string>

#include "daemon/event_json.h"
#include "daemon/kafka.h"
#include "routing/clock.h"

namespace relay {

class event_publisher {
 public:
  event_publisher(kafka_producer& producer, std::string topic, const clock& clk)
      : producer_(producer), topic_(std::move(topic)), clock_(clk) {}

  // Stamps `at` with the clock when it is 0 and queues the event. An event
  // that cannot be queued (Kafka unreachable for the producer's block time)
  // is counted and logged, never allowed to stop the core thread for long.
  void publish(event_fields e);

  uint64_t published() const { return published_; }
  uint64_t dropped() const { return dropped_; }

 private:
  kafka_producer& producer_;
  std::string topic_;
  const clock& clock_;
  std::string buffer_;
  uint64_t published_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace relay
