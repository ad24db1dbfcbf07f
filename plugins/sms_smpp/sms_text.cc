#include "plugins/sms_smpp/sms_text.h"

#include <array>

namespace sms_smpp {

namespace {

// GSM 03.38 default alphabet, indexed by septet (3GPP TS 23.038 §6.2.1).
// 0x1b is the escape to the extension table; it maps to nothing here.
constexpr char32_t kGsmBasic[128] = {
    U'@',      U'\u00a3', U'$',      U'\u00a5', U'\u00e8', U'\u00e9', U'\u00f9', U'\u00ec',
    U'\u00f2', U'\u00c7', U'\n',     U'\u00d8', U'\u00f8', U'\r',     U'\u00c5', U'\u00e5',
    U'\u0394', U'_',      U'\u03a6', U'\u0393', U'\u039b', U'\u03a9', U'\u03a0', U'\u03a8',
    U'\u03a3', U'\u0398', U'\u039e', 0,         U'\u00c6', U'\u00e6', U'\u00df', U'\u00c9',
    U' ',      U'!',      U'"',      U'#',      U'\u00a4', U'%',      U'&',      U'\'',
    U'(',      U')',      U'*',      U'+',      U',',      U'-',      U'.',      U'/',
    U'0',      U'1',      U'2',      U'3',      U'4',      U'5',      U'6',      U'7',
    U'8',      U'9',      U':',      U';',      U'<',      U'=',      U'>',      U'?',
    U'\u00a1', U'A',      U'B',      U'C',      U'D',      U'E',      U'F',      U'G',
    U'H',      U'I',      U'J',      U'K',      U'L',      U'M',      U'N',      U'O',
    U'P',      U'Q',      U'R',      U'S',      U'T',      U'U',      U'V',      U'W',
    U'X',      U'Y',      U'Z',      U'\u00c4', U'\u00d6', U'\u00d1', U'\u00dc', U'\u00a7',
    U'\u00bf', U'a',      U'b',      U'c',      U'd',      U'e',      U'f',      U'g',
    U'h',      U'i',      U'j',      U'k',      U'l',      U'm',      U'n',      U'o',
    U'p',      U'q',      U'r',      U's',      U't',      U'u',      U'v',      U'w',
    U'x',      U'y',      U'z',      U'\u00e4', U'\u00f6', U'\u00f1', U'\u00fc', U'\u00e0',
};

struct extension {
  uint8_t septet;
  char32_t cp;
};
// The extension table reached through 0x1b (TS 23.038 §6.2.1.1).
constexpr extension kGsmExtension[] = {
    {0x0a, U'\f'}, {0x14, U'^'}, {0x28, U'{'}, {0x29, U'}'}, {0x2f, U'\\'},
    {0x3c, U'['},  {0x3d, U'~'}, {0x3e, U']'}, {0x40, U'|'}, {0x65, U'\u20ac'},
};
constexpr uint8_t kEscape = 0x1b;

// -1 if not in the basic table.
int gsm_basic_septet(char32_t cp) {
  // Fast path for the ASCII letters and digits, which map to themselves.
  if ((cp >= U'A' && cp <= U'Z') || (cp >= U'a' && cp <= U'z') || (cp >= U'0' && cp <= U'9'))
    return static_cast<int>(cp);
  if (cp == 0) return -1;
  for (int i = 0; i < 128; ++i) {
    if (kGsmBasic[i] == cp) return i;
  }
  return -1;
}

int gsm_extension_septet(char32_t cp) {
  for (const auto& e : kGsmExtension) {
    if (e.cp == cp) return e.septet;
  }
  return -1;
}

void put_utf16be(std::string& out, char32_t unit) {
  out += static_cast<char>(unit >> 8);
  out += static_cast<char>(unit & 0xff);
}

}  // namespace

std::vector<char32_t> utf8_to_code_points(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    const size_t n = relay::plugin_text::decode_utf8(s, i, cp);
    out.push_back(n == 0 ? char32_t{0xfffd} : cp);  // an invalid byte stands for one U+FFFD
    i += n == 0 ? 1 : n;
  }
  return out;
}


