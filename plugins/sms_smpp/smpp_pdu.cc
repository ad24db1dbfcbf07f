#include "plugins/sms_smpp/smpp_pdu.h"

#include <cstdio>

namespace sms_smpp {

namespace {

struct named_status {
  uint32_t code;
  std::string_view name;
};

// SMPP 3.4 §5.1.3.
constexpr named_status kStatusNames[] = {
    {0x00, "ESME_ROK"},
    {0x01, "ESME_RINVMSGLEN"},
    {0x02, "ESME_RINVCMDLEN"},
    {0x03, "ESME_RINVCMDID"},
    {0x04, "ESME_RINVBNDSTS"},
    {0x05, "ESME_RALYBND"},
    {0x06, "ESME_RINVPRTFLG"},
    {0x07, "ESME_RINVREGDLVFLG"},
    {0x08, "ESME_RSYSERR"},
    {0x0a, "ESME_RINVSRCADR"},
    {0x0b, "ESME_RINVDSTADR"},
    {0x0c, "ESME_RINVMSGID"},
    {0x0d, "ESME_RBINDFAIL"},
    {0x0e, "ESME_RINVPASWD"},
    {0x0f, "ESME_RINVSYSID"},
    {0x11, "ESME_RCANCELFAIL"},
    {0x13, "ESME_RREPLACEFAIL"},
    {0x14, "ESME_RMSGQFUL"},
    {0x15, "ESME_RINVSERTYP"},
    {0x33, "ESME_RINVNUMDESTS"},
    {0x34, "ESME_RINVDLNAME"},
    {0x40, "ESME_RINVDESTFLAG"},
    {0x42, "ESME_RINVSUBREP"},
    {0x43, "ESME_RINVESMCLASS"},
    {0x44, "ESME_RCNTSUBDL"},
    {0x45, "ESME_RSUBMITFAIL"},
    {0x48, "ESME_RINVSRCTON"},
    {0x49, "ESME_RINVSRCNPI"},
    {0x50, "ESME_RINVDSTTON"},
    {0x51, "ESME_RINVDSTNPI"},
    {0x53, "ESME_RINVSYSTYP"},
    {0x54, "ESME_RINVREPFLAG"},
    {0x55, "ESME_RINVNUMMSGS"},
    {0x58, "ESME_RTHROTTLED"},
    {0x61, "ESME_RINVSCHED"},
    {0x62, "ESME_RINVEXPIRY"},
    {0x63, "ESME_RINVDFTMSGID"},
    {0x64, "ESME_RX_T_APPN"},
    {0x65, "ESME_RX_P_APPN"},
    {0x66, "ESME_RX_R_APPN"},
    {0x67, "ESME_RQUERYFAIL"},
    {0xc0, "ESME_RINVOPTPARSTREAM"},
    {0xc1, "ESME_ROPTPARNOTALLWD"},
    {0xc2, "ESME_RINVPARLEN"},
    {0xc3, "ESME_RMISSINGOPTPARAM"},
    {0xc4, "ESME_RINVOPTPARAMVAL"},
    {0xfe, "ESME_RDELIVERYFAILURE"},
    {0xff, "ESME_RUNKNOWNERR"},
};

void put32(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}
void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}
void put_cstring(std::string& out, std::string_view s) {
  out.append(s);
  out += '\0';
}

uint32_t get32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 3])};
}

// Reads fields of a PDU body front to back; the first failure sticks.
class reader {
 public:
  explicit reader(std::string_view body) : b_(body) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool at_end() const { return i_ >= b_.size(); }

