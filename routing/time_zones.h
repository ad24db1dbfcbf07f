#pragma once
// IANA time zones for send windows and local-hour counting, from Howard
// Hinnant's date library (the library std::chrono::tzdb was standardised
// from; libstdc++ 12 has none) over the OS database in /usr/share/zoneinfo.
// See docs/decisions/0013-time-zones-and-timers.md.

#include <date/tz.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "routing/clock.h"

namespace relay {

// True when `name` is a zone of the database (canonical or a link such as
// "Japan"). "localtime" (the machine's own zone) is not a name a job may use.
bool is_time_zone(std::string_view name);

// Resolves names once and caches them, unknown names included: the fan-out
// asks once per recipient, and a cached name is found without allocating.
// Not thread-safe: one per thread (the core thread owns the fan-out's).
class time_zones {
 public:
  // nullptr when unknown (callers fall back: the job's tz, else UTC). Never throws.
  const date::time_zone* find(std::string_view name);

 private:
  struct name_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Garbage names are cached too, up to this many, so a flood of them
  // cannot grow the cache without bound (past it they are looked up each time).
  static constexpr size_t kMaxCached = 4096;
  std::unordered_map<std::string, const date::time_zone*, name_hash, std::equal_to<>> cache_;
};

struct local_time_info {
  int year, month, day, hour, minute, weekday /*0=Sunday*/;
  int64_t local_day;  // days since 1970-01-01, local
};

// `t` on the wall clock of `tz`; tz null = UTC.
local_time_info local_time(sys_time t, const date::time_zone* tz);

}  // namespace relay
