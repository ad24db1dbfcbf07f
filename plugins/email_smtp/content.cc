#include "plugins/email_smtp/content.h"

#include "plugins/common/utf8.h"

#include <cstdint>

namespace relay::email_smtp {
namespace {

// A strict RFC 8259 reader over one object. Only strings are decoded; other
// values are validated and skipped.
class reader {
 public:
  explicit reader(std::string_view s) : s_(s) {}

  std::string object(mail_content& out) {
    ws();
    if (!eat('{')) return fail("content is not a JSON object");
    ws();
    if (eat('}')) return end();
    for (;;) {
      ws();
      std::string key;
      if (!string(key)) return fail("content: expected a member name");
      ws();
      if (!eat(':')) return fail("content: expected ':'");
      ws();
      std::string* field = key == "text"      ? &out.text
                           : key == "subject" ? &out.subject
                           : key == "html"    ? &out.html
                           : key == "link"    ? &out.link
                                              : nullptr;
      if (field != nullptr) {
        if (peek() == 'n') {  // null: absent
          if (!literal("null")) return fail("content: invalid value");
          field->clear();
        } else if (!string(*field)) {
          return fail("content." + key + " must be a string");
        }
      } else if (!skip_value(0)) {
        return fail("content: invalid JSON");
      }
      ws();
      if (eat(',')) continue;
      if (eat('}')) return end();
      return fail("content: expected ',' or '}'");
    }
  }

 private:
  std::string end() {
    ws();
    return i_ == s_.size() ? "" : fail("content: trailing bytes after the object");
  }
  std::string fail(std::string why) const { return why + " (at byte " + std::to_string(i_) + ")"; }
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
  bool literal(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool hex4(uint32_t& v) {
    if (i_ + 4 > s_.size()) return false;
    v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return false;
    }
    return true;
  }
  static void utf8(std::string& out, uint32_t cp) { relay::plugin_text::append_utf8(out, cp); }
  size_t utf8_length() const { return relay::plugin_text::utf8_sequence(s_, i_); }
  bool string(std::string& out) {
    out.clear();
    if (!eat('"')) return false;
    while (i_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') {
        const size_t n = utf8_length();
        if (n == 0) return false;
        out.append(s_.substr(i_, n));
        i_ += n;
        continue;
      }
      ++i_;
      const char e = peek();
      ++i_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xd800 && cp <= 0xdbff) {  // a surrogate pair
            uint32_t lo = 0;
            if (!literal("\\u") || !hex4(lo) || lo < 0xdc00 || lo > 0xdfff) return false;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return false;
          }
          utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool skip_value(int depth) {
    if (depth > 64) return false;
    ws();
    std::string scratch;
    switch (peek()) {
      case '"':
        return string(scratch);
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      case '{':
      case '[': {
        const char close = peek() == '{' ? '}' : ']';
        const bool keyed = close == '}';
        ++i_;
        ws();
        if (eat(close)) return true;
        for (;;) {
          ws();
          if (keyed) {
            if (!string(scratch)) return false;
            ws();
            if (!eat(':')) return false;
          }
          if (!skip_value(depth + 1)) return false;
          ws();
          if (eat(',')) continue;
          return eat(close);
        }
      }
      default: {  // a number
        const size_t start = i_;
        eat('-');
        while (i_ < s_.size() && ((s_[i_] >= '0' && s_[i_] <= '9') || s_[i_] == '.' ||
                                  s_[i_] == 'e' || s_[i_] == 'E' || s_[i_] == '+' || s_[i_] == '-'))
          ++i_;
        return i_ > start;
      }
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::string parse_content(std::string_view json, mail_content& out) {
  out = mail_content{};
  if (json.empty()) return "content is empty";
  return reader(json).object(out);
}

}  // namespace relay::email_smtp
