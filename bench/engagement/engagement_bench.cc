// engagement_bench: events counted per second by the engagement cube
// (issue 4: "delivered/opened/clicked mixed, 1M users, 24 hour buckets: goal
// >= 500,000 events/s on this machine"), on one thread, into a store on disk
// opened as relayd opens it (store::open, WAL on, no fsync per write).
//
// Synthetic population: --users users with a company (4), carrier (3),
// gender (f, m, x, unknown), birth year (-> age band), region (50),
// occupation (20) and time zone (4 offsets -> local hour and weekday). Each
// user has --messages-per-user messages sent in one of 24 hourly buckets
// on one of 3 channels.
//
//   sends    every message counted as sent (timed, reported)
//   events   --events delivered/opened/clicked (60/30/10 %) of random
//            messages, counted in the bucket of the message's send: the
//            figure the goal is about
//
// Modes, each into its own fresh store, on the same pre-generated stream:
//   cube     engagement_batch::add per event; flush_into + store::write every
//            --flush-every events (what relayd's core thread does)
//   merge    raw RocksDB: one WriteBatch::Merge of an 8-byte counter per event
//            (key: the same dimensions as text), written every --flush-every
//   put      raw RocksDB: one WriteBatch::Put of 8 bytes per event, likewise
//
// Also counts heap allocations made by add() (a counting operator new):
// over the random stream (new rows allocate their node and key), and over a
// stream that revisits the same rows (warmed: should be zero).
//
//   engagement_bench [--users N] [--messages-per-user N] [--events N]
//                    [--flush-every N] [--dir DIR] [--results FILE]

#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "routing/counter_merge.h"
#include "routing/engagement_cube.h"
#include "routing/store.h"

namespace {

// Per thread: RocksDB's background threads allocate too.
thread_local uint64_t g_allocations = 0;

}  // namespace

void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// GCC cannot see that the replaced operator new above is malloc.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

using steady = std::chrono::steady_clock;
using relay::engagement_count;

struct options {
  uint32_t users = 1'000'000;
  uint32_t messages_per_user = 2;
  uint64_t events = 5'000'000;
  uint64_t flush_every = 50'000;
  std::string dir;
  std::string results;
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

const char* const kCompanies[] = {"acme", "globex", "initech", "umbrella"};
const char* const kCarriers[] = {"carrier-a", "carrier-b", "carrier-c"};
const char* const kGenders[] = {"f", "m", "x", ""};
const int kTzOffsets[] = {9, 0, -5, 1};  // hours

struct user {
  uint8_t company, carrier, gender, age_band, region, occupation, tz;
};

struct message_ref {  // one event of the stream
  uint32_t user;
  uint8_t slot;  // which of the user's messages
  uint8_t what;  // engagement_count
};

struct population {
  std::vector<user> users;
  std::vector<std::string> regions, occupations;
  relay::sys_time day0;

  // The send hour (0..23) and channel of a user's message: fixed per message.
  static uint32_t message_hash(uint32_t u, uint8_t slot) {
    uint64_t s = (uint64_t{u} << 8) | slot;
    return static_cast<uint32_t>(splitmix(s));
  }
  uint8_t send_hour(uint32_t u, uint8_t slot) const { return message_hash(u, slot) % 24; }
  relay::channel channel_of(uint32_t u, uint8_t slot) const {
    return static_cast<relay::channel>(message_hash(u, slot) / 24 % 3);
  }

  relay::sys_time sent_at(uint32_t u, uint8_t slot) const {
    return day0 + std::chrono::hours(send_hour(u, slot)) +
           std::chrono::minutes(message_hash(u, slot) % 60);
  }

  relay::engagement_dims dims(uint32_t u, uint8_t slot) const {
    const user& x = users[u];
    relay::engagement_dims d;
    d.company = kCompanies[x.company];
    d.carrier = kCarriers[x.carrier];
    d.ch = channel_of(u, slot);
    d.gender = kGenders[x.gender];
    d.age_band = x.age_band;
    d.region = regions[x.region];
    d.occupation = occupations[x.occupation];
    const int local = send_hour(u, slot) + kTzOffsets[x.tz];
    d.local_hour = static_cast<uint8_t>((local + 24) % 24);
    d.weekday = static_cast<uint8_t>(local < 0 ? 0 : local >= 24 ? 2 : 1);  // day0 is a Monday
    return d;
  }
};

population make_population(uint32_t n) {
  population p;
  p.day0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 23};
  for (int i = 0; i < 50; ++i) p.regions.push_back("region-" + std::to_string(i));
  for (int i = 0; i < 20; ++i) p.occupations.push_back("occupation-" + std::to_string(i));
  p.users.resize(n);
  uint64_t s = 42;
  for (auto& u : p.users) {
    const uint64_t r = splitmix(s);
    u.company = r % 4;
    u.carrier = r / 4 % 3;
    u.gender = r / 12 % 4;
    u.age_band = relay::age_band_of(static_cast<int>(1940 + r / 48 % 75), 2026);
    u.region = r / 3600 % 50;
    u.occupation = r / 180000 % 20;
    u.tz = r / 3600000 % 4;
  }
  return p;
}

