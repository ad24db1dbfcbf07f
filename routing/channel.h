#pragma once
// The delivery channels relay knows.

#include <cstdint>
#include <optional>
#include <string_view>

namespace relay {

enum class channel : uint8_t { rcs = 0, sms = 1, email = 2 };
inline constexpr int kChannelCount = 3;

constexpr std::string_view to_string(channel c) {
  switch (c) {
    case channel::rcs: return "rcs";
    case channel::sms: return "sms";
    case channel::email: return "email";
  }
  return "?";
}

constexpr std::optional<channel> parse_channel(std::string_view s) {
  if (s == "rcs") return channel::rcs;
  if (s == "sms") return channel::sms;
  if (s == "email") return channel::email;
  return std::nullopt;
}

constexpr uint8_t channel_bit(channel c) { return uint8_t(1u << static_cast<unsigned>(c)); }
inline constexpr uint8_t kAllChannels = 0x7;

}  // namespace relay
