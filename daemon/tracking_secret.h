#pragma once
// The HMAC key of relay's tracking tokens: tracking.secret from the config,
// else the environment variable RELAY_TRACKING_SECRET, else a random key that
// relayd creates once in <data_dir>/tracking.secret (mode 0600) so tokens in
// messages already sent stay valid across restarts. Several relayd behind one
// tracking domain must share the key: set it in the config or environment.

#include <string>

#include "daemon/config.h"
#include "routing/result.h"

namespace relay {

result<std::string> load_tracking_secret(const config& cfg);

}  // namespace relay
