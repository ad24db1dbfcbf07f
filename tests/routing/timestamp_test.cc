#include "routing/timestamp.h"

#include <gtest/gtest.h>

namespace relay {
namespace {

using namespace std::chrono;

sys_time utc(year_month_day d, hours h = hours(0), minutes m = minutes(0)) {
  return time_point_cast<milliseconds>(sys_days(d)) + h + m;
}

TEST(timestamp, a_job_needs_seconds_and_an_offset) {
  EXPECT_EQ(parse_rfc3339("2026-11-24T09:00:00+09:00"), utc(2026y / 11 / 24));
  EXPECT_EQ(parse_rfc3339("2026-11-24T00:00:00.5Z"), utc(2026y / 11 / 24) + milliseconds(500));
  for (const char* bad : {"2026-11-24", "2026-11-24T09:00+09:00", "2026-11-24T09:00:00", "2026-11-24 09:00:00Z",
                          "2026-02-30T00:00:00Z", "2026-11-24T24:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
}

TEST(timestamp, an_operator_may_type_a_date_or_a_time_without_offset_meaning_utc) {
  const auto lenient = [](std::string_view s) { return parse_rfc3339(s, timestamp_form::lenient); };
  EXPECT_EQ(lenient("2026-11-24"), utc(2026y / 11 / 24));
  EXPECT_EQ(lenient("2026-11-24 09:30"), utc(2026y / 11 / 24, hours(9), minutes(30)));
  EXPECT_EQ(lenient("2026-11-24T09:30+09:00"), utc(2026y / 11 / 24, hours(0), minutes(30)));
  EXPECT_EQ(lenient("2026-11-24T09:00:00+09:00"), utc(2026y / 11 / 24));
  EXPECT_FALSE(lenient("2026-11-24T9:30").has_value());
  EXPECT_FALSE(lenient("yesterday").has_value());
}

}  // namespace
}  // namespace relay
