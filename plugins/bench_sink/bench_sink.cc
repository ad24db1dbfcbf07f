// bench_sink: the carrier plug-in of relay's benchmarks (bench/relay_bench.cc).
//
// Accepts every message at once (callback_submit_done from inside on_submit,
// which the ABI allows), counts it, and, when the message's content carries
// "t=<unix microseconds>" (the time the benchmark produced the job), records
// submit time minus that stamp in a latency histogram. Messages of jobs whose
// id starts with `track_prefix` are also counted per job (first and last
// submit time), so the benchmark can time one broadcast.
//
// Progress leaves through a small text file (`stats_file`), rewritten every
// `stats_interval_ms` by a writer thread and once more when the last instance
// using it is destroyed; the benchmark polls it. The file is replaced with a
// rename, so a reader never sees half of it:
//   count N            messages submitted (all instances sharing the file)
//   first_us T         unix µs of the first submit (0: none yet)
//   last_us T          unix µs of the latest submit
//   lat_count N        messages that carried a stamp
//   lat_p50_us ...     percentiles of (submit - stamp), also p90, p99, p999, max
//   job ID N FIRST_US LAST_US   per tracked job
// and, when the last instance goes, `<stats_file>.series`: per 100 ms window
// of submit time with stamped messages, "WINDOW_START_US COUNT MAX_US", to
// see when a latency tail happened.
//
// Config keys: stats_file (required), stats_interval_ms (default 100),
// track_prefix (default "track-").
//
// Threads: on_submit runs on relay's dispatch thread (one per instance);
// counters are relaxed atomics, so several instances may share one file.
// The writer thread only reads them. Depends only on relay/plugin.h.

#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "plugins/common/abi_support.h"
#include "relay/plugin.h"

namespace {

using relay::plugin_abi::view;
using relay::plugin_abi::write_error;


uint64_t now_unix_us() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000u + uint64_t(ts.tv_nsec) / 1000u;
}

// Log-linear histogram of microseconds: exact below 32, then 16 sub-buckets
// per power of two (under 6.25 % error), up to 2^40 µs.
class histogram {
 public:
  static constexpr int kSub = 16;
  static constexpr int kBuckets = 32 + (40 - 5 + 1) * kSub;

  static int index(uint64_t v) {
    if (v < 32) return static_cast<int>(v);
    int e = 63 - __builtin_clzll(v);  // >= 5
    if (e > 40) return kBuckets - 1;
    const int sub = static_cast<int>((v >> (e - 4)) & (kSub - 1));
    return 32 + (e - 5) * kSub + sub;
  }
  // Middle of a bucket's range (what a percentile reports).
  static uint64_t value(int i) {
    if (i < 32) return static_cast<uint64_t>(i);
    const int e = 5 + (i - 32) / kSub;
    const int sub = (i - 32) % kSub;
    const uint64_t lo = uint64_t(kSub + sub) << (e - 4);
    const uint64_t width = uint64_t(1) << (e - 4);
    return lo + width / 2;
  }

  void record(uint64_t v) {
    buckets_[index(v)].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    uint64_t m = max_.load(std::memory_order_relaxed);
    while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
    }
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_.load(std::memory_order_relaxed); }

  // Percentile q in [0, 1] over a snapshot of the buckets.
  uint64_t percentile(const std::array<uint64_t, kBuckets>& snap, uint64_t total, double q) const {
    if (total == 0) return 0;
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(q * static_cast<double>(total) + 0.5));
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += snap[i];
      if (seen >= rank) return std::min(value(i), max());
    }
    return max();
  }
  void snapshot(std::array<uint64_t, kBuckets>& out, uint64_t& total) const {
    total = 0;
    for (int i = 0; i < kBuckets; ++i) {
      out[i] = buckets_[i].load(std::memory_order_relaxed);
      total += out[i];
    }
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_{0};
};

// Stamped messages per 100 ms window of submit time (the last ~7 minutes).
class latency_series {
 public:
  static constexpr uint64_t kWindowUs = 100000;
  static constexpr size_t kWindows = 4096;

  void record(uint64_t now_us, uint64_t latency_us) {
    const uint64_t w = now_us / kWindowUs;
    slot& s = slots_[w % kWindows];
    uint64_t id = s.window.load(std::memory_order_relaxed);
    if (id != w) {
      // Dispatch threads rarely race here (one connector carries the bench's
      // stamped jobs); a lost update only blurs a diagnostic.
      s.window.store(w, std::memory_order_relaxed);
      s.count.store(0, std::memory_order_relaxed);
      s.max.store(0, std::memory_order_relaxed);
    }
    s.count.fetch_add(1, std::memory_order_relaxed);
    uint64_t m = s.max.load(std::memory_order_relaxed);
    while (latency_us > m && !s.max.compare_exchange_weak(m, latency_us, std::memory_order_relaxed)) {
    }
  }

