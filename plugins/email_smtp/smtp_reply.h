#pragma once
// SMTP replies (RFC 5321 4.2): a reader that splits the bytes a server sends
// into complete (possibly multi-line) replies, the EHLO extensions a reply
// advertises, and the detail text relay reports for a reply.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace relay::email_smtp {

struct smtp_reply {
  int code = 0;                    // 200..599
  std::vector<std::string> lines;  // the text after "NNN-" / "NNN " of each line

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // The lines joined with single spaces.
  std::string text() const;
};

// Consumes bytes as they arrive; hands out complete replies in order.
// Owned by one connection (its I/O thread).
class reply_reader {
 public:
  enum class result { complete, need_more, malformed };

  // Appends received bytes.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // Takes the next complete reply out of the buffer. `malformed` means the
  // server does not speak SMTP (or a reply line exceeds the limit): close.
  result next(smtp_reply& out);
  bool empty() const { return buffer_.empty(); }

  static constexpr size_t kMaxLine = 4096;  // RFC 5321 says 512; be lenient
  static constexpr size_t kMaxLines = 256;

 private:
  std::string buffer_;
};

// What an EHLO reply advertises (keywords are case-insensitive).
struct ehlo_extensions {
  bool pipelining = false;
  bool starttls = false;
  bool auth_plain = false;
  bool auth_login = false;
  bool eight_bit_mime = false;
  size_t size_limit = 0;  // 0: not announced or no limit

  static ehlo_extensions parse(const smtp_reply& reply);
};

// "SMTP 550 5.1.1 <...> user unknown": the code and text of a reply, with
// every <...@...> path and any occurrence of `address` replaced by "<...>"
// (addresses are personal data and the detail lands in events), cut to a
// readable length.
std::string reply_detail(const smtp_reply& reply, std::string_view address);

}  // namespace relay::email_smtp
