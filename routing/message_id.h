#pragma once
// Deterministic message ids: the same (job, user, channel) always yields the
// same id, so a restart or rebalance re-submits under the id a carrier has
// already seen and can de-duplicate on. 32 lower-case hex digits of XXH3-128
// (stable across versions and machines), short enough for SMPP and RBM.

#include <array>
#include <string_view>

#include "routing/channel.h"

namespace relay {

using message_id = std::array<char, 32>;

message_id make_message_id(std::string_view job_id, std::string_view user_id, channel ch);

inline std::string_view view(const message_id& id) { return {id.data(), id.size()}; }

}  // namespace relay
