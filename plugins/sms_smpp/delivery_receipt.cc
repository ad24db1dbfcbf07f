#include "plugins/sms_smpp/delivery_receipt.h"

#include <cctype>
#include <cstdio>

namespace sms_smpp {

namespace {

struct stat_word {
  std::string_view word;
  receipt_state state;
};
// The conventional stat words (SMPP 3.4 Appendix B) and a few spellings seen
// in the wild.
constexpr stat_word kStatWords[] = {
    {"DELIVRD", receipt_state::delivered},     {"DELIVERED", receipt_state::delivered},
    {"EXPIRED", receipt_state::expired},       {"DELETED", receipt_state::deleted},
    {"UNDELIV", receipt_state::undeliverable}, {"UNDELIVERABLE", receipt_state::undeliverable},
    {"ACCEPTD", receipt_state::accepted},      {"ACCEPTED", receipt_state::accepted},
    {"UNKNOWN", receipt_state::unknown},       {"REJECTD", receipt_state::rejected},
    {"REJECTED", receipt_state::rejected},     {"ENROUTE", receipt_state::enroute},
};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The value after `key` (e.g. "stat:") where key starts the text or follows
// whitespace; runs to the next whitespace. nullopt if absent.
std::optional<std::string_view> field(std::string_view text, std::string_view lower_text,
                                      std::string_view key) {
  for (size_t at = lower_text.find(key); at != std::string_view::npos;
       at = lower_text.find(key, at + 1)) {
    if (at != 0 && !std::isspace(static_cast<unsigned char>(lower_text[at - 1]))) continue;
    size_t start = at + key.size();
    while (start < text.size() && text[start] == ' ') ++start;  // "id: 123" is seen too
    size_t end = start;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    return text.substr(start, end - start);
  }
  return std::nullopt;
}

std::optional<receipt_state> state_from_word(std::string_view word) {
  const std::string w = upper(word);
  for (const auto& s : kStatWords) {
    if (s.word == w) return s.state;
  }
  return std::nullopt;
}

std::string_view word_for(receipt_state s) {
  switch (s) {
    case receipt_state::enroute:
      return "ENROUTE";
    case receipt_state::delivered:
      return "DELIVRD";
    case receipt_state::expired:
      return "EXPIRED";
    case receipt_state::deleted:
      return "DELETED";
    case receipt_state::undeliverable:
      return "UNDELIV";
    case receipt_state::accepted:
      return "ACCEPTD";
    case receipt_state::unknown:
      return "UNKNOWN";
    case receipt_state::rejected:
      return "REJECTD";
  }
  return "UNKNOWN";
}

// message_state TLV values (SMPP 3.4 §5.2.28).
std::optional<receipt_state> state_from_tlv(uint8_t v) {
  switch (v) {
    case 1:
      return receipt_state::enroute;
    case 2:
      return receipt_state::delivered;
    case 3:
      return receipt_state::expired;
    case 4:
      return receipt_state::deleted;
    case 5:
      return receipt_state::undeliverable;
    case 6:
      return receipt_state::accepted;
    case 7:
      return receipt_state::unknown;
    case 8:
      return receipt_state::rejected;
    default:
      return std::nullopt;
  }
}

std::string strip_nuls(std::string_view s) {
  while (!s.empty() && s.back() == '\0') s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

std::optional<receipt> parse_receipt_text(std::string_view text) {
  const std::string lower = [&] {
    std::string l(text);
    for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return l;
  }();
  const auto id = field(text, lower, "id:");
  const auto stat = field(text, lower, "stat:");
  if (!id || id->empty() || !stat) return std::nullopt;
  const auto state = state_from_word(*stat);
  if (!state) return std::nullopt;
  receipt r;
  r.smsc_id = std::string(*id);
  r.state = *state;
  r.stat = upper(*stat);
  if (const auto err = field(text, lower, "err:")) r.err = std::string(*err);
  return r;
}

std::optional<receipt> read_receipt(const short_message_pdu& sm) {
  std::optional<receipt> from_text;
  std::string_view text = sm.short_message;
  if (text.empty()) {
    if (const tlv* payload = sm.find(kTagMessagePayload)) text = payload->value;
  }
  from_text = parse_receipt_text(text);

  const tlv* id_tlv = sm.find(kTagReceiptedMessageId);
  const tlv* state_tlv = sm.find(kTagMessageState);
  receipt r;
  if (id_tlv != nullptr) r.smsc_id = strip_nuls(id_tlv->value);
  std::optional<receipt_state> state;
  if (state_tlv != nullptr && state_tlv->value.size() == 1)
    state = state_from_tlv(static_cast<uint8_t>(state_tlv->value[0]));
  if (r.smsc_id.empty() && from_text) r.smsc_id = from_text->smsc_id;
  if (!state && from_text) state = from_text->state;
  if (r.smsc_id.empty() || !state) return std::nullopt;
  r.state = *state;
  r.stat =
      from_text && from_text->state == *state ? from_text->stat : std::string(word_for(*state));
  if (from_text) r.err = from_text->err;
  if (const tlv* net = sm.find(kTagNetworkErrorCode); net != nullptr && net->value.size() == 3) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%u:%u", static_cast<uint8_t>(net->value[0]),
                  (static_cast<uint8_t>(net->value[1]) << 8) | static_cast<uint8_t>(net->value[2]));
    if (r.err.empty()) r.err = buf;
  }
  return r;
}

bool receipt_is_final(receipt_state s) {
  return s != receipt_state::enroute && s != receipt_state::accepted && s != receipt_state::unknown;
}

std::string_view failure_reason(receipt_state s) {
  switch (s) {
    case receipt_state::expired:
      return "expired";
    case receipt_state::deleted:
      return "deleted";
    case receipt_state::undeliverable:
      return "undeliverable";
    case receipt_state::rejected:
      return "rejected";
    default:
      return "unknown";
  }
}

std::string receipt_detail(const receipt& r) {
  std::string d = "SMPP receipt stat:" + r.stat;
  if (!r.err.empty()) d += " err:" + r.err;
  return d;
}

}  // namespace sms_smpp
