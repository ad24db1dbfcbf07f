// timers_bench [--timers N] [--dir DIR]
// Prints one JSON object (bench/timers/run stores it with the run's metadata).
//
//   reference_put          raw rocksdb Put of the same key/value sizes, batches of 1000
//   insert                 timer_store::add, batches of 1000, next_due() after each write (the core
//   loop arms its wake-up) insert_no_reads        the same without next_due() between batches
//   pending_latency_us     due(now) and next_due() with N pending, none due
//   fire                   due(now, 1000) + remove in a batch, until none is left, in due order
//   fire_naive             the same reads without the store's floor (Seek from the start each
//   time), first 100,000 only after_fired_latency_us next_due() after everything fired: this store,
//   and a new one (a restart) first and second call

#include <fmt/format.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "routing/store.h"
#include "routing/timer_store.h"

using namespace relay;
using steady = std::chrono::steady_clock;

namespace {

double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "timers_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<store> open(const std::string& path) {
  store_options o;
  o.block_cache_bytes = 256u << 20;
  auto s = store::open(path, o);
  if (!s) die(s.err().message);
  return std::move(*s);
}

struct latency {
  double median_us = 0, p99_us = 0, max_us = 0;
};

template <class Fn>
latency measure(int reps, Fn&& fn) {
  std::vector<double> us;
  us.reserve(reps);
  for (int i = 0; i < reps; ++i) {
    const auto t = steady::now();
    fn();
    us.push_back(seconds_since(t) * 1e6);
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)], us.back()};
}

std::string json(const latency& l) {
  return fmt::format(R"({{"median":{:.2f},"p99":{:.2f},"max":{:.2f}}})", l.median_us, l.p99_us,
                     l.max_us);
}

const sys_time t0 = sys_time{std::chrono::milliseconds(1795000000000)};
constexpr size_t kBatch = 1000;
// The fan-out's payload for a waiting send is a few bytes (the job's channel
// step and a carrier hint); 16 is generous.
const std::string kPayload(16, 'p');

