#include "plugins/email_smtp/smtp_reply.h"

#include <algorithm>
#include <cctype>

namespace relay::email_smtp {
namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::string smtp_reply::text() const {
  std::string out;
  for (const auto& l : lines) {
    if (l.empty()) continue;
    if (!out.empty()) out += ' ';
    out += l;
  }
  return out;
}

reply_reader::result reply_reader::next(smtp_reply& out) {
  // Find the end of the reply: the first line whose 4th byte is not '-'.
  size_t pos = 0;
  size_t count = 0;
  for (;;) {
    const size_t nl = buffer_.find('\n', pos);
    if (nl == std::string::npos) {
      return buffer_.size() - pos > kMaxLine ? result::malformed : result::need_more;
    }
    std::string_view line(buffer_.data() + pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // a bare LF is tolerated
    if (line.size() > kMaxLine || ++count > kMaxLines) return result::malformed;
    if (line.size() < 3 || !digit(line[0]) || !digit(line[1]) || !digit(line[2]) ||
        (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
      return result::malformed;
    }
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (count == 1) {
      if (code < 200 || code > 599) return result::malformed;
      out.code = code;
      out.lines.clear();
    } else if (code != out.code) {
      return result::malformed;
    }
    out.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view());
    pos = nl + 1;
    if (line.size() == 3 || line[3] == ' ') break;
  }
  buffer_.erase(0, pos);
  return result::complete;
}

ehlo_extensions ehlo_extensions::parse(const smtp_reply& reply) {
  ehlo_extensions ext;
  // The first line is the server's greeting name; extensions follow.
  for (size_t i = 1; i < reply.lines.size(); ++i) {
    const std::string line = upper(reply.lines[i]);
    std::string_view rest = line;
    const size_t sp = rest.find_first_of(" =");
    const std::string_view keyword = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    if (keyword == "PIPELINING") {
      ext.pipelining = true;
    } else if (keyword == "STARTTLS") {
      ext.starttls = true;
    } else if (keyword == "8BITMIME") {
      ext.eight_bit_mime = true;
    } else if (keyword == "SIZE") {
      size_t n = 0;
      for (char c : rest) {
        if (!digit(c)) break;
        n = n * 10 + static_cast<size_t>(c - '0');
      }
      ext.size_limit = n;
    } else if (keyword == "AUTH") {  // "AUTH PLAIN LOGIN" or the old "AUTH=LOGIN PLAIN"
      size_t i2 = 0;
      while (i2 < rest.size()) {
        size_t e = rest.find(' ', i2);
        if (e == std::string_view::npos) e = rest.size();
        const std::string_view mech = rest.substr(i2, e - i2);
        if (mech == "PLAIN") ext.auth_plain = true;
        if (mech == "LOGIN") ext.auth_login = true;
        i2 = e + 1;
      }
    }
  }
  return ext;
}

std::string reply_detail(const smtp_reply& reply, std::string_view address) {
  std::string text = reply.text();
  // <local@domain> paths (the recipient, or the sender) become <...>.
  for (size_t open = 0; (open = text.find('<', open)) != std::string::npos;) {
    const size_t close = text.find('>', open);
    if (close == std::string::npos) break;
    if (text.find('@', open) < close) {
      text.replace(open, close - open + 1, "<...>");
      open += 5;
    } else {
      open = close + 1;
    }
  }
  // The bare address anywhere else, case-insensitively.
  if (!address.empty()) {
    const std::string needle = upper(address);
    for (size_t at = 0;;) {
      const std::string haystack = upper(text);
      at = haystack.find(needle, at);
      if (at == std::string::npos) break;
      text.replace(at, address.size(), "<...>");
      at += 5;
    }
  }
  for (char& c : text) {  // one printable line
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  static constexpr size_t kMax = 300;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return "SMTP " + std::to_string(reply.code) + (text.empty() ? "" : " " + text);
}

}  // namespace relay::email_smtp
