#pragma once
// SMPP 3.4 PDUs that sms_smpp uses: encoding to bytes and decoding from bytes.
// Pure functions, no I/O; decoding never trusts a length it has not checked
// and returns an error value for anything malformed or truncated.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sms_smpp {

// command_id values (SMPP 3.4 §5.1.2.1).
enum command : uint32_t {
  kGenericNack = 0x80000000u,
  kBindTransceiver = 0x00000009u,
  kBindTransceiverResp = 0x80000009u,
  kSubmitSm = 0x00000004u,
  kSubmitSmResp = 0x80000004u,
  kDeliverSm = 0x00000005u,
  kDeliverSmResp = 0x80000005u,
  kUnbind = 0x00000006u,
  kUnbindResp = 0x80000006u,
  kEnquireLink = 0x00000015u,
  kEnquireLinkResp = 0x80000015u,
};

// command_status values with special meaning to sms_smpp.
enum status : uint32_t {
  kRok = 0x00,
  kRsyserr = 0x08,
  kRinvpaswd = 0x0e,
  kRmsgqful = 0x14,
  kRthrottled = 0x58,
  kRxTAppn = 0x64,
};

// TLV tags (SMPP 3.4 §5.3.2).
enum tlv_tag : uint16_t {
  kTagReceiptedMessageId = 0x001e,
  kTagNetworkErrorCode = 0x0423,
  kTagMessagePayload = 0x0424,
  kTagMessageState = 0x0427,
  kTagScInterfaceVersion = 0x0210,
};

constexpr size_t kHeaderSize = 16;
// Longest PDU sms_smpp accepts from a peer; larger lengths are treated as a
// corrupt stream (a real SMSC sends a few hundred bytes at most).
constexpr uint32_t kMaxPduSize = 64 * 1024;

// "SMPP ESME_RINVDSTADR (0x0b)"; unknown codes as "SMPP status 0x00000400".
std::string status_text(uint32_t command_status);
// "ESME_RINVDSTADR", or "" when the code has no name.
std::string_view status_name(uint32_t command_status);
// Transient per NOTES.md: 0x08, 0x14, 0x58, 0x64.
bool status_is_transient(uint32_t command_status);

struct tlv {
  uint16_t tag = 0;
  std::string value;
};

struct header {
  uint32_t length = 0;
  uint32_t id = 0;
  uint32_t status = 0;
  uint32_t sequence = 0;
};

struct bind_transceiver {
  std::string system_id, password, system_type;
  uint8_t interface_version = 0x34;
  uint8_t addr_ton = 0, addr_npi = 0;
  std::string address_range;
};

// submit_sm and deliver_sm share one body layout (SMPP 3.4 §4.4.1, §4.6.1).
struct short_message_pdu {
  std::string service_type;
  uint8_t source_addr_ton = 0, source_addr_npi = 0;
  std::string source_addr;
  uint8_t dest_addr_ton = 0, dest_addr_npi = 0;
  std::string destination_addr;
  uint8_t esm_class = 0, protocol_id = 0, priority_flag = 0;
  std::string schedule_delivery_time, validity_period;
  uint8_t registered_delivery = 0, replace_if_present_flag = 0, data_coding = 0,
          sm_default_msg_id = 0;
  std::string short_message;  // octets, at most 254
  std::vector<tlv> tlvs;

  const tlv* find(uint16_t tag) const;
};

// A decoded PDU: the header plus the body of the commands sms_smpp reads.
// `message_id` is set for *_resp PDUs that carry one (bind: the SMSC's
// system_id); `sm` for submit_sm / deliver_sm.
struct pdu {
  header head;
  std::string message_id;
  std::optional<short_message_pdu> sm;
  std::optional<bind_transceiver> bind;
  std::vector<tlv> tlvs;  // TLVs of response PDUs
};

struct decode_error {
  std::string message;
};

// Either a value or a decode_error; errors on the data path are values.
template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(decode_error e) : v_(std::move(e)) {}
  explicit operator bool() const { return v_.index() == 0; }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const decode_error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, decode_error> v_;
};

// Encoders append one complete PDU (header included) to `out`.
void encode_bind_transceiver(std::string& out, uint32_t sequence, const bind_transceiver& b);
void encode_short_message(std::string& out, uint32_t command_id, uint32_t sequence,
                          const short_message_pdu& sm);
// Encodes only the body of a submit_sm (no header), so a prepared part can be
// sent later with any sequence number through append_with_header.
std::string encode_short_message_body(const short_message_pdu& sm);
void append_with_header(std::string& out, uint32_t command_id, uint32_t status, uint32_t sequence,
                        std::string_view body);
// A PDU whose body is one C-octet string (submit_sm_resp, deliver_sm_resp,
// bind_transceiver_resp).
void encode_message_id_resp(std::string& out, uint32_t command_id, uint32_t status,
                            uint32_t sequence, std::string_view message_id);
// A PDU without a body (enquire_link, unbind, their responses, generic_nack).
void encode_empty(std::string& out, uint32_t command_id, uint32_t status, uint32_t sequence);

// The command_length of the PDU starting at `bytes`, or nullopt if fewer than
// 4 bytes are there.
std::optional<uint32_t> peek_length(std::string_view bytes);

// The header of a PDU (at least 16 bytes), even when its body is malformed.
std::optional<header> decode_header(std::string_view bytes);

// Decodes exactly one PDU; `bytes` must be the whole PDU (its command_length
// bytes). Unknown commands decode to their header only.
result<pdu> decode(std::string_view bytes);

}  // namespace sms_smpp
