#include "daemon/tracked_content.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace relay {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

bool iequals_prefix(std::string_view text, std::string_view lower_prefix) {
  if (text.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    if (lower(text[i]) != lower_prefix[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes the character references an href may carry: the five XML names and
// numeric ones. Unknown names stay as written (a browser would do the same
// for names it does not know).
std::string decode_entities(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    const size_t semi = s.find(';', i + 1);
    if (semi == std::string_view::npos || semi - i > 12) {
      out += s[i++];
      continue;
    }
    const std::string_view name = s.substr(i + 1, semi - i - 1);
    bool decoded = true;
    if (name == "amp") {
      out += '&';
    } else if (name == "lt") {
      out += '<';
    } else if (name == "gt") {
      out += '>';
    } else if (name == "quot") {
      out += '"';
    } else if (name == "apos") {
      out += '\'';
    } else if (name.size() >= 2 && name[0] == '#') {
      const bool hex = name[1] == 'x' || name[1] == 'X';
      const std::string_view digits = name.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      decoded = !digits.empty();
      for (char c : digits) {
        int d = -1;
        if (c >= '0' && c <= '9')
          d = c - '0';
        else if (hex && lower(c) >= 'a' && lower(c) <= 'f')
          d = lower(c) - 'a' + 10;
        if (d < 0 || cp > 0x10FFFF) {
          decoded = false;
          break;
        }
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
      }
      if (decoded) append_utf8(out, cp);
    } else {
      decoded = false;
    }
    if (decoded) {
      i = semi + 1;
    } else {
      out += s[i++];
    }
  }
  return out;
}

// Only absolute http(s) URLs without control characters are tracked.
bool trackable(std::string_view url) {
  if (url.size() > tracking_signer::kMaxUrlBytes) return false;
  if (!iequals_prefix(url, "http://") && !iequals_prefix(url, "https://")) return false;
  for (char c : url) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

std::string html_attr_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string_view without_trailing_slash(std::string_view base_url) {
  while (!base_url.empty() && base_url.back() == '/') base_url.remove_suffix(1);
  return base_url;
}

// Finds the end ('>') of the tag whose attributes start at `p`, and the first
// href's value. Returns npos when the tag never closes.
struct href_span {
  size_t begin = std::string_view::npos, end = std::string_view::npos;  // the value, without quotes
};
size_t scan_tag(std::string_view html, size_t p, href_span& href) {
  const size_t n = html.size();
  while (p < n) {
    while (p < n && (is_space(html[p]) || html[p] == '/')) ++p;
    if (p >= n) return std::string_view::npos;
    if (html[p] == '>') return p;
    const size_t name_begin = p;
    while (p < n && !is_space(html[p]) && html[p] != '=' && html[p] != '>' && html[p] != '/') ++p;
    const std::string_view name = html.substr(name_begin, p - name_begin);
    size_t q = p;
    while (q < n && is_space(html[q])) ++q;
    if (q >= n || html[q] != '=') continue;  // attribute without a value
    ++q;
    while (q < n && is_space(html[q])) ++q;
    if (q >= n) return std::string_view::npos;
    size_t value_begin, value_end;
    if (html[q] == '"' || html[q] == '\'') {
      const size_t close = html.find(html[q], q + 1);
      if (close == std::string_view::npos) return std::string_view::npos;
      value_begin = q + 1;
      value_end = close;
      p = close + 1;
    } else {
      value_begin = q;
      while (q < n && !is_space(html[q]) && html[q] != '>') ++q;
      value_end = q;
      p = q;
    }
    if (href.begin == std::string_view::npos && name.size() == 4 && iequals_prefix(name, "href")) {
      href.begin = value_begin;
      href.end = value_end;
    }
  }
  return std::string_view::npos;
}

// Writes what a tracked href or pixel needs through the sink: the rewrite is
// the same whether tokens are signed now (tracked_html) or placeholders are
// left for tracked_content_template::render.
struct token_sink {
  virtual ~token_sink() = default;
  virtual std::string click(std::string_view url) = 0;
  virtual std::string open() = 0;
};

std::string rewrite_html(std::string_view html, std::string_view base_url, token_sink& tokens) {
  const std::string escaped_base = html_attr_escape(without_trailing_slash(base_url));
  std::string out;
  out.reserve(html.size() + 256);
  size_t i = 0;
  while (i < html.size()) {
    const size_t lt = html.find('<', i);
    if (lt == std::string_view::npos) {
      out.append(html.substr(i));
      break;
    }
    out.append(html.substr(i, lt - i));
    const std::string_view rest = html.substr(lt);
    if (rest.starts_with("<!--")) {
      const size_t close = html.find("-->", lt + 4);
      const size_t end = close == std::string_view::npos ? html.size() : close + 3;
      out.append(html.substr(lt, end - lt));
      i = end;
      continue;
    }
    const bool anchor = rest.size() >= 3 && lower(rest[1]) == 'a' &&
                        (is_space(rest[2]) || rest[2] == '>' || rest[2] == '/');
    if (!anchor) {
      out += '<';
      i = lt + 1;
      continue;
    }
    href_span href;
    const size_t gt = scan_tag(html, lt + 2, href);
    if (gt == std::string_view::npos) {  // unterminated tag: leave the rest as it is
      out.append(rest);
      break;
    }
    if (href.begin != std::string_view::npos) {
      const std::string url(trim(decode_entities(html.substr(href.begin, href.end - href.begin))));
      if (trackable(url)) {
        out.append(html.substr(lt, href.begin - lt));
        out += escaped_base;
        out += "/t/c/";
        out += tokens.click(url);
        out.append(html.substr(href.end, gt + 1 - href.end));
        i = gt + 1;
        continue;
      }
    }
    out.append(html.substr(lt, gt + 1 - lt));
    i = gt + 1;
  }

  const std::string pixel = "<img src=\"" + escaped_base + "/t/o/" + tokens.open() +
                            "\" width=\"1\" height=\"1\" alt=\"\" style=\"display:none\">";
  // The last </body>, case-insensitively.
  size_t body_close = std::string::npos;
  for (size_t p = out.size(); p-- > 0;) {
    if (out[p] == '<' && iequals_prefix(std::string_view(out).substr(p), "</body")) {
      body_close = p;
      break;
    }
  }
  if (body_close == std::string::npos) {
    out += pixel;
  } else {
    out.insert(body_close, pixel);
  }
  return out;
}

struct signing_sink final : token_sink {
  signing_sink(const message_id& id, const tracking_signer& signer) : id(id), signer(signer) {}
  std::string click(std::string_view url) override { return signer.click_token(id, url); }
  std::string open() override { return signer.open_token(id); }
  const message_id& id;
  const tracking_signer& signer;
};

// Placeholders "~RLY<nonce>~<n>~" for slot n; the nonce is chosen so that the
// marker occurs nowhere else in the output.
struct placeholder_sink final : token_sink {
  explicit placeholder_sink(std::string marker) : marker(std::move(marker)) {}
  std::string click(std::string_view url) override { return add(tracking_kind::click, url); }
  std::string open() override { return add(tracking_kind::open, {}); }
  std::string add(tracking_kind kind, std::string_view url) {
    slots.emplace_back(kind, std::string(url));
    return marker + std::to_string(slots.size() - 1) + "~";
  }
  std::string marker;
  std::vector<std::pair<tracking_kind, std::string>> slots;
};

size_t count_of(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string_view::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

std::string tracked_html(std::string_view html, const message_id& id, std::string_view base_url,
                         const tracking_signer& signer) {
  signing_sink sink(id, signer);
  return rewrite_html(html, base_url, sink);
}

std::optional<tracked_content_template> tracked_content_template::make(
    std::string_view content_json, std::string_view base_url) {
  const auto parsed =
      nlohmann::ordered_json::parse(content_json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  const std::string_view base = without_trailing_slash(base_url);
  for (unsigned nonce = 0; nonce < 16; ++nonce) {
    placeholder_sink sink("~RLY" + std::to_string(nonce) + "~");
    auto content = parsed;
    bool tracked = false;
    if (auto link = content.find("link"); link != content.end() && link->is_string()) {
      const std::string url = link->get<std::string>();
      if (trackable(url)) {
        *link = std::string(base) + "/t/c/" + sink.click(url);
        tracked = true;
      }
    }
    if (auto html = content.find("html"); html != content.end() && html->is_string()) {
      *html = rewrite_html(html->get_ref<const std::string&>(), base_url, sink);
      tracked = true;
    }
    if (!tracked) return std::nullopt;
    std::string text;
    try {
      text = content.dump();
    } catch (const nlohmann::json::exception&) {  // parsed input always dumps; be safe
      return std::nullopt;
    }
    if (count_of(text, sink.marker) != sink.slots.size()) continue;  // marker in the content

    // Cut the text at each placeholder, in the order they appear.
    std::vector<std::pair<size_t, size_t>> at;  // (position, slot)
    for (size_t k = 0; k < sink.slots.size(); ++k) {
      at.emplace_back(text.find(sink.marker + std::to_string(k) + "~"), k);
    }
    std::sort(at.begin(), at.end());
    tracked_content_template t;
    size_t from = 0;
    for (const auto& [pos, k] : at) {
      t.literal_.append(text, from, pos - from);
      t.slots_.push_back(
          slot{t.literal_.size(), sink.slots[k].first, std::move(sink.slots[k].second)});
      from = pos + sink.marker.size() + std::to_string(k).size() + 1;
    }
    t.literal_.append(text, from, std::string::npos);
    return t;
  }
  return std::nullopt;
}

void tracked_content_template::render_into(const message_id& id, const tracking_signer& signer,
                                           std::string& out) const {
  out.clear();
  out.reserve(literal_.size() + slots_.size() * 64);
  size_t from = 0;
  for (const slot& s : slots_) {
    out.append(literal_, from, s.literal_end - from);
    out += s.kind == tracking_kind::click ? signer.click_token(id, s.url) : signer.open_token(id);
    from = s.literal_end;
  }
  out.append(literal_, from, std::string::npos);
}

std::string tracked_content_template::render(const message_id& id,
                                             const tracking_signer& signer) const {
  std::string out;
  render_into(id, signer, out);
  return out;
}

size_t tracked_content_template::links() const {
  size_t n = 0;
  for (const slot& s : slots_) n += s.kind == tracking_kind::click ? 1 : 0;
  return n;
}

std::optional<std::string> tracked_content(std::string_view content_json, const message_id& id,
                                           std::string_view base_url,
                                           const tracking_signer& signer) {
  auto t = tracked_content_template::make(content_json, base_url);
  if (!t) return std::nullopt;
  return t->render(id, signer);
}

}  // namespace relay
