#pragma once
// relay's Kafka clients over librdkafka: the embedded cluster, a producer for
// events and dead letters, and a consumer for jobs (consumer group) or the
// registry (manual assignment, offsets kept by relay in RocksDB).
//
// Threads: each object is used from one thread (relay's core thread);
// librdkafka runs its own threads underneath.

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/config.h"
#include "routing/result.h"

typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace relay {

// librdkafka's Kafka-protocol mock cluster, hosted in this process, listening
// on 127.0.0.1. Keeps nothing across restarts, and each partition keeps only
// its newest ~5 MiB (librdkafka's mock limit): a reader further behind skips
// the dropped messages (librdkafka logs an offset reset warning). Topics are
// not created by consumers' metadata requests (Metadata v4 is offered).
// Each call into the mock (start, create_topic, destruction) may take up to
// ~1 s: the mock thread sometimes only notices a command at its 1 s poll.
// @locality: any thread; the brokers run on librdkafka's own threads. Destroy
// it after every client connected to it.
class embedded_kafka {
 public:
  // Starts `brokers` brokers and creates every topic of `topics` with
  // `partitions` partitions.
  static result<std::unique_ptr<embedded_kafka>> start(const kafka_topics& topics, int partitions,
                                                       int brokers = 1);
  ~embedded_kafka();
  const std::string& bootstrap() const { return bootstrap_; }
  rd_kafka_mock_cluster_t* cluster() const { return cluster_; }  // fault injection (tests)
  // Creates one more topic (tests).
  result<void> create_topic(const std::string& topic, int partitions);

 private:
  embedded_kafka() = default;
  rd_kafka_t* handle_ = nullptr;  // owns the cluster
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
};

// The bootstrap servers to use: the embedded cluster's address when brokers
// is "embedded" (read from <data_dir>/kafka.bootstrap for clients), else the list.
result<std::string> resolve_bootstrap(const config& cfg);
std::string bootstrap_file(const config& cfg);  // <data_dir>/kafka.bootstrap
// relayd, after embedded_kafka::start: writes `bootstrap` to bootstrap_file(cfg)
// (via a temporary file and rename, so a reader never sees half a line).
result<void> write_bootstrap_file(const config& cfg, const std::string& bootstrap);

struct kafka_header {
  std::string_view name;
  std::string_view value;
};

// @locality: any one thread at a time (relay's core thread); delivery reports
// are served on the thread that calls produce(), poll() or flush().
class kafka_producer {
 public:
  // Idempotent producer (enable.idempotence=true) with cfg.kafka.properties applied.
  static result<std::unique_ptr<kafka_producer>> create(const kafka_config& cfg,
                                                        const std::string& bootstrap);
  ~kafka_producer();  // flushes up to 5 s

  // Queues one message (bytes copied; an empty key is sent as a null key).
  // When librdkafka's local queue is full it serves delivery reports and
  // retries for up to `max_block`, then fails with errc::busy. The first
  // message to a topic looks the topic up (at most max_block, capped at 5 s):
  // a topic the cluster does not have fails with errc::not_found naming it.
  result<void> produce(std::string_view topic, std::string_view key, std::string_view value,
                       std::span<const kafka_header> headers = {},
                       std::chrono::milliseconds max_block = std::chrono::milliseconds(5000));

  // Serves delivery reports; non-blocking.
  void poll();
  // Waits until everything queued is delivered or `timeout` passes.
  result<void> flush(std::chrono::milliseconds timeout);

  uint64_t delivered() const { return delivered_; }
  uint64_t failed() const { return failed_; }  // permanently failed deliveries (logged)
  size_t queued() const;                       // not yet delivered
  rd_kafka_t* handle() const { return rk_; }

 private:
  kafka_producer() = default;
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t*, void*);
  static void on_error(rd_kafka_t*, int, const char*, void*);
  result<rd_kafka_topic_t*> topic_handle(std::string_view topic, std::chrono::milliseconds wait);
  struct topic_entry {
    std::string name;
    rd_kafka_topic_t* rkt;
  };
  rd_kafka_t* rk_ = nullptr;
  std::string bootstrap_;
  std::vector<topic_entry> topics_;  // few (events, dlq): a linear search, no allocation
  uint64_t delivered_ = 0;
  uint64_t failed_ = 0;
  uint32_t since_poll_ = 0;                               // produce() serves reports every so often
  std::vector<int> logged_delivery_errors_;               // error kinds already logged once
  std::vector<std::pair<int, int64_t>> error_log_times_;  // client errors: code -> last log (ms)
};

// A batch of consumed messages; destroys them when it goes.
class message_batch {
 public:
  message_batch() = default;
  ~message_batch() { clear(); }
  message_batch(const message_batch&) = delete;
  message_batch& operator=(const message_batch&) = delete;
  void clear();
  std::vector<rd_kafka_message_t*>& items() { return items_; }
  size_t size() const { return items_.size(); }
  rd_kafka_message_t* operator[](size_t i) const { return items_[i]; }

