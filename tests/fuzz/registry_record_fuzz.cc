// libFuzzer target for the registry record parser (outside input from
// relay.registry and JSONL imports). Built with clang only, e.g.:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -I. \
//     tests/fuzz/registry_record_fuzz.cc routing/registry_record.cc -lsimdjson -o
//     registry_record_fuzz
//   ./registry_record_fuzz -max_len=4096 -dict=tests/fuzz/registry_record.dict
//
// Besides "no crash", it checks the parser's promises: errors are one line,
// name a field, and never echo personal data; accepted records satisfy the
// limits the registry relies on.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "routing/directory.h"
#include "routing/registry_record.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool clean_id(std::string_view s, bool allow_empty) {
  return (allow_empty || !s.empty()) && s.size() <= 255 && s.find('\0') == std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto r = relay::parse_registry_record(input);
  if (!r.ok()) {
    const std::string& m = r.err().message;
    check(!m.empty());
    check(m.find('\n') == std::string::npos);
    check(m.find(": ") != std::string::npos);
    check(r.err().code == relay::errc::invalid_argument);
    return 0;
  }
  check(clean_id(r->user_id, false));
  if (r->kind == relay::registry_record::op::register_user ||
      r->kind == relay::registry_record::op::unregister_user) {
    check(clean_id(r->company_id, false));
    check(clean_id(r->service_id, true));
  }
  if (r->user_profile.birth_year) {
    check(*r->user_profile.birth_year >= 1900 && *r->user_profile.birth_year <= 2100);
  }
  if (r->carriers) {
    check(r->carriers->size() <= static_cast<size_t>(relay::kMaxCarriersPerUser));
    int primaries = 0;
    for (const auto& c : *r->carriers) {
      check(clean_id(c.carrier_id, false));
      check(c.channels != 0 && (c.channels & ~relay::kAllChannels) == 0);
      primaries += c.primary;
    }
    check(r->carriers->empty() || primaries == 1);
  }
  return 0;
}
