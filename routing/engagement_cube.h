#pragma once
// The engagement counting cube (DESIGN §6, issue 4 "Counting"): counts of
// messages by their dimensions (engagement_dims.h) and the time bucket of
// their send, in the `engagement` column family. Values are arrays of
// kEngagementCounts uint64 LE in engagement_count order, added by the
// column family's array-add merge operator, so counting is blind writes.
//
// Rows (see docs/decisions/0012-engagement-counting.md):
//   dimension rows  'c' company level bucket carrier channel gender age_band
//                       region occupation local_hour weekday
//   location rows   'l' company level bucket carrier channel location
// Strings are length-prefixed (varint), so any byte in a value stays inside
// its field; level is 'h' (UTC hour), 'd' (UTC day) or 'm' (UTC month) and
// bucket is the hours / days / months since 1970 as 4 bytes big-endian, so
// one company's rows of one level over a time range are one key range.
//
// Location rows count only what happened somewhere (opens, clicks): sends
// are not known per location, so their `sent` is 0 and their open rate is
// empty. Query them by grouping by `location`.
//
// Thread: everything here runs on the caller's thread (relayd's core
// thread for engagement_batch and roll_up; relayctl for queries, on a
// secondary store). Nothing here writes to the store: the caller writes the
// batch it passes.

#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/channel.h"
#include "routing/clock.h"
#include "routing/engagement_dims.h"
#include "routing/result.h"
#include "routing/store.h"

namespace relay {

// relayctl stats --by names: company carrier channel gender age_band region
// occupation hour weekday location day.
std::string_view to_string(engagement_dimension d);
std::optional<engagement_dimension> parse_engagement_dimension(std::string_view name);

// Sums counts in memory; flush_into() appends one Merge per touched row to
// the caller's batch. Owned and used by one thread (relayd's core thread).
// Row keys are encoded straight into an arena and found through an
// open-addressing table; both keep their capacity across flushes, so once
// warmed up to the largest interval's row count, add() allocates nothing.
class engagement_batch {
 public:
  // Counts `n` of `what` for a message with dimensions `d` sent at
  // `sent_at`, in the UTC hour of the send (events of a message are counted
  // in the bucket of its send, not of the event).
  void add(const engagement_dims& d, sys_time sent_at, engagement_count what, uint64_t n = 1);
  // Opens/clicks by where they happened (when an event carries a location,
  // e.g. a country code). Location rows keep no sends (see above).
  void add_location(std::string_view company, std::string_view carrier, channel ch,
                    std::string_view location, sys_time sent_at, engagement_count what,
                    uint64_t n = 1);
  // Appends one Merge per row counted since the last flush, in key order,
  // and forgets them.
  void flush_into(rocksdb::WriteBatch& batch, store& db);
  bool empty() const { return rows_.empty(); }
  size_t rows() const { return rows_.size(); }  // distinct rows pending

 private:
  struct row {
    uint64_t hash;
    uint32_t key_at, key_len;  // in arena_
    uint32_t slot;             // in slots_
    engagement_counts counts;
  };
  static_assert(sizeof(engagement_counts) == 8 * kEngagementCounts);
  // Counts into the row whose key was just encoded at arena_[key_at..].
  void count(size_t key_at, engagement_count what, uint64_t n);
  void grow();

  std::string arena_;            // pending rows' keys, back to back
  std::vector<row> rows_;        // pending rows, in first-count order
  std::vector<uint32_t> slots_;  // 1 + index into rows_, 0 = free; size a power of two
  struct sorted_key {
    const char* key;
    uint32_t len, row;
  };
  std::vector<sorted_key> order_;  // reused to sort rows by key at flush
  std::string value_;              // reused to encode values at flush
};

struct engagement_query {
  // e.g. {carrier, channel, hour}; empty = one total row
  std::vector<engagement_dimension> group_by;
  std::string company, carrier;  // filters; empty = all
  std::optional<channel> ch;
  // Send time: rows whose bucket overlaps [since, until). Old data is kept in
  // day and month buckets (roll_up), so for it `since` is rounded down to the
  // start of the day or month holding it.
  sys_time since{}, until = sys_time::max();
};

struct engagement_row {
  // One value per group_by dimension, as printed: channel "rcs", age_band
  // "20-29", hour "09", weekday "mon", day "2026-11-23" ("2026-11" for
  // data rolled up into months), unknown values "".
  std::vector<std::string> key;
  engagement_counts counts;
};

// Rows sorted by key (each dimension in its natural order: hours and
// weekdays by number, channels rcs, sms, email, the rest as text); each
// row's counts summed over every matching stored row. Grouping by
// `location` reads the location rows only and can be combined with company,
// carrier, channel and day only (errc::invalid_argument otherwise). Stored
// rows whose key or value cannot be read are skipped.
result<std::vector<engagement_row>> query_engagement(store& db, const engagement_query& q);

// Every dimension row (not location rows) whose bucket ends after `since`,
// with its decoded dimensions; the views are valid during the call. For building models at start-up
// (e.g. the channel choice's segments).
result<void> scan_engagement(
    store& db, sys_time since,
    const std::function<void(const engagement_dims&, const engagement_counts&)>& fn);

struct rollup_policy {
  std::chrono::hours hourly_for{24 * 7};  // hourly buckets older than this become daily
  std::chrono::hours daily_for{24 * 90};  // daily buckets older than this become monthly
};
struct rollup_result {
  uint64_t rows_read = 0, rows_written = 0;
  bool more = false;
};

// Folds buckets older than the policy into coarser ones: reads at most
// `max_rows` rows, adds them (Merge) into their day or month row and deletes
// them, in `batch`. The caller must write the batch right away with no other
// write to the engagement family in between, so no count is lost or doubled.
// A day is folded once all of it is older than `hourly_for` (a month once
// all of it is older than `daily_for`), so a day is either hourly or daily.
// Idempotent once written; `more` says call again. A late event for an
// hour already folded merges into the (deleted) hourly row and the next
// call folds it in.
result<rollup_result> roll_up(store& db, sys_time now, const rollup_policy& p, size_t max_rows,
                              rocksdb::WriteBatch& batch);

}  // namespace relay