 private:
  std::vector<rd_kafka_message_t*> items_;
};

inline std::string_view payload(const rd_kafka_message_t* m) {
  return {static_cast<const char*>(m->payload), m->len};
}
inline std::string_view key(const rd_kafka_message_t* m) {
  return {static_cast<const char*>(m->key), m->key_len};
}

// @locality: one thread (relay's core thread). The rebalance listener runs on
// that thread too, from inside consume() and close().
//
// Every message_batch filled by consume() must be cleared before the consumer
// is destroyed (messages hold references into librdkafka's handle).
class kafka_consumer {
 public:
  // Called on the core thread from inside consume() (and close()) when the
  // group assigns or revokes partitions of the subscribed topic. on_revoked
  // runs before the partitions are given up, so offsets stored there are
  // committed; messages of a revoked partition are not returned by consume()
  // after on_revoked. The listener must outlive the consumer.
  class rebalance_listener {
   public:
    virtual ~rebalance_listener() = default;
    virtual void on_assigned(std::span<const int32_t> partitions) = 0;
    virtual void on_revoked(std::span<const int32_t> partitions) = 0;
  };

  // Group member subscribed to `topic` (group cfg.group_id) with
  // enable.auto.offset.store=false and auto commit of stored offsets.
  static result<std::unique_ptr<kafka_consumer>> subscribe(const kafka_config& cfg,
                                                           const std::string& bootstrap,
                                                           const std::string& topic,
                                                           rebalance_listener* listener);

  // No group: reads every partition of `topic` from the given offsets
  // (partitions missing from `start` begin at the beginning). For the
  // registry replica, whose offsets relay keeps in RocksDB.
  static result<std::unique_ptr<kafka_consumer>> assign_all(
      const kafka_config& cfg, const std::string& bootstrap, const std::string& topic,
      std::span<const std::pair<int32_t, int64_t>> start, std::chrono::milliseconds timeout);

  ~kafka_consumer();  // close()

  // Appends up to `max` messages to `out`, waiting at most `timeout` for the
  // first (then takes what is already there, without waiting for more), and
  // returns how many. Fewer than `max` means librdkafka's queue was empty.
  // Error events (e.g. broker down) are logged, not returned as messages.
  size_t consume(message_batch& out, size_t max, std::chrono::milliseconds timeout);

  // Records that everything before `next_offset` in `partition` is done; the
  // auto commit sends it. A partition no longer assigned is ignored.
  void store_offset(int32_t partition, int64_t next_offset);
  void pause(int32_t partition);
  void resume(int32_t partition);

  // A descriptor that becomes readable when messages are waiting (for the
  // core loop's poll); drain it with clear_wake(), then consume() until it
  // returns less than asked (librdkafka writes once per empty->non-empty
  // transition of its queue). -1 after close().
  int wake_fd() const { return wake_fd_[0]; }
  void clear_wake();

  // Commits stored offsets synchronously (shutdown).
  result<void> commit();
  // Leaves the group (after commit()).
  void close();

  // The cluster id the consumer is connected to ("" if unknown within timeout).
  std::string cluster_id(std::chrono::milliseconds timeout);
  // Partition count of `topic` (0 if unknown).
  int partition_count(const std::string& topic, std::chrono::milliseconds timeout);
  // High watermark (next offset to be written) of one partition.
  result<int64_t> high_watermark(int32_t partition, std::chrono::milliseconds timeout);

  const std::string& topic() const { return topic_; }
  rd_kafka_t* handle() const { return rk_; }

 private:
  kafka_consumer() = default;
  static void on_rebalance(rd_kafka_t*, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t*,
                           void*);
  // Shared tail of subscribe() and assign_all(): handle, consumer queue, wake pipe.
  static result<std::unique_ptr<kafka_consumer>> create(rd_kafka_conf_t* conf,
                                                        const std::string& topic, bool group,
                                                        rebalance_listener* listener);
  // Compact items[from, from + n) in place, destroying error events / messages
  // of partitions not assigned; return how many stay.
  size_t keep_messages(std::vector<rd_kafka_message_t*>& items, size_t from, size_t n);
  size_t drop_unowned(std::vector<rd_kafka_message_t*>& items, size_t from, size_t n);
  void log_consumer_error(const rd_kafka_message_t* m);
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;
  rebalance_listener* listener_ = nullptr;
  std::string topic_;
  int wake_fd_[2] = {-1, -1};
  bool closed_ = false;
  bool group_ = false;  // subscribe(): commits; assign_all(): never
  rd_kafka_topic_partition_list_t* store_list_ = nullptr;  // one element, reused by store_offset()
  std::vector<uint8_t> assigned_;                          // by partition, kept by on_rebalance
  uint64_t rebalances_ = 0;                                // bumped by on_rebalance
  std::vector<std::pair<int, int64_t>> error_log_times_;   // error code -> last log (ms)
};

}  // namespace relay
