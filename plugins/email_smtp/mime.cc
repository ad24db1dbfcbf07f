#include "plugins/email_smtp/mime.h"

#include "plugins/common/utf8.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <vector>

namespace relay::email_smtp {
namespace {

using relay::plugin_text::append_utf8;
using relay::plugin_text::utf8_sequence;

constexpr size_t kHeaderLineLimit = 78;  // RFC 5322 2.1.1 "SHOULD"
constexpr size_t kBodyLineLimit = 76;    // RFC 2045 6.7 / 6.8
constexpr size_t kEncodedWordLimit = 75; // RFC 2047 2
constexpr char kHex[] = "0123456789ABCDEF";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


// Header text made safe: controls (CR and LF above all) become spaces,
// invalid UTF-8 becomes U+FFFD.
std::string header_safe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += ' ';
      ++i;
    } else if (const size_t n = utf8_sequence(s, i); n != 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

bool plain_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return s.find("=?") == std::string_view::npos;  // would read as an encoded-word
}

// Pure ASCII, folded before spaces so that no line exceeds the limit where a
// space allows it (a longer word stays whole; 998 is the hard limit).
std::string fold_ascii(std::string_view value, size_t used) {
  std::string out;
  size_t line = used;
  size_t i = 0;
  bool line_has_word = false;
  while (i < value.size()) {
    size_t j = i;
    while (j < value.size() && value[j] == ' ') ++j;  // leading spaces of the segment
    while (j < value.size() && value[j] != ' ') ++j;  // the word
    const std::string_view segment = value.substr(i, j - i);
    if (line_has_word && segment.front() == ' ' && line + segment.size() > kHeaderLineLimit) {
      out += "\r\n";
      line = 0;
    }
    out.append(segment);
    line += segment.size();
    line_has_word = true;
    i = j;
  }
  return out;
}

size_t b64_length(size_t bytes) { return (bytes + 2) / 3 * 4; }

// UTF-8 "B" encoded-words, each holding whole characters, folded so that each
// line stays within the limit.
std::string encoded_words(std::string_view value, size_t used) {
  static constexpr std::string_view kOpen = "=?UTF-8?B?", kClose = "?=";
  std::string out;
  size_t line = used;
  size_t i = 0;
  while (i < value.size()) {
    if (line > 1 && line + kOpen.size() + kClose.size() + 8 > kHeaderLineLimit) {
      out += "\r\n ";  // no room for even one character on this line
      line = 1;
    }
    // Both the line (78) and the encoded-word (75, RFC 2047 2) limit the payload.
    const size_t budget = std::min(kHeaderLineLimit - line, kEncodedWordLimit) - kOpen.size() -
                          kClose.size();
    size_t j = i;
    while (j < value.size()) {
      const size_t n = std::max<size_t>(utf8_sequence(value, j), 1);
      if (b64_length(j + n - i) > budget && j > i) break;
      j += n;
    }
    const std::string word = std::string(kOpen) + base64(value.substr(i, j - i)) + std::string(kClose);
    out += word;
    line += word.size();
    i = j;
    if (i < value.size()) {
      out += "\r\n ";  // whitespace between encoded-words is not part of the text
      line = 1;
    }
  }
  return out;
}

bool is_atext(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
             std::string_view::npos;
}

// relay's message ids are hex; anything else is escaped so the id stays a
// valid dot-atom and the mapping stays deterministic.
std::string id_left(std::string_view id) {
  std::string out;
  for (unsigned char c : id) {
    if (is_atext(c) && c != '=') {
      out += static_cast<char>(c);
    } else {
      out += '=';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string display_name(std::string_view name) {
  const std::string safe = header_safe(name);
  if (!plain_ascii(safe)) return encoded_words(safe, 6);  // "From: "
  bool atoms = true;
  for (unsigned char c : safe)
    if (!is_atext(c) && c != ' ') atoms = false;
  if (atoms) return safe;
  std::string quoted = "\"";
  for (char c : safe) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

void replace_all(std::string& s, std::string_view what, std::string_view with) {
  for (size_t at = 0; (at = s.find(what, at)) != std::string::npos; at += with.size())
    s.replace(at, what.size(), with);
}

std::string unsubscribe_header(std::string_view uris, std::string_view message_id) {
  std::string out;
  size_t i = 0;
  while (i <= uris.size()) {
    size_t comma = uris.find(',', i);
    if (comma == std::string_view::npos) comma = uris.size();
    std::string_view uri = uris.substr(i, comma - i);
    while (!uri.empty() && uri.front() == ' ') uri.remove_prefix(1);
    while (!uri.empty() && uri.back() == ' ') uri.remove_suffix(1);
    if (!uri.empty()) {
      std::string u(uri);
      replace_all(u, "{message_id}", message_id);
      if (!out.empty()) out += ",\r\n ";
      out += "<" + u + ">";
    }
    i = comma + 1;
  }
  return out;
}

void append_part(std::string& out, std::string_view type, std::string_view text) {
  const bool b64 = prefer_base64(text);
  out += "Content-Type: ";
  out += type;
  out += "; charset=UTF-8\r\nContent-Transfer-Encoding: ";
  out += b64 ? "base64" : "quoted-printable";
  out += "\r\n\r\n";
  out += b64 ? base64_text(text) : quoted_printable(text);
}

void skip_to(std::string_view s, size_t& i, std::string_view end) {
  const size_t at = s.find(end, i);
  i = at == std::string_view::npos ? s.size() : at + end.size();
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals_prefix(std::string_view s, size_t i, std::string_view word) {
  if (i + word.size() > s.size()) return false;
  for (size_t k = 0; k < word.size(); ++k)
    if (lower(s[i + k]) != word[k]) return false;
  return true;
}


// Decodes the character reference at s[i] ('&') into out; false if it is not
// one we know (the '&' is then kept literally).
bool decode_entity(std::string_view s, size_t& i, std::string& out) {
  const size_t semi = s.find(';', i);
  if (semi == std::string_view::npos || semi - i > 10) return false;
  const std::string_view name = s.substr(i + 1, semi - i - 1);
  static constexpr std::pair<std::string_view, std::string_view> kNamed[] = {
      {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "}};
  for (const auto& [n, v] : kNamed) {
    if (name == n) {
      out += v;
      i = semi + 1;
      return true;
    }
  }
  if (name.size() >= 2 && name[0] == '#') {
    uint32_t cp = 0;
    const bool hex = name[1] == 'x' || name[1] == 'X';
    for (size_t k = hex ? 2 : 1; k < name.size(); ++k) {
      const char c = name[k];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (hex && lower(c) >= 'a' && lower(c) <= 'f') d = lower(c) - 'a' + 10;
      else return false;
      cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
      if (cp > 0x10ffff) return false;
    }
    append_utf8(out, cp == 0 ? 0xfffd : cp);  // never a NUL into a header or body
    i = semi + 1;
    return true;
  }
  return false;
}

std::string decode_entities(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '&' && decode_entity(s, i, out)) continue;
    out += s[i++];
  }
  return out;
}

// The value of attribute `name` in a tag's text (between '<' and '>').
std::string attribute(std::string_view tag, std::string_view name) {
  for (size_t i = 0; i + name.size() < tag.size(); ++i) {
    if (!iequals_prefix(tag, i, name)) continue;
    if (i > 0 && tag[i - 1] != ' ' && tag[i - 1] != '\t' && tag[i - 1] != '\n' && tag[i - 1] != '\r')
      continue;
    size_t k = i + name.size();
    while (k < tag.size() && (tag[k] == ' ' || tag[k] == '\t' || tag[k] == '\n' || tag[k] == '\r')) ++k;
    if (k >= tag.size() || tag[k] != '=') continue;
    ++k;
    while (k < tag.size() && (tag[k] == ' ' || tag[k] == '\t' || tag[k] == '\n' || tag[k] == '\r')) ++k;
    if (k >= tag.size()) return "";
    if (tag[k] == '"' || tag[k] == '\'') {
      const size_t end = tag.find(tag[k], k + 1);
      return decode_entities(tag.substr(k + 1, (end == std::string_view::npos ? tag.size() : end) - k - 1));
    }
    size_t end = k;
    while (end < tag.size() && tag[end] != ' ' && tag[end] != '>' && tag[end] != '\t') ++end;
    return decode_entities(tag.substr(k, end - k));
  }
  return "";
}

// Collapses runs of spaces, trims lines, keeps at most one blank line.
std::string tidy_lines(std::string_view raw) {
  std::string out;
  int pending_breaks = 0;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t nl = raw.find('\n', i);
    if (nl == std::string_view::npos) nl = raw.size();
    std::string line;
    for (size_t k = i; k < nl; ++k) {
      if (raw[k] == ' ') {
        if (!line.empty() && line.back() != ' ') line += ' ';
      } else {
        line += raw[k];
      }
    }
    if (!line.empty() && line.back() == ' ') line.pop_back();
    if (line.empty()) {
      ++pending_breaks;
    } else {
      if (!out.empty()) out += pending_breaks > 0 ? "\n\n" : "\n";
      out += line;
      pending_breaks = 0;
    }
    i = nl + 1;
  }
  return out;
}

}  // namespace

std::string base64(std::string_view bytes) {
  std::string out;
  out.reserve(b64_length(bytes.size()));
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += rest == 2 ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64_text(std::string_view text) {
  std::string canonical;
  canonical.reserve(text.size() + text.size() / 32);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      canonical += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (text[i] == '\n') {
      canonical += "\r\n";
    } else {
      canonical += text[i];
    }
  }
  const std::string encoded = base64(canonical);
  std::string out;
  out.reserve(encoded.size() + encoded.size() / 38 + 2);
  for (size_t i = 0; i < encoded.size(); i += kBodyLineLimit) {
    out.append(encoded, i, kBodyLineLimit);
    out += "\r\n";
  }
  return out;
}

std::string quoted_printable(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8 + 8);
  size_t line = 0;
  const auto put = [&](const char* token, size_t n) {
    if (line + n > kBodyLineLimit - 1) {  // leave room for the soft break's '='
      out += "=\r\n";
      line = 0;
    }
    out.append(token, n);
    line += n;
  };
  const auto at_line_end = [&](size_t i) {
    return i + 1 == text.size() || text[i + 1] == '\r' || text[i + 1] == '\n';
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += "\r\n";
      line = 0;
    } else if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_line_end(i))) {
      const char ch = static_cast<char>(c);
      put(&ch, 1);
    } else {
      const char esc[3] = {'=', kHex[c >> 4], kHex[c & 0xf]};
      put(esc, 3);
    }
  }
  // A text without a final line break ends with a soft break, so decoding
  // gives back exactly the text.
  if (text.empty() || (text.back() != '\n' && text.back() != '\r')) out += "=\r\n";
  return out;
}

