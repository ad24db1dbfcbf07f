#pragma once
// When a message may be sent under its job's schedule (DESIGN §3: not_before,
// window, expires). Pure: the fan-out asks per recipient and puts a `later`
// into the timer store (timer_store.h), an `expired` out as `failed: expired`.

#include <cstdint>

#include "routing/clock.h"
#include "routing/job.h"
#include "routing/time_zones.h"

namespace relay {

struct send_decision {
  enum class kind : uint8_t { now, later, expired } what;
  sys_time at;  // now: `now`; later: the first instant the send may happen; expired: `expires`
};

// The earliest instant >= now at which a message may be sent under `s`: not
// before `not_before`, inside `window`, and before `expires` (expired when
// that instant is >= expires).
//
// The window is [start, end) in minutes of the local day, in `window.tz`
// when the job gives one (and it is known), else in `recipient_tz`, else UTC.
// end < start runs over midnight (22:00-06:00); start == end is all day.
// Daylight saving: a start the clocks skip (02:30 on a spring-forward day)
// opens at the first instant after the gap; a start the clocks pass twice
// (fall-back) opens at its first occurrence; the end likewise closes at the
// first instant the local clock reaches it.
send_decision next_send_time(const job_schedule& s, const date::time_zone* recipient_tz,
                             time_zones& zones, sys_time now);

}  // namespace relay
