#include "routing/send_time.h"

#include <gtest/gtest.h>

namespace relay {
namespace {

using namespace std::chrono;
using date::July;
using date::March;
using date::November;
using date::October;
using kind = send_decision::kind;

sys_time utc(date::year_month_day d, int h = 0, int m = 0) {
  return time_point_cast<milliseconds>(date::sys_days(d)) + hours(h) + minutes(m);
}

constexpr auto y2026 = date::year{2026};

job_schedule window(int start_h, int start_m, int end_h, int end_m, std::string tz = "") {
  job_schedule s;
  s.window = send_window{start_h * 60 + start_m, end_h * 60 + end_m, std::move(tz)};
  return s;
}

class send_time : public ::testing::Test {
 protected:
  time_zones zones;
  const date::time_zone* tokyo = zones.find("Asia/Tokyo");
  const date::time_zone* new_york = zones.find("America/New_York");
  const date::time_zone* london = zones.find("Europe/London");
};

TEST_F(send_time, no_schedule_sends_now) {
  const sys_time now = utc(y2026 / November / 24, 3);
  auto d = next_send_time({}, tokyo, zones, now);
  EXPECT_EQ(d.what, kind::now);
  EXPECT_EQ(d.at, now);
}

TEST_F(send_time, tokyo_window_waits_for_nine_sends_inside_and_rolls_to_tomorrow_after_six) {
  auto s = window(9, 0, 18, 0, "Asia/Tokyo");
  // 08:00 JST = 23:00 UTC the day before.
  auto d = next_send_time(s, nullptr, zones, utc(y2026 / November / 23, 23));
  EXPECT_EQ(d.what, kind::later);
  EXPECT_EQ(d.at, utc(y2026 / November / 24, 0));  // 09:00 JST
  // 12:00 JST: inside.
  d = next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 3));
  EXPECT_EQ(d.what, kind::now);
  EXPECT_EQ(d.at, utc(y2026 / November / 24, 3));
  // 18:00 JST exactly: the end is exclusive, so tomorrow 09:00.
  d = next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 9));
  EXPECT_EQ(d.what, kind::later);
  EXPECT_EQ(d.at, utc(y2026 / November / 25, 0));
  // 17:59:59.999 JST: still inside.
  d = next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 9) - milliseconds(1));
  EXPECT_EQ(d.what, kind::now);
}

TEST_F(send_time, new_york_window_follows_summer_and_winter_time) {
  auto s = window(9, 0, 17, 0);
  // July: EDT, UTC-4 -> 09:00 local is 13:00 UTC.
  auto d = next_send_time(s, new_york, zones, utc(y2026 / July / 1, 5));
  EXPECT_EQ(d.at, utc(y2026 / July / 1, 13));
  // November 24: EST, UTC-5 -> 14:00 UTC.
  d = next_send_time(s, new_york, zones, utc(y2026 / November / 24, 5));
  EXPECT_EQ(d.at, utc(y2026 / November / 24, 14));
}

TEST_F(send_time, a_start_skipped_by_spring_forward_opens_at_the_first_instant_after_the_gap) {
  // 2026-03-08, New York: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 never happens.
  auto s = window(2, 30, 5, 0, "America/New_York");
  auto d = next_send_time(s, nullptr, zones, utc(y2026 / March / 8, 5));  // 00:00 EST
  EXPECT_EQ(d.what, kind::later);
  EXPECT_EQ(d.at, utc(y2026 / March / 8, 7));  // 03:00 EDT
  // At 03:10 EDT the window is open (it closes at 05:00 EDT = 09:00 UTC).
  d = next_send_time(s, nullptr, zones, utc(y2026 / March / 8, 7, 10));
  EXPECT_EQ(d.what, kind::now);
  d = next_send_time(s, nullptr, zones, utc(y2026 / March / 8, 9));
  EXPECT_EQ(d.at, utc(y2026 / March / 9, 6, 30));  // 02:30 EDT the next day
}

