#include "daemon/engagement_settings.h"

namespace relay {

engagement_settings engagement_settings_of(const config& cfg) {
  const engagement_config& e = cfg.engagement;
  engagement_settings out;
  out.segment_attributes = 0;
  for (const std::string& a : e.segment) {
    if (a == "gender") out.segment_attributes |= seg_gender;
    if (a == "age_band") out.segment_attributes |= seg_age_band;
    if (a == "region") out.segment_attributes |= seg_region;
    if (a == "occupation") out.segment_attributes |= seg_occupation;
  }
  out.choice.prior_weight = e.prior_weight;
  out.throttle.daily_cap = e.caps.daily;
  out.throttle.weekly_cap = e.caps.weekly;
  for (const auto& [company, caps] : e.company_caps)
    out.throttle.company_caps[company] = {caps.daily, caps.weekly};
  out.throttle.low_open_rate = e.low_open_rate;
  out.throttle.floor_daily = e.floor_daily;
  out.throttle.low_rate_daily = e.low_rate_daily;
  out.throttle.min_recent_sends = e.min_recent_sends;
  out.throttle.half_life = std::chrono::duration_cast<std::chrono::seconds>(e.recent_half_life);
  out.quiet_before = e.quiet_before;
  out.quiet_after = e.quiet_after;
  out.lookback = e.lookback;
  out.rollup.hourly_for = std::chrono::duration_cast<std::chrono::hours>(e.hourly_buckets_for);
  out.rollup.daily_for = std::chrono::duration_cast<std::chrono::hours>(e.daily_buckets_for);
  return out;
}

}  // namespace relay
