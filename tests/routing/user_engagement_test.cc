#include "routing/user_engagement.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

using namespace std::chrono_literals;

const sys_time kStart = sys_time(std::chrono::milliseconds(1'767'225'600'000));  // 2026-01-01 UTC
constexpr int64_t kDay = 20454;  // 2026-01-01 as days since 1970

user_record sample_record() {
  user_record r;
  r.sent = {5, 7, 4'000'000'000u};
  r.opened = {1, 2, 3};
  r.delivered = 10;
  r.clicked = 2;
  r.failed = 1;
  r.recent_sends = 3.5f;
  r.recent_opens = 0.25f;
  r.recent_at_s = 1'767'225'600;
  r.caps = {static_cast<uint16_t>(kDay), 2, static_cast<uint16_t>(week_of_day(kDay)), 6};
  r.quiet_from_s = 1'767'225'000;
  r.quiet_until_s = 1'767'228'600;
  r.quiet_seq_lo = 0x89abcdef;
  r.quiet_seq_hi = 0x1234;
  return r;
}

void expect_same(const user_record& a, const user_record& b) {
  EXPECT_EQ(a.sent, b.sent);
  EXPECT_EQ(a.opened, b.opened);
  EXPECT_EQ(a.delivered, b.delivered);
  EXPECT_EQ(a.clicked, b.clicked);
  EXPECT_EQ(a.failed, b.failed);
  EXPECT_EQ(a.recent_sends, b.recent_sends);
  EXPECT_EQ(a.recent_opens, b.recent_opens);
  EXPECT_EQ(a.recent_at_s, b.recent_at_s);
  EXPECT_EQ(a.caps.day, b.caps.day);
  EXPECT_EQ(a.caps.day_sends, b.caps.day_sends);
  EXPECT_EQ(a.caps.week, b.caps.week);
  EXPECT_EQ(a.caps.week_sends, b.caps.week_sends);
  EXPECT_EQ(a.quiet_from_s, b.quiet_from_s);
  EXPECT_EQ(a.quiet_until_s, b.quiet_until_s);
  EXPECT_EQ(a.quiet_job_seq(), b.quiet_job_seq());
}

TEST(user_engagement, a_record_round_trips_every_field) {
  const user_record r = sample_record();
  std::string bytes;
  encode_user_record(r, bytes);
  auto back = decode_user_record(bytes);
  ASSERT_TRUE(back.ok()) << back.err().message;
  expect_same(r, *back);
  EXPECT_EQ(back->quiet_job_seq(), 0x123489abcdefull);
}

TEST(user_engagement, truncated_padded_or_foreign_bytes_are_rejected_as_corruption) {
  std::string bytes;
  encode_user_record(sample_record(), bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_user_record(bytes.substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.err().code, errc::corruption) << n;
  }
  EXPECT_EQ(decode_user_record(bytes + "x").err().code, errc::corruption);
  std::string newer = bytes;
  newer[0] = 9;
  EXPECT_EQ(decode_user_record(newer).err().code, errc::unsupported);
  // A count wider than its field is not silently truncated.
  std::string wide(1, '\1');
  for (int i = 0; i < 5; ++i) wide.push_back('\xff');
  wide.push_back('\x7f');
  EXPECT_EQ(decode_user_record(wide).err().code, errc::corruption);

  std::string caps;
  encode_cap_counts({1, 2, 3, 4}, caps);
  EXPECT_TRUE(decode_cap_counts(caps).ok());
  EXPECT_EQ(decode_cap_counts(caps.substr(0, caps.size() - 1)).err().code, errc::corruption);
}

TEST(user_engagement, a_never_messaged_user_has_no_record) {
  user_engagement e;
  EXPECT_EQ(e.find(0), nullptr);
  EXPECT_EQ(e.find(1'000'000), nullptr);
  e.on_sent(5, channel::sms, "acme", kStart, kDay, week_of_day(kDay));
  EXPECT_EQ(e.find(4), nullptr);
  ASSERT_NE(e.find(5), nullptr);
  EXPECT_EQ(e.find(5)->sent[static_cast<size_t>(channel::sms)], 1u);
}

TEST(user_engagement, sends_and_events_count_per_channel_and_in_totals) {
  user_engagement e;
  const uint32_t u = 42;
  e.on_sent(u, channel::rcs, "acme", kStart, kDay, week_of_day(kDay));
  e.on_sent(u, channel::email, "acme", kStart + 1h, kDay, week_of_day(kDay));
  e.on_event(u, channel::email, engagement_count::delivered, kStart + 2h);
  e.on_event(u, channel::email, engagement_count::opened, kStart + 2h);
  e.on_event(u, channel::email, engagement_count::clicked, kStart + 2h);
  e.on_event(u, channel::rcs, engagement_count::failed, kStart + 2h);
  const user_record* r = e.find(u);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->sent, (std::array<uint32_t, 3>{1, 0, 1}));
  EXPECT_EQ(r->opened, (std::array<uint32_t, 3>{0, 0, 1}));
  EXPECT_EQ(r->delivered, 1);
  EXPECT_EQ(r->clicked, 1);
  EXPECT_EQ(r->failed, 1);
  EXPECT_EQ(r->caps.sends_on_day(kDay), 2u);
  EXPECT_EQ(r->caps.sends_on_day(kDay + 1), 0u);
  EXPECT_EQ(r->caps.sends_in_week(week_of_day(kDay)), 2u);
}