  uint8_t u8(std::string_view field) {
    if (!need(1, field)) return 0;
    return static_cast<uint8_t>(b_[i_++]);
  }
  uint16_t u16(std::string_view field) {
    if (!need(2, field)) return 0;
    const uint16_t v = static_cast<uint16_t>((static_cast<uint8_t>(b_[i_]) << 8) |
                                             static_cast<uint8_t>(b_[i_ + 1]));
    i_ += 2;
    return v;
  }
  // A C-octet string of at most max_size octets before its NUL.
  std::string cstring(std::string_view field, size_t max_size) {
    if (!ok()) return {};
    const size_t nul = b_.find('\0', i_);
    if (nul == std::string_view::npos) return fail(field, "is not NUL-terminated"), std::string();
    if (nul - i_ > max_size) return fail(field, "is too long"), std::string();
    std::string s(b_.substr(i_, nul - i_));
    i_ = nul + 1;
    return s;
  }
  std::string octets(size_t n, std::string_view field) {
    if (!need(n, field)) return {};
    std::string s(b_.substr(i_, n));
    i_ += n;
    return s;
  }
  // The TLVs that fill the rest of the body.
  std::vector<tlv> tlvs() {
    std::vector<tlv> out;
    while (ok() && !at_end()) {
      tlv t;
      t.tag = u16("TLV tag");
      const uint16_t len = u16("TLV length");
      t.value = octets(len, "TLV value");
      if (ok()) out.push_back(std::move(t));
    }
    return out;
  }

 private:
  bool need(size_t n, std::string_view field) {
    if (!ok()) return false;
    if (b_.size() - i_ < n) {
      fail(field, "is truncated");
      return false;
    }
    return true;
  }
  void fail(std::string_view field, std::string_view what) {
    if (ok()) error_ = std::string(field) + " " + std::string(what);
  }

  std::string_view b_;
  size_t i_ = 0;
  std::string error_;
};

short_message_pdu read_short_message(reader& r) {
  short_message_pdu sm;
  sm.service_type = r.cstring("service_type", 5);
  sm.source_addr_ton = r.u8("source_addr_ton");
  sm.source_addr_npi = r.u8("source_addr_npi");
  sm.source_addr = r.cstring("source_addr", 64);
  sm.dest_addr_ton = r.u8("dest_addr_ton");
  sm.dest_addr_npi = r.u8("dest_addr_npi");
  sm.destination_addr = r.cstring("destination_addr", 64);
  sm.esm_class = r.u8("esm_class");
  sm.protocol_id = r.u8("protocol_id");
  sm.priority_flag = r.u8("priority_flag");
  sm.schedule_delivery_time = r.cstring("schedule_delivery_time", 16);
  sm.validity_period = r.cstring("validity_period", 16);
  sm.registered_delivery = r.u8("registered_delivery");
  sm.replace_if_present_flag = r.u8("replace_if_present_flag");
  sm.data_coding = r.u8("data_coding");
  sm.sm_default_msg_id = r.u8("sm_default_msg_id");
  const uint8_t sm_length = r.u8("sm_length");
  sm.short_message = r.octets(sm_length, "short_message");
  sm.tlvs = r.tlvs();
  return sm;
}

}  // namespace

std::string_view status_name(uint32_t command_status) {
  for (const auto& s : kStatusNames) {
    if (s.code == command_status) return s.name;
  }
  return {};
}

std::string status_text(uint32_t command_status) {
  char buf[64];
  const std::string_view name = status_name(command_status);
  if (name.empty()) {
    std::snprintf(buf, sizeof buf, "SMPP status 0x%08x", command_status);
  } else {
    std::snprintf(buf, sizeof buf, "SMPP %.*s (0x%02x)", static_cast<int>(name.size()), name.data(),
                  command_status);
  }
  return buf;
}

bool status_is_transient(uint32_t s) {
  return s == kRsyserr || s == kRmsgqful || s == kRthrottled || s == kRxTAppn;
}

const tlv* short_message_pdu::find(uint16_t tag) const {
  for (const tlv& t : tlvs) {
    if (t.tag == tag) return &t;
  }
  return nullptr;
}

void append_with_header(std::string& out, uint32_t command_id, uint32_t status, uint32_t sequence,
                        std::string_view body) {
  put32(out, static_cast<uint32_t>(kHeaderSize + body.size()));
  put32(out, command_id);
  put32(out, status);
  put32(out, sequence);
  out.append(body);
}

void encode_bind_transceiver(std::string& out, uint32_t sequence, const bind_transceiver& b) {
  std::string body;
  put_cstring(body, b.system_id);
  put_cstring(body, b.password);
  put_cstring(body, b.system_type);
  body += static_cast<char>(b.interface_version);
  body += static_cast<char>(b.addr_ton);
  body += static_cast<char>(b.addr_npi);
  put_cstring(body, b.address_range);
  append_with_header(out, kBindTransceiver, 0, sequence, body);
}