TEST_F(send_time, a_start_passed_twice_on_fall_back_opens_at_its_first_occurrence) {
  // 2026-11-01, New York: 02:00 EDT falls back to 01:00 EST (06:00 UTC); 01:30 happens twice.
  auto s = window(1, 30, 4, 0, "America/New_York");
  auto d = next_send_time(s, nullptr, zones, utc(y2026 / November / 1, 4));  // 00:00 EDT
  EXPECT_EQ(d.what, kind::later);
  EXPECT_EQ(d.at, utc(y2026 / November / 1, 5, 30));  // 01:30 EDT, the first one
  // 01:15 EST (the second pass through 01:15) is already inside the window.
  d = next_send_time(s, nullptr, zones, utc(y2026 / November / 1, 6, 15));
  EXPECT_EQ(d.what, kind::now);
  // The window closes at 04:00 EST = 09:00 UTC.
  d = next_send_time(s, nullptr, zones, utc(y2026 / November / 1, 9));
  EXPECT_EQ(d.at, utc(y2026 / November / 2, 6, 30));  // 01:30 EST the next day
}

TEST_F(send_time, london_window_is_in_bst_in_summer_and_gmt_in_winter) {
  auto s = window(9, 0, 17, 0, "Europe/London");
  EXPECT_EQ(next_send_time(s, tokyo, zones, utc(y2026 / July / 1, 0)).at, utc(y2026 / July / 1, 8));
  EXPECT_EQ(next_send_time(s, tokyo, zones, utc(y2026 / November / 24, 0)).at,
            utc(y2026 / November / 24, 9));
  // The Sunday clocks go back (2026-10-25): 09:00 is GMT already.
  EXPECT_EQ(next_send_time(s, tokyo, zones, utc(y2026 / October / 25, 0)).at,
            utc(y2026 / October / 25, 9));
}

TEST_F(send_time, a_window_over_midnight_is_open_late_and_early_and_closed_between) {
  auto s = window(22, 0, 6, 0, "Asia/Tokyo");
  // 23:00 JST (14:00 UTC): open.
  EXPECT_EQ(next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 14)).what, kind::now);
  // 03:00 JST (18:00 UTC the day before): open (the window opened yesterday).
  EXPECT_EQ(next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 18)).what, kind::now);
  // 06:00 JST: closed until 22:00 JST (13:00 UTC).
  auto d = next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 21));
  EXPECT_EQ(d.what, kind::later);
  EXPECT_EQ(d.at, utc(y2026 / November / 25, 13));
  // 12:00 JST: closed until 22:00 JST the same day.
  d = next_send_time(s, nullptr, zones, utc(y2026 / November / 25, 3));
  EXPECT_EQ(d.at, utc(y2026 / November / 25, 13));
}

TEST_F(send_time, start_equal_to_end_means_all_day) {
  auto s = window(8, 0, 8, 0, "Asia/Tokyo");
  const sys_time now = utc(y2026 / November / 24, 22, 17);
  auto d = next_send_time(s, nullptr, zones, now);
  EXPECT_EQ(d.what, kind::now);
  EXPECT_EQ(d.at, now);
}

TEST_F(send_time, not_before_inside_the_window_sends_at_not_before) {
  auto s = window(9, 0, 18, 0, "Asia/Tokyo");
  s.not_before = utc(y2026 / November / 24, 2);  // 11:00 JST
  auto d = next_send_time(s, nullptr, zones, utc(y2026 / November / 23, 20));
  EXPECT_EQ(d.what, kind::later);
  EXPECT_EQ(d.at, utc(y2026 / November / 24, 2));
  // Once it has passed, now.
  d = next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 4));
  EXPECT_EQ(d.what, kind::now);
}

