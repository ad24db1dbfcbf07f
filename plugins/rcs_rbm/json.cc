#include "plugins/rcs_rbm/json.h"

#include "plugins/common/json_text.h"
#include "plugins/common/utf8.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace relay::rcs_rbm {

json json::boolean(bool b) {
  json j;
  j.kind_ = kind::boolean;
  j.bool_ = b;
  return j;
}
json json::number(double d) {
  json j;
  j.kind_ = kind::number;
  j.number_ = d;
  return j;
}
json json::string(std::string s) {
  json j;
  j.kind_ = kind::string;
  j.string_ = std::move(s);
  return j;
}
json json::array() {
  json j;
  j.kind_ = kind::array;
  return j;
}
json json::object() {
  json j;
  j.kind_ = kind::object;
  return j;
}

const json* json::find(std::string_view key) const {
  if (kind_ != kind::object) return nullptr;
  for (const auto& [k, v] : members_) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string json::get_string(std::string_view key) const {
  const json* v = find(key);
  return v != nullptr && v->is_string() ? v->string_ : std::string();
}

json& json::set(std::string key, json value) {
  members_.emplace_back(std::move(key), std::move(value));
  return *this;
}

json& json::push(json value) {
  items_.push_back(std::move(value));
  return *this;
}

namespace {

using relay::plugin_text::append_utf8;
using relay::plugin_text::utf8_sequence;



class parser {
 public:
  explicit parser(std::string_view s) : s_(s) {}

  bool document(json& out, std::string& error) {
    ws();
    if (!value(out, 0)) {
      error =
          (why_.empty() ? std::string("invalid JSON") : why_) + " at byte " + std::to_string(i_);
      return false;
    }
    ws();
    if (i_ != s_.size()) {
      error = "trailing bytes after the JSON value at byte " + std::to_string(i_);
      return false;
    }
    return true;
  }

 private:
  static constexpr int kMaxDepth = 64;

  bool fail(const char* why) {
    if (why_.empty()) why_ = why;
    return false;
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool eat(char c) {
    if (i_ >= s_.size() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool literal(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return fail("invalid literal");
    i_ += w.size();
    return true;
  }

  bool value(json& out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    switch (peek()) {
      case '{':
        return object(out, depth);
      case '[':
        return array(out, depth);
      case '"': {
        std::string s;
        if (!string(s)) return false;
        out = json::string(std::move(s));
        return true;
      }
      case 't':
        out = json::boolean(true);
        return literal("true");
      case 'f':
        out = json::boolean(false);
        return literal("false");
      case 'n':
        out = json();
        return literal("null");
      default:
        return number(out);
    }
  }

  bool object(json& out, int depth) {
    ++i_;  // '{'
    out = json::object();
    ws();
    if (eat('}')) return true;
    for (;;) {
      ws();
      std::string key;
      if (peek() != '"') return fail("expected a member name");
      if (!string(key)) return false;
      ws();
      if (!eat(':')) return fail("expected ':'");
      ws();
      json v;
      if (!value(v, depth + 1)) return false;
      out.set(std::move(key), std::move(v));
      ws();
      if (eat(',')) continue;
      if (eat('}')) return true;
      return fail("expected ',' or '}'");
    }
  }

  bool array(json& out, int depth) {
    ++i_;  // '['
    out = json::array();
    ws();
    if (eat(']')) return true;
    for (;;) {
      ws();
      json v;
      if (!value(v, depth + 1)) return false;
      out.push(std::move(v));
      ws();
      if (eat(',')) continue;
      if (eat(']')) return true;
      return fail("expected ',' or ']'");
    }
  }

  bool digits() {
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }

  bool number(json& out) {
    const size_t start = i_;
    eat('-');
    if (!eat('0') && !digits()) return fail("invalid value");
    if (eat('.') && !digits()) return fail("invalid number");
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!digits()) return fail("invalid number");
    }
    const std::string text(s_.substr(start, i_ - start));
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(d)) return fail("invalid number");
    out = json::number(d);
    return true;
  }

  bool hex4(uint32_t& v) {
    if (i_ + 4 > s_.size()) return fail("invalid \\u escape");
    v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return fail("invalid \\u escape");
    }
    return true;
  }

  bool string(std::string& out) {
    ++i_;  // '"'
    for (;;) {
      if (i_ >= s_.size()) return fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return fail("control character in string");
      if (c == '\\') {
        ++i_;
        const char e = peek();
        ++i_;
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            uint32_t cp;
            if (!hex4(cp)) return false;
            if (cp >= 0xd800 && cp <= 0xdbff) {
              uint32_t low;
              if (!eat('\\') || !eat('u') || !hex4(low) || low < 0xdc00 || low > 0xdfff)
                return fail("unpaired surrogate");
              cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
              return fail("unpaired surrogate");
            }
            append_utf8(out, cp);
            break;
          }
          default:
            return fail("invalid escape");
        }
        continue;
      }
      const size_t n = utf8_sequence(s_, i_);
      if (n == 0) return fail("invalid UTF-8");
      out.append(s_.substr(i_, n));
      i_ += n;
    }
  }

  std::string_view s_;
  size_t i_ = 0;
  std::string why_;
};

}  // namespace

bool parse_json(std::string_view text, json& out, std::string& error) {
  return parser(text).document(out, error);
}

void append_json_string(std::string& out, std::string_view s) { relay::plugin_text::append_json_quoted(out, s); }

void json::dump_to(std::string& out) const {
  switch (kind_) {
    case kind::null:
      out += "null";
      break;
    case kind::boolean:
      out += bool_ ? "true" : "false";
      break;
    case kind::number: {
      char buf[32];
      if (std::floor(number_) == number_ && std::fabs(number_) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.0f", number_);
      } else {
        std::snprintf(buf, sizeof buf, "%.17g", number_);
      }
      out += buf;
      break;
    }
    case kind::string:
      append_json_string(out, string_);
      break;
    case kind::array: {
      out += '[';
      for (size_t k = 0; k < items_.size(); ++k) {
        if (k != 0) out += ',';
        items_[k].dump_to(out);
      }
      out += ']';
      break;
    }
    case kind::object: {
      out += '{';
      for (size_t k = 0; k < members_.size(); ++k) {
        if (k != 0) out += ',';
        append_json_string(out, members_[k].first);
        out += ':';
        members_[k].second.dump_to(out);
      }
      out += '}';
      break;
    }
  }
}

std::string json::dump() const {
  std::string out;
  dump_to(out);
  return out;
}

}  // namespace relay::rcs_rbm