std::vector<message_ref> make_events(const population& p, const options& o) {
  std::vector<message_ref> out(o.events);
  uint64_t s = 7;
  for (auto& e : out) {
    const uint64_t r = splitmix(s);
    e.user = static_cast<uint32_t>(r % p.users.size());
    e.slot = static_cast<uint8_t>(r / p.users.size() % o.messages_per_user);
    const unsigned pick = (r >> 40) % 100;
    e.what = static_cast<uint8_t>(pick < 60   ? engagement_count::delivered
                                  : pick < 90 ? engagement_count::opened
                                              : engagement_count::clicked);
  }
  return out;
}

double thread_cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct phase_result {
  uint64_t events = 0;
  double seconds = 0, write_seconds = 0, store_write_seconds = 0;
  double cpu_seconds = 0;  // of the counting thread (RocksDB's background threads not included)
  double cpu_rate() const { return cpu_seconds > 0 ? events / cpu_seconds : 0; }
  uint64_t flushes = 0, rows_written = 0, add_allocations = 0;
  double rate() const { return seconds > 0 ? events / seconds : 0; }
  nlohmann::json json() const {
    return {{"events", events},
            {"seconds", seconds},
            {"events_per_second", rate()},
            {"thread_cpu_seconds", cpu_seconds},
            {"events_per_thread_cpu_second", cpu_rate()},
            {"flushes", flushes},
            {"rows_written", rows_written},
            {"rows_per_flush", flushes ? double(rows_written) / flushes : 0.0},
            {"seconds_in_flush_and_write", write_seconds},
            {"seconds_in_store_write", store_write_seconds},
            {"add_allocations_per_event", events ? double(add_allocations) / events : 0.0}};
  }
};

std::unique_ptr<relay::store> open_fresh(const std::string& path) {
  std::filesystem::remove_all(path);
  auto s = relay::store::open(path, relay::store_options{});
  if (!s) {
    std::fprintf(stderr, "open %s: %s\n", path.c_str(), s.err().message.c_str());
    std::exit(1);
  }
  return std::move(*s);
}

void must_write(relay::store& db, rocksdb::WriteBatch& wb) {
  auto r = db.write(wb);
  if (!r) {
    std::fprintf(stderr, "write: %s\n", r.err().message.c_str());
    std::exit(1);
  }
  wb.Clear();
}

// Counts `n` items through the cube: item(i, batch) adds one; every
// flush_every items (and at the end) the batch is flushed and written.
template <class Item>
phase_result run_cube(relay::store& db, uint64_t n, uint64_t flush_every, Item&& item) {
  relay::engagement_batch batch;
  rocksdb::WriteBatch wb;
  phase_result r;
  r.events = n;
  const auto flush = [&] {
    const auto t = steady::now();
    r.rows_written += batch.rows();
    batch.flush_into(wb, db);
    const auto w = steady::now();
    must_write(db, wb);
    ++r.flushes;
    const auto end = steady::now();
    r.write_seconds += std::chrono::duration<double>(end - t).count();
    r.store_write_seconds += std::chrono::duration<double>(end - w).count();
  };
  const double cpu_start = thread_cpu_now();
  const auto start = steady::now();
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t before = g_allocations;
    item(i, batch);
    r.add_allocations += g_allocations - before;
    if ((i + 1) % flush_every == 0) flush();
  }
  if (!batch.empty()) flush();
  r.seconds = std::chrono::duration<double>(steady::now() - start).count();
  r.cpu_seconds = thread_cpu_now() - cpu_start;
  return r;
}

