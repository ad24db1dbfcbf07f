#pragma once
// relay.yaml's `engagement:` section as the engagement engine's settings:
// what relayd runs with, and what relayctl rebuilds to explain a choice.

#include "daemon/config.h"
#include "routing/engagement.h"

namespace relay {

engagement_settings engagement_settings_of(const config& cfg);

}  // namespace relay
