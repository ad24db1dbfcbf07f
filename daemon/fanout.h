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
// A chunk is started only when every connector it needs has room for all of
// its messages, so the in-flight window bounds memory; jobs that cannot
// start wait, and the service pauses their Kafka partitions (see
// pending_jobs()).
//
// @locality: core thread only.

#include <rocksdb/write_batch.h>
#include "routing/roaring_compat.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/config.h"
#include "daemon/connector.h"
#include "daemon/event_publisher.h"
#include "routing/directory.h"
#include "routing/job.h"
#include "routing/counters.h"
#include "routing/job_store.h"
#include "routing/store.h"

namespace relay {

struct active_job {
  std::string job_id;
  job spec;
  job_context context;
  roaring::Roaring target;
  job_progress progress;
  uint64_t seq = 0;
  int32_t partition = -1;
  std::deque<chunk_range> resume_chunks;   // recorded before a restart; re-submitted first
  uint32_t open_chunks = 0;                // started and not yet complete
  bool handed_all = false;                 // every recipient is in a started chunk
};

struct fanout_stats {
  uint64_t chunks_started = 0;
  uint64_t chunks_completed = 0;
  uint64_t messages_submitted = 0;
  uint64_t recipients_sent = 0;
  uint64_t recipients_failed = 0;
  uint64_t recipients_no_route = 0;
  uint64_t jobs_finished = 0;
};

class fanout final : public connector_listener {
 public:
  fanout(store& db, const config& cfg, event_publisher& events, const clock& clk);

  // The connectors, indexed by carrier (config order) * kChannelCount +
  // channel; null where that carrier has no such channel. Set once, before
  // the first job (the connectors need the fan-out as their listener first).
  void attach(std::vector<connector*> connectors);
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

  bool has_startable_work() const { return !plan_queue_.empty(); }
  size_t active_jobs() const { return jobs_.size(); }
  size_t in_flight_chunks() const { return chunks_in_use_; }
  const fanout_stats& stats() const { return stats_; }
  const active_job* find(std::string_view job_id) const;

  // connector_listener
  void on_outcome(connector& c, const connector_outcome& outcome) override;
  void on_event(connector& c, const plugin_event& event) override;

 private:
  struct recipient_state {
    uint32_t user_offset = 0;  // into chunk::users
    uint16_t user_size = 0;
    uint16_t outstanding = 0;   // submissions without an outcome
    int16_t accepted_by = -1;   // connector index of the first acceptance
    int16_t last_connector = -1;
  };
  struct chunk {
    active_job* job = nullptr;
    chunk_range range;
    bool resumed = false;
    uint32_t outstanding_recipients = 0;
    std::string users;  // user ids of the chunk's recipients, back to back
    std::vector<recipient_state> recipients;
    uint64_t sent = 0, failed = 0, no_route = 0;
    std::vector<uint32_t> sent_by_connector, failed_by_connector;
  };
  struct planned {
    uint32_t chunk_slot;
    uint32_t recipient;
    uint16_t connector;
    channel ch;
    uint32_t address_offset;  // into plan_arena_
    uint16_t address_size;
  };

  bool plan_chunk(active_job& job, size_t& budget);
  void route_recipient(active_job& job, const recipient& r, uint32_t chunk_slot, uint32_t index,
                       chunk& c);
  uint32_t allocate_chunk();
  void finish_recipient(chunk& c, uint32_t index, uint32_t slot, std::string_view detail);
  void complete_chunk(uint32_t slot);
  void finish_job(active_job& job);
  void update_handed(active_job& job);
  void put_progress(const active_job& job);
  std::string_view user_of(const chunk& c, uint32_t index) const;

  store& db_;
  const config& config_;
  std::vector<connector*> connectors_;
  std::vector<std::string> carrier_ids_;  // carrier index -> id
  event_publisher& events_;
  const clock& clock_;
  directory_reader directory_;

  std::unordered_map<std::string, std::unique_ptr<active_job>> jobs_;
  std::deque<active_job*> plan_queue_;  // jobs with recipients not yet in a chunk

  std::vector<std::unique_ptr<chunk>> chunks_;
  std::vector<uint32_t> free_chunks_;
  size_t chunks_in_use_ = 0;

  // Per step: the messages planned, their addresses, per-connector demand.
  std::vector<planned> plan_;
  std::string plan_arena_;
  std::vector<uint32_t> demand_;
  std::vector<uint32_t> demand_mark_;
  std::vector<uint32_t> started_;  // chunk slots started in this step
  std::vector<uint32_t> ordinals_;

  rocksdb::WriteBatch pending_;
  counter_batch counters_;  // written with pending_, so counts and chunk records move together
  std::function<void(const active_job&)> on_handed_;
  fanout_stats stats_;
};

}  // namespace relay
