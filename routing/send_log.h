#pragma once
// The send log (`sends` column family): one record per message a carrier
// accepted, written in the fan-out's batch with the outcome. Later events
// about the message (delivery receipts, reads, opens, clicks) find through it
// the job, company, user and channel they belong to, and its `seen` bits make
// each kind count once per message however often a carrier repeats a webhook
// or a receipt, or a reader reloads a pixel.
//
// Keys: 'm' + message_id                 -> send_record
//       'r' + carrier_id + '\0' + ref    -> sent_at (8 bytes BE) + message_id
//       (the carrier's own reference, for receipts that carry only that)
// Records older than the retention are dropped at compaction (see
// send_log_compaction_filter); events for them no longer count.

#include <rocksdb/compaction_filter.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "routing/channel.h"
#include "routing/result.h"

namespace relay {

enum send_seen : uint8_t {
  seen_delivered = 1,
  seen_opened = 2,
  seen_clicked = 4,
  seen_failed = 8,
};

inline constexpr uint32_t kUnknownOrdinal = UINT32_MAX;  // records written before version 2

// Views: into the caller's strings when encoding, into the value when decoded.
struct send_record {
  std::string_view job_id;
  std::string_view company_id;
  std::string_view user_id;
  std::string_view carrier_id;  // the carrier that accepted it first
  channel ch = channel::sms;
  int64_t sent_at_ms = 0;
  uint8_t seen = 0;  // send_seen bits
  // Since version 2 (records written before read as unknown / zero):
  uint32_t ordinal = kUnknownOrdinal;  // the user's ordinal (per-user engagement)
  uint8_t step = 0;         // message_id step: 0 first, 1.. resends, kFollowUpStep
  // The dimensions it is counted under (engagement_dims.h), fixed at the send,
  // so its later events count in the same place as the send.
  std::string_view gender, region, occupation;
  uint8_t age_band = 0;
  uint8_t local_hour = 0xff;
  uint8_t weekday = 0xff;
  // Why this channel (fan-out's choice note; relayctl explain reads it).
  std::string_view choice;
};

// Each writes into `out` (cleared first), reusing its capacity.
void send_key(std::string_view message_id, std::string& out);
void send_ref_key(std::string_view carrier_id, std::string_view carrier_ref, std::string& out);
void encode_send(const send_record& r, std::string& out);
void encode_send_ref(int64_t sent_at_ms, std::string_view message_id, std::string& out);

// The returned views point into `value`.
result<send_record> decode_send(std::string_view value);
// The message id of a ref value; empty when malformed.
std::string_view send_ref_message_id(std::string_view value);

// Drops records and refs whose sent_at is older than `retention` before the
// wall-clock time of the compaction. Owned by the caller; must outlive the DB.
class send_log_compaction_filter final : public rocksdb::CompactionFilter {
 public:
  explicit send_log_compaction_filter(std::chrono::milliseconds retention) : retention_(retention) {}
  bool Filter(int level, const rocksdb::Slice& key, const rocksdb::Slice& value, std::string* new_value,
              bool* value_changed) const override;
  const char* Name() const override { return "relay.send_log_retention"; }

 private:
  std::chrono::milliseconds retention_;
};

}  // namespace relay
