#pragma once
// Which relay message an SMSC message id belongs to, so delivery receipts can
// name relay's message_id. In memory only, bounded by entries and by age:
// after a restart (or for an evicted id) events carry only carrier_ref and
// relay matches that to the message it recorded.
//
// @locality: the connector's I/O thread only (not thread-safe).

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sms_smpp {

// One relay message: all its parts share one group.
struct receipt_group {
  std::string message_id;
  std::string first_smsc_id;  // the message's carrier_ref
  uint32_t parts = 1;
  uint32_t delivered = 0;        // parts with a DELIVRD receipt
  bool accepted = false;         // every part was accepted (submit reported ACCEPTED)
  bool abandoned = false;        // a part failed at submit: receipts of the others mean nothing
  bool finished = false;         // the DELIVERED or FAILED event went out
  uint32_t live_ids = 0;         // ids of this group still in the memory
  std::vector<bool> part_final;  // per part: a final receipt was counted (SMSCs repeat receipts)
  // A DELIVERED/FAILED event decided before the submit was reported ACCEPTED;
  // sent right after it (never before the outcome it follows).
  bool event_pending = false;
  bool pending_failed = false;
  std::string pending_reason, pending_detail, pending_carrier_ref;
};

// What an SMSC id maps to.
struct receipt_match {
  std::shared_ptr<receipt_group> group;
  uint32_t part = 0;
};

class receipt_memory {
 public:
  using clock = std::chrono::steady_clock;

  receipt_memory(size_t max_entries, std::chrono::milliseconds max_age)
      : max_entries_(max_entries), max_age_(max_age) {}

  // Remembers that smsc_id belongs to `group`; evicts the oldest entries
  // beyond max_entries.
  void add(const std::string& smsc_id, const std::shared_ptr<receipt_group>& group, uint32_t part,
           clock::time_point now);
  // The group of smsc_id. Also tries the id's other base: some SMSCs answer
  // submit_sm in hex and write receipts in decimal, or the other way round.
  receipt_match find(std::string_view smsc_id) const;
  // The group of a message this memory still knows (for duplicate checks).
  std::shared_ptr<receipt_group> find_message(std::string_view message_id) const;
  // Drops entries older than max_age.
  void evict_expired(clock::time_point now);

  size_t size() const { return entries_.size(); }

 private:
  struct entry {
    std::shared_ptr<receipt_group> group;
    uint64_t serial;
    uint32_t part;
  };
  void pop_oldest();

  size_t max_entries_;
  std::chrono::milliseconds max_age_;
  uint64_t next_serial_ = 0;
  std::unordered_map<std::string, entry> entries_;
  std::unordered_map<std::string, std::weak_ptr<receipt_group>> by_message_;
  struct order_item {
    std::string smsc_id;
    uint64_t serial;
    clock::time_point at;
  };
  std::deque<order_item> order_;  // oldest first
};

}  // namespace sms_smpp
