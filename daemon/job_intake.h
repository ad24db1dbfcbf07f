#pragma once
// Job intake: validates a batch of relay.jobs messages, dead-letters the
// bad ones, accepts the rest into RocksDB (idempotent by job_id) and only
// then stores their Kafka offsets.
//
// @locality: core thread.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "daemon/config.h"
#include "daemon/event_publisher.h"
#include "daemon/fanout.h"
#include "daemon/kafka.h"
#include "routing/clock.h"
#include "routing/store.h"

namespace relay {

struct intake_stats {
  uint64_t received = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t dead_lettered = 0;
};

class job_intake {
 public:
  job_intake(store& db, const config& cfg, kafka_producer& producer, event_publisher& events,
             fanout& out, const clock& clk);

  // Loads the accept sequence; call once before process().
  result<void> start();

  // Handles one consumed batch. `store_offset(partition, next)` is called for
  // every partition of the batch once its messages are durable or dead-lettered.
  template <class StoreOffset>
  void process(message_batch& batch, StoreOffset&& store_offset) {
    handle(batch);
    for (auto [partition, next] : offsets_) store_offset(partition, next);
  }

  // Jobs per partition accepted but not yet fully handed to connectors (they
  // wait for carrier capacity), for back-pressure.
  size_t pending(int32_t partition) const;
  void job_handed(int32_t partition);
  const intake_stats& stats() const { return stats_; }

 private:
  void handle(message_batch& batch);
  void dead_letter(const rd_kafka_message_t* m, const std::string& reason);

  store& db_;
  const config& config_;
  kafka_producer& producer_;
  event_publisher& events_;
  fanout& fanout_;
  const clock& clock_;
  uint64_t next_seq_ = 1;
  std::vector<std::pair<int32_t, int64_t>> offsets_;
  std::vector<size_t> pending_;  // by partition
  intake_stats stats_;
};

}  // namespace relay
