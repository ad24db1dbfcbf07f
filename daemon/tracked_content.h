#pragma once
// Rewrites a message's content for open and click tracking before it is
// handed to an email (or any link-carrying) plug-in.
//
// Called on the core thread per message; pure (no I/O, no state).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/message_id.h"
#include "routing/tracking_token.h"

namespace relay {

// The job's content JSON with content.link replaced by its tracked click URL and,
// when content.html is present, every http(s) href in <a> tags replaced by a tracked click URL
// (the original URL inside the signed token) and a 1x1 open pixel
// <img src="{base_url}/t/o/{token}" width="1" height="1" alt="" style="display:none"> inserted
// before </body> (or appended). Other members unchanged. nullopt when there is nothing to track.
//
// Details: `base_url` is relay's public HTTP address ("https://t.acme.example",
// a trailing '/' is ignored). hrefs are matched case-insensitively with
// double, single or no quotes; entities in them (&amp;, &#38;, &#x26;, ...) are
// decoded before signing. mailto:, tel:, #anchors, relative and other
// non-http(s) links, and URLs longer than tracking_signer::kMaxUrlBytes, are
// left alone; so is text inside <!-- comments -->. Member order is kept.
// "Nothing to track": content is not a JSON object, or has neither an
// http(s) `link` nor an `html` string.
std::optional<std::string> tracked_content(std::string_view content_json, const message_id& id,
                                           std::string_view base_url,
                                           const tracking_signer& signer);

// The same rewrite split in two for broadcasts: make() parses and rewrites the
// content once per job, render() then only signs the message's tokens into
// the prepared text (no JSON or HTML work per recipient). render(id) equals
// tracked_content(content_json, id, base_url, signer).
class tracked_content_template {
 public:
  // nullopt when there is nothing to track (the same rule as tracked_content).
  static std::optional<tracked_content_template> make(std::string_view content_json,
                                                      std::string_view base_url);
  std::string render(const message_id& id, const tracking_signer& signer) const;
  // Into a buffer the caller reuses (cleared first).
  void render_into(const message_id& id, const tracking_signer& signer, std::string& out) const;
  size_t links() const;  // tracked links (open pixel not counted)

 private:
  struct slot {
    size_t literal_end = 0;  // the token goes after literal_[previous end, literal_end)
    tracking_kind kind = tracking_kind::open;
    std::string url;  // click only
  };
  std::string literal_;
  std::vector<slot> slots_;
};

// The HTML part alone (exposed for tests and for plug-in-independent reuse).
std::string tracked_html(std::string_view html, const message_id& id, std::string_view base_url,
                         const tracking_signer& signer);

}  // namespace relay
