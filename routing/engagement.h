#pragma once
// The engagement engine (DESIGN §6): per recipient, whether a message goes
// now, waits (send window, not_before, another job's quiet period), or not at
// all (expired, throttled, unreachable), and on which channel; and the
// counting of what happened to each message, so the next choice learns.
//
// It joins the pieces that each do one thing: send_time (windows), the
// per-user records (caps, quiet reservations, what each user opens), the
// segment model (what each segment opens at each hour), channel_choice and
// the throttle; and it keeps the counts (the engagement cube, the user
// records, the model) in step with each other.
//
// Counts are kept in memory and written by flush_into() into the caller's
// batch — the batch that also records what is counted (a send's outcome, an
// event's `seen` bit), so a restart neither loses nor doubles a count.
//
// @locality: the core thread only.

#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "routing/channel_choice.h"
#include "routing/clock.h"
#include "routing/engagement_cube.h"
#include "routing/engagement_dims.h"
#include "routing/engagement_throttle.h"
#include "routing/job.h"
#include "routing/segment_model.h"
#include "routing/send_log.h"
#include "routing/store.h"
#include "routing/time_zones.h"
#include "routing/timer_store.h"
#include "routing/user_engagement.h"

namespace relay {

struct engagement_settings {
  uint8_t segment_attributes = kDefaultSegmentAttributes;
  choice_params choice;
  throttle_params throttle;  // its half_life is the per-user records' too
  std::chrono::milliseconds quiet_before{std::chrono::minutes(30)};
  std::chrono::milliseconds quiet_after{std::chrono::hours(2)};
  std::chrono::milliseconds lookback{std::chrono::hours(24 * 30)};
  rollup_policy rollup;
};

// What the engine needs of a recipient (views into the fan-out's buffers).
struct recipient_facts {
  uint32_t ordinal = 0;
  std::string_view tz;  // IANA; empty or unknown: the job's window tz, else UTC
  std::string_view gender, region, occupation;
  uint16_t birth_year = 0;  // 0: unknown
};

// Why a recipient waits.
enum class wait_reason : uint8_t { none, schedule, quiet };

struct send_plan {
  enum class verdict : uint8_t { send, wait, expired, throttled, unreachable } what = verdict::send;
  choice channels;         // send: the channel(s), in order
  sys_time at{};           // wait: when to look again
  wait_reason why = wait_reason::none;
  uint64_t quiet_holder = 0;  // wait for quiet: the job seq holding the user
  throttle_verdict throttle;  // throttled: the numbers
  // The send's facts in the user's time zone (counting, caps).
  uint8_t age_band = kAgeBandUnknown;
  uint8_t local_hour = kUnknownHour;
  uint8_t weekday = kUnknownWeekday;
  int64_t local_day = 0;
};

// Which step of a recipient's sequence is being planned.
struct plan_step {
  std::optional<channel_mode> mode;  // none: the job's; fallback's later steps and resends pass `specified`
  uint8_t exclude = 0;               // channel_bit mask of channels not to use (tried ones)
};

class engagement {
 public:
  engagement(store& db, engagement_settings settings);

  // At start-up: the per-user records, and the segment model from the cube
  // since `now - lookback`.
  result<void> load(sys_time now);

  // The plan for one recipient of `spec` (accept sequence `job_seq`) at
  // `now`. `reachable`: the channels the user can receive through a running
  // connector. An exclusive job that sends or schedules reserves the user's
  // quiet period here.
  send_plan plan(const job& spec, uint64_t job_seq, std::span<const channel> order, const recipient_facts& r,
                 uint8_t reachable, plan_step step, sys_time now);

  // A message was accepted (once per message): counts its send.
  void count_send(const send_record& r, sys_time at, int64_t local_day);
  // A later event of a message (already de-duplicated by the send log's
  // `seen` bits). `location`: where an open happened, when known.
  void count_event(const send_record& r, engagement_count what, sys_time at, std::string_view location = {});

  // Appends the pending counts and changed user records to `batch`.
  void flush_into(rocksdb::WriteBatch& batch);
  // Folds old hourly/daily buckets (see engagement_cube.h); `batch` must be
  // written right away.
  result<rollup_result> roll_up(sys_time now, size_t max_rows, rocksdb::WriteBatch& batch);

  timer_store& timers() { return timers_; }
  time_zones& zones() { return zones_; }
  const user_engagement& users() const { return users_; }
  const segment_model& model() const { return model_; }
  const engagement_settings& settings() const { return settings_; }

  // The dimensions of a recorded send (views into `r`).
  static engagement_dims dims_of(const send_record& r);

 private:
  store& db_;
  engagement_settings settings_;
  time_zones zones_;
  timer_store timers_;
  user_engagement users_;
  segment_model model_;
  engagement_batch cube_;
};

}  // namespace relay
