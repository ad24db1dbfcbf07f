#pragma once
// Durable timers (`timers` column family): sends waiting for their window,
// pending fallbacks and resends, follow-ups. They survive restarts; due times
// are absolute wall-clock instants from the injected clock, so a clock jumped
// forward fires everything then due and one jumped back delays, and neither
// loses nor repeats a timer (a timer goes when the caller removes it, in the
// batch that records what firing it did).
//
// Key:   be64(due ms) be64(job accept seq) be32(recipient ordinal) kind attempt   (22 bytes)
// Value: payload (the fan-out's own encoding)
// Keys sort by due time, so what is due is a prefix of the column family.
//
// Fired timers leave tombstones at the head of that prefix until compaction
// drops them. Each store remembers a floor: no live timer is due before it
// (see floor_ms_), and reads seek there, past the tombstones of what this
// store has already fired. One timer_store per database. After a restart the first read walks them
// once, and asks RocksDB to compact the range when there were many.
//
// Owned and used by the core thread only (not thread-safe).

#include <rocksdb/write_batch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "routing/clock.h"
#include "routing/result.h"
#include "routing/store.h"

namespace relay {

enum class timer_kind : uint8_t { send = 1, fallback = 2, resend = 3, follow_up = 4 };

struct timer {
  sys_time due;
  uint64_t job_seq = 0;  // the job's accept sequence (job_store.h)
  uint32_t ordinal = 0;  // the recipient
  timer_kind kind = timer_kind::send;
  uint8_t attempt = 0;  // which fallback step / resend / follow-up this is
  std::string payload;  // small, opaque to the store
};

inline constexpr size_t kTimerKeyBytes = 22;
void timer_key(const timer& t, std::string& out);        // replaces out
bool parse_timer_key(std::string_view key, timer& out);  // payload untouched; false when malformed

class timer_store {
 public:
  explicit timer_store(store& db);

  void add(rocksdb::WriteBatch& batch, const timer& t);  // the caller writes the batch
  void remove(rocksdb::WriteBatch& batch,
              const timer& t);  // by (due, job_seq, ordinal, kind, attempt)

  // Up to `limit` timers with due <= now, earliest first, skipping those for
  // which skip(t) is true (the caller's in-flight ones). Reads what the caller
  // has written. Costs the timers it reads (returned or skipped), not the
  // timers pending: it stops at the first key due after `now`.
  result<std::vector<timer>> due(sys_time now, size_t limit,
                                 const std::function<bool(const timer&)>& skip = {});

  // The earliest due time of any stored timer (to arm the core loop's
  // wake-up); nullopt when none.
  result<std::optional<sys_time>> next_due();

  // Every stored timer once (start-up: per-job counts).
  result<void> for_each(const std::function<void(const timer&)>& fn);

  // Live entries and tombstones the last due()/next_due() stepped over
  // (counted by RocksDB's perf context; for tests and the bench).
  struct scan_cost {
    uint64_t entries = 0;     // live timers read
    uint64_t tombstones = 0;  // deleted entries skipped
  };
  scan_cost last_scan_cost_for_test() const { return last_cost_; }

 private:
  // Positions a scan at the floor; `upper_ms` bounds it (exclusive) or 0 for none.
  template <class Fn>
  result<void> scan(uint64_t upper_ms, Fn&& on_entry);
  void raise_floor(uint64_t first_live_ms);

  store& db_;
  // No live timer, written or in a batch given to add(), is due before
  // floor_ms_. add() lowers it; a scan raises it to the first live key it
  // finds, but never above a timer added and not yet seen written (the
  // caller may write that batch after the read): each scan looks those up
  // (one MultiGet) and keeps the ones still missing. Timers the core loop
  // adds and writes between two reads cost one lookup each; a batch never
  // written pins the floor at its earliest timer (reads slow down, stay
  // right). Past kMaxUnconfirmed adds between two reads the floor stops
  // rising until the store is reopened.
  static constexpr size_t kMaxUnconfirmed = 1 << 20;
  uint64_t floor_ms_ = 0;
  std::vector<std::array<char, kTimerKeyBytes>> unconfirmed_;
  bool floor_frozen_ = false;
  uint64_t unconfirmed_min_ms();  // looks them up; min due of the missing ones, or max
  std::vector<rocksdb::Slice> lookup_keys_;
  std::vector<rocksdb::PinnableSlice> lookup_values_;
  std::vector<rocksdb::Status> lookup_status_;
  std::string key_;            // reused
  std::string lower_, upper_;  // iterator bounds (must outlive the iterator)
  scan_cost last_cost_;
  bool compaction_suggested_ = false;
};

}  // namespace relay
