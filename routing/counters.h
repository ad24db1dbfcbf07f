#pragma once
// Send counters in the `counters` column family, updated with the uint64 add
// merge operator inside the same write batch as the state they count, so a
// restart neither loses nor doubles them. Keys are dimension tuples joined by
// '\x1f' (ids never contain control characters).

#include <rocksdb/write_batch.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "routing/result.h"
#include "routing/store.h"

namespace relay {

enum class counter_kind : uint8_t {
  accepted,    // jobs accepted              (company)
  duplicate,   // jobs received again        (company)
  dlq,         // jobs dead-lettered         (reason)
  sent,        // messages accepted by a carrier (company, carrier, channel)
  failed,      // messages failed            (company, carrier, channel)
  rejected,    // recipients not sent to     (company, reason)
  delivered,   // carrier delivery reports   (company, carrier, channel)
  opened,      //                            (company, carrier, channel)
  clicked,     //                            (company, carrier, channel)
  registry_applied,   // registry records applied
  registry_rejected,  // malformed registry records skipped
};

std::string_view to_string(counter_kind k);

struct counter_dims {
  std::string_view company;
  std::string_view carrier;
  std::string_view channel;
  std::string_view reason;
};

std::string counter_key(counter_kind kind, const counter_dims& dims);

// Sums counter increments in memory so a write batch carries one merge per
// counter instead of one per event (a stream of single-recipient jobs would
// otherwise add several memtable entries per job).
class counter_batch {
 public:
  void add(counter_kind kind, const counter_dims& dims, uint64_t n);
  // Appends one merge per counter to `batch` and clears the sums.
  void flush_into(rocksdb::WriteBatch& batch, store& db);
  bool empty() const { return sums_.empty(); }

 private:
  std::unordered_map<std::string, uint64_t> sums_;
  std::string key_;  // reused to build keys
};

struct counter_row {
  counter_kind kind;
  std::string company, carrier, channel, reason;
  uint64_t value = 0;
};

// Every counter (relayctl stats).
result<std::vector<counter_row>> read_counters(store& db);

}  // namespace relay
