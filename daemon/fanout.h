#pragma once
// Fan-out: turns accepted jobs into messages on carrier connectors, with
// durable checkpoints so a crash resumes without sending twice.
//
// A job's recipients (a bitmap of user ordinals fixed at accept) are handed
// out in chunks of ascending ordinals. Before a chunk's messages are
// submitted, its range is recorded in RocksDB together with the job's
// advanced cursor; when every message of the chunk has a final outcome the
// record is deleted in the same write as the chunk's counters. After a crash
// the recorded chunks are submitted again flagged MAY_BE_DUPLICATE, under the
// same deterministic message ids, so the carrier (or file_sink) drops what it
// already has; everything past the cursor is sent normally.
//
// Carriers never hold each other up: a recipient whose connector has no room
// (slow, throttling or down carrier) is written to that connector's outbox
// (routing/outbox.h) in the chunk's batch, and the rest of the chunk goes
// out. Each outbox drains, oldest first, as its connector frees up; a
// recipient drained from it is accounted like any chunk's. In-flight windows
// bound memory; the outboxes are on disk. While a connector has an outbox,
// new recipients for it queue behind it.
//
// Accepted messages are recorded in the send log (delivery_events) with
// their outcome, so later receipts, opens and clicks find their job.
//
// @locality: core thread only.

#include <rocksdb/write_batch.h>
#include "routing/roaring_compat.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemon/config.h"
#include "daemon/connector.h"
#include "daemon/delivery_events.h"
#include "daemon/event_publisher.h"
#include "daemon/tracked_content.h"
#include "routing/directory.h"
#include "routing/engagement.h"
#include "routing/job.h"
#include "routing/counters.h"
#include "routing/job_store.h"
#include "routing/store.h"
#include "routing/tracking_token.h"

namespace relay {

struct active_job {
  std::string job_id;
  job spec;
  job_context context;
  roaring::Roaring target;
  job_progress progress;
  uint64_t seq = 0;
  int32_t partition = -1;
  sys_time accepted_at{};
  std::deque<chunk_range> resume_chunks;   // recorded before a restart; re-submitted first
  uint32_t open_chunks = 0;                // started and not yet complete
  uint64_t queued = 0;                     // recipients waiting in connector outboxes
  uint64_t timed = 0;                      // recipients waiting for a timer (window, quiet period, fallback)
  bool handed_all = false;                 // every recipient is in a started chunk or an outbox
  sys_time blocked_since{};                // waiting for connector room since (zero: not waiting)
  // The content's links and pixel, prepared once; each message signs its own
  // tokens into it. Empty: nothing to track (or tracking off).
  std::optional<tracked_content_template> tracked;
  // on_open's content as the plug-ins get it (context.content_json swapped).
  job_context follow_up_context;
  std::optional<tracked_content_template> follow_up_tracked;
  bool lingering = false;  // in fanout::lingering_
};

struct fanout_stats {
  uint64_t chunks_started = 0;
  uint64_t chunks_completed = 0;
  uint64_t messages_submitted = 0;
  uint64_t recipients_sent = 0;
  uint64_t recipients_failed = 0;
  uint64_t recipients_no_route = 0;
  uint64_t recipients_queued = 0;   // written to a connector's outbox
  uint64_t recipients_drained = 0;  // taken from an outbox and submitted
  uint64_t recipients_waiting = 0;  // given a timer (send window, quiet period)
  uint64_t recipients_expired = 0;
  uint64_t recipients_throttled = 0;
  uint64_t timers_fired = 0;
  uint64_t steps_scheduled = 0;     // fallbacks and resends given a timer
  uint64_t jobs_finished = 0;
};

// One connector's outbox as the fan-out tracks it.
struct outbox_status {
  uint64_t depth = 0;      // recipients waiting (in flight from the outbox included)
  uint64_t in_flight = 0;  // drained, outcome pending
};

class fanout final : public connector_listener {
 public:
  fanout(store& db, const config& cfg, event_publisher& events, delivery_events& delivery,
         engagement& eng, const clock& clk);

