#include "routing/engagement_throttle.h"

#include <algorithm>
#include <cmath>

namespace relay {

uint32_t adapted_daily_cap(uint32_t base, double rate, const throttle_params& p) {
  if (base == 0 || p.low_open_rate <= 0 || rate >= p.low_open_rate) return base;
  const double scaled = std::round(double(base) * std::max(rate, 0.0) / p.low_open_rate);
  const auto shrunk = static_cast<uint32_t>(std::max<double>(p.floor_daily, scaled));
  return std::min(base, shrunk);
}

throttle_verdict check_throttle(const user_record* user, const cap_counts* company_counts,
                                std::string_view company, int64_t local_day, int32_t local_week,
                                sys_time now, const throttle_params& p) {
  throttle_verdict v;
  cap_counts global{};
  if (user != nullptr) {
    global = user->caps;
    const recent_engagement recent = decayed(*user, now, p.half_life);
    v.recent_sends = recent.sends;
    if (auto r = recent.rate()) v.recent_rate = *r;
  }

  // Global daily cap, adapted to the recent open rate when it is trusted.
  uint32_t base = p.daily_cap;
  const bool low = p.low_open_rate > 0 && v.recent_rate >= 0 &&
                   v.recent_sends >= p.min_recent_sends && v.recent_rate < p.low_open_rate;
  if (low && base == 0) base = p.low_rate_daily;
  v.base_daily_cap = base;
  v.cap = low ? adapted_daily_cap(base, v.recent_rate, p) : base;
  v.reduced = v.cap < base;
  v.used = global.sends_on_day(local_day);
  if (v.cap > 0 && v.used >= v.cap) {
    v.allowed = false;
    v.reason = v.reduced ? "daily_cap_low_engagement" : "daily_cap";
    return v;
  }

  auto refuse = [&](std::string_view reason, uint32_t cap, uint32_t used) {
    v.allowed = false;
    v.reason = reason;
    v.cap = cap;
    v.used = used;
    return v;
  };
  if (p.weekly_cap > 0 && global.sends_in_week(local_week) >= p.weekly_cap) {
    return refuse("weekly_cap", p.weekly_cap, global.sends_in_week(local_week));
  }
  if (!p.company_caps.empty()) {
    if (auto it = p.company_caps.find(company); it != p.company_caps.end()) {
      const cap_counts c = company_counts != nullptr ? *company_counts : cap_counts{};
      const company_cap& cc = it->second;
      if (cc.daily > 0 && c.sends_on_day(local_day) >= cc.daily) {
        return refuse("company_daily_cap", cc.daily, c.sends_on_day(local_day));
      }
      if (cc.weekly > 0 && c.sends_in_week(local_week) >= cc.weekly) {
        return refuse("company_weekly_cap", cc.weekly, c.sends_in_week(local_week));
      }
    }
  }
  return v;
}

}  // namespace relay
