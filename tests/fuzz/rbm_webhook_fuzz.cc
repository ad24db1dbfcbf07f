// libFuzzer target for rcs_rbm's webhook processing (Pub/Sub push bodies from
// the internet, before and after signature verification). Not part of the
// CMake build. With clang:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iplugins/include \
//     tests/fuzz/rbm_webhook_fuzz.cc plugins/rcs_rbm/webhook.cc plugins/rcs_rbm/json.cc \
//     -lcrypto -o rbm_webhook_fuzz && ./rbm_webhook_fuzz -max_len=4096
// The input is tried twice: as a whole push body with a wrong signature
// (never 200: 401, or 400 when the envelope is malformed), and as the event
// inside a correctly signed envelope (so the event parser is reached).
// Properties: no crash; only 200, 400, 401 or 409 are answered.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "plugins/rcs_rbm/webhook.h"

namespace rbm = relay::rcs_rbm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static rbm::replay_memory replays(1024);
  const std::string secret = "fuzz-secret";
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  // A wrong signature never counts: 401, or 400 when the body is too broken
  // to find the signed data in.
  const auto forged = rbm::process_webhook(secret, "not-a-signature", body, replays);
  if (forged.http_status != 401 && forged.http_status != 400) std::abort();
  // Signed: the input as the event itself, in a correctly signed Pub/Sub
  // envelope, so the event parser behind the signature check is reached.
  const std::string envelope = "{\"message\":{\"data\":\"" + rbm::base64_encode(body) +
                               "\",\"messageId\":\"1\"},\"subscription\":\"s\"}";
  const std::string sig = rbm::base64_encode(rbm::hmac_sha512(secret, body));
  const int status = rbm::process_webhook(secret, sig, envelope, replays).http_status;
  if (status != 200 && status != 400 && status != 401 && status != 409) std::abort();
  return 0;
}
