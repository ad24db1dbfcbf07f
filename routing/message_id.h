#pragma once
// Deterministic message ids: the same (job, user, channel) always yields the
// same id, so a restart or rebalance re-submits under the id a carrier has
// already seen and can de-duplicate on. 32 lower-case hex digits of XXH3-128
// (stable across versions and machines), short enough for SMPP and RBM.

#include <array>
#include <cstdint>
#include <string_view>

#include "routing/channel.h"

namespace relay {

using message_id = std::array<char, 32>;

// A send after the first to the same user and channel (a resend, an on_open
// follow-up) is its own message with its own id: `step` tells them apart.
// Step 0 is the job's first message on that channel (its id depends only on
// job, user and channel); resends are steps 1..n, the follow-up kFollowUpStep.
inline constexpr uint8_t kFollowUpStep = 0xf0;
message_id make_message_id(std::string_view job_id, std::string_view user_id, channel ch, uint8_t step = 0);

inline std::string_view view(const message_id& id) { return {id.data(), id.size()}; }

}  // namespace relay
