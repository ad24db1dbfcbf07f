#include "routing/send_time.h"

#include <algorithm>

namespace relay {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;

// The first instant whose local time in `tz` is >= `local` (local ms since
// the local epoch): in a gap, the end of the gap; when the local time occurs
// twice, its first occurrence.
sys_time first_instant_at(const date::time_zone* tz, milliseconds local) {
  if (tz == nullptr) return sys_time{local};
  const date::local_time<milliseconds> lt{local};
  const date::local_info info = tz->get_info(lt);
  switch (info.result) {
    case date::local_info::unique:
    case date::local_info::ambiguous:
      return sys_time{local - std::chrono::duration_cast<milliseconds>(info.first.offset)};
    case date::local_info::nonexistent:
      return std::chrono::time_point_cast<milliseconds>(info.second.begin);
  }
  return sys_time{local};
}

// The earliest instant >= t inside the daily window [start, end) of `tz`.
sys_time next_in_window(const send_window& w, const date::time_zone* tz, sys_time t) {
  if (w.start_minute == w.end_minute) return t;  // all day
  const int64_t today = local_time(t, tz).local_day;
  const bool over_midnight = w.end_minute < w.start_minute;
  std::optional<sys_time> best;
  // A window over midnight that opened yesterday may still be open; a day
  // the clocks skip (Samoa 2011) may hold no opening, hence a few days ahead.
  for (int64_t d = today - 1; d <= today + 3; ++d) {
    const milliseconds midnight = date::days{d};
    const sys_time open = first_instant_at(tz, midnight + minutes(w.start_minute));
    const sys_time close =
        first_instant_at(tz, midnight + date::days{over_midnight ? 1 : 0} + minutes(w.end_minute));
    if (close <= open) continue;  // the whole window fell into a gap
    if (t >= open && t < close) return t;
    if (open > t && (!best || open < *best)) best = open;
  }
  return best.value_or(t);  // unreachable with a valid window: every few days hold an opening
}

}  // namespace

send_decision next_send_time(const job_schedule& s, const date::time_zone* recipient_tz,
                             time_zones& zones, sys_time now) {
  sys_time at = now;
  if (s.not_before && *s.not_before > at) at = *s.not_before;
  if (s.expires && at >= *s.expires) return {send_decision::kind::expired, *s.expires};
  if (s.window) {
    const date::time_zone* tz = s.window->tz.empty() ? nullptr : zones.find(s.window->tz);
    if (tz == nullptr) tz = recipient_tz;
    at = next_in_window(*s.window, tz, at);
  }
  if (s.expires && at >= *s.expires) return {send_decision::kind::expired, *s.expires};
  return {at == now ? send_decision::kind::now : send_decision::kind::later, at};
}

}  // namespace relay
