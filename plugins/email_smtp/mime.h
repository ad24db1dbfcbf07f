#pragma once
// Builds one RFC 5322 / MIME (RFC 2045-2049) message from relay's content:
// headers with RFC 2047 encoded-words, text/plain or multipart/alternative,
// quoted-printable or base64 bodies, CRLF line ends, no line over 76 octets
// in bodies (998 is the hard limit). Pure functions; no I/O, no clock.

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "plugins/email_smtp/content.h"

namespace relay::email_smtp {

// Everything about one message that is not its content.
struct envelope_fields {
  std::string from;              // mailbox, e.g. news@acme.example
  std::string from_name;         // display name, UTF-8; may be empty
  std::string to;                // the recipient's mailbox
  std::string reply_to;          // may be empty
  std::string message_id;        // relay's message_id
  std::string message_id_domain; // right-hand side of Message-ID
  std::string list_unsubscribe;  // comma-separated URIs; {message_id} replaced; may be empty
  std::time_t date = 0;          // Date: header (UTC)
};

// The whole message, headers and body, CRLF line ends, not dot-stuffed.
// `content` must have text or html (the caller checks).
std::string build_message(const envelope_fields& env, const mail_content& content);

// "Subject: " + value, folded to 78 octets per line: pure printable ASCII is
// kept as is (folded at spaces), anything else becomes UTF-8 "B" encoded-words
// (RFC 2047) that never split a character. CR/LF/control characters in the
// value become spaces (no header injection). Returns the value part only
// (what follows "Name: "), with "\r\n " between folded lines.
std::string encode_header_value(std::string_view value, size_t name_length);

// RFC 2045 6.7 quoted-printable of text: line breaks (CRLF, LF or CR) become
// CRLF hard breaks, lines are soft-broken to at most 76 octets, '=' and
// non-ASCII as =XX, a space or tab before a line break encoded. The result
// ends with CRLF.
std::string quoted_printable(std::string_view text);

// Base64 in lines of 76 characters, each ending with CRLF; line breaks of the
// text are normalised to CRLF first (text/* canonical form).
std::string base64_text(std::string_view text);
std::string base64(std::string_view bytes);  // one line, no CRLF

// Chooses base64 when more than a third of the bytes would need escaping in
// quoted-printable (e.g. Japanese), quoted-printable otherwise.
bool prefer_base64(std::string_view text);

// A plain text rendering of HTML for the text/plain alternative: tags
// stripped, script/style dropped, block ends as line breaks, entities
// decoded, links kept as "label (url)".
std::string html_to_text(std::string_view html);

// RFC 5321 4.5.2: appends `message` with a '.' doubled at each line start,
// then the terminating ".\r\n". `message` must use CRLF line ends.
void append_dot_stuffed(std::string& out, std::string_view message);

// "Mon, 23 Nov 2026 12:00:00 +0000"
std::string rfc5322_date(std::time_t t);

// The text part: content.text (or html_to_text(html)) with content.link
// appended when the text does not already contain it.
std::string text_part(const mail_content& content);

}  // namespace relay::email_smtp
