#include "daemon/event_publisher.h"

#include <spdlog/spdlog.h>

namespace relay {

void event_publisher::publish(event_fields e) {
  if (e.at_unix_ms == 0) e.at_unix_ms = to_unix_ms(clock_.now());
  encode_event(e, buffer_);
  auto r = producer_.produce(topic_, e.job_id, buffer_, {}, std::chrono::milliseconds(2000));
  if (r) {
    ++published_;
    return;
  }
  if (dropped_++ % 10000 == 0) {
    spdlog::error("event to {} dropped ({} so far): {}", topic_, dropped_, r.err().message);
  }
}

}  // namespace relay
