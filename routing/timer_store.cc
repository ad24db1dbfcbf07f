#include "routing/timer_store.h"

#include <rocksdb/experimental.h>
#include <rocksdb/iterator.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

namespace relay {
namespace {

constexpr uint64_t kNoUpper = 0;
// A first read after a restart that steps over more tombstones than this
// asks RocksDB to compact the fired range (in its own background threads).
constexpr uint64_t kCompactAfterTombstones = 10000;

uint64_t due_ms(sys_time t) {
  const int64_t ms = to_unix_ms(t);
  return ms < 0 ? 0 : static_cast<uint64_t>(ms);  // before 1970: due at once
}

// Counts what the scan in this scope steps over, through RocksDB's
// thread-local perf context, and restores the caller's perf level.
class perf_scope {
 public:
  perf_scope() : level_(rocksdb::GetPerfLevel()) {
    if (level_ < rocksdb::PerfLevel::kEnableCount)
      rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
    auto* pc = rocksdb::get_perf_context();
    deletes_ = pc->internal_delete_skipped_count;
  }
  ~perf_scope() {
    if (level_ < rocksdb::PerfLevel::kEnableCount) rocksdb::SetPerfLevel(level_);
  }
  uint64_t tombstones() const {
    return rocksdb::get_perf_context()->internal_delete_skipped_count - deletes_;
  }

 private:
  rocksdb::PerfLevel level_;
  uint64_t deletes_;
};

}  // namespace

void timer_key(const timer& t, std::string& out) {
  out.clear();
  put_be64(out, due_ms(t.due));
  put_be64(out, t.job_seq);
  put_be32(out, t.ordinal);
  out.push_back(static_cast<char>(t.kind));
  out.push_back(static_cast<char>(t.attempt));
}

bool parse_timer_key(std::string_view key, timer& out) {
  if (key.size() != kTimerKeyBytes) return false;
  const uint8_t kind = static_cast<uint8_t>(key[20]);
  if (kind < 1 || kind > 4) return false;
  out.due = sys_time{std::chrono::milliseconds(static_cast<int64_t>(get_be64(key.data())))};
  out.job_seq = get_be64(key.data() + 8);
  out.ordinal = get_be32(key.data() + 16);
  out.kind = static_cast<timer_kind>(kind);
  out.attempt = static_cast<uint8_t>(key[21]);
  return true;
}

timer_store::timer_store(store& db) : db_(db) {}

void timer_store::add(rocksdb::WriteBatch& batch, const timer& t) {
  timer_key(t, key_);
  (void)batch.Put(db_.handle(cf::timers), key_, t.payload);
  if (floor_frozen_) return;
  floor_ms_ = std::min(floor_ms_, due_ms(t.due));
  if (unconfirmed_.size() >= kMaxUnconfirmed) {
    floor_frozen_ = true;
    floor_ms_ = 0;
    unconfirmed_.clear();
    unconfirmed_.shrink_to_fit();
    return;
  }
  std::memcpy(unconfirmed_.emplace_back().data(), key_.data(), kTimerKeyBytes);
}

void timer_store::remove(rocksdb::WriteBatch& batch, const timer& t) {
  timer_key(t, key_);
  (void)batch.Delete(db_.handle(cf::timers), key_);
  // Removed before it was seen written: the floor need not wait for it.
  for (size_t i = 0; i < unconfirmed_.size(); ++i) {
    if (std::memcmp(unconfirmed_[i].data(), key_.data(), kTimerKeyBytes) == 0) {
      unconfirmed_[i] = unconfirmed_.back();
      unconfirmed_.pop_back();
      break;
    }
  }
}

uint64_t timer_store::unconfirmed_min_ms() {
  uint64_t min_ms = std::numeric_limits<uint64_t>::max();
  if (unconfirmed_.empty()) return min_ms;
  const size_t n = unconfirmed_.size();
  lookup_keys_.clear();
  for (const auto& k : unconfirmed_) lookup_keys_.emplace_back(k.data(), kTimerKeyBytes);
  lookup_values_.resize(n);
  lookup_status_.resize(n);
  db_.db().MultiGet(rocksdb::ReadOptions(), db_.handle(cf::timers), n, lookup_keys_.data(),
                    lookup_values_.data(), lookup_status_.data());
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (lookup_status_[i].ok()) continue;  // written: an ordinary live key now
    // Missing (not written yet), or unreadable: keep waiting for it.
    min_ms = std::min(min_ms, get_be64(unconfirmed_[i].data()));
    unconfirmed_[kept++] = unconfirmed_[i];
  }
  unconfirmed_.resize(kept);
  for (auto& v : lookup_values_) v.Reset();
  return min_ms;
}

