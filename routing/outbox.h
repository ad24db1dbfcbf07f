#pragma once
// Per-connector outboxes (`outbox` column family): recipients whose carrier
// connector had no room when their chunk was planned. A slow, throttling or
// down carrier's recipients wait here, on disk, while the rest of the job —
// and every other carrier — goes on; the fan-out drains each outbox as its
// connector frees up. Entries survive restarts; they are deleted in the same
// batch as the outcome of the message they stand for.
//
// Key:   carrier_id \0 channel-byte \0 be64(job accept seq) be32(user ordinal)
// Value: job_id
// Keys of one (job, recipient, connector) are always the same, so recording a
// recipient twice (a resumed chunk after a crash) keeps one entry.

#include <cstdint>
#include <string>
#include <string_view>
#include <functional>
#include <vector>

#include "routing/channel.h"
#include "routing/result.h"
#include "routing/store.h"

namespace relay {

std::string outbox_prefix(std::string_view carrier_id, channel ch);
std::string outbox_key(std::string_view prefix, uint64_t job_seq, uint32_t ordinal);

struct outbox_entry {
  uint64_t job_seq = 0;
  uint32_t ordinal = 0;
};
// Parses the part of `key` after its connector prefix; false when malformed.
bool parse_outbox_key(std::string_view key, size_t prefix_size, outbox_entry& out);

struct outbox_depth {
  std::string carrier_id;
  channel ch = channel::sms;
  uint64_t entries = 0;
  std::string last_key;  // the greatest key (to tell entries recorded before a restart)
};

// Entries per connector, and per job accept sequence through `per_job`
// (called once per entry). For start-up and relayctl.
result<std::vector<outbox_depth>> scan_outboxes(store& db,
                                                const std::function<void(uint64_t job_seq)>& per_job = {});

}  // namespace relay