std::optional<std::string> gsm_encode(const std::vector<char32_t>& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) {
    if (const int s = gsm_basic_septet(cp); s >= 0) {
      out += static_cast<char>(s);
    } else if (const int e = gsm_extension_septet(cp); e >= 0) {
      out += static_cast<char>(kEscape);
      out += static_cast<char>(e);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string gsm_decode(std::string_view octets) {
  std::string out;
  out.reserve(octets.size());
  for (size_t i = 0; i < octets.size(); ++i) {
    const uint8_t s = static_cast<uint8_t>(octets[i]) & 0x7f;
    if (s == kEscape) {
      if (i + 1 >= octets.size()) break;  // a dangling escape means nothing
      const uint8_t e = static_cast<uint8_t>(octets[++i]) & 0x7f;
      char32_t cp = 0;
      for (const auto& x : kGsmExtension) {
        if (x.septet == e) cp = x.cp;
      }
      // An unknown extension shows the basic character (TS 23.038 note).
      append_utf8(out, cp != 0 ? cp : (e == kEscape ? U' ' : kGsmBasic[e]));
      continue;
    }
    append_utf8(out, kGsmBasic[s]);
  }
  return out;
}

std::string ucs2_encode(const std::vector<char32_t>& text) {
  std::string out;
  out.reserve(text.size() * 2);
  for (char32_t cp : text) {
    if (cp >= 0x10000) {
      const char32_t v = cp - 0x10000;
      put_utf16be(out, 0xd800 + (v >> 10));
      put_utf16be(out, 0xdc00 + (v & 0x3ff));
    } else {
      put_utf16be(out, cp);
    }
  }
  return out;
}

std::string ucs2_decode(std::string_view octets) {
  std::string out;
  const size_t units = octets.size() / 2;
  const auto unit = [&](size_t i) -> char32_t {
    return (static_cast<uint8_t>(octets[2 * i]) << 8) | static_cast<uint8_t>(octets[2 * i + 1]);
  };
  for (size_t i = 0; i < units; ++i) {
    const char32_t u = unit(i);
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < units && unit(i + 1) >= 0xdc00 &&
        unit(i + 1) <= 0xdfff) {
      append_utf8(out, 0x10000 + ((u - 0xd800) << 10) + (unit(i + 1) - 0xdc00));
      ++i;
    } else if (u >= 0xd800 && u <= 0xdfff) {
      append_utf8(out, 0xfffd);
    } else {
      append_utf8(out, u);
    }
  }
  if (octets.size() % 2 != 0) append_utf8(out, 0xfffd);
  return out;
}

sms_parts split_text(std::string_view utf8) {
  const std::vector<char32_t> cps = utf8_to_code_points(utf8);
  sms_parts result;
  if (auto gsm = gsm_encode(cps)) {
    result.data_coding = kDataCodingGsm;
    if (gsm->size() <= kGsmSingle) {
      result.payloads.push_back(std::move(*gsm));
      return result;
    }
    const std::string& g = *gsm;
    for (size_t i = 0; i < g.size();) {
      size_t n = std::min(kGsmPart, g.size() - i);
      // Never end a part on the escape octet of a two-octet sequence. Every
      // escape is followed by its character, so count escapes from i.
      if (i + n < g.size()) {
        bool last_is_escape = false;
        for (size_t k = i; k < i + n; ++k) {
          if (static_cast<uint8_t>(g[k]) == kEscape) {
            last_is_escape = k + 1 == i + n;
            ++k;  // skip the escaped character
          }
        }
        if (last_is_escape) --n;
      }
      result.payloads.push_back(g.substr(i, n));
      i += n;
    }
    return result;
  }
  result.data_coding = kDataCodingUcs2;
  const std::string u = ucs2_encode(cps);
  const size_t units = u.size() / 2;
  if (units <= kUcs2Single) {
    result.payloads.push_back(u);
    return result;
  }
  for (size_t i = 0; i < units;) {
    size_t n = std::min(kUcs2Part, units - i);
    if (i + n < units) {
      // Do not end a part on a high surrogate: its pair goes to the next part.
      const uint8_t hi = static_cast<uint8_t>(u[2 * (i + n - 1)]);
      if (hi >= 0xd8 && hi <= 0xdb) --n;
    }
    result.payloads.push_back(u.substr(2 * i, 2 * n));
    i += n;
  }
  return result;
}

std::string concat_udh(uint8_t reference, uint8_t total, uint8_t sequence) {
  std::string udh(6, '\0');
  udh[0] = 0x05;  // UDHL
  udh[1] = 0x00;  // IEI: concatenated short messages, 8-bit reference
  udh[2] = 0x03;  // IEDL
  udh[3] = static_cast<char>(reference);
  udh[4] = static_cast<char>(total);
  udh[5] = static_cast<char>(sequence);
  return udh;
}

std::optional<udh_info> parse_udh(std::string_view sm) {
  if (sm.empty()) return std::nullopt;
  const size_t udhl = static_cast<uint8_t>(sm[0]);
  if (1 + udhl > sm.size()) return std::nullopt;
  udh_info info;
  info.header_size = 1 + udhl;
  for (size_t i = 1; i + 2 <= 1 + udhl;) {
    const uint8_t iei = static_cast<uint8_t>(sm[i]);
    const size_t len = static_cast<uint8_t>(sm[i + 1]);
    if (i + 2 + len > 1 + udhl) return std::nullopt;
    const auto octet = [&](size_t k) { return static_cast<uint8_t>(sm[i + 2 + k]); };
    if (iei == 0x00 && len == 3) {
      info.concatenated = true;
      info.reference = octet(0);
      info.total = octet(1);
      info.sequence = octet(2);
    } else if (iei == 0x08 && len == 4) {
      info.concatenated = true;
      info.reference = static_cast<uint16_t>((octet(0) << 8) | octet(1));
      info.total = octet(2);
      info.sequence = octet(3);
    }
    i += 2 + len;
  }
  return info;
}

std::string decode_text(uint8_t data_coding, std::string_view octets) {
  switch (data_coding) {
    case kDataCodingGsm:
      return gsm_decode(octets);
    case kDataCodingUcs2:
      return ucs2_decode(octets);
    case kDataCodingIa5:
    case kDataCodingLatin1:
    default: {
      std::string out;
      for (char c : octets) append_utf8(out, static_cast<uint8_t>(c));
      return out;
    }
  }
}

}  // namespace sms_smpp