bool prefer_base64(std::string_view text) {
  size_t escaped = 0;
  for (unsigned char c : text)
    if (c >= 0x80 || c == '=' || (c < 0x20 && c != '\t' && c != '\r' && c != '\n')) ++escaped;
  return escaped * 3 > text.size();
}

std::string encode_header_value(std::string_view value, size_t name_length) {
  const std::string safe = header_safe(value);
  const size_t used = name_length + 2;  // "Name: "
  return plain_ascii(safe) ? fold_ascii(safe, used) : encoded_words(safe, used);
}

std::string html_to_text(std::string_view html) {
  static constexpr std::string_view kBlocks[] = {
      "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
      "blockquote", "pre", "section", "article", "header", "footer", "hr", "title"};
  std::string raw;
  std::vector<std::pair<size_t, std::string>> anchors;  // label start in raw, href
  for (size_t i = 0; i < html.size();) {
    const char c = html[i];
    if (c == '<') {
      if (html.compare(i, 4, "<!--") == 0) {
        skip_to(html, i, "-->");
        continue;
      }
      size_t end = i + 1;
      char quote = 0;
      for (; end < html.size(); ++end) {  // the tag ends at a '>' outside quotes
        if (quote != 0) {
          if (html[end] == quote) quote = 0;
        } else if (html[end] == '"' || html[end] == '\'') {
          quote = html[end];
        } else if (html[end] == '>') {
          break;
        }
      }
      const std::string_view tag = html.substr(i + 1, std::min(end, html.size()) - i - 1);
      i = std::min(end + 1, html.size());
      const bool closing = !tag.empty() && tag[0] == '/';
      std::string name;
      for (size_t k = closing ? 1 : 0; k < tag.size() && std::isalnum(static_cast<unsigned char>(tag[k])); ++k)
        name += lower(tag[k]);
      if (!closing && (name == "script" || name == "style")) {
        // Skip to the matching end tag, case-insensitively.
        while (i < html.size() && !(html[i] == '<' && iequals_prefix(html, i + 1, "/" + name))) ++i;
        skip_to(html, i, ">");
        continue;
      }
      if (name == "br") {
        raw += '\n';
      } else if (name == "a" && !closing) {
        anchors.emplace_back(raw.size(), attribute(tag, "href"));
      } else if (name == "a" && closing && !anchors.empty()) {
        auto [start, href] = std::move(anchors.back());
        anchors.pop_back();
        std::string label = tidy_lines(std::string_view(raw).substr(start));
        if (!href.empty() && href[0] != '#' && label != href) raw += " (" + href + ")";
      } else {
        for (std::string_view b : kBlocks) {
          if (name == b) {
            raw += '\n';
            break;
          }
        }
      }
      continue;
    }
    if (c == '&' && decode_entity(html, i, raw)) continue;
    raw += (c == '\r' || c == '\n' || c == '\t') ? ' ' : c;
    ++i;
  }
  return tidy_lines(raw);
}

