#pragma once
// Small conversions at the plug-in ABI boundary, shared by the plug-ins
// shipped with relay (header-only; a plug-in needs nothing of relay but
// relay/plugin.h).

#include <relay/plugin.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relay::plugin_abi {

// OWNERSHIP: borrows `s`; valid while the caller's relay_str is.
inline std::string_view view(relay_str s) {
  return s.data != nullptr ? std::string_view(s.data, s.size) : std::string_view();
}
inline relay_str to_relay(std::string_view s) { return relay_str{s.data(), s.size()}; }

// on_create's one-line error, NUL-terminated and cut to error_size.
inline void write_error(char* error, size_t error_size, const std::string& text) {
  if (error == nullptr || error_size == 0) return;
  std::snprintf(error, error_size, "%s", text.c_str());
}

// on_create's settings as owned (key, value) pairs, in order.
inline std::vector<std::pair<std::string, std::string>> config_pairs(const relay_kv* config, size_t count) {
  std::vector<std::pair<std::string, std::string>> kv;
  kv.reserve(count);
  for (size_t i = 0; i < count; ++i) kv.emplace_back(std::string(view(config[i].key)), std::string(view(config[i].value)));
  return kv;
}

}  // namespace relay::plugin_abi
