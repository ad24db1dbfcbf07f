#include "routing/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <vector>

#include "routing/counter_merge.h"
#include "routing/postings.h"
#include "routing/send_log.h"

namespace relay {

std::string_view cf_name(cf c) {
  switch (c) {
    case cf::registrations:
      return "registrations";
    case cf::user_companies:
      return "user_companies";
    case cf::profiles:
      return "profiles";
    case cf::user_carriers:
      return "user_carriers";
    case cf::directory:
      return "directory";
    case cf::postings:
      return "postings";
    case cf::jobs:
      return "jobs";
    case cf::counters:
      return "counters";
    case cf::meta:
      return "meta";
    case cf::sends:
      return "sends";
    case cf::outbox:
      return "outbox";
    case cf::engagement:
      return "engagement";
    case cf::user_stats:
      return "user_stats";
    case cf::timers:
      return "timers";
    case cf::count_:
      break;
  }
  return "?";
}

namespace {

error rocks_error(std::string_view what, const rocksdb::Status& s) {
  const errc code = s.IsNotFound()                                   ? errc::not_found
                    : s.IsCorruption()                               ? errc::corruption
                    : s.IsBusy() || s.IsTryAgain() || s.IsTimedOut() ? errc::busy
                    : s.IsNotSupported()                             ? errc::unsupported
                                                                     : errc::io_error;
  return make_error(code, std::string(what) + ": " + s.ToString());
}

rocksdb::ColumnFamilyOptions cf_options(std::string_view name,
                                        const std::shared_ptr<rocksdb::Cache>& cache,
                                        const rocksdb::CompactionFilter* send_retention) {
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  // Point lookups (profiles, registrations, jobs) skip SST files that cannot
  // hold the key; scans (directory, postings prefixes) are unaffected.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  if (name == cf_name(cf::postings)) {
    o.merge_operator = make_posting_merge_operator();
    o.compaction_filter = posting_compaction_filter();
  }
  if (name == cf_name(cf::counters)) o.merge_operator = make_counter_merge_operator();
  if (name == cf_name(cf::engagement)) o.merge_operator = make_counter_array_merge_operator();
  if (name == cf_name(cf::sends)) {
    o.compaction_filter = send_retention;
    // Message ids are hashes: inserted in random order, they cost a skip-list
    // search each (a quarter of a broadcast's CPU). Hashed buckets on the id's
    // first bytes make inserts cheap; the send log is only read by point lookups.
    o.prefix_extractor.reset(rocksdb::NewCappedPrefixTransform(9));
    o.memtable_factory.reset(rocksdb::NewHashSkipListRepFactory());
  }
  return o;
}

}  // namespace

