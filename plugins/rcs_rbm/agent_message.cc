#include "plugins/rcs_rbm/agent_message.h"

#include "plugins/rcs_rbm/json.h"

namespace relay::rcs_rbm {

namespace {

size_t utf8_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

bool is_url(std::string_view s) {
  return s.substr(0, 8) == "https://" || s.substr(0, 7) == "http://";
}

// Reads the string member `key` of `obj` into `out`; absent or null leaves
// `out` as is. Returns an error for a non-string.
std::string read_string(const json& obj, std::string_view key, std::string_view where,
                        std::string& out) {
  const json* v = obj.find(key);
  if (v == nullptr || v->is_null()) return "";
  if (!v->is_string()) return std::string(where) + "." + std::string(key) + " must be a string";
  out = v->as_string();
  return "";
}

std::string check_members(const json& obj, std::string_view where,
                          std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : obj.members()) {
    bool ok = false;
    for (auto name : known) ok = ok || k == name;
    if (!ok) return std::string(where) + "." + k + ": unknown field";
  }
  return "";
}

json action_suggestion(std::string text, std::string postback, std::string_view action_key,
                       json action) {
  json a = json::object();
  a.set("text", json::string(std::move(text)));
  a.set("postbackData", json::string(std::move(postback)));
  a.set(std::string(action_key), std::move(action));
  return json::object().set("action", std::move(a));
}

// One suggestion of rcs.suggestions / rcs.card.suggestions.
std::string suggestion(const json& s, const std::string& where, json& out) {
  if (!s.is_object()) return where + " must be an object";
  if (auto e = check_members(s, where, {"reply", "open_url", "dial", "text", "postback"});
      !e.empty())
    return e;
  std::string reply, open_url, dial, text, postback;
  for (auto [key, dst] : {std::pair{"reply", &reply},
                          {"open_url", &open_url},
                          {"dial", &dial},
                          {"text", &text},
                          {"postback", &postback}}) {
    if (auto e = read_string(s, key, where, *dst); !e.empty()) return e;
  }
  const int kinds = !reply.empty() + !open_url.empty() + !dial.empty();
  if (kinds != 1) return where + " needs exactly one of reply, open_url, dial";
  if (!reply.empty()) {
    if (!text.empty()) return where + ": a reply's text is `reply`; drop `text`";
    text = reply;
  }
  if (text.empty()) text = !open_url.empty() ? "Open" : "Call";
  if (postback.empty()) postback = !reply.empty() ? reply : !open_url.empty() ? "open_url" : "dial";
  if (utf8_chars(text) > kMaxSuggestionTextChars)
    return where + " text exceeds " + std::to_string(kMaxSuggestionTextChars) + " characters";
  if (postback.size() > kMaxPostbackBytes)
    return where + " postback exceeds " + std::to_string(kMaxPostbackBytes) + " bytes";
  if (!reply.empty()) {
    json r = json::object();
    r.set("text", json::string(text)).set("postbackData", json::string(postback));
    out = json::object().set("reply", std::move(r));
  } else if (!open_url.empty()) {
    if (!is_url(open_url)) return where + ".open_url must be an http(s) URL";
    out = action_suggestion(text, postback, "openUrlAction",
                            json::object().set("url", json::string(open_url)));
  } else {
    out = action_suggestion(text, postback, "dialAction",
                            json::object().set("phoneNumber", json::string(dial)));
  }
  return "";
}

std::string suggestions(const json* list, const std::string& where, size_t max, json& out) {
  if (list == nullptr || list->is_null()) return "";
  if (!list->is_array()) return where + " must be an array";
  for (size_t k = 0; k < list->items().size(); ++k) {
    json s;
    if (auto e = suggestion(list->items()[k], where + "[" + std::to_string(k) + "]", s); !e.empty())
      return e;
    out.push(std::move(s));
  }
  if (out.size() > max) return where + ": at most " + std::to_string(max) + " suggestions";
  return "";
}

std::string card(const json& c, const std::string& text, const std::string& link,
                 const std::string& link_text, json& out) {
  if (!c.is_object()) return "rcs.card must be an object";
  if (auto e = check_members(c, "rcs.card",
                             {"title", "description", "media_url", "media_height", "orientation",
                              "image_alignment", "suggestions"});
      !e.empty())
    return e;
  std::string title, description = text, media_url, height = "MEDIUM", orientation = "VERTICAL",
                     alignment;
  for (auto [key, dst] : {std::pair{"title", &title},
                          {"description", &description},
                          {"media_url", &media_url},
                          {"media_height", &height},
                          {"orientation", &orientation},
                          {"image_alignment", &alignment}}) {
    if (auto e = read_string(c, key, "rcs.card", *dst); !e.empty()) return e;
  }
  if (title.empty() && description.empty() && media_url.empty())
    return "rcs.card needs a title, a description or a media_url";
  if (utf8_chars(title) > kMaxCardTitleChars)
    return "rcs.card.title exceeds " + std::to_string(kMaxCardTitleChars) + " characters";
  if (utf8_chars(description) > kMaxCardDescriptionChars)
    return "rcs.card.description exceeds " + std::to_string(kMaxCardDescriptionChars) +
           " characters";
  if (height != "SHORT" && height != "MEDIUM" && height != "TALL")
    return "rcs.card.media_height must be SHORT, MEDIUM or TALL";
  if (orientation != "VERTICAL" && orientation != "HORIZONTAL")
    return "rcs.card.orientation must be VERTICAL or HORIZONTAL";
  if (!alignment.empty() && alignment != "LEFT" && alignment != "RIGHT")
    return "rcs.card.image_alignment must be LEFT or RIGHT";
  if (orientation == "HORIZONTAL" && media_url.empty())
    return "rcs.card: a HORIZONTAL card needs a media_url";

  json content = json::object();
  if (!title.empty()) content.set("title", json::string(title));
  if (!description.empty()) content.set("description", json::string(description));
  if (!media_url.empty()) {
    if (!is_url(media_url)) return "rcs.card.media_url must be an http(s) URL";
    json media = json::object();
    media.set("height", json::string(height));
    media.set("contentInfo", json::object().set("fileUrl", json::string(media_url)));
    content.set("media", std::move(media));
  }
  json card_suggestions = json::array();
  if (!link.empty()) {
    card_suggestions.push(action_suggestion(link_text, "open_link", "openUrlAction",
                                            json::object().set("url", json::string(link))));
  }
  if (auto e = suggestions(c.find("suggestions"), "rcs.card.suggestions", kMaxCardSuggestions,
                           card_suggestions);
      !e.empty())
    return e;
  if (card_suggestions.size() > 0) content.set("suggestions", std::move(card_suggestions));

  json standalone = json::object();
  standalone.set("cardOrientation", json::string(orientation));
  if (orientation == "HORIZONTAL")
    standalone.set("thumbnailImageAlignment", json::string(alignment.empty() ? "LEFT" : alignment));
  standalone.set("cardContent", std::move(content));
  out = json::object().set("standaloneCard", std::move(standalone));
  return "";
}

}  // namespace

