#pragma once
// Per-user send caps and adaptive throttling by engagement (DESIGN §6,
// issue 4). Called by the fan-out on the core thread for every recipient of
// a job of a throttled deployment, before the send; a refusal becomes
// `rejected: throttled` with the verdict's reason as detail. Pure: the counts
// come from user_engagement, the time from the caller; no allocation.
//
// Caps count in the user's local day and week (the caller's day/week indexes,
// as passed to user_engagement::on_sent). Adaptive rule (0014): when the
// user's recent open rate r is trusted (decayed sends >= min_recent_sends) and
// below low_open_rate, the daily cap becomes
//   min(base, max(floor_daily, round(base × r / low_open_rate)))
// where base = daily_cap, or low_rate_daily when daily_cap is 0. As r
// recovers the cap grows back to base. Weekly and company caps do not adapt.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "routing/clock.h"
#include "routing/user_engagement.h"

namespace relay {

struct company_cap {
  uint32_t daily = 0;   // 0 = none
  uint32_t weekly = 0;  // 0 = none
};

struct throttle_params {
  struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  uint32_t daily_cap = 0, weekly_cap = 0;  // 0 = none (global, all companies)
  std::unordered_map<std::string, company_cap, string_hash, std::equal_to<>> company_caps;
  double low_open_rate = 0.0;    // below this recent open rate the daily cap shrinks (0: off)
  uint32_t floor_daily = 1;      // the adapted cap never goes below this
  uint32_t low_rate_daily = 3;   // the base for adaptation when daily_cap is 0
  double min_recent_sends = 10;  // decayed sends needed before the rate is trusted
  std::chrono::seconds half_life{std::chrono::hours(24 * 14)};  // same as user_engagement's
};

struct throttle_verdict {
  bool allowed = true;
  // "ok", "daily_cap", "daily_cap_low_engagement", "weekly_cap",
  // "company_daily_cap", "company_weekly_cap" (static strings).
  std::string_view reason = "ok";
  // The cap that refused, or when allowed the effective global daily cap
  // (0 = none), and the sends already counted against it.
  uint32_t cap = 0, used = 0;
  uint32_t base_daily_cap = 0;  // the daily cap before adaptation
  bool reduced = false;         // the daily cap was lowered for low engagement
  double recent_rate = -1;      // decayed opens / sends at `now`; -1 when none
  double recent_sends = 0;      // decayed sends at `now`
};

// `user` and `company_counts` may be null (nothing counted yet).
throttle_verdict check_throttle(const user_record* user, const cap_counts* company_counts,
                                std::string_view company, int64_t local_day, int32_t local_week,
                                sys_time now, const throttle_params& p);

// The daily cap after adaptation for recent rate `rate` (exposed for tests and
// the decision record); returns base when adaptation does not apply.
uint32_t adapted_daily_cap(uint32_t base, double rate, const throttle_params& p);

}  // namespace relay
