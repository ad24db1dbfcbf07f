#include "plugins/sms_smpp/message_content.h"

#include <algorithm>

#include "plugins/sms_smpp/sms_text.h"

namespace sms_smpp {

namespace {

// A minimal JSON reader: enough to find two string members of the top-level
// object and to skip everything else correctly.
class json_reader {
 public:
  explicit json_reader(std::string_view s) : s_(s) {}

  std::optional<sms_content> read_object() {
    sms_content c;
    ws();
    if (!eat('{')) return std::nullopt;
    ws();
    if (eat('}')) return end_ok() ? std::optional(c) : std::nullopt;
    for (;;) {
      ws();
      std::string key;
      if (!string(&key)) return std::nullopt;
      ws();
      if (!eat(':')) return std::nullopt;
      ws();
      if (key == "text" || key == "link") {
        std::string value;
        if (peek() == '"') {
          if (!string(&value)) return std::nullopt;
          (key == "text" ? c.text : c.link) = std::move(value);
        } else if (!skip_value(0)) {
          return std::nullopt;
        }
      } else if (!skip_value(0)) {
        return std::nullopt;
      }
      ws();
      if (eat(',')) continue;
      if (eat('}')) return end_ok() ? std::optional(c) : std::nullopt;
      return std::nullopt;
    }
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool eat(char c) {
    if (peek() != c || i_ >= s_.size()) return false;
    ++i_;
    return true;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool end_ok() {
    ws();
    return i_ == s_.size();
  }
  bool hex4(uint32_t& out) {
    if (s_.size() - i_ < 4) return false;
    out = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      out <<= 4;
      if (c >= '0' && c <= '9') {
        out |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        out |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        out |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  // Reads a string; appends its UTF-8 to *out when out is not null.
  bool string(std::string* out) {
    if (!eat('"')) return false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        if (out) *out += c;
        continue;
      }
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      char plain = 0;
      switch (e) {
        case '"':
          plain = '"';
          break;
        case '\\':
          plain = '\\';
          break;
        case '/':
          plain = '/';
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          uint32_t u = 0;
          if (!hex4(u)) return false;
          char32_t cp = u;
          if (u >= 0xd800 && u <= 0xdbff) {
            // A surrogate pair written as two escapes.
            uint32_t lo = 0;
            if (s_.substr(i_, 2) == "\\u") {
              const size_t save = i_;
              i_ += 2;
              if (hex4(lo) && lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
              } else {
                i_ = save;
                cp = 0xfffd;
              }
            } else {
              cp = 0xfffd;
            }
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            cp = 0xfffd;
          }
          if (out) append_utf8(*out, cp);
          continue;
        }
        default:
          return false;
      }
      if (out) *out += plain;
    }
    return false;
  }
  bool skip_value(int depth) {
    if (depth > 64) return false;
    ws();
    const char c = peek();
    if (c == '"') return string(nullptr);
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i_;
      ws();
      if (eat(close)) return true;
      for (;;) {
        ws();
        if (c == '{') {
          if (!string(nullptr)) return false;
          ws();
          if (!eat(':')) return false;
        }
        if (!skip_value(depth + 1)) return false;
        ws();
        if (eat(',')) continue;
        return eat(close);
      }
    }
    // number, true, false, null
    const size_t start = i_;
    while (i_ < s_.size() && std::string_view(",}] \t\r\n").find(s_[i_]) == std::string_view::npos)
      ++i_;
    return i_ > start;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::optional<sms_content> parse_content(std::string_view content_json) {
  return json_reader(content_json).read_object();
}

std::string sms_body(const sms_content& c) {
  if (c.link.empty()) return c.text;
  if (c.text.empty()) return c.link;
  return c.text + "\n" + c.link;
}

std::optional<std::string> smpp_destination(std::string_view address, unsigned dest_ton) {
  std::string_view digits = address;
  const bool plus = !digits.empty() && digits[0] == '+';
  if (plus) digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 20 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  if (plus && dest_ton != 1) return std::string(address);  // the SMSC wants it as written
  return std::string(digits);
}

std::string relay_address(std::string_view smpp_addr, unsigned ton) {
  if (ton == 1 && !smpp_addr.empty() && smpp_addr[0] != '+') return "+" + std::string(smpp_addr);
  return std::string(smpp_addr);
}

}  // namespace sms_smpp
