#pragma once
// SMSC delivery receipts (deliver_sm with esm_class & 0x04): the SMSC's id
// for the message and its final state, from the TLVs receipted_message_id and
// message_state (SMPP 3.4 §5.3.2.12, §5.3.2.35), else from the conventional
// text "id:... sub:... dlvrd:... submit date:... done date:... stat:... err:...".

#include <optional>
#include <string>
#include <string_view>

#include "plugins/sms_smpp/smpp_pdu.h"

namespace sms_smpp {

enum class receipt_state {
  enroute,
  delivered,
  expired,
  deleted,
  undeliverable,
  accepted,
  unknown,
  rejected,
};

struct receipt {
  std::string smsc_id;
  receipt_state state = receipt_state::unknown;
  std::string stat;  // the text form, e.g. "UNDELIV" (also set from message_state)
  std::string err;   // "err:" of the text, or the network_error_code TLV
};

// From the text only; nullopt when it has no id or no stat.
std::optional<receipt> parse_receipt_text(std::string_view text);
// TLVs first, then the text; nullopt when neither gives an id and a state.
std::optional<receipt> read_receipt(const short_message_pdu& sm);

// Final states: delivered or one of the failures. enroute/accepted/unknown
// are intermediate and produce no event.
bool receipt_is_final(receipt_state s);
// The event reason for a failed state: "undeliverable", "rejected",
// "expired", "deleted".
std::string_view failure_reason(receipt_state s);
// "SMPP receipt stat:UNDELIV err:001": what the SMSC said, no personal data.
std::string receipt_detail(const receipt& r);

}  // namespace sms_smpp
