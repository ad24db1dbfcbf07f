#pragma once
// What a message is counted under (DESIGN §6): the dimensions fixed when it
// is sent, and the counts kept for each combination. Shared by the counting
// cube (engagement_cube.h), the per-user records (user_engagement.h) and the
// channel choice (channel_choice.h).
//
// Every later event of a message (delivered, opened, clicked, failed) is
// counted under the dimensions of its send, so an open rate compares like
// with like: the opens of the messages sent at 9:00 over the sends at 9:00.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "routing/channel.h"

namespace relay {

enum class engagement_count : uint8_t { sent = 0, delivered = 1, opened = 2, clicked = 3, failed = 4 };
inline constexpr int kEngagementCounts = 5;

constexpr std::string_view to_string(engagement_count c) {
  switch (c) {
    case engagement_count::sent: return "sent";
    case engagement_count::delivered: return "delivered";
    case engagement_count::opened: return "opened";
    case engagement_count::clicked: return "clicked";
    case engagement_count::failed: return "failed";
  }
  return "?";
}

struct engagement_counts {
  std::array<uint64_t, kEngagementCounts> v{};
  uint64_t& operator[](engagement_count c) { return v[static_cast<size_t>(c)]; }
  uint64_t operator[](engagement_count c) const { return v[static_cast<size_t>(c)]; }
  engagement_counts& operator+=(const engagement_counts& o) {
    for (size_t i = 0; i < v.size(); ++i) v[i] += o.v[i];
    return *this;
  }
  // Opens over sends; nullopt when nothing was sent.
  std::optional<double> open_rate() const {
    const uint64_t sent = (*this)[engagement_count::sent];
    if (sent == 0) return std::nullopt;
    return static_cast<double>((*this)[engagement_count::opened]) / static_cast<double>(sent);
  }
};

// Age bands by decade of age in the year of the send; 0 = unknown.
//   1 "<20", 2 "20-29", 3 "30-39", 4 "40-49", 5 "50-59", 6 "60+"
inline constexpr uint8_t kAgeBandUnknown = 0;
constexpr uint8_t age_band_of(std::optional<int> birth_year, int year_now) {
  if (!birth_year || *birth_year <= 1900 || *birth_year > year_now) return kAgeBandUnknown;
  const int age = year_now - *birth_year;
  if (age < 20) return 1;
  if (age >= 60) return 6;
  return static_cast<uint8_t>(age / 10);
}
constexpr std::string_view age_band_label(uint8_t band) {
  switch (band) {
    case 1: return "<20";
    case 2: return "20-29";
    case 3: return "30-39";
    case 4: return "40-49";
    case 5: return "50-59";
    case 6: return "60+";
  }
  return "";
}

inline constexpr uint8_t kUnknownHour = 0xff;     // local_hour when the time zone is unknown
inline constexpr uint8_t kUnknownWeekday = 0xff;  // weekday likewise

// One message's dimensions. Views: valid for the duration of the call that
// takes them. Empty strings mean unknown (the user gave no such attribute).
struct engagement_dims {
  std::string_view company;
  std::string_view carrier;
  channel ch = channel::sms;
  std::string_view gender;
  uint8_t age_band = kAgeBandUnknown;
  std::string_view region;
  std::string_view occupation;
  uint8_t local_hour = kUnknownHour;        // 0..23, the send's hour in the user's time zone
  uint8_t weekday = kUnknownWeekday;        // 0 = Sunday .. 6, likewise
};

// The dimensions a query may group by or filter on (relayctl stats --by).
enum class engagement_dimension : uint8_t {
  company,
  carrier,
  channel,
  gender,
  age_band,
  region,
  occupation,
  hour,      // local_hour
  weekday,
  location,  // where an open happened, when the event carried it (opens and clicks only)
  day,       // the send's UTC day (YYYY-MM-DD), from the time bucket
};

}  // namespace relay
