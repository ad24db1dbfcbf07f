#include "routing/timer_store.h"

#include <gtest/gtest.h>

#include <map>
#include <tuple>

#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

using namespace std::chrono;
using testing::open_store;
using testing::temp_dir;

const sys_time t0 = sys_time{milliseconds(1795000000000)};  // 2026-11-18

timer make(sys_time due, uint64_t job, uint32_t ordinal, timer_kind k = timer_kind::send,
           uint8_t attempt = 0, std::string payload = "") {
  timer t;
  t.due = due;
  t.job_seq = job;
  t.ordinal = ordinal;
  t.kind = k;
  t.attempt = attempt;
  t.payload = std::move(payload);
  return t;
}

using ident = std::tuple<int64_t, uint64_t, uint32_t, int, int>;
ident id_of(const timer& t) {
  return {to_unix_ms(t.due), t.job_seq, t.ordinal, static_cast<int>(t.kind), t.attempt};
}

void write_all(store& db, timer_store& timers, const std::vector<timer>& ts) {
  rocksdb::WriteBatch batch;
  for (const auto& t : ts) timers.add(batch, t);
  ASSERT_TRUE(db.write(batch).ok());
}

// Fires what is due the way the core loop does: read, then remove in a
// batch that the caller writes.
std::vector<timer> fire(store& db, timer_store& timers, sys_time now, size_t limit = 1000) {
  auto due = timers.due(now, limit);
  EXPECT_TRUE(due.ok()) << due.err().message;
  if (!due.ok()) return {};
  rocksdb::WriteBatch batch;
  for (const auto& t : *due) timers.remove(batch, t);
  EXPECT_TRUE(db.write(batch).ok());
  return std::move(*due);
}

TEST(timer_store, keys_sort_by_due_time_first_and_round_trip) {
  std::string a, b, c;
  timer_key(make(t0, 9, 9), a);
  timer_key(make(t0 + milliseconds(1), 1, 1), b);
  timer_key(make(t0, 9, 9, timer_kind::fallback, 1), c);
  EXPECT_EQ(a.size(), kTimerKeyBytes);
  EXPECT_LT(a, b);
  EXPECT_LT(a, c);
  EXPECT_LT(c, b);
  timer back;
  ASSERT_TRUE(parse_timer_key(c, back));
  EXPECT_EQ(id_of(back), id_of(make(t0, 9, 9, timer_kind::fallback, 1)));
  EXPECT_FALSE(parse_timer_key(c.substr(1), back));
  c[20] = 9;  // no such kind
  EXPECT_FALSE(parse_timer_key(c, back));
}

TEST(timer_store, due_returns_what_is_due_earliest_first_with_payloads_up_to_the_limit) {
  temp_dir dir;
  auto db = open_store(dir.path());
  timer_store timers(*db);
  write_all(*db, timers,
            {make(t0 + minutes(3), 1, 3, timer_kind::send, 0, "c"),
             make(t0 + minutes(1), 2, 1, timer_kind::fallback, 1, "a"),
             make(t0 + minutes(2), 1, 2, timer_kind::resend, 2, "b"),
             make(t0 + hours(1), 1, 4, timer_kind::follow_up, 0, "later")});
  auto none = timers.due(t0, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto due = timers.due(t0 + minutes(3), 10);
  ASSERT_TRUE(due.ok()) << due.err().message;
  ASSERT_EQ(due->size(), 3u);  // due <= now: the one due exactly now included
  EXPECT_EQ((*due)[0].payload, "a");
  EXPECT_EQ((*due)[0].kind, timer_kind::fallback);
  EXPECT_EQ((*due)[0].attempt, 1);
  EXPECT_EQ((*due)[0].job_seq, 2u);
  EXPECT_EQ((*due)[1].payload, "b");
  EXPECT_EQ((*due)[2].payload, "c");

  auto two = timers.due(t0 + hours(5), 2);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].payload, "b");
}

TEST(timer_store, due_skips_the_callers_in_flight_timers) {
  temp_dir dir;
  auto db = open_store(dir.path());
  timer_store timers(*db);
  write_all(*db, timers, {make(t0, 1, 1), make(t0, 1, 2), make(t0, 1, 3), make(t0, 1, 4)});
  auto due = timers.due(t0, 2, [](const timer& t) { return t.ordinal <= 2; });
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].ordinal, 3u);
  EXPECT_EQ((*due)[1].ordinal, 4u);
}

TEST(timer_store, removed_timers_are_gone_and_next_due_moves_on) {
  temp_dir dir;
  auto db = open_store(dir.path());
  timer_store timers(*db);
  auto empty = timers.next_due();
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());

  write_all(*db, timers, {make(t0 + seconds(1), 1, 1), make(t0 + seconds(2), 1, 2)});
  auto next = timers.next_due();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(**next, t0 + seconds(1));

  EXPECT_EQ(fire(*db, timers, t0 + seconds(1)).size(), 1u);
  EXPECT_EQ(**timers.next_due(), t0 + seconds(2));
  EXPECT_TRUE(timers.due(t0 + seconds(1), 10)->empty());
  EXPECT_EQ(fire(*db, timers, t0 + seconds(2)).size(), 1u);
  EXPECT_FALSE(timers.next_due()->has_value());
}

