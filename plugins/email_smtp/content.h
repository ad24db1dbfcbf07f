#pragma once
// The fields of a job's `content` object that email uses, read from the
// content_json relay hands to on_submit. A small reader of our own (plug-ins
// depend only on the ABI header, Boost headers and OpenSSL; Boost 1.74 on
// Debian has no header-only JSON).

#include <string>
#include <string_view>

namespace relay::email_smtp {

struct mail_content {
  std::string text;     // plain text body; may be empty
  std::string subject;  // UTF-8
  std::string html;     // as relay gives it (tracking pixel and tracked links already in)
  std::string link;     // appended to the text part when not already in it
};

// Parses one JSON object; unknown members are skipped, a non-string value
// for a known member is an error. Returns "" or a one-line reason (which
// never quotes the content: it is user text).
std::string parse_content(std::string_view json, mail_content& out);

}  // namespace relay::email_smtp
