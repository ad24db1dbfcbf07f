#pragma once
// Text of an SMS: UTF-8 to GSM 03.38 (default alphabet + escape table, one
// septet per octet, data_coding 0x00) or UCS-2 big-endian (data_coding 0x08),
// split into concatenated parts with a UDH; and the way back for messages
// users send (GSM, IA5, Latin-1, UCS-2 to UTF-8, concatenation UDHs parsed).

#include "plugins/common/utf8.h"
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sms_smpp {

constexpr uint8_t kDataCodingGsm = 0x00;
constexpr uint8_t kDataCodingIa5 = 0x01;
constexpr uint8_t kDataCodingLatin1 = 0x03;
constexpr uint8_t kDataCodingUcs2 = 0x08;
constexpr uint8_t kEsmClassUdhi = 0x40;

constexpr size_t kGsmSingle = 160, kGsmPart = 153;  // septets
constexpr size_t kUcs2Single = 70, kUcs2Part = 67;  // UTF-16 code units
constexpr size_t kMaxParts = 255;                   // an 8-bit UDH counts at most this many

// UTF-8 to code points; invalid sequences become U+FFFD.
std::vector<char32_t> utf8_to_code_points(std::string_view utf8);
using relay::plugin_text::append_utf8;

// The GSM 03.38 octets for `text`, or nullopt if a character is outside the
// default alphabet and its escape table.
std::optional<std::string> gsm_encode(const std::vector<char32_t>& text);
// GSM octets (one septet per octet) to UTF-8; unknown octets become '?'.
std::string gsm_decode(std::string_view octets);
// UTF-16BE of `text`, non-BMP characters as surrogate pairs.
std::string ucs2_encode(const std::vector<char32_t>& text);
// UCS-2 / UTF-16BE to UTF-8; a lone surrogate or odd trailing byte becomes U+FFFD.
std::string ucs2_decode(std::string_view octets);

// The message as it goes on the wire: one data_coding and the payload of each
// part without its UDH. One part means no concatenation.
struct sms_parts {
  uint8_t data_coding = kDataCodingGsm;
  std::vector<std::string> payloads;
};

// Chooses GSM when every character fits, else UCS-2, and splits at 160/153
// septets or 70/67 UCS-2 units, never inside an escape sequence or a
// surrogate pair.
sms_parts split_text(std::string_view utf8);

// "05 00 03 ref total seq": the concatenation UDH with an 8-bit reference.
std::string concat_udh(uint8_t reference, uint8_t total, uint8_t sequence);

// A user data header's concatenation element (IEI 0x00 8-bit or 0x08 16-bit
// reference) and where the text starts.
struct udh_info {
  size_t header_size = 0;  // UDHL octet + the header
  bool concatenated = false;
  uint16_t reference = 0;
  uint8_t total = 0, sequence = 0;
};
// Parses the UDH at the start of `short_message` (esm_class had UDHI set);
// nullopt when it does not fit in the message.
std::optional<udh_info> parse_udh(std::string_view short_message);

// Text octets of a message the SMSC delivered, to UTF-8: GSM (0x00), IA5
// (0x01), Latin-1 (0x03) and UCS-2 (0x08); other codings are read as Latin-1.
std::string decode_text(uint8_t data_coding, std::string_view octets);

}  // namespace sms_smpp