result<std::unique_ptr<store>> store::open(const std::string& path, const store_options& options) {
  if (options.secondary && options.secondary_dir.empty()) {
    return make_error(errc::invalid_argument, "store: a secondary needs secondary_dir");
  }
  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = !options.secondary;
  db_options.create_missing_column_families = !options.secondary;
  // The hash memtable of the send log needs it; relay writes from one thread anyway.
  db_options.allow_concurrent_memtable_write = false;
  if (options.secondary) db_options.max_open_files = -1;  // required by OpenAsSecondary

  // Every column family on disk must be opened, including ones a newer relay
  // created that this build does not know (they get default options).
  std::vector<std::string> names;
  {
    std::vector<std::string> existing;
    auto s = rocksdb::DB::ListColumnFamilies(db_options, path, &existing);
    if (s.ok()) {
      names = std::move(existing);
    } else if (options.secondary) {
      return rocks_error("store: open secondary of " + path, s);
    }
  }
  if (std::find(names.begin(), names.end(), rocksdb::kDefaultColumnFamilyName) == names.end()) {
    names.emplace_back(rocksdb::kDefaultColumnFamilyName);
  }
  for (int i = 0; i < kColumnFamilyCount; ++i) {
    const std::string n(cf_name(static_cast<cf>(i)));
    if (std::find(names.begin(), names.end(), n) == names.end()) {
      if (options.secondary) {
        return make_error(errc::not_found, "store: column family " + n + " missing in " + path +
                                               " (primary not yet started by this version?)");
      }
      names.push_back(n);
    }
  }
  auto send_retention = std::make_unique<send_log_compaction_filter>(options.send_retention);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.reserve(names.size());
  for (const auto& n : names) descriptors.emplace_back(n, cf_options(n, cache, send_retention.get()));

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = options.secondary
                          ? rocksdb::DB::OpenAsSecondary(db_options, path, options.secondary_dir,
                                                         descriptors, &handles, &raw)
                          : rocksdb::DB::Open(db_options, path, descriptors, &handles, &raw);
  if (!s.ok()) return rocks_error("store: open " + path, s);

  std::unique_ptr<store> st(new store());
  st->db_.reset(raw);
  st->send_retention_ = std::move(send_retention);
  st->secondary_ = options.secondary;
  st->write_options_.sync = options.sync_writes;
  st->write_options_.disableWAL = false;
  for (size_t i = 0; i < handles.size(); ++i) {
    bool known = false;
    for (int c = 0; c < kColumnFamilyCount; ++c) {
      if (names[i] == cf_name(static_cast<cf>(c))) {
        st->handles_[c] = handles[i];
        known = true;
        break;
      }
    }
    if (!known) st->other_handles_.push_back(handles[i]);
  }
  return st;
}

store::~store() { close(); }

void store::close() {
  if (!db_) return;
  if (!secondary_) {
    // Flushing makes the next open skip WAL replay; failure is not fatal
    // because the WAL still holds everything.
    std::vector<rocksdb::ColumnFamilyHandle*> all;
    for (auto* h : handles_) {
      if (h) all.push_back(h);
    }
    rocksdb::FlushOptions fo;
    fo.wait = true;
    (void)db_->Flush(fo, all);
  }
  for (auto*& h : handles_) {
    if (h) (void)db_->DestroyColumnFamilyHandle(h);
    h = nullptr;
  }
  for (auto* h : other_handles_) (void)db_->DestroyColumnFamilyHandle(h);
  other_handles_.clear();
  (void)db_->Close();
  db_.reset();
}

result<void> store::write(rocksdb::WriteBatch& batch) {
  if (!db_) return make_error(errc::io_error, "store: write after close");
  if (secondary_) return make_error(errc::unsupported, "store: a secondary is read-only");
  auto s = db_->Write(write_options_, &batch);
  if (!s.ok()) return rocks_error("store: write", s);
  return {};
}

result<void> store::get(cf c, std::string_view key, std::string* value) const {
  if (!db_) return make_error(errc::io_error, "store: get after close");
  auto s =
      db_->Get(rocksdb::ReadOptions(), handle(c), rocksdb::Slice(key.data(), key.size()), value);
  if (s.IsNotFound()) return make_error(errc::not_found, std::string(cf_name(c)) + ": not found");
  if (!s.ok()) return rocks_error(std::string("store: get from ") + std::string(cf_name(c)), s);
  return {};
}

result<void> store::catch_up() {
  if (!db_) return make_error(errc::io_error, "store: catch_up after close");
  if (!secondary_) return make_error(errc::unsupported, "store: catch_up on a primary");
  auto s = db_->TryCatchUpWithPrimary();
  if (!s.ok()) return rocks_error("store: catch up with primary", s);
  return {};
}

void put_be32(std::string& out, uint32_t v) {
  const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out.append(b, 4);
}

uint32_t get_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t(u[0]) << 24) | (uint32_t(u[1]) << 16) | (uint32_t(u[2]) << 8) | uint32_t(u[3]);
}

void put_be64(std::string& out, uint64_t v) {
  put_be32(out, uint32_t(v >> 32));
  put_be32(out, uint32_t(v));
}

uint64_t get_be64(const char* p) { return (uint64_t(get_be32(p)) << 32) | get_be32(p + 4); }

}  // namespace relay
