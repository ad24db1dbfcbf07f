#pragma once
// The fan-out directory: one compact routing record per user ordinal in the
// `directory` column family, holding exactly what a send needs (user id,
// addresses, carriers). Fan-out reads it in ordinal order in batches, so a
// broadcast costs one sequential scan, not one random lookup per recipient.

#include <rocksdb/iterator.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "routing/channel.h"
#include "routing/registry_record.h"
#include "routing/result.h"
#include "routing/store.h"

namespace relay {

inline constexpr int kMaxCarriersPerUser = 8;

// Views into the reader's buffers; valid until the reader's next read.
struct recipient_carrier {
  std::string_view carrier_id;
  bool primary = false;
  uint8_t channels = 0;
  // Per-channel address after applying overrides; empty = none.
  std::string_view address[kChannelCount];
};

struct recipient {
  uint32_t ordinal = 0;
  std::string_view user_id;
  std::string_view tz;
  // What counting and channel choice segment by; empty / 0 when unknown.
  std::string_view gender, region, occupation;
  uint16_t birth_year = 0;
  uint8_t carrier_count = 0;
  recipient_carrier carriers[kMaxCarriersPerUser];
};

// Encodes the directory value for one user (used by registry_writer).
std::string encode_directory_entry(std::string_view user_id, const profile& p,
                                   const std::vector<carrier_link>& carriers);

// Decodes a directory value into `out`, whose string_views point into `value`.
// Bounds-checked: malformed bytes are errc::corruption, never a read past `value`.
// Addresses are filled only for channels in the carrier's mask.
result<void> decode_directory_entry(std::string_view value, uint32_t ordinal, recipient& out);

class directory_reader {
 public:
  explicit directory_reader(store& db);
  ~directory_reader();

  // Reads the entries of `ordinals` (ascending). Ordinals without an entry
  // (deleted users) are skipped. The returned views stay valid until the next
  // call. Uses one iterator over the batch, so ascending dense sets cost
  // sequential reads; each batch sees one consistent view of the directory.
  // Out-of-order ordinals still work but each costs a Seek. Holds no RocksDB
  // resources between calls.
  result<std::span<const recipient>> read(std::span<const uint32_t> ordinals);

 private:
  // Where one found entry's value sits in arena_; views are made from these
  // only after the whole batch is copied, because appending may move arena_.
  struct slot {
    uint32_t ordinal;
    uint32_t offset;
    uint32_t size;
  };

  // All owned by the reader and reused from call to call (no per-recipient
  // allocation once they have grown to the batch size). Not thread-safe: one
  // reader per fan-out thread.
  store& db_;
  std::unique_ptr<rocksdb::Iterator> it_;  // lives only inside read()
  std::vector<recipient> out_;
  std::vector<slot> slots_;
  std::string arena_;  // backing bytes of the views
};

}  // namespace relay