std::string text_part(const mail_content& content) {
  std::string text = !content.text.empty() ? content.text : html_to_text(content.html);
  if (!content.link.empty() && text.find(content.link) == std::string::npos) {
    if (!text.empty()) text += "\n\n";
    text += content.link;
  }
  return text;
}

void append_dot_stuffed(std::string& out, std::string_view message) {
  bool line_start = true;
  for (size_t i = 0; i < message.size(); ++i) {
    if (line_start && message[i] == '.') out += '.';
    out += message[i];
    line_start = message[i] == '\n';
  }
  if (!message.empty() && !line_start) out += "\r\n";
  out += ".\r\n";
}

std::string rfc5322_date(std::time_t t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string build_message(const envelope_fields& env, const mail_content& content) {
  const std::string id = id_left(env.message_id);
  std::string out;
  out.reserve(512 + content.text.size() * 2 + content.html.size() * 2);
  out += "Date: " + rfc5322_date(env.date) + "\r\n";
  out += "From: ";
  if (!env.from_name.empty()) out += display_name(env.from_name) + " ";
  out += "<" + env.from + ">\r\n";
  out += "To: <" + env.to + ">\r\n";
  if (!content.subject.empty()) out += "Subject: " + encode_header_value(content.subject, 7) + "\r\n";
  out += "Message-ID: <" + id + "@" + env.message_id_domain + ">\r\n";
  if (!env.reply_to.empty()) out += "Reply-To: <" + env.reply_to + ">\r\n";
  if (!env.list_unsubscribe.empty())
    out += "List-Unsubscribe: " + unsubscribe_header(env.list_unsubscribe, env.message_id) + "\r\n";
  out += "MIME-Version: 1.0\r\n";
  const std::string text = text_part(content);
  if (content.html.empty()) {
    append_part(out, "text/plain", text);
    return out;
  }
  // "=_" cannot occur in quoted-printable or base64 output, so the boundary
  // never collides with a body line.
  std::string boundary = "=_relay_alt_";
  for (char c : id)
    if (std::isalnum(static_cast<unsigned char>(c)) && boundary.size() < 60) boundary += c;
  out += "Content-Type: multipart/alternative;\r\n boundary=\"" + boundary + "\"\r\n\r\n";
  out += "--" + boundary + "\r\n";
  append_part(out, "text/plain", text);
  out += "--" + boundary + "\r\n";
  append_part(out, "text/html", content.html);
  out += "--" + boundary + "--\r\n";
  return out;
}

}  // namespace relay::email_smtp