  // The connectors, indexed by carrier (config order) * kChannelCount +
  // channel; null where that carrier has no such channel. Set once, before
  // the first job (the connectors need the fan-out as their listener first).
  // Reads the outboxes left by a previous run; jobs resumed afterwards get
  // their queued counts from it.
  result<void> attach(std::vector<connector*> connectors);

  // Links and the open pixel are rewritten to relay's tracking URLs
  // (`base_url`/t/c/…, /t/o/…) signed by `signer`. Null: no tracking.
  void set_tracking(const tracking_signer* signer, std::string base_url);
  ~fanout() override;

  // Takes an accepted (or resumed) job.
  void add_job(std::unique_ptr<active_job> job);

  // Starts as many chunks as connectors have room for, up to about `budget`
  // messages: records them in the pending batch, writes it, then submits.
  // Returns the number of messages submitted.
  size_t step(size_t budget);

  // Writes the pending batch (chunk completions, counters, finished jobs).
  result<void> flush();

  // Called once per job when every recipient is in a started chunk: the job
  // no longer waits for carrier capacity (its partition's backlog shrinks).
  void on_job_handed(std::function<void(const active_job&)> fn) { on_handed_ = std::move(fn); }

  bool has_startable_work() const;
  size_t active_jobs() const { return jobs_.size(); }
  size_t in_flight_chunks() const { return chunks_in_use_; }
  const fanout_stats& stats() const { return stats_; }
  // By connector index (see attach).
  const std::vector<outbox_status>& outboxes() const { return outbox_status_; }
  // Timers not yet fired (the core loop wakes for them).
  uint64_t timers_pending() const { return timers_pending_; }
  const active_job* find(std::string_view job_id) const;

  // A message of a job was opened for the first time: the job's on_open
  // follow-up (if it has one) gets a timer. Its events' batch carries it.
  void on_first_open(const send_record& r);

  // connector_listener
  void on_outcome(connector& c, const connector_outcome& outcome) override;
  void on_event(connector& c, const plugin_event& event) override;

 private:
  struct recipient_state {
    uint32_t ordinal = 0;
    uint32_t user_offset = 0;  // into chunk::users: the user id, then gender, region, occupation
    uint16_t user_size = 0;
    uint8_t gender_size = 0, region_size = 0, occupation_size = 0;
    uint16_t outstanding = 0;   // submissions without an outcome
    int16_t accepted_by = -1;   // connector index of the first acceptance
    int16_t last_connector = -1;
    bool held = false;          // drained (or fired) but not admitted: stays in its outbox (or timer)
    // The send's place in the user's sequence and its local facts (engagement).
    uint8_t step = 0;           // message_id step (resends)
    uint8_t tried = 0;          // channel_bit mask of channels tried before (fallback)
    uint8_t age_band = 0, local_hour = kUnknownHour, weekday = kUnknownWeekday;
    int32_t local_day = 0;
  };
  struct chunk {
    active_job* job = nullptr;
    chunk_range range;
    bool resumed = false;
    int32_t drained_from = -1;  // connector index of the outbox it came from; -1: a job chunk
    bool from_timers = false;   // recipients whose timers fired; `timers` is parallel to `recipients`
    std::vector<timer> timers;
    uint32_t outstanding_recipients = 0;
    std::string users;  // user ids of the chunk's recipients, back to back
    std::vector<recipient_state> recipients;
    uint64_t sent = 0, failed = 0, no_route = 0, expired = 0, throttled = 0;
    std::vector<uint32_t> sent_by_connector, failed_by_connector;
  };
  struct planned {
    uint32_t chunk_slot;
    uint32_t recipient;
    uint16_t connector;  // or kNoRoute / kSkipped / kWait / kExpired / kThrottled
    channel ch;
    uint32_t address_offset;  // into plan_arena_ (the detail text for kWait / kThrottled)
    uint16_t address_size;
    uint8_t step = 0;
    int64_t at_ms = 0;        // kWait: when to look again
  };
  struct outbox_state {
    std::string prefix;                         // outbox_prefix(carrier, channel)
    std::string cursor;                         // last key drained; the next drain starts after it
    bool rewind = false;                        // a key before the cursor was added
    std::string recorded_before_start;          // greatest key found at start-up
    std::unordered_set<std::string> in_flight;  // drained keys whose outcome is pending
  };

