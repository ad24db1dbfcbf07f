#pragma once
// The registry replica: applies registry records to the RocksDB column
// families and answers questions about one user.
//
// Every user gets a dense 32-bit ordinal on first sight (never reused); the
// ordinal is what posting bitmaps and the fan-out directory are keyed by.

#include <rocksdb/write_batch.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "routing/clock.h"
#include "routing/registry_record.h"
#include "routing/result.h"
#include "routing/store.h"

namespace relay {

// Stages records and turns them into one WriteBatch. Records staged into the
// same writer see each other's effects (a register after an upsert of the
// same user in one batch works). A record that fails to stage leaves nothing
// behind. Not thread-safe, and one writer per database: it hands out user
// ordinals from a counter it caches, so two writers would hand out the same
// ordinal. A user's state is read from the DB on its first touch after a
// flush, so the caller writes each flushed batch before staging more.
class registry_writer {
 public:
  registry_writer(store& db, const clock& clk);
  ~registry_writer();

  // Stages one record. On error nothing of it is staged.
  result<void> stage(const registry_record& record);

  // Appends every staged change to `batch` and clears the stage. The caller
  // writes the batch (adding its own entries, e.g. Kafka offsets) atomically.
  void flush_into(rocksdb::WriteBatch& batch);

  size_t staged_records() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

struct registration {
  std::string company_id;
  std::string service_id;
};

struct user_view {
  std::string user_id;
  uint32_t ordinal = 0;
  profile user_profile;
  std::vector<carrier_link> carriers;
  std::vector<registration> registrations;
};

// One user's profile, carriers and registrations (relayctl registry get).
// errc::not_found for unknown (or deleted) users.
result<user_view> get_user(store& db, std::string_view user_id);

// The `profiles` value starts with the user's ordinal (4 bytes BE); the rest is
// the registry's own profile encoding. For callers that look users up in bulk
// (MultiGet on cf::profiles) and only need the ordinal, e.g. targeting `to.users`.
result<uint32_t> decode_profile_ordinal(std::string_view profiles_value);
// One user's ordinal; errc::not_found for unknown (or deleted) users.
result<uint32_t> lookup_ordinal(store& db, std::string_view user_id);

// Applies a whole JSONL stream (relayctl registry import --offline, bench):
// large write batches; malformed lines are reported through `on_error` and
// skipped. Returns the number of records applied.
struct import_report {
  size_t applied = 0;
  size_t rejected = 0;
};
result<import_report> import_jsonl(store& db, const clock& clk, std::string_view path,
                                   void (*on_error)(size_t line, const error& e, void* ctx),
                                   void* ctx, size_t batch_records = 20000);

}  // namespace relay
