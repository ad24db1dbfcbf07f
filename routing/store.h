#pragma once
// relay's one RocksDB database and its column families (DESIGN §4).
// Opened by relayd for writing; relayctl opens it as a secondary (read-only,
// catching up with the primary) so it works while relayd runs.

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "routing/result.h"

namespace relay {

enum class cf : uint8_t {
  registrations,   // company \0 service \0 user      -> registered_at (8 bytes BE ms) + source
  user_companies,  // user \0 company \0 service      -> ""
  profiles,        // user                           -> ordinal (4 bytes BE) + profile (see registry.h)
  user_carriers,   // user \0 carrier                -> carrier link (see registry.h)
  directory,       // ordinal (4 bytes BE)           -> routing record for fan-out (see directory.h)
  postings,        // posting key (see postings.h)   -> Roaring bitmap of ordinals (merge operator)
  jobs,            // job_id \0 kind                 -> job record, target set, chunks (see job_store.h)
  counters,        // counter key                    -> uint64 LE (counter_merge.h merge operator)
  meta,            // name                           -> value (next ordinal, registry offsets, ...)
  sends,           // message id / carrier ref        -> send record (see send_log.h)
  outbox,          // carrier \0 channel \0 seq       -> a recipient waiting for its connector (see outbox.h)
  engagement,      // time bucket + dimensions        -> counts array (engagement_cube.h; array-add merge operator)
  user_stats,      // ordinal (4 bytes BE)           -> one user's engagement record (user_engagement.h)
  timers,          // due time + what                 -> a durable timer (timer_store.h)
  count_
};
inline constexpr int kColumnFamilyCount = static_cast<int>(cf::count_);

std::string_view cf_name(cf c);

struct store_options {
  bool secondary = false;         // open read-only as a secondary of a running primary
  std::string secondary_dir;      // secondary's own info-log dir (required when secondary)
  bool sync_writes = false;       // fsync every write (survives machine crash, slower)
  size_t block_cache_bytes = 512u << 20;
  std::chrono::milliseconds send_retention{std::chrono::hours(24 * 30)};  // send log records kept this long
};

class store {
 public:
  // Opens (creating when missing, unless secondary) the database at `path`.
  static result<std::unique_ptr<store>> open(const std::string& path, const store_options& options);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  rocksdb::DB& db() { return *db_; }
  rocksdb::ColumnFamilyHandle* handle(cf c) const { return handles_[static_cast<int>(c)]; }

  // Writes atomically with the WAL on (fsync when sync_writes).
  result<void> write(rocksdb::WriteBatch& batch);

  result<void> get(cf c, std::string_view key, std::string* value) const;  // errc::not_found when absent

  // Secondary only: replays what the primary wrote since the last call.
  result<void> catch_up();

  // Flushes memtables (primary) and closes; idempotent, called by the destructor too.
  // After close() every other call returns an error. Every rocksdb::Iterator
  // and snapshot taken from db() must be released first (RocksDB asserts).
  void close();

 private:
  store() = default;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* handles_[kColumnFamilyCount] = {};
  // Column families found on disk that this build does not know (a newer
  // relay made them); RocksDB requires opening them, we only close them.
  std::vector<rocksdb::ColumnFamilyHandle*> other_handles_;
  std::unique_ptr<rocksdb::CompactionFilter> send_retention_;  // used by the sends CF; outlives the DB
  rocksdb::WriteOptions write_options_;
  bool secondary_ = false;
};

// Big-endian encodings keep numeric keys in numeric order.
void put_be32(std::string& out, uint32_t v);
uint32_t get_be32(const char* p);
void put_be64(std::string& out, uint64_t v);
uint64_t get_be64(const char* p);

}  // namespace relay