std::vector<timer> make_timers(uint32_t n) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> due_ms(0, 24LL * 3600 * 1000 - 1);
  std::vector<timer> ts(n);
  for (uint32_t i = 0; i < n; ++i) {
    ts[i].due = t0 + std::chrono::milliseconds(due_ms(rng));
    ts[i].job_seq = 1 + i % 50;
    ts[i].ordinal = i;
    ts[i].kind = timer_kind::send;
    ts[i].payload = kPayload;
  }
  return ts;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t n = 1'000'000;
  std::string dir = "/tmp/timers_bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--timers")
      n = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    else if (a == "--dir")
      dir = argv[i + 1];
    else
      die("unknown argument " + a);
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto timers = make_timers(n);

  // Reference: raw Puts of the same keys and values.
  double ref_rate = 0;
  {
    auto db = open(dir + "/reference");
    std::string key;
    const auto t = steady::now();
    for (size_t i = 0; i < n;) {
      rocksdb::WriteBatch batch;
      for (size_t j = 0; j < kBatch && i < n; ++j, ++i) {
        timer_key(timers[i], key);
        batch.Put(db->handle(cf::timers), key, timers[i].payload);
      }
      if (!db->write(batch)) die("reference write");
    }
    ref_rate = n / seconds_since(t);
  }

  double insert_no_reads_rate = 0;
  {
    auto db = open(dir + "/no_reads");
    timer_store ts(*db);
    const auto t = steady::now();
    for (size_t i = 0; i < n;) {
      rocksdb::WriteBatch batch;
      for (size_t j = 0; j < kBatch && i < n; ++j, ++i) ts.add(batch, timers[i]);
      if (!db->write(batch)) die("write");
    }
    insert_no_reads_rate = n / seconds_since(t);
  }

  auto db = open(dir + "/timers");
  auto ts = std::make_unique<timer_store>(*db);
  double insert_rate = 0;
  {
    const auto t = steady::now();
    for (size_t i = 0; i < n;) {
      rocksdb::WriteBatch batch;
      for (size_t j = 0; j < kBatch && i < n; ++j, ++i) ts->add(batch, timers[i]);
      if (!db->write(batch)) die("write");
      if (!ts->next_due()) die("next_due");
    }
    insert_rate = n / seconds_since(t);
  }

  // Nothing due yet: the hour before the first.
  const sys_time before = t0 - std::chrono::hours(1);
  const latency due_pending = measure(1000, [&] {
    auto r = ts->due(before, kBatch);
    if (!r || !r->empty()) die("due before");
  });
  const latency next_pending = measure(1000, [&] {
    auto r = ts->next_due();
    if (!r || !r->has_value()) die("next_due");
  });

  // Naive reads on a copy of the first 100,000 (what the floor saves).
  double naive_rate = 0;
  const uint32_t naive_n = std::min<uint32_t>(n, 100'000);
  {
    auto ndb = open(dir + "/naive");
    std::string key;
    for (uint32_t i = 0; i < naive_n;) {
      rocksdb::WriteBatch batch;
      for (size_t j = 0; j < kBatch && i < naive_n; ++j, ++i) {
        timer_key(timers[i], key);
        batch.Put(ndb->handle(cf::timers), key, timers[i].payload);
      }
      if (!ndb->write(batch)) die("write");
    }
    const auto t = steady::now();
    size_t fired = 0;
    for (;;) {
      rocksdb::WriteBatch batch;
      std::unique_ptr<rocksdb::Iterator> it(
          ndb->db().NewIterator(rocksdb::ReadOptions(), ndb->handle(cf::timers)));
      size_t k = 0;
      for (it->SeekToFirst(); it->Valid() && k < kBatch; it->Next(), ++k)
        batch.Delete(ndb->handle(cf::timers), it->key());
      it.reset();
      if (k == 0) break;
      fired += k;
      if (!ndb->write(batch)) die("write");
    }
    naive_rate = fired / seconds_since(t);
  }

  // Fire everything in due order.
  size_t fired = 0;
  double fire_rate = 0;
  uint64_t max_tombstones_per_read = 0;
  {
    const sys_time end = t0 + std::chrono::hours(25);
    const auto t = steady::now();
    for (;;) {
      auto due = ts->due(end, kBatch);
      if (!due) die("due");
      max_tombstones_per_read =
          std::max(max_tombstones_per_read, ts->last_scan_cost_for_test().tombstones);
      if (due->empty()) break;
      rocksdb::WriteBatch batch;
      for (const auto& tm : *due) ts->remove(batch, tm);
      if (!db->write(batch)) die("write");
      fired += due->size();
    }
    fire_rate = fired / seconds_since(t);
  }
  if (fired != n) die(fmt::format("fired {} of {}", fired, n));

  const latency next_after = measure(1000, [&] {
    auto r = ts->next_due();
    if (!r || r->has_value()) die("next_due after");
  });
  // A restart: a new store has no floor and walks the tombstones once.
  ts = std::make_unique<timer_store>(*db);
  const latency restart_first = measure(1, [&] { (void)ts->next_due(); });
  const uint64_t restart_tombstones = ts->last_scan_cost_for_test().tombstones;
  const latency restart_next = measure(1000, [&] { (void)ts->next_due(); });
  // What the same walk costs once RocksDB has compacted the fired range away.
  if (auto s = db->db().CompactRange(rocksdb::CompactRangeOptions(), db->handle(cf::timers),
                                     nullptr, nullptr);
      !s.ok())
    die(s.ToString());
  ts = std::make_unique<timer_store>(*db);
  const latency compacted_first = measure(1, [&] { (void)ts->next_due(); });
  const uint64_t compacted_tombstones = ts->last_scan_cost_for_test().tombstones;

  std::printf(
      R"({"timers":%u,"batch":%zu,"payload_bytes":%zu,"key_bytes":%zu,)"
      R"("reference_put_rate":%.0f,"insert_rate":%.0f,"insert_no_reads_rate":%.0f,)"
      R"("due_pending_us":%s,"next_due_pending_us":%s,)"
      R"("fire_rate":%.0f,"fire_max_tombstones_per_read":%llu,"fire_naive_rate":%.0f,"fire_naive_timers":%u,)"
      R"("next_due_after_fired_us":%s,"restart_first_next_due_us":%s,"restart_tombstones_walked":%llu,)"
      R"("restart_next_due_us":%s,"compacted_first_next_due_us":%s,"compacted_tombstones_walked":%llu})"
      "\n",
      n, kBatch, kPayload.size(), kTimerKeyBytes, ref_rate, insert_rate, insert_no_reads_rate,
      json(due_pending).c_str(), json(next_pending).c_str(), fire_rate,
      static_cast<unsigned long long>(max_tombstones_per_read), naive_rate, naive_n,
      json(next_after).c_str(), json(restart_first).c_str(),
      static_cast<unsigned long long>(restart_tombstones), json(restart_next).c_str(),
      json(compacted_first).c_str(), static_cast<unsigned long long>(compacted_tombstones));
  ts.reset();
  db.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
