#include "routing/engagement.h"

#include <gtest/gtest.h>

#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

using testing::open_store;
using testing::temp_dir;
using namespace std::chrono_literals;

// 2026-11-24 08:00 in Tokyo (23:00 UTC the day before).
const sys_time kTokyo0800 = sys_time(std::chrono::milliseconds(1'795'474'800'000));
constexpr uint64_t kJob = 7, kOtherJob = 8;

job make_job(channel_mode mode = channel_mode::specified) {
  job j;
  j.job_id = "j";
  j.company_id = "acme";
  j.mode = mode;
  return j;
}

recipient_facts tokyo_user(uint32_t ordinal = 1) {
  return recipient_facts{ordinal, "Asia/Tokyo", "f", "tokyo", "engineer", 1990};
}

const std::vector<channel> kOrder = {channel::rcs, channel::sms, channel::email};
constexpr uint8_t kAll = kAllChannels;

send_record sent_record(uint32_t ordinal, channel ch, sys_time at) {
  send_record r;
  r.job_id = "j";
  r.company_id = "acme";
  r.user_id = "u1";
  r.carrier_id = "carrier-a";
  r.ch = ch;
  r.sent_at_ms = to_unix_ms(at);
  r.ordinal = ordinal;
  r.gender = "f";
  r.age_band = 3;
  r.local_hour = 8;
  r.weekday = 2;
  return r;
}

TEST(engagement, a_recipient_inside_the_window_goes_now_with_its_local_facts) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement e(*db, {});
  const send_plan p = e.plan(make_job(), kJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800);
  ASSERT_EQ(p.what, send_plan::verdict::send);
  ASSERT_EQ(p.channels.count, 1);
  EXPECT_EQ(p.channels.channels[0], channel::rcs);
  EXPECT_EQ(p.local_hour, 8);
  EXPECT_EQ(p.weekday, 2);  // Tuesday
  EXPECT_EQ(p.age_band, 3);  // 36 in 2026
}

TEST(engagement, outside_the_window_waits_for_its_opening_and_past_expiry_fails) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement e(*db, {});
  job j = make_job();
  j.schedule.window = send_window{9 * 60, 18 * 60, ""};  // the user's time zone
  send_plan p = e.plan(j, kJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800);
  ASSERT_EQ(p.what, send_plan::verdict::wait);
  EXPECT_EQ(p.why, wait_reason::schedule);
  EXPECT_EQ(p.at, kTokyo0800 + 1h);

  j.schedule.expires = kTokyo0800 + 30min;
  p = e.plan(j, kJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800);
  EXPECT_EQ(p.what, send_plan::verdict::expired);
}

TEST(engagement, another_jobs_quiet_period_delays_and_its_own_does_not) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_settings s;
  s.quiet_before = 30min;
  s.quiet_after = 2h;
  engagement e(*db, s);
  job exclusive = make_job();
  exclusive.priority = "exclusive";
  ASSERT_EQ(e.plan(exclusive, kJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800).what, send_plan::verdict::send);

  const send_plan other = e.plan(make_job(), kOtherJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800 + 1min);
  ASSERT_EQ(other.what, send_plan::verdict::wait);
  EXPECT_EQ(other.why, wait_reason::quiet);
  EXPECT_EQ(other.quiet_holder, kJob);
  EXPECT_EQ(other.at, kTokyo0800 + 2h);
  // The exclusive job itself, and everyone once the period is over, go now.
  EXPECT_EQ(e.plan(exclusive, kJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800 + 1min).what,
            send_plan::verdict::send);
  // (planning the exclusive send again at +1 min moved its period with it)
  EXPECT_EQ(e.plan(make_job(), kOtherJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800 + 2h + 1min).what,
            send_plan::verdict::send);
  // A job that expires before the period ends fails instead of waiting.
  job short_lived = make_job();
  short_lived.schedule.expires = kTokyo0800 + 1h;
  EXPECT_EQ(e.plan(short_lived, kOtherJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800 + 1min).what,
            send_plan::verdict::expired);
}

