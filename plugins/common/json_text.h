#pragma once
// Writing JSON strings (RFC 8259) for the plug-ins shipped with relay
// (header-only, no dependencies beyond plugins/common/utf8.h).

#include <string>
#include <string_view>

#include "plugins/common/utf8.h"

namespace relay::plugin_text {

// Appends the body of a JSON string (no surrounding quotes): quote and
// backslash escaped, control characters as \u00XX, invalid UTF-8 bytes
// replaced by U+FFFD so the output stays valid JSON whatever `s` holds.
inline void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (size_t n = utf8_sequence(s, i); n != 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
}

// The same with the surrounding quotes.
inline void append_json_quoted(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

}  // namespace relay::plugin_text
