#pragma once
// RFC 3339 timestamps, parsed by pure arithmetic on the proleptic Gregorian
// calendar: no locale, no TZ database, no libc state.

#include <optional>
#include <string_view>

#include "routing/clock.h"

namespace relay {

enum class timestamp_form {
  // Jobs: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). The offset is required
  // (a time without one means a different instant on every machine).
  strict,
  // An operator's command line: also YYYY-MM-DD alone (00:00), ' ' for 'T',
  // seconds optional, and no offset meaning UTC (what relay's logs show).
  lenient,
};

// Fractions beyond milliseconds are truncated; a leap second (:60) lands on
// the next second. nullopt when `s` is not of the form.
std::optional<sys_time> parse_rfc3339(std::string_view s, timestamp_form form = timestamp_form::strict);

// `n` decimal digits at s[pos]; false when they are not all there.
bool read_fixed_digits(std::string_view s, size_t pos, size_t n, int& out);

}  // namespace relay