built_message build_agent_message(std::string_view content_json, millis ttl) {
  built_message result;
  json content;
  std::string error;
  if (!parse_json(content_json, content, error)) return {"", "content_json: " + error};
  if (!content.is_object()) return {"", "content_json is not a JSON object"};
  std::string text, link, link_text = "Open";
  if (auto e = read_string(content, "text", "content", text); !e.empty()) return {"", e};
  if (auto e = read_string(content, "link", "content", link); !e.empty()) return {"", e};
  if (!link.empty() && !is_url(link)) return {"", "content.link must be an http(s) URL"};

  const json* rcs = content.find("rcs");
  if (rcs != nullptr && rcs->is_null()) rcs = nullptr;
  if (rcs != nullptr) {
    if (!rcs->is_object()) return {"", "content.rcs must be an object"};
    if (auto e = check_members(*rcs, "rcs", {"card", "suggestions", "link_text"}); !e.empty())
      return {"", e};
    if (auto e = read_string(*rcs, "link_text", "rcs", link_text); !e.empty()) return {"", e};
    if (utf8_chars(link_text) > kMaxSuggestionTextChars || link_text.empty())
      return {"", "rcs.link_text must be 1 to " + std::to_string(kMaxSuggestionTextChars) +
                      " characters"};
  }

  json message = json::object();
  const json* card_spec = rcs != nullptr ? rcs->find("card") : nullptr;
  json chips = json::array();
  if (card_spec != nullptr && !card_spec->is_null()) {
    json rich;
    if (auto e = card(*card_spec, text, link, link_text, rich); !e.empty()) return {"", e};
    message.set("richCard", std::move(rich));
  } else {
    if (text.empty()) return {"", "content has neither text nor rcs.card"};
    if (utf8_chars(text) > kMaxTextChars)
      return {"", "content.text exceeds " + std::to_string(kMaxTextChars) + " characters"};
    message.set("text", json::string(text));
    if (!link.empty()) {
      chips.push(action_suggestion(link_text, "open_link", "openUrlAction",
                                   json::object().set("url", json::string(link))));
    }
  }
  if (rcs != nullptr) {
    if (auto e = suggestions(rcs->find("suggestions"), "rcs.suggestions", kMaxSuggestions, chips);
        !e.empty())
      return {"", e};
  }
  if (chips.size() > 0) message.set("suggestions", std::move(chips));

  json agent_message = json::object();
  agent_message.set("contentMessage", std::move(message));
  if (ttl.count() > 0) agent_message.set("ttl", json::string(duration_json(ttl)));
  result.body = agent_message.dump();
  return result;
}

}  // namespace relay::rcs_rbm