TEST(timer_store, timers_survive_a_restart) {
  temp_dir dir;
  {
    auto db = open_store(dir.path());
    timer_store timers(*db);
    write_all(*db, timers,
              {make(t0 + hours(2), 7, 70, timer_kind::fallback, 1, "rcs->sms"),
               make(t0 + hours(1), 8, 80)});
    fire(*db, timers, t0 + hours(1));
  }
  auto db = open_store(dir.path());
  timer_store timers(*db);
  EXPECT_EQ(**timers.next_due(), t0 + hours(2));
  auto due = timers.due(t0 + hours(2), 10);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].payload, "rcs->sms");
  EXPECT_EQ((*due)[0].ordinal, 70u);
  std::map<uint64_t, int> per_job;
  ASSERT_TRUE(timers.for_each([&](const timer& t) { ++per_job[t.job_seq]; }).ok());
  EXPECT_EQ(per_job, (std::map<uint64_t, int>{{7, 1}}));
}

TEST(timer_store,
     a_clock_jump_forward_fires_everything_due_and_back_delays_without_loss_or_repeat) {
  temp_dir dir;
  auto db = open_store(dir.path());
  timer_store timers(*db);
  manual_clock clock(t0);
  write_all(*db, timers,
            {make(t0 + hours(1), 1, 1), make(t0 + hours(2), 1, 2), make(t0 + hours(3), 1, 3)});
  std::map<ident, int> fired;
  auto tick = [&] {
    for (const auto& t : fire(*db, timers, clock.now())) ++fired[id_of(t)];
  };
  tick();
  EXPECT_TRUE(fired.empty());

  clock.advance(minutes(150));  // jumps past two timers at once
  tick();
  EXPECT_EQ(fired.size(), 2u);

  clock.advance(-hours(2));  // back to t0 + 30 min: nothing new is due
  tick();
  EXPECT_EQ(fired.size(), 2u);
  // A fallback armed now is due before the remaining timer, by the jumped-back clock.
  write_all(*db, timers, {make(clock.now() + hours(1), 2, 9, timer_kind::fallback, 1)});
  EXPECT_EQ(**timers.next_due(), t0 + minutes(90));

  for (int i = 0; i < 4 * 60; ++i) {  // four hours, a minute at a time
    clock.advance(minutes(1));
    tick();
  }
  EXPECT_EQ(fired.size(), 4u);
  for (const auto& [id, n] : fired) EXPECT_EQ(n, 1) << std::get<2>(id);
  EXPECT_FALSE(timers.next_due()->has_value());
}

TEST(timer_store, a_timer_added_before_a_read_and_written_after_it_is_still_found) {
  // The floor that lets reads skip fired timers must not rise above a timer
  // sitting in a batch the caller has not written yet.
  temp_dir dir;
  auto db = open_store(dir.path());
  timer_store timers(*db);
  write_all(*db, timers, {make(t0 + hours(5), 1, 1)});
  rocksdb::WriteBatch pending;
  timers.add(pending, make(t0 + hours(1), 2, 2));
  EXPECT_EQ(**timers.next_due(), t0 + hours(5));  // not written yet
  EXPECT_TRUE(timers.due(t0 + hours(2), 10)->empty());
  ASSERT_TRUE(db->write(pending).ok());
  EXPECT_EQ(**timers.next_due(), t0 + hours(1));
  EXPECT_EQ(fire(*db, timers, t0 + hours(1)).size(), 1u);
  EXPECT_EQ(**timers.next_due(), t0 + hours(5));
}

TEST(timer_store, with_a_million_timers_due_tomorrow_nothing_due_costs_one_seek) {
  temp_dir dir;
  auto db = open_store(dir.path());
  timer_store timers(*db);
  constexpr uint32_t kTimers = 1'000'000;
  for (uint32_t i = 0; i < kTimers;) {
    rocksdb::WriteBatch batch;
    for (uint32_t j = 0; j < 10000; ++j, ++i) {
      timers.add(batch,
                 make(t0 + hours(24) + milliseconds((i * 7919ull) % (24 * 3600 * 1000)), 1, i));
    }
    ASSERT_TRUE(db->write(batch).ok());
  }
  auto due = timers.due(t0, 1000);
  ASSERT_TRUE(due.ok());
  EXPECT_TRUE(due->empty());
  EXPECT_LE(timers.last_scan_cost_for_test().entries, 1u);
  auto next = timers.next_due();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(**next, t0 + hours(24));
  EXPECT_EQ(timers.last_scan_cost_for_test().entries, 1u);
  EXPECT_EQ(timers.last_scan_cost_for_test().tombstones, 0u);
}

TEST(timer_store, fired_timers_tombstones_are_not_walked_again_by_later_reads) {
  temp_dir dir;
  auto db = open_store(dir.path());
  {
    timer_store timers(*db);
    std::vector<timer> ts;
    for (uint32_t i = 0; i < 50000; ++i) ts.push_back(make(t0 + milliseconds(i), 1, i));
    ts.push_back(make(t0 + hours(24), 2, 0));
    write_all(*db, timers, ts);
    size_t n = 0;
    for (int i = 0; i < 50; ++i) n += fire(*db, timers, t0 + hours(1)).size();
    EXPECT_EQ(n, 50000u);
    // Each batch stepped over at most the tombstones of the batch before it.
    EXPECT_LE(timers.last_scan_cost_for_test().tombstones, 1000u);
    EXPECT_EQ(**timers.next_due(), t0 + hours(24));
    EXPECT_LE(timers.last_scan_cost_for_test().tombstones, 1000u);
  }
  // A new store (a restart) walks them once, then not again.
  timer_store timers(*db);
  EXPECT_EQ(**timers.next_due(), t0 + hours(24));
  EXPECT_GE(timers.last_scan_cost_for_test().tombstones, 49000u);
  EXPECT_EQ(**timers.next_due(), t0 + hours(24));
  EXPECT_EQ(timers.last_scan_cost_for_test().tombstones, 0u);
  EXPECT_TRUE(timers.due(t0 + hours(2), 10)->empty());
  EXPECT_EQ(timers.last_scan_cost_for_test().tombstones, 0u);
}

}  // namespace
}  // namespace relay
