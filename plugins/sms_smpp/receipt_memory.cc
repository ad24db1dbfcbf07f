#include "plugins/sms_smpp/receipt_memory.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace sms_smpp {

namespace {

bool is_decimal(std::string_view s) {
  return !s.empty() && s.size() <= 19 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
bool is_hex(std::string_view s) {
  return !s.empty() && s.size() <= 15 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

}  // namespace

void receipt_memory::add(const std::string& smsc_id, const std::shared_ptr<receipt_group>& group,
                         uint32_t part, clock::time_point now) {
  if (max_entries_ == 0 || smsc_id.empty()) return;
  const uint64_t serial = ++next_serial_;
  auto [it, inserted] = entries_.try_emplace(smsc_id, entry{group, serial, part});
  if (!inserted) {
    // An id reused by the SMSC: the newer message wins.
    if (--it->second.group->live_ids == 0) {
      auto m = by_message_.find(it->second.group->message_id);
      if (m != by_message_.end() && m->second.lock() == it->second.group) by_message_.erase(m);
    }
    it->second = entry{group, serial, part};
  }
  ++group->live_ids;
  by_message_[group->message_id] = group;
  order_.push_back({smsc_id, serial, now});
  while (entries_.size() > max_entries_) pop_oldest();
}

void receipt_memory::pop_oldest() {
  const order_item item = std::move(order_.front());
  order_.pop_front();
  auto it = entries_.find(item.smsc_id);
  if (it == entries_.end() || it->second.serial != item.serial) return;  // replaced later
  std::shared_ptr<receipt_group> group = std::move(it->second.group);
  entries_.erase(it);
  if (--group->live_ids == 0) {
    auto m = by_message_.find(group->message_id);
    if (m != by_message_.end() && m->second.lock() == group) by_message_.erase(m);
  }
}

void receipt_memory::evict_expired(clock::time_point now) {
  while (!order_.empty() && now - order_.front().at > max_age_) pop_oldest();
}

receipt_match receipt_memory::find(std::string_view smsc_id) const {
  const auto lookup = [&](const std::string& id) -> receipt_match {
    auto it = entries_.find(id);
    if (it == entries_.end()) return {};
    return {it->second.group, it->second.part};
  };
  const std::string id(smsc_id);
  if (auto m = lookup(id); m.group) return m;
  char buf[32];
  if (is_decimal(id)) {
    const unsigned long long v = std::strtoull(id.c_str(), nullptr, 10);
    std::snprintf(buf, sizeof buf, "%llx", v);
    if (auto m = lookup(buf); m.group) return m;
    std::snprintf(buf, sizeof buf, "%llX", v);
    if (auto m = lookup(buf); m.group) return m;
  }
  if (is_hex(id)) {
    const unsigned long long v = std::strtoull(id.c_str(), nullptr, 16);
    std::snprintf(buf, sizeof buf, "%llu", v);
    if (auto m = lookup(buf); m.group) return m;
  }
  return {};
}

std::shared_ptr<receipt_group> receipt_memory::find_message(std::string_view message_id) const {
  auto it = by_message_.find(std::string(message_id));
  return it != by_message_.end() ? it->second.lock() : nullptr;
}

}  // namespace sms_smpp