  bool plan_chunk(active_job& job, size_t& budget);
  size_t drain_outbox(size_t k, size_t budget);
  // Appends the plan of one recipient; returns how many messages it needs
  // (0: none now — no route, waiting, expired or throttled, recorded as such).
  // `step`: which step of the user's sequence (fallback, resend) is planned.
  uint16_t route_recipient(active_job& job, const recipient& r, uint32_t chunk_slot, uint32_t index,
                           plan_step step = {}, uint8_t step_no = 0);
  // A recipient planned to get nothing now, once its chunk is committed: a
  // waiting one gets its timer; the others are counted.
  void settle_unsent(chunk& c, uint32_t index, const planned& p);
  size_t fire_timers(size_t budget);
  // After a message's outcome, in fallback and resend modes: the next step's timer.
  void schedule_next_step(chunk& c, uint32_t index, channel ch, bool accepted);
  void add_timer(active_job& job, const timer& t);
  void finish_lingering();
  // The job's follow-up content, with tracking like its own content.
  void prepare_follow_up(active_job& job);
  // Admits the recipient's planned messages if every connector they need has
  // room left in this step; takes the room.
  bool admit(size_t plan_begin, size_t plan_end, bool from_outbox);
  void start_recipient(chunk& c, uint32_t index, uint16_t messages);
  uint32_t allocate_chunk(active_job& job);
  void release_chunk(uint32_t slot);
  std::string outbox_key_of(const chunk& c, uint32_t index) const;
  void finish_recipient(chunk& c, uint32_t index, uint32_t slot, std::string_view detail);
  void complete_chunk(uint32_t slot);
  void finish_job(active_job& job);
  void update_handed(active_job& job);
  void put_progress(const active_job& job);
  std::string_view user_of(const chunk& c, uint32_t index) const;
  void maybe_finish(active_job& job);

  store& db_;
  const config& config_;
  std::vector<connector*> connectors_;
  std::vector<std::string> carrier_ids_;  // carrier index -> id
  event_publisher& events_;
  delivery_events& delivery_;
  const clock& clock_;
  directory_reader directory_;
  const tracking_signer* signer_ = nullptr;
  std::string tracking_base_;

  std::unordered_map<std::string, std::unique_ptr<active_job>> jobs_;
  std::unordered_map<uint64_t, active_job*> jobs_by_seq_;
  std::unordered_map<uint64_t, uint64_t> queued_at_start_;  // job seq -> outbox entries found by attach()
  std::unordered_map<uint64_t, uint64_t> timed_at_start_;   // job seq -> timers found by attach()
  std::unordered_set<std::string> timers_in_flight_;       // keys of fired timers whose recipients are out
  engagement& eng_;
  sys_time started_at_{};
  std::vector<outbox_state> outbox_;          // by connector index
  std::vector<outbox_status> outbox_status_;  // by connector index
  std::deque<active_job*> plan_queue_;  // jobs with recipients not yet in a chunk

  std::vector<std::unique_ptr<chunk>> chunks_;
  std::vector<uint32_t> free_chunks_;
  size_t chunks_in_use_ = 0;

  // Jobs kept only because an on_open follow-up may still come; finished
  // when their horizon (accepted_at + on_open.within) passes.
  std::vector<active_job*> lingering_;

  // Per step: the messages planned, their addresses, per-connector demand.
  std::vector<planned> plan_;
  std::string plan_arena_;
  std::vector<size_t> room_;        // per connector: messages it can still take in this step
  std::vector<size_t> demand_;      // per connector: messages of the chunk being planned
  std::vector<std::pair<size_t, size_t>> spans_;  // per recipient of that chunk: its [begin, end) in plan_
  std::vector<uint32_t> started_;  // chunk slots started in this step
  std::vector<uint32_t> ordinals_;

  uint64_t timers_pending_ = 0;
  rocksdb::WriteBatch pending_;
  counter_batch counters_;  // written with pending_, so counts and chunk records move together
  std::function<void(const active_job&)> on_handed_;
  fanout_stats stats_;
};

}  // namespace relay