// The reference: one raw RocksDB write per event of an 8-byte value, keyed
// by the event's dimensions as text (built into a reused buffer).
phase_result run_raw(relay::store& db, const population& p, const std::vector<message_ref>& events,
                     uint64_t flush_every, bool merge) {
  rocksdb::WriteBatch wb;
  phase_result r;
  r.events = events.size();
  std::string key;
  const std::string one = relay::encode_counter(1);
  auto* h = db.handle(relay::cf::counters);
  const double cpu_start = thread_cpu_now();
  const auto start = steady::now();
  for (uint64_t i = 0; i < events.size(); ++i) {
    const message_ref& e = events[i];
    const relay::engagement_dims d = p.dims(e.user, e.slot);
    key.clear();
    for (std::string_view part : {d.company, d.carrier, d.gender, d.region, d.occupation}) {
      key.append(part);
      key.push_back('\x1f');
    }
    key.push_back(static_cast<char>(d.ch));
    key.push_back(static_cast<char>(d.age_band));
    key.push_back(static_cast<char>(d.local_hour));
    key.push_back(static_cast<char>(d.weekday));
    key.push_back(static_cast<char>(p.send_hour(e.user, e.slot)));
    key.push_back(static_cast<char>(e.what));
    if (merge) {
      wb.Merge(h, key, one);
    } else {
      wb.Put(h, key, one);
    }
    if ((i + 1) % flush_every == 0) {
      const auto t = steady::now();
      must_write(db, wb);
      ++r.flushes;
      r.rows_written += flush_every;
      r.write_seconds += std::chrono::duration<double>(steady::now() - t).count();
      r.store_write_seconds = r.write_seconds;
    }
  }
  if (wb.Count() > 0) {
    r.rows_written += wb.Count();
    must_write(db, wb);
    ++r.flushes;
  }
  r.seconds = std::chrono::duration<double>(steady::now() - start).count();
  r.cpu_seconds = thread_cpu_now() - cpu_start;
  return r;
}