TEST(engagement, the_daily_cap_counts_sends_in_the_users_local_day) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_settings s;
  s.throttle.daily_cap = 2;
  engagement e(*db, s);
  for (int i = 0; i < 2; ++i) {
    const send_plan p = e.plan(make_job(), kJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800);
    ASSERT_EQ(p.what, send_plan::verdict::send);
    e.count_send(sent_record(1, channel::rcs, kTokyo0800), kTokyo0800, p.local_day);
  }
  const send_plan third = e.plan(make_job(), kJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800);
  ASSERT_EQ(third.what, send_plan::verdict::throttled);
  EXPECT_EQ(third.throttle.cap, 2u);
  EXPECT_EQ(third.throttle.used, 2u);
  // A later step of a job already sent is not a new message for the cap.
  EXPECT_EQ(e.plan(make_job(), kJob, kOrder, tokyo_user(), kAll, {channel_mode::specified, channel_bit(channel::rcs)},
                   kTokyo0800)
                .what,
            send_plan::verdict::send);
  // 16:00 UTC is 01:00 of the next day in Tokyo.
  EXPECT_EQ(e.plan(make_job(), kJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800 + 17h).what, send_plan::verdict::send);
}

TEST(engagement, preferred_follows_what_the_user_opens) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement e(*db, {});
  for (int i = 0; i < 3; ++i) {
    const send_record r = sent_record(1, channel::email, kTokyo0800);
    e.count_send(r, kTokyo0800, 0);
    e.count_event(r, engagement_count::opened, kTokyo0800 + 1h);
  }
  e.count_send(sent_record(1, channel::rcs, kTokyo0800), kTokyo0800, 0);
  const send_plan p = e.plan(make_job(channel_mode::preferred), kJob, kOrder, tokyo_user(), kAll, {}, kTokyo0800);
  ASSERT_EQ(p.what, send_plan::verdict::send);
  EXPECT_EQ(p.channels.channels[0], channel::email);
  // Not reachable by email: the first reachable channel of the order.
  const send_plan q = e.plan(make_job(channel_mode::preferred), kJob, kOrder, tokyo_user(),
                             channel_bit(channel::sms) | channel_bit(channel::rcs), {}, kTokyo0800);
  EXPECT_EQ(q.channels.channels[0], channel::rcs);
  EXPECT_EQ(e.plan(make_job(), kJob, kOrder, tokyo_user(), 0, {}, kTokyo0800).what, send_plan::verdict::unreachable);
}

TEST(engagement, counts_are_written_with_the_callers_batch_and_come_back_after_a_restart) {
  temp_dir dir;
  {
    auto db = open_store(dir.path());
    engagement e(*db, {});
    const send_record r = sent_record(5, channel::sms, kTokyo0800);
    e.count_send(r, kTokyo0800, 0);
    e.count_event(r, engagement_count::delivered, kTokyo0800 + 1min);
    e.count_event(r, engagement_count::opened, kTokyo0800 + 2min);
    rocksdb::WriteBatch batch;
    e.flush_into(batch);
    ASSERT_TRUE(db->write(batch).ok());
  }
  auto db = open_store(dir.path());
  auto rows = query_engagement(*db, {.group_by = {engagement_dimension::channel, engagement_dimension::hour}});
  ASSERT_TRUE(rows) << rows.err().message;
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].key[0], "sms");
  EXPECT_EQ((*rows)[0].key[1], "08");
  EXPECT_EQ((*rows)[0].counts[engagement_count::sent], 1u);
  EXPECT_EQ((*rows)[0].counts[engagement_count::delivered], 1u);
  EXPECT_EQ((*rows)[0].counts[engagement_count::opened], 1u);

  engagement e(*db, {});
  ASSERT_TRUE(e.load(kTokyo0800 + 1h).ok());
  const user_record* u = e.users().find(5);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->sent[static_cast<int>(channel::sms)], 1u);
  EXPECT_EQ(u->opened[static_cast<int>(channel::sms)], 1u);
  EXPECT_EQ(e.model().total(channel::sms).opened, 1u);
}

}  // namespace
}  // namespace relay
