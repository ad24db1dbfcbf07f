#pragma once
// Gives one message its own tracked content: content.link becomes relay's
// click URL, every http(s) link in an <a href> of content.html becomes one too
// (the original URL inside the signed token), and HTML gets a 1x1 open pixel
// before </body>. Other members of the content pass through unchanged.
//
// @locality: core thread (fan-out), per message of a tracked job.

#include <optional>
#include <string>
#include <string_view>

#include "routing/message_id.h"
#include "routing/tracking_token.h"

namespace relay {

// nullopt when the content has nothing to track (or is not a JSON object).
std::optional<std::string> tracked_content(std::string_view content_json, const message_id& id,
                                           std::string_view base_url, const tracking_signer& signer);

// The HTML with its links and pixel rewritten (exposed for tests).
std::string track_html(std::string_view html, const message_id& id, std::string_view base_url,
                       const tracking_signer& signer);

}  // namespace relay
