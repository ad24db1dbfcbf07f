#pragma once
// Builds the RBM AgentMessage request body (phones.agentMessages.create) from
// the content_json relay passes to on_submit:
//
//   {"text": "...", "link": "https://...",
//    "rcs": {"card": {"title", "description", "media_url", "media_height",
//                     "orientation", "image_alignment", "suggestions": [...]},
//            "suggestions": [...], "link_text": "Open"}}
//
// A suggestion is {"reply": "Yes", "postback": "yes"},
// {"open_url": "https://...", "text": "Open", "postback": "..."} or
// {"dial": "+81...", "text": "Call", "postback": "..."}. Other content members
// (subject, html, ...) are ignored; unknown members inside `rcs` are errors,
// so a typo fails the message instead of silently dropping a card.

#include <string>
#include <string_view>

#include "plugins/rcs_rbm/rbm_config.h"

namespace relay::rcs_rbm {

// The API's documented limits we check before sending, so a message that
// can never be accepted fails with a clear reason instead of a 400.
inline constexpr size_t kMaxTextChars = 3072;
inline constexpr size_t kMaxSuggestions = 11;
inline constexpr size_t kMaxCardSuggestions = 4;
inline constexpr size_t kMaxSuggestionTextChars = 25;
inline constexpr size_t kMaxPostbackBytes = 2048;
inline constexpr size_t kMaxCardTitleChars = 200;
inline constexpr size_t kMaxCardDescriptionChars = 2000;

struct built_message {
  std::string body;   // the AgentMessage JSON
  std::string error;  // non-empty: the content can never be sent (no personal data in it)
};

// `ttl` 0 leaves the AgentMessage's ttl out.
built_message build_agent_message(std::string_view content_json, millis ttl);

}  // namespace relay::rcs_rbm
