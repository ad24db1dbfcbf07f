// libFuzzer target for parse_job, the parser of outside input on relay.jobs.
// Not part of the CMake build. With clang and an existing build tree:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     tests/fuzz/job_fuzz.cc routing/job.cc routing/duration.cc \
//     build/routing/librelay_routing.a -lrocksdb -lsimdjson -lroaring -lfmt -lxxhash \
//     -o job_fuzz && ./job_fuzz -max_len=4096 corpus/
// (job.cc and duration.cc are compiled instrumented; the archive supplies
// the rest, e.g. is_targetable_attribute.)
//
// Besides "no crash, no sanitizer report", it checks the properties callers
// rely on: errors are one line, and a parsed job is internally consistent.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "routing/job.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  relay::job_limits limits;
  limits.max_users = 1000;  // keep pathological inputs fast
  limits.max_content_bytes = 4096;
  auto r = relay::parse_job(bytes, limits);
  if (!r.ok()) {
    const std::string& m = r.err().message;
    if (m.empty() || m.find('\n') != std::string::npos || m.find('\r') != std::string::npos)
      std::abort();
    return 0;
  }
  const relay::job& j = *r;
  if (j.job_id.empty() || j.company_id.empty() || j.order.empty()) std::abort();
  if (j.text.empty() && j.html.empty()) std::abort();
  if (j.content_json.size() > limits.max_content_bytes) std::abort();
  if (j.target == relay::target_kind::users &&
      (j.users.empty() || j.users.size() > limits.max_users))
    std::abort();
  if (j.target == relay::target_kind::where && j.where.empty()) std::abort();
  for (const auto& t : j.where) {
    if (t.form == relay::attribute_test::kind::range && t.min_inclusive && t.max_inclusive &&
        *t.min_inclusive > *t.max_inclusive) {
      std::abort();
    }
  }
  if (j.schedule.not_before && j.schedule.expires && *j.schedule.expires <= *j.schedule.not_before)
    std::abort();
  // Plug-ins read content_json: it must be a JSON object again.
  static simdjson::dom::parser content_parser;
  simdjson::dom::object content;
  if (content_parser.parse(j.content_json).get(content) != simdjson::SUCCESS) std::abort();
  return 0;
}
