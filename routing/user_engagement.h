#pragma once
// Per-user engagement (DESIGN §6): what each user was sent and opened, how
// engaged they are lately, how many messages they got today and this week, and
// whether an exclusive send holds them quiet. Read per recipient by the
// fan-out (channel choice, throttle, quiet periods), so it lives in memory as
// a dense table indexed by the user's ordinal: one 64-byte record per user,
// no hash lookup per recipient. 1M users = 64 MB, plus one dirty bit each.
//
// Persisted in the `user_stats` column family:
//   'u' be32(ordinal)                      -> encode_user_record (global record)
//   'c' company '\0' be32(ordinal)         -> encode_cap_counts (per-company caps)
// Records changed since the last flush are written by flush_into() into the
// caller's batch; load() reads them all back at start-up.
//
// Thread: the core thread only (not thread-safe). Time comes from arguments.

#include <rocksdb/write_batch.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "routing/channel.h"
#include "routing/clock.h"
#include "routing/engagement_dims.h"
#include "routing/result.h"
#include "routing/store.h"

namespace relay {

// Days are the caller's local day index (days since 1970-01-01 in the user's
// time zone); weeks are any index that changes exactly when the week does
// (week_of_day() gives Monday-based ISO weeks). Records keep only their low 16
// bits ("tags"), compared for equality: a stale count is mistaken for today's
// only if the user was last sent to exactly 65536 days (179 years) ago.
constexpr int32_t week_of_day(int64_t local_day) {
  // 1970-01-01 was a Thursday; the Monday before it is day -3.
  const int64_t d = local_day + 3;
  return static_cast<int32_t>(d >= 0 ? d / 7 : (d - 6) / 7);
}

// Sends in one day and one week, for a cap. 8 bytes.
struct cap_counts {
  uint16_t day = 0;         // tag of the local day of day_sends
  uint16_t day_sends = 0;   // saturating
  uint16_t week = 0;        // tag of the week of week_sends
  uint16_t week_sends = 0;  // saturating

  uint32_t sends_on_day(int64_t local_day) const {
    return day == static_cast<uint16_t>(local_day) ? day_sends : 0;
  }
  uint32_t sends_in_week(int32_t local_week) const {
    return week == static_cast<uint16_t>(local_week) ? week_sends : 0;
  }
  void count_send(int64_t local_day, int32_t local_week);
};

// One user's global record: 64 bytes (static_assert below). Field widths are
// chosen to fit: per-channel sends and opens are uint32, lifetime totals of
// delivered/clicked/failed are uint16 (all saturating), seconds are uint32
// (unix seconds, good until 2106), the quiet holder's job seq keeps 48 bits
// (2.8e14 jobs).
struct user_record {
  std::array<uint32_t, kChannelCount> sent{};
  std::array<uint32_t, kChannelCount> opened{};
  // Exponentially decayed sends and opens as of recent_at_s (half-life set by
  // user_engagement_params); their ratio is the recent open rate.
  float recent_sends = 0;
  float recent_opens = 0;
  uint32_t recent_at_s = 0;  // 0: nothing ever counted
  // Exclusive-send reservation [quiet_from_s, quiet_until_s), held by a job.
  uint32_t quiet_from_s = 0;
  uint32_t quiet_until_s = 0;
  uint32_t quiet_seq_lo = 0;
  uint16_t quiet_seq_hi = 0;
  uint16_t delivered = 0;
  uint16_t clicked = 0;
  uint16_t failed = 0;
  cap_counts caps;  // global (all companies)

