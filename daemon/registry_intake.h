#pragma once
// Keeps this instance's registry replica up to date from the compacted
// relay.registry topic. Records are applied in partition order; each consumed
// batch is one RocksDB write that also carries the next offsets, so a restart
// resumes exactly after the last applied record. A malformed record is
// logged (without personal data), counted and skipped, never half-applied.
//
// @locality: core thread.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/kafka.h"
#include "routing/clock.h"
#include "routing/registry.h"
#include "routing/store.h"

namespace relay {

class registry_intake {
 public:
  registry_intake(store& db, const config& cfg, const clock& clk);
  ~registry_intake();

  // Connects to the topic at the stored offsets. When the cluster is not the
  // one the offsets came from (a new embedded cluster), starts from the
  // beginning: records are idempotent.
  result<void> start(const std::string& bootstrap);

  // Applies up to `max` records; returns how many messages were consumed.
  size_t step(size_t max, std::chrono::milliseconds timeout);

  // Applies records until every partition reaches the high watermark seen at
  // the call, or `timeout` passes. Returns true when caught up.
  bool catch_up(std::chrono::milliseconds timeout);

  int wake_fd() const { return consumer_ ? consumer_->wake_fd() : -1; }
  void clear_wake() { if (consumer_) consumer_->clear_wake(); }
  uint64_t applied() const { return applied_; }
  uint64_t rejected() const { return rejected_; }
  void close();

 private:
  store& db_;
  const config& config_;
  const clock& clock_;
  std::unique_ptr<kafka_consumer> consumer_;
  std::vector<int64_t> next_offsets_;  // by partition
  message_batch batch_;
  uint64_t applied_ = 0;
  uint64_t rejected_ = 0;
};

// meta CF keys for the registry replica's position.
std::string registry_offset_key(int32_t partition);
inline constexpr const char* kRegistryClusterKey = "registry_cluster";

}  // namespace relay
