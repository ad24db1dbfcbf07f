#include "plugins/sms_smpp/concat_assembler.h"

namespace sms_smpp {

std::optional<std::string> concat_assembler::add(const std::string& key, uint8_t total,
                                                 uint8_t sequence, std::string octets,
                                                 clock::time_point now) {
  if (total <= 1) return octets;
  if (sequence == 0 || sequence > total) return std::nullopt;  // malformed: dropped
  auto it = pending_.find(key);
  if (it != pending_.end() && it->second.parts.size() != total) {
    pending_.erase(it);  // the same reference reused for another message
    it = pending_.end();
  }
  if (it == pending_.end()) {
    if (pending_.size() >= max_pending_) {
      // Make room: drop the oldest incomplete message.
      auto oldest = pending_.begin();
      for (auto i = pending_.begin(); i != pending_.end(); ++i) {
        if (i->second.first_seen < oldest->second.first_seen) oldest = i;
      }
      pending_.erase(oldest);
    }
    it = pending_.emplace(key, message{}).first;
    it->second.parts.resize(total);
    it->second.first_seen = now;
  }
  message& m = it->second;
  auto& slot = m.parts[sequence - 1];
  if (!slot) ++m.have;
  slot = std::move(octets);  // a repeated part replaces the earlier copy
  if (m.have < total) return std::nullopt;
  std::string whole;
  for (auto& p : m.parts) whole += *p;
  pending_.erase(it);
  return whole;
}

void concat_assembler::evict_expired(clock::time_point now) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    it = now - it->second.first_seen > max_age_ ? pending_.erase(it) : std::next(it);
  }
}

}  // namespace sms_smpp