  void write(const std::string& path) const {
    std::vector<std::array<uint64_t, 3>> rows;
    for (const slot& s : slots_) {
      const uint64_t n = s.count.load(std::memory_order_relaxed);
      if (n > 0) rows.push_back({s.window.load(std::memory_order_relaxed) * kWindowUs, n, s.max.load(std::memory_order_relaxed)});
    }
    std::sort(rows.begin(), rows.end());
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return;
    for (const auto& r : rows) {
      std::fprintf(f, "%llu %llu %llu\n", static_cast<unsigned long long>(r[0]), static_cast<unsigned long long>(r[1]),
                   static_cast<unsigned long long>(r[2]));
    }
    std::fclose(f);
  }

 private:
  struct slot {
    std::atomic<uint64_t> window{0};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> max{0};
  };
  std::array<slot, kWindows> slots_{};
};

struct tracked_job {
  std::string id;  // written once under stats::jobs_mu before the entry is published
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> first_us{0};
  std::atomic<uint64_t> last_us{0};
};

// Everything counted for one stats file; shared by the instances using it.
struct stats {
  static constexpr size_t kMaxJobs = 64;

  std::string path;
  std::chrono::milliseconds interval{100};
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> first_us{0};
  std::atomic<uint64_t> last_us{0};
  histogram latency;
  latency_series series;

  std::mutex jobs_mu;
  std::array<tracked_job, kMaxJobs> jobs;
  std::atomic<size_t> job_count{0};

  std::mutex mu;  // guards users, stopping
  std::condition_variable cv;
  int users = 0;
  bool stopping = false;
  std::thread writer;

  tracked_job* track(std::string_view id) {
    const size_t n = job_count.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) {
      if (jobs[i].id == id) return &jobs[i];
    }
    std::lock_guard lock(jobs_mu);
    const size_t m = job_count.load(std::memory_order_relaxed);
    for (size_t i = n; i < m; ++i) {
      if (jobs[i].id == id) return &jobs[i];
    }
    if (m == kMaxJobs) return nullptr;
    jobs[m].id.assign(id);
    job_count.store(m + 1, std::memory_order_release);
    return &jobs[m];
  }

  void write_file() const {
    std::array<uint64_t, histogram::kBuckets> snap;
    uint64_t total = 0;
    latency.snapshot(snap, total);
    std::string out;
    out.reserve(1024);
    auto line = [&out](std::string_view key, uint64_t v) {
      out.append(key);
      out.push_back(' ');
      out.append(std::to_string(v));
      out.push_back('\n');
    };
    line("count", count.load(std::memory_order_relaxed));
    line("first_us", first_us.load(std::memory_order_relaxed));
    line("last_us", last_us.load(std::memory_order_relaxed));
    line("lat_count", total);
    line("lat_p50_us", latency.percentile(snap, total, 0.50));
    line("lat_p90_us", latency.percentile(snap, total, 0.90));
    line("lat_p99_us", latency.percentile(snap, total, 0.99));
    line("lat_p999_us", latency.percentile(snap, total, 0.999));
    line("lat_max_us", latency.max());
    const size_t n = job_count.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) {
      const tracked_job& j = jobs[i];
      out.append("job ").append(j.id).push_back(' ');
      out.append(std::to_string(j.count.load(std::memory_order_relaxed))).push_back(' ');
      out.append(std::to_string(j.first_us.load(std::memory_order_relaxed))).push_back(' ');
      out.append(std::to_string(j.last_us.load(std::memory_order_relaxed))).push_back('\n');
    }
    line("updated_us", now_unix_us());
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) return;
    const bool ok = std::fwrite(out.data(), 1, out.size(), f) == out.size();
    if (std::fclose(f) == 0 && ok) std::rename(tmp.c_str(), path.c_str());
  }

  void run_writer() {
    std::unique_lock lock(mu);
    while (!stopping) {
      cv.wait_for(lock, interval, [this] { return stopping; });
      lock.unlock();
      write_file();
      lock.lock();
    }
  }
};

// One stats object per file path, alive while an instance uses it.
std::mutex g_files_mu;
std::map<std::string, std::shared_ptr<stats>> g_files;

std::shared_ptr<stats> acquire_stats(const std::string& path, std::chrono::milliseconds interval) {
  std::lock_guard lock(g_files_mu);
  auto& slot = g_files[path];
  if (!slot) {
    slot = std::make_shared<stats>();
    slot->path = path;
    slot->interval = interval;
    slot->writer = std::thread([s = slot.get()] { s->run_writer(); });
  }
  std::lock_guard inner(slot->mu);
  ++slot->users;
  return slot;
}

