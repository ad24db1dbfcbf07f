#include "daemon/delivery_events.h"

#include <spdlog/spdlog.h>

#include <unordered_map>

namespace relay {
namespace {

// How long an event may wait for its send record (a receipt can overtake the
// submit response it belongs to).
constexpr std::chrono::seconds kUnmatchedGrace{30};
// Parked events kept at most; beyond, the oldest are dropped as unmatched.
constexpr size_t kMaxParked = 100000;

std::string_view type_name(relay_event_type t) {
  switch (t) {
    case RELAY_EVENT_DELIVERED: return "delivered";
    case RELAY_EVENT_OPENED: return "opened";
    case RELAY_EVENT_CLICKED: return "clicked";
    case RELAY_EVENT_FAILED: return "failed";
    case RELAY_EVENT_INBOUND: return "inbound";
  }
  return "unknown";
}

}  // namespace

delivery_events::delivery_events(store& db, event_publisher& events, engagement& eng, const clock& clk)
    : db_(db), events_(events), eng_(eng), clock_(clk) {}

void delivery_events::record_send(rocksdb::WriteBatch& batch, std::string_view message_id,
                                  const send_record& record, std::string_view carrier_ref, bool first) {
  if (first) {
    send_key(message_id, key_);
    encode_send(record, value_);
    batch.Put(db_.handle(cf::sends), key_, value_);
  }
  if (!carrier_ref.empty()) {
    send_ref_key(record.carrier_id, carrier_ref, key_);
    encode_send_ref(record.sent_at_ms, message_id, value_);
    batch.Put(db_.handle(cf::sends), key_, value_);
  }
}

void delivery_events::add(std::string_view carrier_id, channel ch, const plugin_event& e) {
  ++stats_.received;
  queue_.push_back({e.type, std::string(carrier_id), ch, e.message_id, e.carrier_ref, e.reason, e.detail,
                    e.location, e.at_unix_ms, {}});
}

void delivery_events::add_tracking(relay_event_type type, std::string_view message_id, std::string_view location) {
  ++stats_.received;
  queue_.push_back({type, {}, channel::sms, std::string(message_id), {}, {}, {}, std::string(location), 0, {}});
}

std::string delivery_events::resolve_id(const queued& e) {
  if (!e.message_id.empty() || e.carrier_ref.empty() || e.carrier_id.empty()) return e.message_id;
  send_ref_key(e.carrier_id, e.carrier_ref, key_);
  if (!db_.get(cf::sends, key_, &value_)) return {};
  return std::string(send_ref_message_id(value_));
}

void delivery_events::apply(const queued& e, const std::string& id, send_record& r) {
  // Which `seen` bits this event sets; a click implies an open (the reader
  // saw the message even when images were blocked).
  uint8_t bits = 0;
  switch (e.type) {
    case RELAY_EVENT_DELIVERED: bits = seen_delivered; break;
    case RELAY_EVENT_OPENED: bits = seen_opened; break;
    case RELAY_EVENT_CLICKED: bits = seen_clicked | seen_opened; break;
    case RELAY_EVENT_FAILED: bits = seen_failed; break;
    default: return;
  }
  const uint8_t fresh = bits & ~r.seen;
  if (fresh == 0) {
    ++stats_.repeated;
    return;
  }
  r.seen |= fresh;
  ++stats_.counted;
  const std::string_view carrier = e.carrier_id.empty() ? std::string_view(r.carrier_id) : e.carrier_id;
  const std::string_view ch = to_string(r.ch);
  const counter_dims dims{r.company_id, carrier, ch, {}};
  struct kind_of_bit {
    send_seen bit;
    counter_kind kind;
    engagement_count count;
    relay_event_type type;
  };
  static constexpr kind_of_bit kKinds[] = {
      {seen_delivered, counter_kind::delivered, engagement_count::delivered, RELAY_EVENT_DELIVERED},
      {seen_opened, counter_kind::opened, engagement_count::opened, RELAY_EVENT_OPENED},
      {seen_clicked, counter_kind::clicked, engagement_count::clicked, RELAY_EVENT_CLICKED},
      {seen_failed, counter_kind::failed, engagement_count::failed, RELAY_EVENT_FAILED},
  };
  const sys_time now = clock_.now();
  for (const auto& k : kKinds) {
    if (!(fresh & k.bit)) continue;
    counters_.add(k.kind, dims, 1);
    eng_.count_event(r, k.count, now, e.location);
    if (k.bit == seen_opened && on_first_open_) on_first_open_(r);
    events_.publish({.type = type_name(k.type), .job_id = r.job_id, .message_id = id,
                     .company_id = r.company_id, .user_id = r.user_id, .carrier_id = carrier,
                     .channel = ch, .reason = k.type == RELAY_EVENT_FAILED ? std::string_view(e.reason) : "",
                     .detail = k.type == RELAY_EVENT_FAILED ? std::string_view(e.detail) : "",
                     .at_unix_ms = e.at_unix_ms});
  }
}

result<void> delivery_events::process() {
  if (queue_.empty() && parked_.empty()) return {};
  const sys_time now = clock_.now();
  // Parked events go first, in arrival order.
  while (!parked_.empty()) {
    queue_.push_front(std::move(parked_.back()));
    parked_.pop_back();
  }
  struct touched_record {
    std::string value;  // the stored bytes `r` views into (map nodes do not move)
    send_record r;
    uint8_t seen_before = 0;
  };
  std::unordered_map<std::string, touched_record> touched;  // records read in this call
  for (queued& e : queue_) {
    if (e.type == RELAY_EVENT_INBOUND) {
      // The conversation work (DESIGN §8) takes these; until then they are
      // published without the user's address or text (personal data).
      ++stats_.inbound;
      events_.publish({.type = "inbound", .carrier_id = e.carrier_id, .channel = to_string(e.ch),
                       .at_unix_ms = e.at_unix_ms});
      continue;
    }
    const std::string id = resolve_id(e);
    auto it = id.empty() ? touched.end() : touched.find(id);
    if (!id.empty() && it == touched.end()) {
      send_key(id, key_);
      if (db_.get(cf::sends, key_, &value_)) {
        auto slot = touched.emplace(id, touched_record{std::move(value_), {}, 0}).first;
        auto r = decode_send(slot->second.value);
        if (!r) {
          spdlog::error("send log: message {}: {}", id, r.err().message);
          touched.erase(slot);
          ++stats_.unmatched;
          continue;
        }
        slot->second.r = *r;
        slot->second.seen_before = r->seen;
        it = slot;
      }
    }
    if (it == touched.end()) {
      if (e.give_up == sys_time{}) e.give_up = now + kUnmatchedGrace;
      if (now < e.give_up && parked_.size() < kMaxParked) {
        parked_.push_back(std::move(e));
      } else {
        ++stats_.unmatched;
        spdlog::debug("{} event for an unknown message (id '{}', carrier ref '{}') not counted",
                      type_name(e.type), e.message_id, e.carrier_ref);
      }
      continue;
    }
    apply(e, id, it->second.r);
  }
  queue_.clear();
  for (const auto& [id, t] : touched) {
    if (t.r.seen == t.seen_before) continue;
    send_key(id, key_);
    encode_send(t.r, value_);
    batch_.Put(db_.handle(cf::sends), key_, value_);
  }
  counters_.flush_into(batch_, db_);
  eng_.flush_into(batch_);
  if (batch_.Count() == 0) return {};
  auto w = db_.write(batch_);
  batch_.Clear();
  return w;
}

}  // namespace relay
