#include "daemon/tracked_content.h"

#include <nlohmann/json.hpp>

#include <cctype>

namespace relay {
namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool starts_with_ci(std::string_view s, size_t at, std::string_view word) {
  if (at + word.size() > s.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (lower(s[at + i]) != word[i]) return false;
  }
  return true;
}

size_t find_ci(std::string_view s, std::string_view word, size_t from) {
  for (size_t i = from; i + word.size() <= s.size(); ++i) {
    if (starts_with_ci(s, i, word)) return i;
  }
  return std::string_view::npos;
}

// The few entities that appear in URLs written into HTML attributes.
std::string decode_entities(std::string_view v) {
  static constexpr std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&#38;", '&'}, {"&quot;", '"'}, {"&#39;", '\''}, {"&lt;", '<'}, {"&gt;", '>'}};
  std::string out;
  for (size_t i = 0; i < v.size();) {
    bool matched = false;
    if (v[i] == '&') {
      for (const auto& [name, c] : kEntities) {
        if (starts_with_ci(v, i, name)) {
          out.push_back(c);
          i += name.size();
          matched = true;
          break;
        }
      }
    }
    if (!matched) out.push_back(v[i++]);
  }
  return out;
}

bool is_web_url(std::string_view url) {
  return starts_with_ci(url, 0, "http://") || starts_with_ci(url, 0, "https://");
}

std::string click_url(std::string_view base, const message_id& id, std::string_view url,
                      const tracking_signer& signer) {
  return std::string(base) + "/t/c/" + signer.click_token(id, url);
}

}  // namespace

std::string track_html(std::string_view html, const message_id& id, std::string_view base_url,
                       const tracking_signer& signer) {
  std::string out;
  out.reserve(html.size() + 256);
  size_t pos = 0;
  for (size_t tag = find_ci(html, "<a", 0); tag != std::string_view::npos; tag = find_ci(html, "<a", tag + 2)) {
    // An <a> tag: "<a" then whitespace.
    if (tag + 2 >= html.size() || !std::isspace(static_cast<unsigned char>(html[tag + 2]))) continue;
    const size_t end = html.find('>', tag);
    if (end == std::string_view::npos) break;
    size_t href = find_ci(html.substr(0, end), "href", tag);
    while (href != std::string_view::npos && !std::isspace(static_cast<unsigned char>(html[href - 1]))) {
      href = find_ci(html.substr(0, end), "href", href + 4);
    }
    if (href == std::string_view::npos) continue;
    size_t v = href + 4;
    while (v < end && std::isspace(static_cast<unsigned char>(html[v]))) ++v;
    if (v >= end || html[v] != '=') continue;
    ++v;
    while (v < end && std::isspace(static_cast<unsigned char>(html[v]))) ++v;
    size_t value_begin = v, value_end;
    if (v < end && (html[v] == '"' || html[v] == '\'')) {
      const char quote = html[v];
      value_begin = v + 1;
      value_end = html.find(quote, value_begin);
      if (value_end == std::string_view::npos || value_end > end) continue;
    } else {
      value_end = value_begin;
      while (value_end < end && !std::isspace(static_cast<unsigned char>(html[value_end]))) ++value_end;
    }
    const std::string url = decode_entities(html.substr(value_begin, value_end - value_begin));
    if (!is_web_url(url)) continue;  // mailto:, tel:, #anchors stay as written
    out.append(html.substr(pos, value_begin - pos));
    out.append(click_url(base_url, id, url, signer));
    pos = value_end;
  }
  out.append(html.substr(pos));

  const std::string pixel = "<img src=\"" + std::string(base_url) + "/t/o/" + signer.open_token(id) +
                            "\" width=\"1\" height=\"1\" alt=\"\" style=\"display:none\">";
  // Before the last </body>, else at the end.
  size_t body = std::string::npos;
  for (size_t at = find_ci(out, "</body", 0); at != std::string_view::npos; at = find_ci(out, "</body", at + 1)) {
    body = at;
  }
  if (body == std::string::npos) {
    out.append(pixel);
  } else {
    out.insert(body, pixel);
  }
  return out;
}

std::optional<std::string> tracked_content(std::string_view content_json, const message_id& id,
                                           std::string_view base_url, const tracking_signer& signer) {
  auto content = nlohmann::json::parse(content_json, nullptr, false);
  if (!content.is_object()) return std::nullopt;
  bool changed = false;
  if (auto link = content.find("link"); link != content.end() && link->is_string()) {
    const std::string url = link->get<std::string>();
    if (is_web_url(url)) {
      *link = click_url(base_url, id, url, signer);
      changed = true;
    }
  }
  if (auto html = content.find("html"); html != content.end() && html->is_string()) {
    *html = track_html(html->get<std::string>(), id, base_url, signer);
    changed = true;
  }
  if (!changed) return std::nullopt;
  return content.dump();
}

}  // namespace relay