void release_stats(const std::shared_ptr<stats>& s) {
  std::lock_guard lock(g_files_mu);
  {
    std::lock_guard inner(s->mu);
    if (--s->users > 0) return;
    s->stopping = true;
  }
  s->cv.notify_all();
  if (s->writer.joinable()) s->writer.join();
  s->write_file();  // the final figures
  s->series.write(s->path + ".series");
  g_files.erase(s->path);
}

struct instance {
  const relay_host* host = nullptr;
  std::shared_ptr<stats> st;
  std::string track_prefix = "track-";
  // Dispatch thread only: the tracked job of the previous message.
  std::string last_job;
  tracked_job* last_tracked = nullptr;
};

// "t=<digits>" anywhere in the content JSON (the text field the bench writes).
bool find_stamp(std::string_view content, uint64_t& stamp) {
  const size_t at = content.find("t=");
  if (at == std::string_view::npos) return false;
  const char* b = content.data() + at + 2;
  const char* e = content.data() + content.size();
  const auto [p, ec] = std::from_chars(b, e, stamp);
  return ec == std::errc() && p != b;
}


void* bs_on_create(const relay_host* host, const relay_kv* config, size_t count, char* error,
                   size_t error_size) noexcept {
  try {
    std::string path, prefix = "track-";
    uint64_t interval_ms = 100;
    for (size_t i = 0; i < count; ++i) {
      const std::string_view key = view(config[i].key), value = view(config[i].value);
      if (key == "stats_file") {
        path.assign(value);
      } else if (key == "stats_interval_ms") {
        const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), interval_ms);
        if (ec != std::errc() || p != value.data() + value.size() || interval_ms == 0 || interval_ms > 60000) {
          write_error(error, error_size, "stats_interval_ms: must be a whole number from 1 to 60000");
          return nullptr;
        }
      } else if (key == "track_prefix") {
        prefix.assign(value);
      } else {
        write_error(error, error_size,
                    std::string(key) + ": unknown key (bench_sink knows stats_file, stats_interval_ms, track_prefix)");
        return nullptr;
      }
    }
    if (path.empty()) {
      write_error(error, error_size, "stats_file: required (where the counts are written)");
      return nullptr;
    }
    auto inst = std::make_unique<instance>();
    inst->host = host;
    inst->track_prefix = std::move(prefix);
    inst->st = acquire_stats(path, std::chrono::milliseconds(interval_ms));
    return inst.release();
  } catch (const std::exception& e) {
    write_error(error, error_size, std::string("bench_sink: ") + e.what());
    return nullptr;
  }
}

void bs_on_destroy(void* p) noexcept {
  std::unique_ptr<instance> inst(static_cast<instance*>(p));
  try {
    release_stats(inst->st);
  } catch (...) {
  }
}

void bs_on_submit(void* p, uint64_t submit_id, const relay_message* m) noexcept {
  auto& inst = *static_cast<instance*>(p);
  stats& s = *inst.st;
  const uint64_t now = now_unix_us();

  uint64_t expected = 0;
  s.first_us.compare_exchange_strong(expected, now, std::memory_order_relaxed);
  s.last_us.store(now, std::memory_order_relaxed);
  s.count.fetch_add(1, std::memory_order_relaxed);

  uint64_t stamp = 0;
  if (find_stamp(view(m->content_json), stamp)) {
    const uint64_t latency = now > stamp ? now - stamp : 0;
    s.latency.record(latency);
    s.series.record(now, latency);
  }

  const std::string_view job = view(m->job_id);
  if (!inst.track_prefix.empty() && job.starts_with(inst.track_prefix)) {
    try {
      if (inst.last_tracked == nullptr || inst.last_job != job) {
        inst.last_tracked = s.track(job);
        inst.last_job.assign(job);
      }
    } catch (...) {
      inst.last_tracked = nullptr;
    }
    if (tracked_job* t = inst.last_tracked) {
      uint64_t zero = 0;
      t->first_us.compare_exchange_strong(zero, now, std::memory_order_relaxed);
      t->last_us.store(now, std::memory_order_relaxed);
      t->count.fetch_add(1, std::memory_order_relaxed);
    }
  }

  inst.host->callback_submit_done(inst.host->host_ctx, submit_id, RELAY_SUBMIT_ACCEPTED, relay_str{nullptr, 0},
                                  relay_str{nullptr, 0});
}

const relay_plugin kTable = {
    RELAY_PLUGIN_ABI_VERSION, sizeof(relay_plugin), "bench_sink", "1.0.0",
    &bs_on_create,           &bs_on_destroy,       &bs_on_submit, nullptr,
};

}  // namespace

extern "C" RELAY_PLUGIN_EXPORT const relay_plugin* relay_plugin_entry(void) { return &kTable; }
