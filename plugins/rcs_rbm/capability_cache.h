#pragma once
// Remembers, per phone number, whether phones.getCapabilities said the user
// can receive RBM messages: for `ttl`, at most `capacity` numbers (the oldest
// entry goes first). I/O thread only; time is passed in (tests drive it).

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace relay::rcs_rbm {

class capability_cache {
 public:
  using clock = std::chrono::steady_clock;

  capability_cache(std::chrono::milliseconds ttl, size_t capacity)
      : ttl_(ttl), capacity_(capacity) {}

  // The remembered answer, or nullopt when unknown or expired.
  std::optional<bool> find(const std::string& msisdn, clock::time_point now) {
    auto it = entries_.find(msisdn);
    if (it == entries_.end()) return std::nullopt;
    if (now >= it->second.expires) {
      entries_.erase(it);
      return std::nullopt;
    }
    return it->second.capable;
  }

  void put(const std::string& msisdn, bool capable, clock::time_point now) {
    if (ttl_.count() <= 0 || capacity_ == 0) return;
    auto [it, inserted] = entries_.insert_or_assign(msisdn, entry{capable, now + ttl_, ++serial_});
    order_.push_back({msisdn, it->second.serial});
    // Drop queue items whose entry was replaced or erased since, then the
    // oldest live entries beyond capacity.
    while (!order_.empty() && (order_.size() > 2 * capacity_ || entries_.size() > capacity_)) {
      auto& [key, serial] = order_.front();
      auto e = entries_.find(key);
      if (e != entries_.end() && e->second.serial == serial) entries_.erase(e);
      order_.pop_front();
    }
  }

  size_t size() const { return entries_.size(); }

 private:
  struct entry {
    bool capable;
    clock::time_point expires;
    uint64_t serial;
  };
  const std::chrono::milliseconds ttl_;
  const size_t capacity_;
  std::unordered_map<std::string, entry> entries_;
  std::deque<std::pair<std::string, uint64_t>> order_;
  uint64_t serial_ = 0;
};

}  // namespace relay::rcs_rbm
