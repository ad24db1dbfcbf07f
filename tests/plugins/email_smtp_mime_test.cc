// Unit tests of email_smtp's protocol code: the MIME builder (RFC 2047
// subjects, quoted-printable, multipart structure), dot-stuffing, the SMTP
// reply reader and EHLO extensions, reply details, content and config.

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "plugins/email_smtp/content.h"
#include "plugins/email_smtp/mime.h"
#include "plugins/email_smtp/smtp_config.h"
#include "plugins/email_smtp/smtp_reply.h"

namespace relay::email_smtp {
namespace {

std::vector<std::string> split_crlf(std::string_view s) {
  std::vector<std::string> lines;
  size_t i = 0;
  while (i < s.size()) {
    size_t e = s.find("\r\n", i);
    if (e == std::string_view::npos) e = s.size();
    lines.emplace_back(s.substr(i, e - i));
    i = e + 2;
  }
  return lines;
}

std::string decode_base64(std::string_view in) {
  static const std::string kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const size_t v = kB64.find(c);
    if (v == std::string::npos) continue;  // '=', CR, LF
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string decode_qp(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '=' && i + 2 < in.size() && in[i + 1] == '\r' && in[i + 2] == '\n') {
      i += 2;  // soft line break
    } else if (in[i] == '=' && i + 2 < in.size()) {
      out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

// Decodes a header value made of "=?UTF-8?B?...?=" words and folds.
std::string decode_encoded_words(std::string_view value) {
  std::string out;
  size_t i = 0;
  while ((i = value.find("=?UTF-8?B?", i)) != std::string_view::npos) {
    const size_t end = value.find("?=", i + 10);
    out += decode_base64(value.substr(i + 10, end - i - 10));
    i = end + 2;
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

// --- RFC 2047 subjects ------------------------------------------------------

TEST(email_smtp_mime, pure_ascii_subject_is_left_untouched) {
  EXPECT_EQ(encode_header_value("Your weekly offer: 20% off", 7), "Your weekly offer: 20% off");
}

TEST(email_smtp_mime, long_ascii_subject_is_folded_at_spaces_within_78_octets) {
  std::string subject;
  for (int i = 0; i < 30; ++i) subject += "word" + std::to_string(i) + " ";
  subject.pop_back();
  const std::string header = "Subject: " + encode_header_value(subject, 7);
  for (const auto& line : split_crlf(header)) EXPECT_LE(line.size(), 78u) << line;
  std::string unfolded = header.substr(9);
  for (size_t at; (at = unfolded.find("\r\n")) != std::string::npos;) unfolded.erase(at, 2);
  EXPECT_EQ(unfolded, subject);
}

TEST(email_smtp_mime, japanese_subject_becomes_utf8_encoded_words_that_never_split_a_character) {
  std::string subject;
  for (int i = 0; i < 6; ++i) subject += "今週のおすすめ商品をお届けします！";
  const std::string value = encode_header_value(subject, 7);
  const std::string header = "Subject: " + value;
  EXPECT_NE(value.find("=?UTF-8?B?"), std::string::npos);
  const auto lines = split_crlf(header);
  EXPECT_GT(lines.size(), 2u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_LE(lines[i].size(), 78u);
    if (i > 0) {
      EXPECT_EQ(lines[i][0], ' ');  // folded continuation
    }
    const std::string_view word = std::string_view(lines[i]).substr(i == 0 ? 9 : 1);
    ASSERT_EQ(word.substr(0, 10), "=?UTF-8?B?");
    EXPECT_LE(word.size(), 75u);  // RFC 2047 2: an encoded-word is at most 75 characters
    EXPECT_TRUE(valid_utf8(decode_base64(word.substr(10, word.size() - 12))));
  }
  EXPECT_EQ(decode_encoded_words(value), subject);
}

TEST(email_smtp_mime, ascii_that_looks_like_an_encoded_word_is_encoded) {
  const std::string value = encode_header_value("=?UTF-8?B?SGk=?=", 7);
  EXPECT_EQ(decode_encoded_words(value), "=?UTF-8?B?SGk=?=");
}

TEST(email_smtp_mime, line_breaks_in_a_subject_cannot_inject_headers) {
  const std::string value = encode_header_value("Hi\r\nBcc: victim@example.com", 7);
  EXPECT_EQ(value, "Hi  Bcc: victim@example.com");
}

// --- quoted-printable ---------------------------------------------------------

TEST(email_smtp_mime, quoted_printable_soft_breaks_long_lines_within_76_octets) {
  const std::string text(300, 'a');
  const std::string qp = quoted_printable(text);
  for (const auto& line : split_crlf(qp)) EXPECT_LE(line.size(), 76u);
  EXPECT_EQ(decode_qp(qp), text);
}

TEST(email_smtp_mime, quoted_printable_escapes_equals_trailing_space_and_non_ascii) {
  EXPECT_EQ(quoted_printable("a=b\n"), "a=3Db\r\n");
  EXPECT_EQ(quoted_printable("trailing  \nx\n"), "trailing =20\r\nx\r\n");
  EXPECT_EQ(quoted_printable("tab\t\n"), "tab=09\r\n");
  EXPECT_EQ(quoted_printable("caf\xC3\xA9\n"), "caf=C3=A9\r\n");
  EXPECT_EQ(quoted_printable("mid space ok\n"), "mid space ok\r\n");
}

TEST(email_smtp_mime, quoted_printable_turns_every_line_break_into_crlf) {
  EXPECT_EQ(quoted_printable("a\nb\r\nc\rd\n"), "a\r\nb\r\nc\r\nd\r\n");
}

TEST(email_smtp_mime, quoted_printable_without_final_newline_decodes_to_exactly_the_text) {
  const std::string html = R"(<p><a href="https://r.example/t/c/TOKEN=">x</a></p>)";
  const std::string qp = quoted_printable(html);
  EXPECT_EQ(qp.substr(qp.size() - 3), "=\r\n");
  EXPECT_EQ(decode_qp(qp), html);
}

TEST(email_smtp_mime, quoted_printable_never_splits_an_escape_across_lines) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "\xE3\x81\x82";
  const std::string qp = quoted_printable(text);
  for (const auto& line : split_crlf(qp)) {
    EXPECT_LE(line.size(), 76u);
    const size_t last_eq = line.rfind('=');
    EXPECT_TRUE(last_eq == line.size() - 1 || last_eq + 3 == line.size()) << line;
  }
  EXPECT_EQ(decode_qp(qp), text);
}

TEST(email_smtp_mime, mostly_non_ascii_text_is_sent_as_base64) {
  EXPECT_TRUE(prefer_base64("こんにちは、今週のおすすめです"));
  EXPECT_FALSE(prefer_base64("Hello, here is caf\xC3\xA9 news"));
  const std::string b64 = base64_text("line one\nline two");
  for (const auto& line : split_crlf(b64)) EXPECT_LE(line.size(), 76u);
  EXPECT_EQ(decode_base64(b64), "line one\r\nline two");
}

// --- dot-stuffing ---------------------------------------------------------------

TEST(email_smtp_mime, dot_stuffing_doubles_leading_dots_and_terminates) {
  std::string out;
  append_dot_stuffed(out, ".hidden\r\nline . mid\r\n..two\r\n.\r\n");
  EXPECT_EQ(out, "..hidden\r\nline . mid\r\n...two\r\n..\r\n.\r\n");
  std::string unterminated;
  append_dot_stuffed(unterminated, "no final break");
  EXPECT_EQ(unterminated, "no final break\r\n.\r\n");
}

// --- the whole message ----------------------------------------------------------

envelope_fields sample_envelope() {
  envelope_fields env;
  env.from = "news@acme.example";
  env.from_name = "Acme ニュース";
  env.to = "user@example.org";
  env.reply_to = "help@acme.example";
  env.message_id = "0123456789abcdef0123456789abcdef";
  env.message_id_domain = "acme.example";
  env.list_unsubscribe = "mailto:unsub@acme.example, https://acme.example/u/{message_id}";
  env.date = 1'795'000'000;
  return env;
}

void expect_wire_safe(std::string_view message) {
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\n') {
      EXPECT_TRUE(i > 0 && message[i - 1] == '\r') << "bare LF at " << i;
    }
    if (message[i] == '\r') {
      EXPECT_TRUE(i + 1 < message.size() && message[i + 1] == '\n');
    }
    EXPECT_LT(static_cast<unsigned char>(message[i]), 0x80) << "8-bit byte at " << i;
  }
  for (const auto& line : split_crlf(message)) EXPECT_LE(line.size(), 78u) << line;
}

TEST(email_smtp_mime, text_and_html_make_multipart_alternative_text_first) {
  mail_content c;
  c.subject = "Hello";
  c.text = "Hi there";
  c.html = R"(<p>Hi <a href="https://r.example/t/c/TOKEN">there</a></p><img src="https://r.example/t/o/TOKEN">)";
  c.link = "https://r.example/t/c/LINK";
  const std::string m = build_message(sample_envelope(), c);
  expect_wire_safe(m);
  const size_t body = m.find("\r\n\r\n");
  const std::string headers = m.substr(0, body + 2);
  EXPECT_NE(headers.find("Date: Wed, 18 Nov 2026 11:06:40 +0000\r\n"), std::string::npos) << headers;
  EXPECT_NE(headers.find("From: =?UTF-8?B?"), std::string::npos);
  EXPECT_NE(headers.find(" <news@acme.example>\r\n"), std::string::npos);
  EXPECT_NE(headers.find("To: <user@example.org>\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Subject: Hello\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Message-ID: <0123456789abcdef0123456789abcdef@acme.example>\r\n"),
            std::string::npos);
  EXPECT_NE(headers.find("Reply-To: <help@acme.example>\r\n"), std::string::npos);
  EXPECT_NE(headers.find("List-Unsubscribe: <mailto:unsub@acme.example>,\r\n "
                         "<https://acme.example/u/0123456789abcdef0123456789abcdef>\r\n"),
            std::string::npos);
  EXPECT_NE(headers.find("MIME-Version: 1.0\r\n"), std::string::npos);
  const std::string boundary = "=_relay_alt_0123456789abcdef0123456789abcdef";
  EXPECT_NE(headers.find("Content-Type: multipart/alternative;\r\n boundary=\"" + boundary + "\"\r\n"),
            std::string::npos);
  const size_t first = m.find("\r\n--" + boundary + "\r\nContent-Type: text/plain; charset=UTF-8");
  const size_t second = m.find("\r\n--" + boundary + "\r\nContent-Type: text/html; charset=UTF-8");
  const size_t close = m.find("\r\n--" + boundary + "--\r\n");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  ASSERT_NE(close, std::string::npos);
  EXPECT_LT(first, second);
  EXPECT_LT(second, close);
  const std::string text_body = m.substr(m.find("\r\n\r\n", first) + 4, second - m.find("\r\n\r\n", first) - 4 + 2);
  EXPECT_EQ(decode_qp(text_body), "Hi there\r\n\r\nhttps://r.example/t/c/LINK");
  const std::string html_body = m.substr(m.find("\r\n\r\n", second) + 4, close - m.find("\r\n\r\n", second) - 4 + 2);
  EXPECT_EQ(decode_qp(html_body), c.html);  // tracking URLs reach the reader byte-exact
}

TEST(email_smtp_mime, text_only_is_a_single_text_plain_body) {
  mail_content c;
  c.text = "Just text";
  c.link = "https://acme.example/offer";
  const std::string m = build_message(sample_envelope(), c);
  expect_wire_safe(m);
  EXPECT_EQ(m.find("multipart"), std::string::npos);
  EXPECT_EQ(m.find("Subject:"), std::string::npos);  // no subject given
  EXPECT_NE(m.find("Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: "
                   "quoted-printable\r\n\r\nJust text\r\n\r\nhttps://acme.example/offer=\r\n"),
            std::string::npos);
}

TEST(email_smtp_mime, link_already_in_the_text_is_not_repeated) {
  mail_content c;
  c.text = "See https://acme.example/offer today";
  c.link = "https://acme.example/offer";
  EXPECT_EQ(text_part(c), c.text);
}

TEST(email_smtp_mime, html_only_gets_a_text_part_derived_from_the_html) {
  mail_content c;
  c.html = "<html><head><style>p{color:red}</style><script>var x=1;</script></head><body>"
           "<h1>Sale&nbsp;today</h1><p>50% off &amp; free <b>shipping</b>.<br>Ends soon.</p>"
           "<p><a href=\"https://r.example/t/c/T1?a=1&amp;b=2\">Shop now</a></p>"
           "<img src=\"https://r.example/t/o/T2\" width=1 height=1></body></html>";
  EXPECT_EQ(text_part(c),
            "Sale today\n\n50% off & free shipping.\nEnds soon.\n\nShop now (https://r.example/t/c/T1?a=1&b=2)");
  const std::string m = build_message(sample_envelope(), c);
  expect_wire_safe(m);
  EXPECT_NE(m.find("multipart/alternative"), std::string::npos);
  EXPECT_LT(m.find("text/plain"), m.find("text/html"));
}

// --- SMTP replies ----------------------------------------------------------------

TEST(email_smtp_reply, multi_line_ehlo_reply_arriving_in_pieces_lists_its_extensions) {
  reply_reader r;
  smtp_reply reply;
  r.feed("250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STAR");
  EXPECT_EQ(r.next(reply), reply_reader::result::need_more);
  r.feed("TTLS\r\n250-auth login Plain\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
  ASSERT_EQ(r.next(reply), reply_reader::result::complete);
  EXPECT_EQ(reply.code, 250);
  EXPECT_EQ(reply.lines.size(), 7u);
  const auto ext = ehlo_extensions::parse(reply);
  EXPECT_TRUE(ext.pipelining);
  EXPECT_TRUE(ext.starttls);
  EXPECT_TRUE(ext.auth_plain);
  EXPECT_TRUE(ext.auth_login);
  EXPECT_TRUE(ext.eight_bit_mime);
  EXPECT_EQ(ext.size_limit, 10240000u);
  EXPECT_TRUE(r.empty());
}

TEST(email_smtp_reply, legacy_auth_equals_form_and_a_bare_greeting_line_are_understood) {
  reply_reader r;
  smtp_reply reply;
  r.feed("250-old.example\r\n250 AUTH=LOGIN\r\n");
  ASSERT_EQ(r.next(reply), reply_reader::result::complete);
  const auto ext = ehlo_extensions::parse(reply);
  EXPECT_TRUE(ext.auth_login);
  EXPECT_FALSE(ext.auth_plain);
  EXPECT_FALSE(ext.pipelining);
  r.feed("250\r\n");
  ASSERT_EQ(r.next(reply), reply_reader::result::complete);
  EXPECT_EQ(reply.code, 250);
}

TEST(email_smtp_reply, pipelined_replies_in_one_read_come_out_in_order) {
  reply_reader r;
  r.feed("250 2.1.0 Ok\r\n550 5.1.1 <bob@example.org>: Recipient address rejected\r\n554 5.5.1 Error: no valid recipients\r\n");
  smtp_reply a, b, c, d;
  ASSERT_EQ(r.next(a), reply_reader::result::complete);
  ASSERT_EQ(r.next(b), reply_reader::result::complete);
  ASSERT_EQ(r.next(c), reply_reader::result::complete);
  EXPECT_EQ(r.next(d), reply_reader::result::need_more);
  EXPECT_EQ(a.code, 250);
  EXPECT_TRUE(b.permanent());
  EXPECT_EQ(c.code, 554);
}

TEST(email_smtp_reply, a_line_that_is_not_a_reply_is_malformed) {
  reply_reader r;
  smtp_reply reply;
  r.feed("HTTP/1.1 400 Bad Request\r\n");
  EXPECT_EQ(r.next(reply), reply_reader::result::malformed);
  reply_reader mixed;
  mixed.feed("250-first\r\n251 second\r\n");
  EXPECT_EQ(mixed.next(reply), reply_reader::result::malformed);
}

TEST(email_smtp_reply, detail_names_the_reply_and_masks_addresses) {
  smtp_reply reply{550, {"5.1.1 <Bob@Example.org>: Recipient address rejected: User unknown"}};
  EXPECT_EQ(reply_detail(reply, "bob@example.org"),
            "SMTP 550 5.1.1 <...>: Recipient address rejected: User unknown");
  smtp_reply bare{450, {"4.2.0 bob@example.org mailbox busy"}};
  EXPECT_EQ(reply_detail(bare, "bob@example.org"), "SMTP 450 4.2.0 <...> mailbox busy");
}

// --- content and config ----------------------------------------------------------

TEST(email_smtp_content, json_escapes_and_surrogate_pairs_are_decoded) {
  mail_content c;
  ASSERT_EQ(parse_content(R"({"subject":"\u3053\u3093 \ud83d\ude00","text":"a\nb","html":null,"n":[1,{"x":2}],"link":"https:\/\/x"})", c), "");
  EXPECT_EQ(c.subject, "こん 😀");
  EXPECT_EQ(c.text, "a\nb");
  EXPECT_EQ(c.link, "https://x");
  EXPECT_NE(parse_content(R"({"text": 5})", c), "");
  EXPECT_NE(parse_content(R"({"text": "x"} trailing)", c), "");
  EXPECT_NE(parse_content("[1]", c), "");
}

TEST(email_smtp_config, unknown_keys_and_bad_values_are_rejected_naming_the_key) {
  const auto error = [](std::vector<std::pair<std::string, std::string>> kv) {
    smtp_config cfg;
    return parse_config(kv, cfg);
  };
  EXPECT_EQ(error({{"host", "h"}, {"from", "a@b.example"}, {"sarttls", "auto"}}).rfind("sarttls: unknown key", 0), 0u);
  EXPECT_EQ(error({{"host", "h"}, {"from", "not-a-mailbox"}}).rfind("from:", 0), 0u);
  EXPECT_EQ(error({{"host", "h"}, {"from", "a@b.example"}, {"idle_timeout", "soon"}}).rfind("idle_timeout:", 0), 0u);
  EXPECT_EQ(error({{"host", "h"}, {"from", "a@b.example"}, {"starttls", "maybe"}}).rfind("starttls:", 0), 0u);
  EXPECT_EQ(error({{"from", "a@b.example"}}).rfind("host: required", 0), 0u);
  EXPECT_EQ(error({{"host", "h"}, {"from", "a@b.example"}, {"username", "u"}, {"password", "p"}, {"starttls", "off"}}).rfind("username:", 0), 0u);
  EXPECT_EQ(error({{"host", "h"}, {"from", "a@b.example"}, {"password", "secret"}}).find("secret"), std::string::npos);
}

TEST(email_smtp_config, defaults_and_durations) {
  smtp_config cfg;
  ASSERT_EQ(parse_config({{"host", "mx"}, {"from", "news@acme.example"}, {"command_timeout", "1500ms"}, {"idle_timeout", "2m"}}, cfg), "");
  EXPECT_EQ(cfg.message_id_domain, "acme.example");
  EXPECT_EQ(cfg.connections, 4u);
  EXPECT_EQ(cfg.max_messages_per_connection, 1000u);
  EXPECT_EQ(cfg.port, 25);
  EXPECT_EQ(cfg.starttls, starttls_mode::auto_);
  EXPECT_EQ(cfg.command_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(cfg.idle_timeout, std::chrono::minutes(2));
  EXPECT_FALSE(cfg.helo_name.empty());
}

}  // namespace
}  // namespace relay::email_smtp