TEST_F(send_time, not_before_outside_the_window_waits_for_the_next_opening_after_it) {
  auto s = window(9, 0, 18, 0, "Asia/Tokyo");
  s.not_before = utc(y2026 / November / 24, 10);                              // 19:00 JST
  auto d = next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 1));  // 10:00 JST, inside
  EXPECT_EQ(d.what, kind::later);
  EXPECT_EQ(d.at, utc(y2026 / November / 25, 0));  // 09:00 JST the next day
}

TEST_F(send_time, not_before_alone_delays_without_a_window) {
  job_schedule s;
  s.not_before = utc(y2026 / November / 24, 10);
  auto d = next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 1));
  EXPECT_EQ(d.what, kind::later);
  EXPECT_EQ(d.at, utc(y2026 / November / 24, 10));
}

TEST_F(send_time, expires_before_the_next_opening_is_expired) {
  auto s = window(9, 0, 18, 0, "Asia/Tokyo");
  s.expires = utc(y2026 / November / 24, 23);  // 08:00 JST on the 25th
  auto d = next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 10));  // 19:00 JST
  EXPECT_EQ(d.what, kind::expired);
  // Expiring exactly at the opening is expired too; a millisecond later is not.
  s.expires = utc(y2026 / November / 25, 0);
  EXPECT_EQ(next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 10)).what, kind::expired);
  s.expires = utc(y2026 / November / 25, 0) + milliseconds(1);
  d = next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 10));
  EXPECT_EQ(d.what, kind::later);
  EXPECT_EQ(d.at, utc(y2026 / November / 25, 0));
}

TEST_F(send_time, past_expires_is_expired_even_inside_the_window) {
  auto s = window(0, 0, 0, 0);
  s.expires = utc(y2026 / November / 24, 0);
  EXPECT_EQ(next_send_time(s, nullptr, zones, utc(y2026 / November / 24, 0)).what, kind::expired);
  job_schedule only_expiry;
  only_expiry.expires = utc(y2026 / November / 24, 0);
  EXPECT_EQ(next_send_time(only_expiry, nullptr, zones, utc(y2026 / November / 24, 1)).what,
            kind::expired);
  EXPECT_EQ(next_send_time(only_expiry, nullptr, zones, utc(y2026 / November / 23, 1)).what,
            kind::now);
}

TEST_F(send_time, the_zone_is_the_windows_then_the_recipients_then_utc) {
  const sys_time now =
      utc(y2026 / November / 24, 0);  // 09:00 JST, 19:00 EST the day before, 00:00 UTC
  // The window names its zone: it wins over the recipient's.
  auto d = next_send_time(window(9, 0, 10, 0, "Asia/Tokyo"), new_york, zones, now);
  EXPECT_EQ(d.what, kind::now);
  // No zone in the window: the recipient's.
  d = next_send_time(window(9, 0, 10, 0), tokyo, zones, now);
  EXPECT_EQ(d.what, kind::now);
  d = next_send_time(window(9, 0, 10, 0), new_york, zones, now);
  EXPECT_EQ(d.at, utc(y2026 / November / 24, 14));
  // An unknown recipient zone (the profile's tz did not resolve) with the
  // job's zone: the job's; with none either: UTC.
  const date::time_zone* unknown = zones.find("Not/A_Zone");
  ASSERT_EQ(unknown, nullptr);
  d = next_send_time(window(9, 0, 10, 0, "Asia/Tokyo"), unknown, zones, now);
  EXPECT_EQ(d.what, kind::now);
  d = next_send_time(window(9, 0, 10, 0), unknown, zones, now);
  EXPECT_EQ(d.at, utc(y2026 / November / 24, 9));
  // A window zone that no longer resolves (the OS database changed since
  // the job was accepted) falls back to the recipient's.
  d = next_send_time(window(9, 0, 10, 0, "Gone/Zone"), tokyo, zones, now);
  EXPECT_EQ(d.what, kind::now);
}

}  // namespace
}  // namespace relay