  uint64_t quiet_job_seq() const { return (uint64_t(quiet_seq_hi) << 32) | quiet_seq_lo; }
  bool has_quiet() const { return quiet_until_s != 0; }
  bool empty() const { return recent_at_s == 0 && quiet_until_s == 0; }
  uint64_t total_sent() const { return uint64_t(sent[0]) + sent[1] + sent[2]; }
  uint64_t total_opened() const { return uint64_t(opened[0]) + opened[1] + opened[2]; }
};
static_assert(sizeof(user_record) == 64, "keep the dense per-user record at 64 bytes");

// Decayed sends and opens brought forward to `now` (no change when now is
// before the record's time).
struct recent_engagement {
  double sends = 0;
  double opens = 0;
  // opens / sends; nullopt when nothing was sent lately.
  std::optional<double> rate() const {
    if (sends <= 0) return std::nullopt;
    return opens / sends;
  }
};
recent_engagement decayed(const user_record& r, sys_time now, std::chrono::seconds half_life);

// If a reservation of another job covers `at`, the end of it (the earliest
// time this job may reach the user); nullopt when it may send now. A null
// record is never reserved.
std::optional<sys_time> quiet_blocks(const user_record* r, uint64_t job_seq, sys_time at);

// Versioned value encodings. Decoders reject malformed bytes as
// errc::corruption and unknown versions as errc::unsupported.
void encode_user_record(const user_record& r, std::string& out);
result<user_record> decode_user_record(std::string_view in);
void encode_cap_counts(const cap_counts& c, std::string& out);
result<cap_counts> decode_cap_counts(std::string_view in);

std::string user_stats_key(uint32_t ordinal);  // 'u' be32
std::string user_company_stats_key(std::string_view company,
                                   uint32_t ordinal);  // 'c' company \0 be32

struct user_engagement_params {
  std::chrono::seconds half_life{std::chrono::hours(24 * 14)};
  // Companies with a cap configured: only their per-company counts are kept.
  std::vector<std::string> capped_companies;
};

class user_engagement {
 public:
  explicit user_engagement(user_engagement_params params = {});

  // At start-up, before anything else: reads every record of `user_stats`.
  // Keys of a newer relay are skipped; a malformed value fails the load.
  result<void> load(store& db);

  // Config reload: the companies whose per-company counts are kept.
  void set_capped_companies(std::span<const std::string> companies);
  // Grows the table to hold `count` ordinals (optional; it also grows on demand).
  void reserve(uint32_t count);

  // nullptr: never messaged (nothing counted, no reservation). The pointer is
  // valid until the next call that changes this table.
  const user_record* find(uint32_t ordinal) const;
  // Per-company counts; nullptr when none are kept for (company, ordinal).
  const cap_counts* company_counts(std::string_view company, uint32_t ordinal) const;

  // One message sent (one per message however many channels carried it; for
  // `simultaneous` pass the first channel). Counts the channel's sends, the
  // decayed sends, the global day/week caps and the company's when capped.
  void on_sent(uint32_t ordinal, channel ch, std::string_view company, sys_time at,
               int64_t local_day, int32_t local_week);
  // A later event of a message, already de-duplicated by the caller.
  // `sent` is ignored here (use on_sent).
  void on_event(uint32_t ordinal, channel ch, engagement_count what, sys_time at);

  // Holds the user quiet for job `job_seq` over [from, until) (seconds,
  // `until` rounded up). One reservation per user: it replaces an empty one,
  // one that ended by `now`, or one of the same job; otherwise false.
  bool reserve_quiet(uint32_t ordinal, uint64_t job_seq, sys_time from, sys_time until,
                     sys_time now);
  // Drops the job's reservation (a job cancelled early); others are kept.
  void release_quiet(uint32_t ordinal, uint64_t job_seq);

  // One Put per record changed since the last flush; the caller writes the batch.
  void flush_into(rocksdb::WriteBatch& batch, store& db);
  size_t dirty_count() const { return dirty_.size() + company_dirty_count_; }

  // One user's stored record (relayctl on a secondary DB); errc::not_found when none.
  static result<user_record> read(store& db, uint32_t ordinal);
  static result<cap_counts> read_company(store& db, std::string_view company, uint32_t ordinal);

  size_t size() const { return records_.size(); }
  const user_engagement_params& params() const { return params_; }

 private:
  struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // One capped company's counts, dense by ordinal like records_.
  struct company_table {
    std::string name;
    bool capped = false;  // counts kept for new sends
    std::vector<cap_counts> by_ordinal;
    std::vector<uint32_t> dirty;
    std::vector<uint64_t> dirty_bits;
  };

  user_record& at(uint32_t ordinal);
  void mark_dirty(uint32_t ordinal);
  company_table& company(std::string_view name);
  static void mark_company_dirty(company_table& t, uint32_t ordinal);

  user_engagement_params params_;
  double decay_per_second_ = 0;  // ln 2 / half-life
  std::vector<user_record> records_;
  std::vector<uint64_t> dirty_bits_;
  std::vector<uint32_t> dirty_;
  std::vector<company_table> companies_;
  std::unordered_map<std::string, size_t, string_hash, std::equal_to<>> company_index_;
  size_t company_dirty_count_ = 0;
  std::string key_, value_;  // reused by flush_into
};

}  // namespace relay
