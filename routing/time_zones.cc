#include "routing/time_zones.h"

#include <algorithm>
#include <exception>

namespace relay {
namespace {

// The database, or null when it cannot be read (no /usr/share/zoneinfo):
// then every name is unknown and windows fall back to UTC.
const date::tzdb* database() {
  static const date::tzdb* db = []() -> const date::tzdb* {
    try {
      const date::tzdb& d = date::get_tzdb();
      return &d;
    } catch (const std::exception&) {
      return nullptr;
    }
  }();
  return db;
}

// date::locate_zone throws on unknown names; the OS database lists links as
// zones of their own, sorted by name, so a binary search finds both.
const date::time_zone* lookup(std::string_view name) {
  const date::tzdb* db = database();
  if (db == nullptr || name.empty() || name == "localtime") return nullptr;
  const auto& zones = db->zones;
  auto it =
      std::lower_bound(zones.begin(), zones.end(), name,
                       [](const date::time_zone& z, std::string_view n) { return z.name() < n; });
  if (it != zones.end() && it->name() == name) return &*it;
  return nullptr;
}

}  // namespace

bool is_time_zone(std::string_view name) { return lookup(name) != nullptr; }

const date::time_zone* time_zones::find(std::string_view name) {
  if (auto it = cache_.find(name); it != cache_.end()) return it->second;
  const date::time_zone* z = lookup(name);
  if (z != nullptr || cache_.size() < kMaxCached) cache_.emplace(std::string(name), z);
  return z;
}

local_time_info local_time(sys_time t, const date::time_zone* tz) {
  using namespace std::chrono;
  // Local wall-clock milliseconds since the local epoch.
  const milliseconds local =
      tz == nullptr ? t.time_since_epoch() : tz->to_local(t).time_since_epoch();
  const auto day = floor<date::days>(local);
  const date::year_month_day ymd{date::sys_days{day}};
  const auto in_day = local - day;
  local_time_info out{};
  out.year = static_cast<int>(ymd.year());
  out.month = static_cast<int>(static_cast<unsigned>(ymd.month()));
  out.day = static_cast<int>(static_cast<unsigned>(ymd.day()));
  out.hour = static_cast<int>(duration_cast<hours>(in_day).count());
  out.minute = static_cast<int>(duration_cast<minutes>(in_day).count() % 60);
  out.weekday = static_cast<int>(date::weekday{date::sys_days{day}}.c_encoding());
  out.local_day = day.count();
  return out;
}

}  // namespace relay
