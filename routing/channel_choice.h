#pragma once
// Which channel(s) one recipient gets (DESIGN §3 channels.mode, §6). Called by
// the fan-out on the core thread for every recipient: choose_channel() neither
// allocates nor reads the clock, and is deterministic (same inputs, same
// choice), so explain_channel() — the same decision plus its reasons, for
// `relayctl explain` — says what happened. The `best` formula and its
// reasons: docs/decisions/0014-channel-choice-and-throttling.md.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "routing/channel.h"
#include "routing/engagement_dims.h"
#include "routing/job.h"
#include "routing/segment_model.h"
#include "routing/user_engagement.h"

namespace relay {

struct choice_input {
  channel_mode mode = channel_mode::specified;
  std::span<const channel> order;         // the job's order, or the configured default order
  uint8_t reachable = 0;                  // channel_bit mask: channels this user can receive
  const user_record* user = nullptr;      // preferred; may be null (never messaged)
  const engagement_dims* dims = nullptr;  // best: segment attributes and local_hour; may be null
};

struct choice {
  std::array<channel, kChannelCount> channels{};
  uint8_t count = 0;  // 0: no channel of `order` is reachable (reject: unreachable)
  std::span<const channel> picked() const { return {channels.data(), count}; }
  bool empty() const { return count == 0; }
};

struct choice_params {
  double prior_weight = 20;  // sends' worth of the channel's overall rate in each cell
  double explore =
      0.5;  // optimism: explore · sqrt(ln(1 + cell sends) / (channel's cell sends + prior_weight))
};

choice choose_channel(const choice_input& in, const segment_model& model, const choice_params& p);

// The next channel of a fallback: the first of `order` reachable and not in
// `tried` (channel_bit mask); nullopt when none is left.
std::optional<channel> next_fallback(std::span<const channel> order, uint8_t reachable,
                                     uint8_t tried);

// What decided the choice, per channel of `order` (explain).
struct channel_score {
  channel ch = channel::sms;
  int order_position = 0;
  bool reachable = false;
  // preferred: this user's counts.
  uint32_t user_sent = 0, user_opened = 0;
  // best: the segment × hour cell, the channel overall, and the score.
  open_counts cell, overall;
  double prior_mean = 0, posterior_mean = 0, bonus = 0, score = 0;
};

struct choice_explanation {
  choice picked;
  std::string reason;  // one or two lines, numbers included
  std::vector<channel_score> scores;
};

choice_explanation explain_channel(const choice_input& in, const segment_model& model,
                                   const choice_params& p);

}  // namespace relay