TEST(user_engagement, counts_saturate_instead_of_wrapping) {
  user_engagement e;
  for (int i = 0; i < 70'000; ++i) {
    e.on_event(1, channel::sms, engagement_count::delivered, kStart);
    e.on_sent(1, channel::sms, "acme", kStart, kDay, week_of_day(kDay));
  }
  EXPECT_EQ(e.find(1)->delivered, 65535);
  EXPECT_EQ(e.find(1)->caps.day_sends, 65535);
  EXPECT_EQ(e.find(1)->caps.week_sends, 65535);
  EXPECT_EQ(e.find(1)->sent[1], 70'000u);

  // uint32 per-channel counts: start near the top through a stored record.
  testing::temp_dir dir;
  auto db = testing::open_store(dir.path());
  user_record r;
  r.sent[0] = 0xffffffffu - 1;
  r.recent_at_s = 1;
  std::string v;
  encode_user_record(r, v);
  rocksdb::WriteBatch batch;
  batch.Put(db->handle(cf::user_stats), user_stats_key(3), v);
  ASSERT_TRUE(db->write(batch).ok());
  user_engagement f;
  ASSERT_TRUE(f.load(*db).ok());
  for (int i = 0; i < 3; ++i) f.on_sent(3, channel::rcs, "acme", kStart, kDay, week_of_day(kDay));
  EXPECT_EQ(f.find(3)->sent[0], 0xffffffffu);
}

TEST(user_engagement, day_and_week_counts_restart_when_the_local_day_or_week_changes) {
  user_engagement e;
  // 2026-01-01 is a Thursday: days kDay..kDay+3 are one ISO week, kDay+4 (Monday) the next.
  EXPECT_EQ(week_of_day(kDay), week_of_day(kDay + 3));
  EXPECT_NE(week_of_day(kDay + 3), week_of_day(kDay + 4));
  EXPECT_EQ(week_of_day(-3), 0);
  EXPECT_EQ(week_of_day(-4), -1);
  for (int64_t d = kDay; d < kDay + 5; ++d) {
    e.on_sent(7, channel::sms, "acme", kStart + std::chrono::hours(24 * (d - kDay)), d,
              week_of_day(d));
    e.on_sent(7, channel::sms, "acme", kStart + std::chrono::hours(24 * (d - kDay)), d,
              week_of_day(d));
  }
  const user_record* r = e.find(7);
  EXPECT_EQ(r->caps.sends_on_day(kDay + 4), 2u);
  EXPECT_EQ(r->caps.sends_on_day(kDay + 3), 0u);  // only the latest day is kept
  EXPECT_EQ(r->caps.sends_in_week(week_of_day(kDay + 4)), 2u);
}

TEST(user_engagement, decayed_sends_and_opens_halve_every_half_life) {
  user_engagement e({.half_life = std::chrono::hours(24 * 14)});
  const auto two_weeks = std::chrono::hours(24 * 14);
  for (int i = 0; i < 8; ++i) e.on_sent(9, channel::sms, "acme", kStart, kDay, week_of_day(kDay));
  for (int i = 0; i < 4; ++i) e.on_event(9, channel::sms, engagement_count::opened, kStart);
  const user_record& r = *e.find(9);
  auto now = decayed(r, kStart, std::chrono::hours(24 * 14));
  EXPECT_DOUBLE_EQ(now.sends, 8);
  EXPECT_DOUBLE_EQ(*now.rate(), 0.5);
  auto later = decayed(r, kStart + two_weeks, two_weeks);
  EXPECT_NEAR(later.sends, 4, 1e-6);
  EXPECT_NEAR(later.opens, 2, 1e-6);
  auto much_later = decayed(r, kStart + 4 * two_weeks, two_weeks);
  EXPECT_NEAR(much_later.sends, 0.5, 1e-6);

  // Weekly sends without opens for 6 weeks: the rate falls as old opens fade.
  double last_rate = 1;
  for (int week = 1; week <= 6; ++week) {
    const sys_time t = kStart + std::chrono::hours(24 * 7 * week);
    e.on_sent(9, channel::sms, "acme", t, kDay + 7 * week, week_of_day(kDay + 7 * week));
    const double rate = *decayed(*e.find(9), t, two_weeks).rate();
    EXPECT_LT(rate, last_rate) << week;
    last_rate = rate;
  }
  // 4 opens × 2^-3 over 8 × 2^-3 old sends + 6 weekly sends (weights 2^(-k/2), k = 0..5).
  const double sends = 1 + (1 - std::pow(2, -3)) / (1 - std::pow(2, -0.5));
  EXPECT_NEAR(last_rate, 0.5 / sends, 1e-4);
}

TEST(user_engagement, a_late_event_does_not_move_time_backwards) {
  user_engagement e;
  e.on_sent(1, channel::sms, "acme", kStart + 24h, kDay + 1, week_of_day(kDay + 1));
  e.on_event(1, channel::sms, engagement_count::opened, kStart);
  EXPECT_EQ(e.find(1)->recent_at_s, 1'767'225'600u + 24 * 3600);
  EXPECT_FLOAT_EQ(e.find(1)->recent_opens, 1);
}

TEST(user_engagement, load_after_reopen_equals_what_was_flushed) {
  testing::temp_dir dir;
  user_record expected_a, expected_b;
  cap_counts expected_company;
  {
    auto db = testing::open_store(dir.path());
    user_engagement e({.capped_companies = {"acme"}});
    e.on_sent(1, channel::rcs, "acme", kStart, kDay, week_of_day(kDay));
    e.on_sent(1, channel::sms, "globex", kStart + 1h, kDay, week_of_day(kDay));
    e.on_event(1, channel::rcs, engagement_count::opened, kStart + 2h);
    e.on_sent(100'000, channel::email, "acme", kStart, kDay, week_of_day(kDay));
    ASSERT_TRUE(e.reserve_quiet(100'000, 77, kStart, kStart + 2h + 500ms, kStart));
    rocksdb::WriteBatch batch;
    e.flush_into(batch, *db);
    ASSERT_TRUE(db->write(batch).ok());
    expected_a = *e.find(1);
    expected_b = *e.find(100'000);
    expected_company = *e.company_counts("acme", 1);
  }
  auto db = testing::open_store(dir.path());
  user_engagement loaded;
  ASSERT_TRUE(loaded.load(*db).ok());
  ASSERT_NE(loaded.find(1), nullptr);
  ASSERT_NE(loaded.find(100'000), nullptr);
  EXPECT_EQ(loaded.find(2), nullptr);
  expect_same(expected_a, *loaded.find(1));
  expect_same(expected_b, *loaded.find(100'000));
  EXPECT_EQ(loaded.find(100'000)->quiet_job_seq(), 77u);
  EXPECT_EQ(loaded.find(100'000)->quiet_until_s - loaded.find(100'000)->quiet_from_s, 2 * 3600 + 1);
  ASSERT_NE(loaded.company_counts("acme", 1), nullptr);
  EXPECT_EQ(loaded.company_counts("acme", 1)->sends_on_day(kDay), 1u);
  EXPECT_EQ(loaded.company_counts("globex", 1), nullptr);  // not capped: not kept

  auto one = user_engagement::read(*db, 1);
  ASSERT_TRUE(one.ok());
  expect_same(expected_a, *one);
  EXPECT_EQ(user_engagement::read(*db, 2).err().code, errc::not_found);
  auto company = user_engagement::read_company(*db, "acme", 1);
  ASSERT_TRUE(company.ok());
  EXPECT_EQ(company->day_sends, expected_company.day_sends);
}

TEST(user_engagement, a_corrupt_stored_record_fails_the_load_naming_the_user) {
  testing::temp_dir dir;
  auto db = testing::open_store(dir.path());
  rocksdb::WriteBatch batch;
  batch.Put(db->handle(cf::user_stats), user_stats_key(12), std::string("\1\5", 2));
  batch.Put(db->handle(cf::user_stats), "zfuture-key", "whatever");  // newer relay: skipped
  ASSERT_TRUE(db->write(batch).ok());
  user_engagement e;
  auto r = e.load(*db);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::corruption);
  EXPECT_NE(r.err().message.find("ordinal 12"), std::string::npos) << r.err().message;
}

TEST(user_engagement, flush_writes_only_records_changed_since_the_last_flush) {
  testing::temp_dir dir;
  auto db = testing::open_store(dir.path());
  user_engagement e({.capped_companies = {"acme"}});
  for (uint32_t u = 0; u < 200; ++u)
    e.on_sent(u, channel::sms, "acme", kStart, kDay, week_of_day(kDay));
  e.on_event(7, channel::sms, engagement_count::opened, kStart);  // same user again: one Put
  EXPECT_EQ(e.dirty_count(), 400u);
  rocksdb::WriteBatch first;
  e.flush_into(first, *db);
  EXPECT_EQ(first.Count(), 400u);  // 200 global + 200 acme records
  ASSERT_TRUE(db->write(first).ok());
  EXPECT_EQ(e.dirty_count(), 0u);

  rocksdb::WriteBatch none;
  e.flush_into(none, *db);
  EXPECT_EQ(none.Count(), 0u);

  e.on_event(3, channel::sms, engagement_count::opened, kStart + 1h);
  e.on_event(150, channel::sms, engagement_count::delivered, kStart + 1h);
  e.on_event(3, channel::sms, engagement_count::clicked, kStart + 1h);
  rocksdb::WriteBatch second;
  e.flush_into(second, *db);
  EXPECT_EQ(second.Count(), 2u);
  ASSERT_TRUE(db->write(second).ok());
  EXPECT_EQ(user_engagement::read(*db, 3)->clicked, 1);
}

TEST(user_engagement, per_company_counts_are_kept_only_for_capped_companies) {
  user_engagement e({.capped_companies = {"acme"}});
  e.on_sent(1, channel::sms, "acme", kStart, kDay, week_of_day(kDay));
  e.on_sent(1, channel::sms, "globex", kStart, kDay, week_of_day(kDay));
  EXPECT_EQ(e.company_counts("acme", 1)->sends_on_day(kDay), 1u);
  EXPECT_EQ(e.company_counts("globex", 1), nullptr);
  EXPECT_EQ(e.find(1)->caps.sends_on_day(kDay), 2u);
  const std::vector<std::string> both = {"acme", "globex"};
  e.set_capped_companies(both);
  e.on_sent(1, channel::sms, "globex", kStart, kDay, week_of_day(kDay));
  EXPECT_EQ(e.company_counts("globex", 1)->sends_on_day(kDay), 1u);
}

TEST(user_engagement, one_quiet_reservation_at_a_time_blocks_other_jobs_inside_it) {
  user_engagement e;
  ASSERT_TRUE(e.reserve_quiet(4, 10, kStart, kStart + 1h, kStart));
  const user_record* r = e.find(4);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(quiet_blocks(r, 11, kStart + 30min), kStart + 1h);
  EXPECT_EQ(quiet_blocks(r, 10, kStart + 30min), std::nullopt);  // its own job
  EXPECT_EQ(quiet_blocks(r, 11, kStart - 1s), std::nullopt);
  EXPECT_EQ(quiet_blocks(r, 11, kStart + 1h), std::nullopt);
  EXPECT_EQ(quiet_blocks(nullptr, 11, kStart), std::nullopt);

  EXPECT_FALSE(e.reserve_quiet(4, 11, kStart + 2h, kStart + 3h, kStart + 30min));  // still held
  EXPECT_TRUE(e.reserve_quiet(4, 10, kStart, kStart + 90min, kStart + 30min));     // same job
  EXPECT_TRUE(e.reserve_quiet(4, 11, kStart + 2h, kStart + 3h, kStart + 2h));      // expired
  EXPECT_EQ(e.find(4)->quiet_job_seq(), 11u);
  e.release_quiet(4, 10);  // not the holder: kept
  EXPECT_EQ(e.find(4)->quiet_job_seq(), 11u);
  e.release_quiet(4, 11);
  EXPECT_EQ(e.find(4), nullptr);  // nothing else was ever counted for this user
}

}  // namespace
}  // namespace relay
