#include "routing/engagement_throttle.h"

#include <gtest/gtest.h>

#include <cmath>

#include "routing/user_engagement.h"

namespace relay {
namespace {

using namespace std::chrono_literals;

const sys_time kStart = sys_time(std::chrono::milliseconds(1'767'225'600'000));  // Thu 2026-01-01
constexpr int64_t kDay = 20454;

// One user receiving messages day by day, as the fan-out would: check, then
// count the send when allowed.
struct user_sim {
  user_engagement e{{.half_life = std::chrono::hours(24 * 14), .capped_companies = {"acme"}}};
  uint32_t ordinal = 1;

  throttle_verdict check(std::string_view company, int64_t day, sys_time now,
                         const throttle_params& p) {
    return check_throttle(e.find(ordinal), e.company_counts(company, ordinal), company, day,
                          week_of_day(day), now, p);
  }
  bool try_send(std::string_view company, int64_t day, sys_time now, const throttle_params& p) {
    if (!check(company, day, now, p).allowed) return false;
    e.on_sent(ordinal, channel::sms, company, now, day, week_of_day(day));
    return true;
  }
  // Offers `offered` messages on local day `day`; returns how many were sent.
  int day_of_sends(int64_t day, int offered, const throttle_params& p, bool opens,
                   std::string_view company = "acme") {
    const sys_time t = kStart + std::chrono::hours(24 * (day - kDay));
    int sent = 0;
    for (int i = 0; i < offered; ++i) {
      if (try_send(company, day, t + std::chrono::minutes(i), p)) {
        ++sent;
        if (opens)
          e.on_event(ordinal, channel::sms, engagement_count::opened,
                     t + std::chrono::minutes(i) + 30s);
      }
    }
    return sent;
  }
};

TEST(engagement_throttle, no_caps_configured_allows_everything) {
  user_sim u;
  throttle_params p;
  EXPECT_EQ(u.day_of_sends(kDay, 50, p, false), 50);
  const throttle_verdict v = u.check("acme", kDay, kStart, p);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.reason, "ok");
  EXPECT_EQ(v.cap, 0u);
}

TEST(engagement_throttle, the_daily_cap_counts_in_the_users_local_day) {
  user_sim u;
  throttle_params p;
  p.daily_cap = 3;
  EXPECT_EQ(u.day_of_sends(kDay, 5, p, true), 3);
  const throttle_verdict v = u.check("acme", kDay, kStart + 10h, p);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "daily_cap");
  EXPECT_EQ(v.cap, 3u);
  EXPECT_EQ(v.used, 3u);
  // Same UTC instant, but the user's local day has turned: allowed again.
  EXPECT_TRUE(u.check("acme", kDay + 1, kStart + 10h, p).allowed);
  EXPECT_EQ(u.day_of_sends(kDay + 1, 5, p, true), 3);
}

TEST(engagement_throttle, the_weekly_cap_counts_in_the_users_local_week) {
  user_sim u;
  throttle_params p;
  p.daily_cap = 2;
  p.weekly_cap = 5;
  // Thu..Sun are one week: 2 + 2 + 1 + 0.
  EXPECT_EQ(u.day_of_sends(kDay, 4, p, true), 2);
  EXPECT_EQ(u.day_of_sends(kDay + 1, 4, p, true), 2);
  EXPECT_EQ(u.day_of_sends(kDay + 2, 4, p, true), 1);
  const throttle_verdict v = u.check("acme", kDay + 3, kStart + 24h * 3, p);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "weekly_cap");
  EXPECT_EQ(v.cap, 5u);
  EXPECT_EQ(v.used, 5u);
  // Monday: a new week.
  EXPECT_EQ(u.day_of_sends(kDay + 4, 4, p, true), 2);
}

TEST(engagement_throttle, company_caps_are_independent_of_the_global_caps) {
  user_sim u;
  throttle_params p;
  p.daily_cap = 5;
  p.company_caps.emplace("acme", company_cap{1, 3});
  EXPECT_EQ(u.day_of_sends(kDay, 3, p, true, "acme"), 1);
  throttle_verdict v = u.check("acme", kDay, kStart + 5h, p);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "company_daily_cap");
  EXPECT_EQ(v.cap, 1u);
  EXPECT_EQ(v.used, 1u);
  // Another company is held only by the global cap, which acme's send counts towards.
  EXPECT_EQ(u.day_of_sends(kDay, 10, p, true, "globex"), 4);
  v = u.check("globex", kDay, kStart + 5h, p);
  EXPECT_EQ(v.reason, "daily_cap");
  EXPECT_EQ(v.used, 5u);
  // acme's weekly cap of 3 across days.
  EXPECT_EQ(u.day_of_sends(kDay + 1, 3, p, true, "acme"), 1);
  EXPECT_EQ(u.day_of_sends(kDay + 2, 3, p, true, "acme"), 1);
  v = u.check("acme", kDay + 3, kStart + 24h * 3, p);
  EXPECT_EQ(v.reason, "company_weekly_cap");
  EXPECT_EQ(v.used, 3u);
  EXPECT_TRUE(u.check("globex", kDay + 3, kStart + 24h * 3, p).allowed);
}