// RocksDB's own account of the time writes were delayed or stopped (its
// "Cumulative stall" line): waiting for memtable flushes and compactions that
// the background threads had no CPU to do.
std::string write_stall(relay::store& db) {
  std::string stats;
  db.db().GetProperty("rocksdb.dbstats", &stats);
  const size_t at = stats.find("Cumulative stall:");
  if (at == std::string::npos) return "";
  return stats.substr(at, stats.find('\n', at) - at);
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

double loadavg() {
  double l = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = 0;
    std::fclose(f);
  }
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--users")
      o.users = static_cast<uint32_t>(std::stoul(v));
    else if (a == "--messages-per-user")
      o.messages_per_user = static_cast<uint32_t>(std::stoul(v));
    else if (a == "--events")
      o.events = std::stoull(v);
    else if (a == "--flush-every")
      o.flush_every = std::stoull(v);
    else if (a == "--dir")
      o.dir = v;
    else if (a == "--results")
      o.results = v;
    else {
      std::fprintf(stderr, "engagement_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (o.users == 0 || o.messages_per_user == 0 || o.messages_per_user > 255 || o.flush_every == 0) {
    std::fprintf(stderr, "engagement_bench: bad options\n");
    return 2;
  }
  if (o.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    o.dir =
        std::string(tmp && *tmp ? tmp : "/tmp") + "/engagement_bench." + std::to_string(getpid());
  }
  std::filesystem::create_directories(o.dir);
  const double load_start = loadavg();

  const population p = make_population(o.users);
  const std::vector<message_ref> events = make_events(p, o);
  const uint64_t sends = uint64_t{o.users} * o.messages_per_user;

  // cube: sends, then the event stream, into one store.
  phase_result cube_sends, cube_events, warm;
  uint64_t stored_rows = 0;
  std::string cube_stall;
  {
    auto db = open_fresh(o.dir + "/cube");
    cube_sends = run_cube(*db, sends, o.flush_every, [&](uint64_t i, relay::engagement_batch& b) {
      const auto u = static_cast<uint32_t>(i / o.messages_per_user);
      const auto slot = static_cast<uint8_t>(i % o.messages_per_user);
      b.add(p.dims(u, slot), p.sent_at(u, slot), engagement_count::sent);
    });
    cube_events =
        run_cube(*db, events.size(), o.flush_every, [&](uint64_t i, relay::engagement_batch& b) {
          const message_ref& e = events[i];
          b.add(p.dims(e.user, e.slot), p.sent_at(e.user, e.slot),
                static_cast<engagement_count>(e.what));
        });
    // Warmed: the same 1,000 users' messages over and over (rows recur in
    // every interval, so add() finds them in the map).
    warm = run_cube(*db, 1'000'000, o.flush_every, [&](uint64_t i, relay::engagement_batch& b) {
      const message_ref& e = events[i % 1000];
      b.add(p.dims(e.user, e.slot), p.sent_at(e.user, e.slot),
            static_cast<engagement_count>(e.what));
    });
    std::unique_ptr<rocksdb::Iterator> it(
        db->db().NewIterator(rocksdb::ReadOptions(), db->handle(relay::cf::engagement)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++stored_rows;
    it.reset();
    cube_stall = write_stall(*db);
  }
  phase_result raw_merge, raw_put;
  {
    auto db = open_fresh(o.dir + "/merge");
    raw_merge = run_raw(*db, p, events, o.flush_every, true);
  }
  {
    auto db = open_fresh(o.dir + "/put");
    raw_put = run_raw(*db, p, events, o.flush_every, false);
  }
  std::filesystem::remove_all(o.dir);

  const double goal = 500'000;
  std::printf(
      "engagement counting, %u users, %u messages each in 24 hourly buckets, flush every %llu\n",
      o.users, o.messages_per_user, static_cast<unsigned long long>(o.flush_every));
  std::printf("%-40s %10s %12s %8s %10s %8s %8s %10s\n", "", "events/s", "per CPU-s", "seconds",
              "rows/flush", "write s", "flush s", "allocs/add");
  const auto line = [](const char* name, const phase_result& r) {
    std::printf("%-40s %10.0f %12.0f %8.2f %10.0f %8.2f %8.2f %10.3f\n", name, r.rate(),
                r.cpu_rate(), r.seconds, r.flushes ? double(r.rows_written) / r.flushes : 0.0,
                r.store_write_seconds, r.write_seconds - r.store_write_seconds,
                r.events ? double(r.add_allocations) / r.events : 0.0);
  };
  line("cube: sends", cube_sends);
  line("cube: delivered/opened/clicked", cube_events);
  line("cube: same 1,000 messages (warm map)", warm);
  line("reference: raw RocksDB Merge 8 B / event", raw_merge);
  line("reference: raw RocksDB Put 8 B / event", raw_put);
  std::printf(
      "cube events: %.0f %% of raw Merge, %.0f %% of the goal (%.0f/s; %.0f %% per CPU-second "
      "of the counting thread); %.0f %% of the time in flush + write; %llu rows stored; "
      "load average %.1f -> %.1f on %ld cores\n",
      100 * cube_events.rate() / raw_merge.rate(), 100 * cube_events.rate() / goal, goal,
      100 * cube_events.cpu_rate() / goal, 100 * cube_events.write_seconds / cube_events.seconds,
      static_cast<unsigned long long>(stored_rows), load_start, loadavg(),
      sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("cube store, RocksDB: %s\n", cube_stall.c_str());

  if (!o.results.empty()) {
    nlohmann::json j = {
        {"schema", "relay-bench-engagement/1"},
        {"date", utc_now()},
        {"goal_events_per_second", goal},
        {"events_per_second", cube_events.rate()},
        {"meets_goal", cube_events.rate() >= goal},
        {"ratio_to_raw_merge", cube_events.rate() / raw_merge.rate()},
        {"parameters",
         {{"users", o.users},
          {"messages_per_user", o.messages_per_user},
          {"hour_buckets", 24},
          {"events", o.events},
          {"event_mix", "delivered 60 %, opened 30 %, clicked 10 %"},
          {"flush_every_events", o.flush_every},
          {"store", "store::open defaults (WAL on, no fsync per write), fresh per mode"}}},
        {"cube",
         {{"sends", cube_sends.json()},
          {"events", cube_events.json()},
          {"warm_same_1000_messages", warm.json()},
          {"rows_stored", stored_rows},
          {"rocksdb_write_stall", cube_stall}}},
        {"reference",
         {{"raw_merge_8_byte_per_event", raw_merge.json()},
          {"raw_put_8_byte_per_event", raw_put.json()}}},
        {"cores", static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))},
        {"loadavg_1m_at_start", load_start},
        {"loadavg_1m_at_end", loadavg()},
    };
    std::ofstream(o.results) << j.dump(2) << "\n";
    std::printf("wrote %s\n", o.results.c_str());
  }
  return 0;
}