std::string encode_short_message_body(const short_message_pdu& sm) {
  std::string body;
  body.reserve(64 + sm.short_message.size());
  put_cstring(body, sm.service_type);
  body += static_cast<char>(sm.source_addr_ton);
  body += static_cast<char>(sm.source_addr_npi);
  put_cstring(body, sm.source_addr);
  body += static_cast<char>(sm.dest_addr_ton);
  body += static_cast<char>(sm.dest_addr_npi);
  put_cstring(body, sm.destination_addr);
  body += static_cast<char>(sm.esm_class);
  body += static_cast<char>(sm.protocol_id);
  body += static_cast<char>(sm.priority_flag);
  put_cstring(body, sm.schedule_delivery_time);
  put_cstring(body, sm.validity_period);
  body += static_cast<char>(sm.registered_delivery);
  body += static_cast<char>(sm.replace_if_present_flag);
  body += static_cast<char>(sm.data_coding);
  body += static_cast<char>(sm.sm_default_msg_id);
  // sm_length is one octet: longer text goes in message_payload (a TLV).
  const size_t n = sm.short_message.size() > 254 ? 254 : sm.short_message.size();
  body += static_cast<char>(n);
  body.append(sm.short_message, 0, n);
  for (const tlv& t : sm.tlvs) {
    put16(body, t.tag);
    put16(body, static_cast<uint16_t>(t.value.size()));
    body.append(t.value);
  }
  return body;
}

void encode_short_message(std::string& out, uint32_t command_id, uint32_t sequence,
                          const short_message_pdu& sm) {
  append_with_header(out, command_id, 0, sequence, encode_short_message_body(sm));
}

void encode_message_id_resp(std::string& out, uint32_t command_id, uint32_t status,
                            uint32_t sequence, std::string_view message_id) {
  std::string body;
  put_cstring(body, message_id);
  append_with_header(out, command_id, status, sequence, body);
}

void encode_empty(std::string& out, uint32_t command_id, uint32_t status, uint32_t sequence) {
  append_with_header(out, command_id, status, sequence, {});
}

std::optional<uint32_t> peek_length(std::string_view bytes) {
  if (bytes.size() < 4) return std::nullopt;
  return get32(bytes, 0);
}

std::optional<header> decode_header(std::string_view bytes) {
  if (bytes.size() < kHeaderSize) return std::nullopt;
  return header{get32(bytes, 0), get32(bytes, 4), get32(bytes, 8), get32(bytes, 12)};
}

result<pdu> decode(std::string_view bytes) {
  if (bytes.size() < kHeaderSize) return decode_error{"PDU shorter than its 16-byte header"};
  pdu p;
  p.head.length = get32(bytes, 0);
  p.head.id = get32(bytes, 4);
  p.head.status = get32(bytes, 8);
  p.head.sequence = get32(bytes, 12);
  if (p.head.length < kHeaderSize) return decode_error{"command_length below 16"};
  if (p.head.length != bytes.size()) return decode_error{"command_length does not match the PDU"};
  reader r(bytes.substr(kHeaderSize));
  switch (p.head.id) {
    case kSubmitSmResp:
    case kDeliverSmResp:
    case kBindTransceiverResp:
      // An error response may come without a body (SMPP 3.4 §4.4.2).
      if (!r.at_end()) p.message_id = r.cstring("message_id", 64);
      if (!r.at_end()) p.tlvs = r.tlvs();
      break;
    case kSubmitSm:
    case kDeliverSm:
      p.sm = read_short_message(r);
      break;
    case kBindTransceiver: {
      bind_transceiver b;
      b.system_id = r.cstring("system_id", 15);
      b.password = r.cstring("password", 8);
      b.system_type = r.cstring("system_type", 12);
      b.interface_version = r.u8("interface_version");
      b.addr_ton = r.u8("addr_ton");
      b.addr_npi = r.u8("addr_npi");
      b.address_range = r.cstring("address_range", 40);
      p.bind = std::move(b);
      break;
    }
    default:
      break;  // no body that sms_smpp reads
  }
  if (!r.ok()) return decode_error{r.error()};
  return p;
}

}  // namespace sms_smpp
