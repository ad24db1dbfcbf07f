#include "routing/time_zones.h"

#include <gtest/gtest.h>


#include "routing/job.h"

namespace relay {
namespace {

using namespace std::chrono;
using date::April;
using date::November;

sys_time utc(date::year_month_day d, hours h = hours(0), minutes m = minutes(0)) {
  return time_point_cast<milliseconds>(date::sys_days(d)) + h + m;
}

TEST(time_zones, known_names_and_links_resolve_and_garbage_does_not) {
  EXPECT_TRUE(is_time_zone("Asia/Tokyo"));
  EXPECT_TRUE(is_time_zone("America/New_York"));
  EXPECT_TRUE(is_time_zone("Europe/London"));
  EXPECT_TRUE(is_time_zone("UTC"));
  EXPECT_TRUE(is_time_zone("Japan"));  // a link to Asia/Tokyo
  EXPECT_FALSE(is_time_zone("Mars/Olympus_Mons"));
  EXPECT_FALSE(is_time_zone(""));
  EXPECT_FALSE(is_time_zone("asia/tokyo"));
  EXPECT_FALSE(is_time_zone("../../etc/passwd"));
  EXPECT_FALSE(is_time_zone("localtime"));  // the machine's zone, not a name a job may give
}

TEST(time_zones, find_caches_known_and_unknown_names_and_never_throws) {
  time_zones zones;
  const date::time_zone* tokyo = zones.find("Asia/Tokyo");
  ASSERT_NE(tokyo, nullptr);
  EXPECT_EQ(tokyo->name(), "Asia/Tokyo");
  EXPECT_EQ(zones.find(std::string("Asia/Tokyo")), tokyo);
  EXPECT_EQ(zones.find("Nowhere/Land"), nullptr);
  EXPECT_EQ(zones.find("Nowhere/Land"), nullptr);
  EXPECT_EQ(zones.find(""), nullptr);
}

TEST(time_zones, local_time_gives_the_wall_clock_weekday_and_local_day) {
  time_zones zones;
  // 2026-11-24 00:30 UTC is Tuesday 09:30 in Tokyo.
  auto t = local_time(utc(date::year{2026} / November / 24, hours(0), minutes(30)),
                      zones.find("Asia/Tokyo"));
  EXPECT_EQ(t.year, 2026);
  EXPECT_EQ(t.month, 11);
  EXPECT_EQ(t.day, 24);
  EXPECT_EQ(t.hour, 9);
  EXPECT_EQ(t.minute, 30);
  EXPECT_EQ(t.weekday, 2);
  EXPECT_EQ(t.local_day,
            date::sys_days(date::year{2026} / November / 24).time_since_epoch().count());

  // The same instant is still Monday evening in New York (EST, UTC-5).
  t = local_time(utc(date::year{2026} / November / 24, hours(0), minutes(30)),
                 zones.find("America/New_York"));
  EXPECT_EQ(t.day, 23);
  EXPECT_EQ(t.hour, 19);
  EXPECT_EQ(t.weekday, 1);
  EXPECT_EQ(t.local_day + 1,
            date::sys_days(date::year{2026} / November / 24).time_since_epoch().count());

  // Summer time: UTC-4.
  t = local_time(utc(date::year{2026} / April / 1, hours(12)), zones.find("America/New_York"));
  EXPECT_EQ(t.hour, 8);

  // No zone: UTC.
  t = local_time(utc(date::year{2026} / November / 24, hours(23), minutes(59)), nullptr);
  EXPECT_EQ(t.hour, 23);
  EXPECT_EQ(t.minute, 59);
  EXPECT_EQ(t.weekday, 2);
}

TEST(time_zones, local_time_before_1970_counts_days_backwards) {
  auto t = local_time(sys_time{milliseconds(-1)}, nullptr);
  EXPECT_EQ(t.year, 1969);
  EXPECT_EQ(t.month, 12);
  EXPECT_EQ(t.day, 31);
  EXPECT_EQ(t.hour, 23);
  EXPECT_EQ(t.minute, 59);
  EXPECT_EQ(t.local_day, -1);
}

std::string window_job(std::string_view tz) {
  return std::string(
             R"({"job_id":"j1","company_id":"acme","to":{"users":["u1"]},"content":{"text":"Hi"},)") +
         R"("schedule":{"window":{"start":"09:00","end":"18:00","tz":")" + std::string(tz) +
         R"("}}})";
}

TEST(time_zones, a_job_with_an_unknown_window_zone_is_rejected) {
  auto ok = parse_job(window_job("Asia/Tokyo"), {});
  ASSERT_TRUE(ok.ok()) << ok.err().message;
  EXPECT_EQ(ok->schedule.window->tz, "Asia/Tokyo");

  auto bad = parse_job(window_job("Mars/Olympus_Mons"), {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
  EXPECT_EQ(bad.err().message.rfind("schedule.window.tz: ", 0), 0u) << bad.err().message;

  EXPECT_FALSE(parse_job(window_job("localtime"), {}).ok());
}

}  // namespace
}  // namespace relay