TEST(engagement_throttle, the_adapted_cap_shrinks_with_the_rate_and_never_below_the_floor) {
  throttle_params p;
  p.low_open_rate = 0.2;
  p.floor_daily = 1;
  EXPECT_EQ(adapted_daily_cap(10, 0.3, p), 10u);
  EXPECT_EQ(adapted_daily_cap(10, 0.2, p), 10u);
  EXPECT_EQ(adapted_daily_cap(10, 0.1, p), 5u);
  EXPECT_EQ(adapted_daily_cap(10, 0.04, p), 2u);
  EXPECT_EQ(adapted_daily_cap(10, 0.0, p), 1u);
  p.floor_daily = 3;
  EXPECT_EQ(adapted_daily_cap(10, 0.0, p), 3u);
  EXPECT_EQ(adapted_daily_cap(2, 0.0, p), 2u);  // never above the base
  double last = 1e9;
  for (double r = 0.0; r <= 0.25; r += 0.01) {  // monotone in the rate
    EXPECT_GE(adapted_daily_cap(10, r, p), last == 1e9 ? 0u : last);
    last = adapted_daily_cap(10, r, p);
  }
}

TEST(engagement_throttle,
     a_user_whose_opens_stop_gets_fewer_sends_down_to_the_floor_and_more_after_opening) {
  user_sim u;
  throttle_params p;
  p.daily_cap = 4;
  p.low_open_rate = 0.25;
  p.floor_daily = 1;
  p.min_recent_sends = 10;

  // Two engaged weeks: opens every message, gets the full cap.
  int64_t day = kDay;
  for (; day < kDay + 14; ++day) EXPECT_EQ(u.day_of_sends(day, 6, p, true), 4) << day;

  // Opens stop: the daily sends fall week after week, down to the floor.
  std::vector<int> per_week;
  for (int week = 0; week < 8; ++week) {
    int sent = 0;
    for (int d = 0; d < 7; ++d, ++day) sent += u.day_of_sends(day, 6, p, false);
    per_week.push_back(sent);
  }
  EXPECT_EQ(per_week.front(), 28);  // the rate fades slowly at first
  for (size_t i = 1; i < per_week.size(); ++i) EXPECT_LE(per_week[i], per_week[i - 1]) << i;
  EXPECT_EQ(per_week.back(), 7);  // one a day: the floor
  const sys_time t = kStart + std::chrono::hours(24 * (day - kDay));
  throttle_verdict v = u.check("acme", day, t, p);
  EXPECT_TRUE(v.allowed);
  EXPECT_TRUE(v.reduced);
  EXPECT_EQ(v.cap, 1u);
  EXPECT_EQ(v.base_daily_cap, 4u);
  EXPECT_LT(v.recent_rate, 0.25 * 1.5 / 4);  // round(4 r / 0.25) <= 1
  EXPECT_GE(v.recent_sends, 10);
  u.day_of_sends(day, 1, p, false);
  v = u.check("acme", day, t + 1h, p);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "daily_cap_low_engagement");
  ++day;

  // Opening again: the cap grows back to the full 4.
  std::vector<int> per_day;
  for (int d = 0; d < 14; ++d, ++day) per_day.push_back(u.day_of_sends(day, 6, p, true));
  EXPECT_GT(per_day[3], per_day[0]);
  EXPECT_EQ(per_day.back(), 4);
}

TEST(engagement_throttle, a_rate_from_too_few_sends_is_not_trusted) {
  user_sim u;
  throttle_params p;
  p.daily_cap = 4;
  p.low_open_rate = 0.5;
  p.min_recent_sends = 10;
  EXPECT_EQ(u.day_of_sends(kDay, 4, p, false), 4);  // 4 sends, no opens: rate 0 but untrusted
  throttle_verdict v = u.check("acme", kDay + 1, kStart + 24h, p);
  EXPECT_TRUE(v.allowed);
  EXPECT_FALSE(v.reduced);
  EXPECT_EQ(v.cap, 4u);
  EXPECT_DOUBLE_EQ(v.recent_rate, 0);
  EXPECT_NEAR(v.recent_sends, 4 * std::pow(2, -1.0 / 14), 0.01);
}

TEST(engagement_throttle, with_no_daily_cap_low_rate_users_get_the_low_rate_default) {
  user_sim u;
  throttle_params p;
  p.low_open_rate = 0.2;
  p.low_rate_daily = 3;
  p.floor_daily = 1;
  p.min_recent_sends = 5;
  EXPECT_EQ(u.day_of_sends(kDay, 20, p, true), 20);  // engaged: uncapped
  int64_t day = kDay + 1;
  for (int i = 0; i < 60; ++i, ++day) u.day_of_sends(day, 3, p, false);
  const throttle_verdict v =
      u.check("acme", day, kStart + std::chrono::hours(24 * (day - kDay)), p);
  EXPECT_EQ(v.base_daily_cap, 3u);
  EXPECT_TRUE(v.reduced);
  EXPECT_EQ(v.cap, 1u);
  EXPECT_EQ(u.day_of_sends(day, 5, p, false), 1);
}

TEST(engagement_throttle, a_never_messaged_user_is_allowed_with_no_rate) {
  throttle_params p;
  p.daily_cap = 1;
  p.low_open_rate = 0.3;
  p.company_caps.emplace("acme", company_cap{1, 1});
  const throttle_verdict v =
      check_throttle(nullptr, nullptr, "acme", kDay, week_of_day(kDay), kStart, p);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.used, 0u);
  EXPECT_EQ(v.recent_rate, -1);
}

}  // namespace
}  // namespace relay