void timer_store::raise_floor(uint64_t first_live_ms) {
  if (floor_frozen_) return;
  floor_ms_ = std::max(floor_ms_, std::min(first_live_ms, unconfirmed_min_ms()));
}

template <class Fn>
result<void> timer_store::scan(uint64_t upper_ms, Fn&& on_entry) {
  perf_scope perf;
  rocksdb::ReadOptions ro;
  lower_.clear();
  put_be64(lower_, floor_ms_);
  rocksdb::Slice lower(lower_);
  ro.iterate_lower_bound = &lower;
  rocksdb::Slice upper;
  if (upper_ms != kNoUpper) {
    upper_.clear();
    put_be64(upper_, upper_ms);
    upper = rocksdb::Slice(upper_);
    ro.iterate_upper_bound = &upper;
  }
  last_cost_ = {};
  std::unique_ptr<rocksdb::Iterator> it(db_.db().NewIterator(ro, db_.handle(cf::timers)));
  bool first = true;  // the first live key at or after the floor raises it
  for (it->Seek(lower); it->Valid(); it->Next()) {
    ++last_cost_.entries;
    const std::string_view key = it->key().ToStringView();
    if (key.size() != kTimerKeyBytes) continue;  // not ours (a newer relay's); never due
    if (first) {
      raise_floor(get_be64(key.data()));
      first = false;
    }
    if (!on_entry(key, it->value())) break;
  }
  if (!it->status().ok()) return make_error(errc::io_error, "timers: " + it->status().ToString());
  if (first) raise_floor(upper_ms == kNoUpper ? std::numeric_limits<uint64_t>::max() : upper_ms);
  last_cost_.tombstones = perf.tombstones();
  if (last_cost_.tombstones > kCompactAfterTombstones && !compaction_suggested_) {
    // The fired range below the floor is all tombstones (and the timers
    // they delete): let compaction drop them so the next restart does not
    // walk them again. Best effort: reads are right either way.
    compaction_suggested_ = true;
    lower_.clear();
    put_be64(lower_, floor_ms_);
    const rocksdb::Slice end(lower_);
    (void)rocksdb::experimental::SuggestCompactRange(&db_.db(), db_.handle(cf::timers), nullptr,
                                                     &end);
  }
  return {};
}

result<std::vector<timer>> timer_store::due(sys_time now, size_t limit,
                                            const std::function<bool(const timer&)>& skip) {
  std::vector<timer> out;
  if (limit == 0) return out;
  const uint64_t now_ms = due_ms(now);
  const uint64_t upper = now_ms == std::numeric_limits<uint64_t>::max() ? now_ms : now_ms + 1;
  timer t;
  auto ok = scan(upper, [&](std::string_view key, const rocksdb::Slice& value) {
    if (!parse_timer_key(key, t)) return true;
    t.payload.assign(value.data(), value.size());
    if (skip && skip(t)) return true;
    out.push_back(std::move(t));
    t = timer{};
    return out.size() < limit;
  });
  if (!ok) return ok.err();
  return out;
}

result<std::optional<sys_time>> timer_store::next_due() {
  std::optional<sys_time> next;
  timer t;
  auto ok = scan(kNoUpper, [&](std::string_view key, const rocksdb::Slice&) {
    if (!parse_timer_key(key, t)) return true;
    next = t.due;
    return false;
  });
  if (!ok) return ok.err();
  return next;
}

result<void> timer_store::for_each(const std::function<void(const timer&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(
      db_.db().NewIterator(rocksdb::ReadOptions(), db_.handle(cf::timers)));
  timer t;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!parse_timer_key(it->key().ToStringView(), t)) continue;
    t.payload.assign(it->value().data(), it->value().size());
    fn(t);
  }
  if (!it->status().ok()) return make_error(errc::io_error, "timers: " + it->status().ToString());
  return {};
}

}  // namespace relay
