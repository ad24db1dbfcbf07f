#pragma once
// What happens to a message after a carrier accepted it: delivery receipts,
// reads, opens, clicks and late failures, from plug-ins (callback_emit_event)
// and from relay's own tracking URLs. Each is matched to the send log
// (routing/send_log.h), published on relay.events with the job, company and
// user it belongs to, and counted — once per message and kind, however often
// a carrier repeats a webhook or a reader reloads a pixel.
//
// Events are queued as they arrive and resolved in process(), after the
// fan-out's batch (which holds the send records of just-accepted messages) is
// written, so a receipt that arrives in the same turn as its acceptance still
// finds its record. An event whose record is not there yet (a receipt can
// overtake the submit response) is retried for `kUnmatchedGrace`, then
// dropped and counted as unmatched.
//
// @locality: core thread only.

#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "daemon/connector.h"
#include "daemon/event_publisher.h"
#include "routing/clock.h"
#include "routing/counters.h"
#include "routing/engagement.h"
#include "routing/send_log.h"
#include "routing/store.h"

namespace relay {

struct delivery_stats {
  uint64_t received = 0;    // events queued
  uint64_t counted = 0;     // first of their kind for their message: published and counted
  uint64_t repeated = 0;    // a kind the message already had (repeated webhook, reloaded pixel)
  uint64_t unmatched = 0;   // no send record (unknown id, or older than the retention)
  uint64_t inbound = 0;     // user replies
};

class delivery_events {
 public:
  delivery_events(store& db, event_publisher& events, engagement& eng, const clock& clk);

  // Adds the send record (and the carrier's reference, when it gave one) of
  // an accepted message to `batch`, the fan-out's batch with its outcome.
  // `first`: the first carrier to accept it (multi-carrier sends accept more
  // than once; only the first writes the record, every one writes its ref).
  void record_send(rocksdb::WriteBatch& batch, std::string_view message_id, const send_record& record,
                   std::string_view carrier_ref, bool first);

  // A plug-in's event, reported by the connector of (carrier, channel).
  void add(std::string_view carrier_id, channel ch, const plugin_event& event);
  // An open or click on relay's tracking URLs (already verified).
  // `location`: where the reader was, when the request said (counted by location).
  void add_tracking(relay_event_type type, std::string_view message_id, std::string_view location = {});

  // Resolves queued events; writes the records' new `seen` bits and the
  // counters in one batch. Call after the fan-out's batch is written.
  result<void> process();

  bool has_work() const { return !queue_.empty(); }

  // Called once per message, when its first open (or click) is counted —
  // in process(), before its batch is written (on_open follow-ups).
  void on_first_open(std::function<void(const send_record&)> fn) { on_first_open_ = std::move(fn); }
  const delivery_stats& stats() const { return stats_; }

 private:
  struct queued {
    relay_event_type type;
    std::string carrier_id;  // empty for tracking events
    channel ch = channel::sms;
    std::string message_id, carrier_ref, reason, detail, location;
    int64_t at_unix_ms = 0;
    sys_time give_up{};
  };

  // The message id of `e`: its own, or the one its carrier reference maps to.
  std::string resolve_id(const queued& e);
  void apply(const queued& e, const std::string& id, send_record& r);

  store& db_;
  event_publisher& events_;
  engagement& eng_;  // counts each event once, with its send's dimensions
  const clock& clock_;
  std::deque<queued> queue_;
  std::deque<queued> parked_;  // not matched yet; retried until give_up
  rocksdb::WriteBatch batch_;
  counter_batch counters_;
  std::string key_, value_;  // reused buffers
  delivery_stats stats_;
  std::function<void(const send_record&)> on_first_open_;
};

}  // namespace relay
