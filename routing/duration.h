#pragma once

#include <chrono>
#include <string_view>

#include "routing/result.h"

namespace relay {

// "250ms", "30s", "10m", "2h", "1d" (a non-negative integer and a unit) -> milliseconds.
result<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace relay
