// relay_bench: relay's end-to-end benchmark and the reference runs it is
// measured against (docs/performance.md). Run it through bench/run.
//
// One process hosts the Kafka cluster (relay::embedded_kafka), so the bare
// consumer reference and relayd read the same topic from the same brokers.
// relayd runs as a child process with the bench_sink plug-in, which accepts
// every message at once and reports counts and latencies through a stats
// file that this program polls.
//
// Phases, in order (each is reported beside its reference):
//   1. registry load: N users (upsert + register) written with
//      relay::registry_writer straight into <data_dir>/db.
//   2. bare RocksDB reads of the directory entries a broadcast reads (plain
//      iterator and MultiGet): the broadcast reference.
//   3. pre-fill J single-recipient jobs; a bare librdkafka consumer reads
//      them: the throughput reference.
//   4. relayd starts and works the backlog: sustained jobs/s.
//   5. jobs at a fixed rate (half the sustained one), each stamped with its
//      produce time: end-to-end latency percentiles; then the same load on a
//      second topic read by a bare consumer: the latency reference.
//   6. one broadcast to every user, then one attribute-filtered broadcast:
//      recipients/s from accept to the last submit.

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config.h"
#include "daemon/kafka.h"
#include "routing/clock.h"
#include "routing/job.h"
#include "routing/job_store.h"
#include "routing/registry.h"
#include "routing/timer_store.h"
#include "routing/registry_record.h"
#include "routing/store.h"
#include "routing/targeting.h"

#ifndef RELAY_BENCH_BUILD_DIR
#define RELAY_BENCH_BUILD_DIR ""
#endif
#ifndef RELAY_BENCH_SOURCE_DIR
#define RELAY_BENCH_SOURCE_DIR ""
#endif

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using steady = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------- options

struct options {
  size_t users = 1'000'000;
  size_t jobs = 200'000;
  double latency_seconds = 10;
  double latency_rate = 0;  // jobs/s of phase 5; 0: half the measured sustained rate
  // The mock broker keeps only the newest 5 MiB of each partition (librdkafka
  // 2.0's rdkafka_mock.c, not configurable), so the backlog must be spread
  // over enough partitions to stay whole.
  int partitions = 32;
  size_t connector_queue = 65536;
  size_t fanout_chunk = 4096;
  // librdkafka's fetch.wait.max.ms for relayd and the reference consumer. The
  // mock broker holds an empty fetch for the whole wait instead of answering
  // when data arrives (a real broker answers at once), so the default 500 ms
  // would put up to half a second of the mock's own delay into every latency.
  int fetch_wait_ms = 5;
  size_t pending_jobs = 0;  // limits.pending_jobs_per_partition; 0: relay's default
  std::string log_level = "info";  // relayd's log.level
  std::vector<std::pair<std::string, std::string>> kafka_properties;  // --kafka-property k=v, for relayd
  std::string build_dir = RELAY_BENCH_BUILD_DIR;
  std::string results_dir;  // default <source>/bench/results
  std::string relayd_prefix;  // e.g. "perf record -g -o /tmp/relayd.perf --"
  bool keep = false;
  bool no_results = false;
  bool latency = true;    // --no-latency skips phase 5 (for profiling one phase)
  bool broadcast = true;  // --no-broadcast skips phase 6
  size_t pending_timers = 0;  // --pending-timers N: timers due tomorrow, stored before relayd starts
};

[[noreturn]] void die(const std::string& what);

int usage() {
  std::fprintf(stderr,
               "usage: relay_bench [--users N] [--jobs N] [--latency-seconds S] [--latency-rate R] [--partitions N]\n"
               "                   [--connector-queue N] [--fanout-chunk N] [--fetch-wait-ms N] [--pending-jobs N]\n"
               "                   [--kafka-property KEY=VALUE]... [--log-level LEVEL] [--build-dir DIR]\n"
               "                   [--results-dir DIR] [--no-results] [--relayd-prefix 'CMD ARGS --'] [--keep]\n"
               "                   [--no-latency] [--no-broadcast] [--pending-timers N]\n");
  return 2;
}

// ---------------------------------------------------------------- small helpers

uint64_t now_unix_us() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000u + uint64_t(ts.tv_nsec) / 1000u;
}

double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

std::string fmt_rate(double v) {
  char buf[64];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M/s", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f k/s", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f /s", v);
  }
  return buf;
}

std::string fmt_ms(double us) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f ms", us / 1000.0);
  return buf;
}

std::string fmt_pct(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %%", v * 100.0);
  return buf;
}

void note(const char* format, ...) __attribute__((format(printf, 1, 2)));
void note(const char* format, ...) {
  std::fputs("relay_bench: ", stderr);
  va_list ap;
  va_start(ap, format);
  std::vfprintf(stderr, format, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

// CPU seconds (user + system) and the name in a /proc/.../stat file; false
// when it cannot be read.
bool read_stat(const std::string& path, std::string& name, double& seconds) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return false;
  name = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return true;
}

// CPU seconds (user + system) of a process.
double cpu_seconds(pid_t pid) {
  std::string name;
  double seconds = 0;
  return read_stat("/proc/" + std::to_string(pid) + "/stat", name, seconds) ? seconds : 0;
}

// CPU seconds per thread name of a process (threads of one name summed).
std::map<std::string, double> thread_cpu(pid_t pid) {
  std::map<std::string, double> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::string name;
    double seconds = 0;
    if (read_stat((entry.path() / "stat").string(), name, seconds)) out[name] += seconds;
  }
  return out;
}

json thread_cpu_delta(const std::map<std::string, double>& before, const std::map<std::string, double>& after) {
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [name, v] : after) {
    auto it = before.find(name);
    const double d = v - (it == before.end() ? 0 : it->second);
    if (d >= 0.005) rows.emplace_back(d, name);
  }
  std::sort(rows.rbegin(), rows.rend());
  json j = json::object();
  for (const auto& [d, name] : rows) j[name] = std::round(d * 1000) / 1000;
  return j;
}

// Where the machine's CPU went during a phase: relayd, this process (the
// Kafka brokers, producers, reference readers) and everything else (other
// work on a shared machine, which makes a run noisy).
struct cpu_snapshot {
  steady::time_point at;
  double machine_busy_s = 0;
  double relayd_s = 0;
  double self_s = 0;
};

double machine_busy_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  unsigned long long v[8] = {};
  in >> cpu;
  for (auto& x : v) in >> x;
  // user nice system idle iowait irq softirq steal
  const unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return static_cast<double>(busy) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double self_cpu_seconds();
double cpu_seconds(pid_t pid);

cpu_snapshot cpu_now(pid_t relayd) {
  return {steady::now(), machine_busy_seconds(), relayd > 0 ? cpu_seconds(relayd) : 0, self_cpu_seconds()};
}

json cpu_use(const cpu_snapshot& a, const cpu_snapshot& b) {
  const double wall = std::chrono::duration<double>(b.at - a.at).count();
  if (wall <= 0) return json::object();
  auto r2 = [](double x) { return std::round(x * 100) / 100; };
  const double busy = (b.machine_busy_s - a.machine_busy_s) / wall;
  const double relayd = (b.relayd_s - a.relayd_s) / wall;
  const double self = (b.self_s - a.self_s) / wall;
  return {{"wall_s", r2(wall)},
          {"machine_busy_cores", r2(busy)},
          {"relayd_cores", r2(relayd)},
          {"bench_process_cores", r2(self)},
          {"other_processes_cores", r2(std::max(0.0, busy - relayd - self))}};
}

double self_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

uint64_t peak_rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

std::string first_line_of(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return {};
}

std::string command_output(const std::string& cmd) {
  std::string out;
  if (std::FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// ---------------------------------------------------------------- bench_sink stats

struct tracked {
  uint64_t count = 0, first_us = 0, last_us = 0;
};

struct sink_stats {
  bool present = false;
  uint64_t count = 0, first_us = 0, last_us = 0;
  uint64_t lat_count = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  std::map<std::string, tracked> jobs;
};

sink_stats read_stats(const std::string& path) {
  sink_stats s;
  std::ifstream in(path);
  if (!in) return s;
  s.present = true;
  std::string key;
  while (in >> key) {
    if (key == "job") {
      std::string id;
      tracked t;
      in >> id >> t.count >> t.first_us >> t.last_us;
      s.jobs[id] = t;
      continue;
    }
    uint64_t v = 0;
    in >> v;
    if (key == "count") s.count = v;
    else if (key == "first_us") s.first_us = v;
    else if (key == "last_us") s.last_us = v;
    else if (key == "lat_count") s.lat_count = v;
    else if (key == "lat_p50_us") s.p50 = v;
    else if (key == "lat_p90_us") s.p90 = v;
    else if (key == "lat_p99_us") s.p99 = v;
    else if (key == "lat_p999_us") s.p999 = v;
    else if (key == "lat_max_us") s.max = v;
  }
  return s;
}

// Polls until `done(stats)` or the deadline; prints progress every few seconds.
sink_stats wait_stats(const std::string& path, std::chrono::seconds limit, const char* what,
                      const std::function<bool(const sink_stats&)>& done,
                      const std::function<bool()>& still_running) {
  const auto deadline = steady::now() + limit;
  auto next_note = steady::now() + std::chrono::seconds(5);
  sink_stats s;
  for (;;) {
    s = read_stats(path);
    if (done(s)) return s;
    if (steady::now() >= deadline) {
      note("%s: gave up after %lld s (sink count %" PRIu64 ")", what, static_cast<long long>(limit.count()),
           s.count);
      return s;
    }
    if (!still_running()) {
      note("%s: relayd exited", what);
      return s;
    }
    if (steady::now() >= next_note) {
      note("%s: sink count %" PRIu64 " ...", what, s.count);
      next_note = steady::now() + std::chrono::seconds(5);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// ---------------------------------------------------------------- users

constexpr const char* kCompany = "bench";
constexpr const char* kService = "std";
constexpr const char* kCarrier = "carrier-a";
constexpr const char* kRegions[] = {"tokyo", "osaka", "nagoya", "sapporo", "fukuoka", "kobe", "kyoto", "sendai"};
constexpr int kBirthYearFirst = 1950;
constexpr int kBirthYears = 60;

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string user_id(size_t i) { return "u" + std::to_string(i); }

void fill_user(size_t i, relay::registry_record& up, relay::registry_record& reg) {
  const uint64_t h = mix64(i + 1);
  up.kind = relay::registry_record::op::upsert_user;
  up.user_id = user_id(i);
  relay::profile& p = up.user_profile;
  char msisdn[32];
  std::snprintf(msisdn, sizeof msisdn, "+8190%08zu", i % 100000000);
  p.msisdn = msisdn;
  p.email = up.user_id + "@example.jp";
  p.gender = (h & 1) ? "f" : "m";
  p.birth_year = kBirthYearFirst + static_cast<int>((h >> 8) % kBirthYears);
  p.region = kRegions[(h >> 20) % std::size(kRegions)];
  p.occupation = ((h >> 32) % 3 == 0) ? "engineer" : "other";
  p.tz = "Asia/Tokyo";
  p.locale = "ja-JP";
  if (!up.carriers) {
    relay::carrier_link link;
    link.carrier_id = kCarrier;
    link.primary = true;
    up.carriers.emplace(1, link);
  }
  reg.kind = relay::registry_record::op::register_user;
  reg.user_id = up.user_id;
  reg.company_id = kCompany;
  reg.service_id = kService;
  reg.source = "bench";
}

// ---------------------------------------------------------------- jobs

std::string single_job(const std::string& id, size_t user, const std::string& text) {
  return "{\"job_id\":\"" + id + "\",\"company_id\":\"" + kCompany + "\",\"service_id\":\"" + kService +
         "\",\"to\":{\"users\":[\"" + user_id(user) + "\"]},\"content\":{\"text\":\"" + text +
         "\"},\"channels\":{\"mode\":\"specified\",\"order\":[\"sms\"]}}";
}

// `channels`: the job's channels object; the default sends SMS to everyone
// (no choice to make), "best" makes relay choose per recipient.
std::string broadcast_all_job(const std::string& id,
                              const std::string& channels = "{\"mode\":\"specified\",\"order\":[\"sms\"]}") {
  return "{\"job_id\":\"" + id + "\",\"company_id\":\"" + kCompany + "\",\"service_id\":\"" + kService +
         "\",\"to\":{\"all\":true},\"content\":{\"text\":\"hello everyone\"},"
         "\"channels\":" + channels + "}";
}

constexpr const char* kWhereText =
    "{\"region\":[\"tokyo\",\"osaka\",\"nagoya\"],\"gender\":\"f\",\"age\":{\"gte\":20,\"lt\":40}}";

std::string broadcast_where_job(const std::string& id) {
  return "{\"job_id\":\"" + id + "\",\"company_id\":\"" + kCompany + "\",\"service_id\":\"" + kService +
         "\",\"to\":{\"where\":" + kWhereText + "},\"content\":{\"text\":\"hello some\"},"
         "\"channels\":{\"mode\":\"specified\",\"order\":[\"sms\"]}}";
}

// Spreads single-recipient jobs over the registry, as real traffic would.
size_t user_for_job(size_t i, size_t users) { return static_cast<size_t>((i * 7919ull + 13) % users); }

// ---------------------------------------------------------------- relayd child

pid_t g_relayd = -1;

void kill_relayd_now() {
  if (g_relayd > 0) {
    ::kill(g_relayd, SIGKILL);
    ::waitpid(g_relayd, nullptr, 0);
    g_relayd = -1;
  }
}

void on_fatal_signal(int sig) {
  if (g_relayd > 0) ::kill(g_relayd, SIGKILL);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

[[noreturn]] void die(const std::string& what) {
  note("error: %s", what.c_str());
  kill_relayd_now();
  std::exit(1);
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

pid_t start_relayd(const std::string& relayd, const std::string& config_path, const std::string& log_path,
                   const std::string& prefix) {
  std::vector<std::string> args = split_words(prefix);
  args.push_back(relayd);
  args.push_back("--config");
  args.push_back(config_path);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) die("cannot create " + log_path);
  const pid_t pid = ::fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "exec %s failed: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

// relayd's own pid: the child itself, or the child's child when it runs
// under a --relayd-prefix such as perf.
pid_t find_relayd(pid_t child, bool prefixed) {
  if (!prefixed) return child;
  for (int i = 0; i < 100; ++i) {
    std::ifstream in("/proc/" + std::to_string(child) + "/task/" + std::to_string(child) + "/children");
    pid_t grandchild = 0;
    if (in >> grandchild && grandchild > 0) return grandchild;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return child;
}

bool child_running(pid_t pid) {
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) {
    g_relayd = -1;
    return false;
  }
  return r == 0;
}

bool file_contains(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.find(needle) != std::string::npos;
}

std::string tail_of(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "  " + all[i] + "\n";
  return out;
}

// SIGTERM and wait; SIGKILL after `limit`. Returns the exit status text.
std::string stop_relayd(pid_t pid, std::chrono::seconds limit) {
  ::kill(pid, SIGTERM);
  const auto deadline = steady::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (steady::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      g_relayd = -1;
      return "killed after " + std::to_string(limit.count()) + " s";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  g_relayd = -1;
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "?";
}

// ---------------------------------------------------------------- Kafka helpers

std::unique_ptr<relay::kafka_producer> make_producer(const std::string& bootstrap,
                                                     std::vector<std::pair<std::string, std::string>> props) {
  relay::kafka_config kc;
  kc.brokers = bootstrap;
  kc.properties = std::move(props);
  auto p = relay::kafka_producer::create(kc, bootstrap);
  if (!p) die(p.err().message);
  return std::move(*p);
}

// Jobs are keyed over many values, as the jobs of many companies would be
// (DESIGN §2 keys them by company), so they spread over the partitions; relay
// reads the company from the job, not from the key.
std::string job_key(size_t i) { return "k" + std::to_string(i % 256); }

void produce_or_die(relay::kafka_producer& p, const std::string& topic, const std::string& key,
                    const std::string& value) {
  if (auto r = p.produce(topic, key, value); !r) die(r.err().message);
}

// Dies when the broker dropped the start of a partition (see options::partitions).
void check_nothing_trimmed(relay::kafka_producer& p, const std::string& topic, int partitions) {
  for (int32_t part = 0; part < partitions; ++part) {
    int64_t low = -1, high = -1;
    if (rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(p.handle(), topic.c_str(), part, &low, &high, 10000)) {
      die("watermarks of " + topic + ": " + rd_kafka_err2str(err));
    }
    if (low != 0) {
      die(topic + " [" + std::to_string(part) + "] starts at offset " + std::to_string(low) +
          ": the mock broker dropped older messages (it keeps 5 MiB per partition); use more --partitions");
    }
  }
}

struct consumer_result {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  double first_to_last_s = 0;  // first message to last
  double total_s = 0;          // assign to last message
};

// A bare librdkafka consumer for the reference runs (no group commits).
rd_kafka_t* reference_consumer(const std::string& bootstrap, const std::string& group_prefix, int fetch_wait_ms) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::pair<const char*, std::string> props[] = {
      {"bootstrap.servers", bootstrap},
      {"group.id", group_prefix + std::to_string(::getpid())},
      {"enable.auto.commit", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", "false"},
      {"fetch.wait.max.ms", std::to_string(fetch_wait_ms)},
      {"log_level", "3"}};
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) die(errstr);
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) die(std::string("reference consumer: ") + errstr);
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

// Every partition of `topic` from the beginning; the caller assigns and destroys it.
rd_kafka_topic_partition_list_t* all_partitions(const std::string& topic, int partitions) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  return list;
}

// The throughput reference: a bare librdkafka consumer (assign, batch
// consume from the consumer queue) reading `expected` messages of `topic`.
consumer_result bare_consume(const std::string& bootstrap, const std::string& topic, int partitions,
                             uint64_t expected, std::chrono::seconds limit, int fetch_wait_ms) {
  rd_kafka_t* rk = reference_consumer(bootstrap, "relay-bench-reference-", fetch_wait_ms);
  rd_kafka_topic_partition_list_t* list = all_partitions(topic, partitions);
  const auto start = steady::now();
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, list)) die(rd_kafka_err2str(err));
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);

  consumer_result r;
  std::vector<rd_kafka_message_t*> batch(10000);
  steady::time_point first{}, last{};
  const auto deadline = start + limit;
  while (r.messages < expected && steady::now() < deadline) {
    const ssize_t n = rd_kafka_consume_batch_queue(queue, 1000, batch.data(), batch.size());
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = batch[i];
      if (!m->err) {
        if (r.messages == 0) first = steady::now();
        ++r.messages;
        r.bytes += m->len;
      }
      rd_kafka_message_destroy(m);
    }
    if (n > 0) last = steady::now();
  }
  r.first_to_last_s = std::chrono::duration<double>(last - first).count();
  r.total_s = std::chrono::duration<double>(last - start).count();
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return r;
}

// The latency reference: the same producer, rate and job bytes on a topic of
// the same shape, read by a bare consumer that stamps each message on arrival.
struct latency_result {
  uint64_t measured = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

bool stamp_of(std::string_view payload, uint64_t& stamp) {
  const size_t at = payload.find("t=");
  if (at == std::string_view::npos) return false;
  stamp = std::strtoull(payload.data() + at + 2, nullptr, 10);
  return stamp > 0;
}

// Produces `n` jobs at `rate`, each stamped "t=<unix µs>" just before produce().
void produce_paced(relay::kafka_producer& producer, const std::string& topic, double rate, size_t n,
                   const std::function<std::string(size_t, const std::string&)>& make_job) {
  const auto t0 = steady::now();
  for (size_t i = 0; i < n; ++i) {
    const auto due = t0 + std::chrono::nanoseconds(static_cast<int64_t>(i * 1e9 / rate));
    if (steady::now() < due) std::this_thread::sleep_until(due);
    produce_or_die(producer, topic, job_key(i), make_job(i, "t=" + std::to_string(now_unix_us())));
    producer.poll();
  }
}

latency_result bare_latency(const std::string& bootstrap, const std::string& topic, int partitions, double rate,
                            size_t n, int fetch_wait_ms,
                            const std::function<std::string(size_t, const std::string&)>& make_job) {
  rd_kafka_t* rk = reference_consumer(bootstrap, "relay-bench-latency-", fetch_wait_ms);
  rd_kafka_topic_partition_list_t* list = all_partitions(topic, partitions);
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, list)) die(rd_kafka_err2str(err));
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);

  std::vector<uint64_t> latencies;
  latencies.reserve(n);
  std::atomic<bool> warm{false};
  std::atomic<bool> stop{false};
  std::atomic<size_t> received{0};  // latencies.size(), for the waiting thread
  std::thread reader([&] {
    std::vector<rd_kafka_message_t*> batch(10000);
    while (!stop.load() && latencies.size() < n) {
      // Wait for one message, then take what is already there: the batch call
      // alone waits until the whole batch is full or the timeout passes.
      ssize_t got = rd_kafka_consume_batch_queue(queue, 100, batch.data(), 1);
      if (got == 1) {
        const ssize_t more = rd_kafka_consume_batch_queue(queue, 0, batch.data() + 1, batch.size() - 1);
        if (more > 0) got += more;
      }
      const uint64_t now = now_unix_us();
      for (ssize_t i = 0; i < got; ++i) {
        rd_kafka_message_t* m = batch[i];
        uint64_t stamp = 0;
        if (!m->err) {
          const std::string_view payload(static_cast<const char*>(m->payload), m->len);
          if (payload == "warm-up") {
            warm.store(true);
          } else if (stamp_of(payload, stamp)) {
            latencies.push_back(now > stamp ? now - stamp : 0);
            received.store(latencies.size());
          }
        }
        rd_kafka_message_destroy(m);
      }
    }
  });
  auto producer = make_producer(bootstrap, {{"linger.ms", "0"}});
  // The reader is connected and fetching once the warm-up message arrives.
  produce_or_die(*producer, topic, "warm-up", "warm-up");
  const auto warm_deadline = steady::now() + std::chrono::seconds(30);
  while (!warm.load() && steady::now() < warm_deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  produce_paced(*producer, topic, rate, n, make_job);
  const auto deadline = steady::now() + std::chrono::seconds(60);
  while (received.load() < n && steady::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop.store(true);
  reader.join();
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);

  latency_result r;
  r.measured = latencies.size();
  if (latencies.empty()) return r;
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double q) {
    const size_t rank = std::max<size_t>(1, static_cast<size_t>(q * latencies.size() + 0.5));
    return latencies[std::min(rank, latencies.size()) - 1];
  };
  r.p50 = pct(0.5);
  r.p90 = pct(0.9);
  r.p99 = pct(0.99);
  r.p999 = pct(0.999);
  r.max = latencies.back();
  return r;
}

// ---------------------------------------------------------------- RocksDB reference

struct read_result {
  uint64_t entries = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  double rate() const { return seconds > 0 ? entries / seconds : 0; }
};

// A plain iterator over the directory CF from the set's first ordinal to its
// last, Next() only, keeping the values of ordinals in the set.
read_result directory_scan(relay::store& db, const roaring::Roaring& set) {
  read_result r;
  if (set.isEmpty()) return r;
  std::string buf;
  const auto t0 = steady::now();
  std::unique_ptr<rocksdb::Iterator> it(db.db().NewIterator(rocksdb::ReadOptions(), db.handle(relay::cf::directory)));
  std::string seek;
  relay::put_be32(seek, set.minimum());
  const uint32_t last = set.maximum();
  roaring::Roaring::const_iterator want = set.begin();
  const roaring::Roaring::const_iterator end = set.end();
  for (it->Seek(seek); it->Valid() && want != end; it->Next()) {
    const uint32_t ordinal = relay::get_be32(it->key().data());
    if (ordinal > last) break;
    while (want != end && *want < ordinal) ++want;
    if (want == end || *want != ordinal) continue;
    buf.assign(it->value().data(), it->value().size());  // as a reader would keep it
    r.bytes += buf.size();
    ++r.entries;
  }
  r.seconds = seconds_since(t0);
  return r;
}

// MultiGet of the set's directory keys in batches of 1024 (sorted input).
read_result directory_multiget(relay::store& db, const roaring::Roaring& set) {
  read_result r;
  constexpr size_t kBatch = 1024;
  std::vector<std::string> keys(kBatch);
  std::vector<rocksdb::Slice> slices(kBatch);
  std::vector<rocksdb::PinnableSlice> values(kBatch);
  std::vector<rocksdb::Status> statuses(kBatch);
  std::vector<uint32_t> ordinals(kBatch);
  const auto t0 = steady::now();
  roaring_uint32_iterator_t it;
  roaring_init_iterator(&set.roaring, &it);
  for (;;) {
    const uint32_t n = roaring_read_uint32_iterator(&it, ordinals.data(), kBatch);
    if (n == 0) break;
    for (uint32_t i = 0; i < n; ++i) {
      keys[i].clear();
      relay::put_be32(keys[i], ordinals[i]);
      slices[i] = keys[i];
      values[i].Reset();
    }
    db.db().MultiGet(rocksdb::ReadOptions(), db.handle(relay::cf::directory), n, slices.data(), values.data(),
                     statuses.data(), /*sorted_input=*/true);
    for (uint32_t i = 0; i < n; ++i) {
      if (statuses[i].ok()) {
        ++r.entries;
        r.bytes += values[i].size();
      }
    }
  }
  r.seconds = seconds_since(t0);
  return r;
}

template <class Fn>
read_result best_of(int runs, Fn&& fn) {
  read_result best;
  for (int i = 0; i < runs; ++i) {
    read_result r = fn();
    if (i == 0 || r.seconds < best.seconds) best = r;
  }
  return best;
}

// ---------------------------------------------------------------- report

struct row {
  std::string figure, relay, reference, ratio, target, verdict;
};

void print_table(const std::vector<row>& rows) {
  size_t w[6] = {6, 5, 9, 5, 6, 3};
  for (const row& r : rows) {
    w[0] = std::max(w[0], r.figure.size());
    w[1] = std::max(w[1], r.relay.size());
    w[2] = std::max(w[2], r.reference.size());
    w[3] = std::max(w[3], r.ratio.size());
    w[4] = std::max(w[4], r.target.size());
    w[5] = std::max(w[5], r.verdict.size());
  }
  auto line = [&](const std::string& a, const std::string& b, const std::string& c, const std::string& d,
                  const std::string& e, const std::string& f) {
    std::printf("| %-*s | %*s | %*s | %*s | %-*s | %-*s |\n", int(w[0]), a.c_str(), int(w[1]), b.c_str(), int(w[2]),
                c.c_str(), int(w[3]), d.c_str(), int(w[4]), e.c_str(), int(w[5]), f.c_str());
  };
  line("figure", "relay", "reference", "ratio", "target", "met");
  std::printf("|%s|%s:|%s:|%s:|%s|%s|\n", std::string(w[0] + 2, '-').c_str(), std::string(w[1] + 1, '-').c_str(),
              std::string(w[2] + 1, '-').c_str(), std::string(w[3] + 1, '-').c_str(),
              std::string(w[4] + 2, '-').c_str(), std::string(w[5] + 2, '-').c_str());
  for (const row& r : rows) line(r.figure, r.relay, r.reference, r.ratio, r.target, r.verdict);
}

std::string iso_now(bool compact) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, compact ? "%Y%m%dT%H%M%SZ" : "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(usage());
      return argv[++i];
    };
    if (a == "--users") opt.users = std::stoull(next());
    else if (a == "--jobs") opt.jobs = std::stoull(next());
    else if (a == "--latency-seconds") opt.latency_seconds = std::stod(next());
    else if (a == "--latency-rate") opt.latency_rate = std::stod(next());
    else if (a == "--partitions") opt.partitions = std::stoi(next());
    else if (a == "--connector-queue") opt.connector_queue = std::stoull(next());
    else if (a == "--fanout-chunk") opt.fanout_chunk = std::stoull(next());
    else if (a == "--fetch-wait-ms") opt.fetch_wait_ms = std::stoi(next());
    else if (a == "--pending-jobs") opt.pending_jobs = std::stoull(next());
    else if (a == "--log-level") opt.log_level = next();
    else if (a == "--kafka-property") {
      const std::string kv = next();
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) return usage();
      opt.kafka_properties.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    else if (a == "--build-dir") opt.build_dir = next();
    else if (a == "--results-dir") opt.results_dir = next();
    else if (a == "--no-results") opt.no_results = true;
    else if (a == "--relayd-prefix") opt.relayd_prefix = next();
    else if (a == "--keep") opt.keep = true;
    else if (a == "--no-latency") opt.latency = false;
    else if (a == "--no-broadcast") opt.broadcast = false;
    else if (a == "--pending-timers") opt.pending_timers = std::stoull(next());
    else if (a == "--help" || a == "-h") return usage(), 0;
    else {
      std::fprintf(stderr, "relay_bench: unknown argument '%s'\n", a.c_str());
      return usage();
    }
  }
  if (opt.users < 1 || opt.jobs < 2) return usage();
  if (opt.results_dir.empty() && std::strlen(RELAY_BENCH_SOURCE_DIR) > 0) {
    opt.results_dir = std::string(RELAY_BENCH_SOURCE_DIR) + "/bench/results";
  }
  if (opt.build_dir.empty()) opt.build_dir = fs::path(argv[0]).parent_path().string();
  const std::string relayd = fs::absolute(fs::path(opt.build_dir) / "relayd").string();
  const std::string plugins_dir = fs::absolute(fs::path(opt.build_dir) / "plugins").string();
  if (!fs::exists(relayd)) die(relayd + " not found (build relayd first, or pass --build-dir)");
  if (!fs::exists(fs::path(plugins_dir) / "bench_sink.so")) die(plugins_dir + "/bench_sink.so not found");

  ::signal(SIGINT, on_fatal_signal);
  ::signal(SIGTERM, on_fatal_signal);
  spdlog::set_level(spdlog::level::warn);

  char tmpl[] = "/tmp/relay-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) die("mkdtemp failed");
  const std::string tmp = tmpl;
  const std::string data_dir = tmp + "/data";
  const std::string db_path = data_dir + "/db";
  const std::string stats_path = tmp + "/sink.stats";
  const std::string config_path = tmp + "/relay.yaml";
  const std::string log_path = tmp + "/relayd.log";
  fs::create_directories(data_dir);
  note("work dir %s", tmp.c_str());
  const auto bench_start = steady::now();

  json out;
  out["schema"] = "relay-bench/1";
  out["when"] = iso_now(false);
  {
    utsname u{};
    ::uname(&u);
    json m;
    m["cpu"] = first_line_of("/proc/cpuinfo", "model name");
    m["cores"] = std::thread::hardware_concurrency();
    m["memory_gb"] = std::round(static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGE_SIZE) / 1e9);
    m["kernel"] = std::string(u.release);
    m["os"] = first_line_of("/etc/os-release", "PRETTY_NAME");
    m["compiler"] = __VERSION__;
    {
      std::ifstream la("/proc/loadavg");
      double l1 = 0;
      la >> l1;
      m["loadavg_1m_at_start"] = l1;
    }
    out["machine"] = m;
    json b;
    b["commit"] = command_output("git -C '" + std::string(RELAY_BENCH_SOURCE_DIR) + "' rev-parse --short HEAD 2>/dev/null");
    b["dirty"] = !command_output("git -C '" + std::string(RELAY_BENCH_SOURCE_DIR) +
                                 "' status --porcelain --untracked-files=no 2>/dev/null")
                      .empty();
    b["build_type"] = command_output("grep -m1 '^CMAKE_BUILD_TYPE:' '" + opt.build_dir +
                                     "/CMakeCache.txt' 2>/dev/null | cut -d= -f2");
    out["build"] = b;
    json p;
    p["users"] = opt.users;
    p["jobs"] = opt.jobs;
    p["latency_seconds"] = opt.latency_seconds;
    p["latency_rate"] = opt.latency_rate > 0 ? json(opt.latency_rate) : json("half the sustained rate");
    p["partitions"] = opt.partitions;
    p["connector_queue"] = opt.connector_queue;
    p["fanout_chunk"] = opt.fanout_chunk;
    p["fetch_wait_max_ms"] = opt.fetch_wait_ms;
    p["pending_jobs_per_partition"] = opt.pending_jobs > 0 ? json(opt.pending_jobs) : json("default");
    out["parameters"] = p;
  }
  if (out["build"]["build_type"] != "Release") {
    note("warning: %s is a %s build; figures are meant for Release", opt.build_dir.c_str(),
         out["build"]["build_type"].get<std::string>().c_str());
  }

  // ---- Kafka, hosted here --------------------------------------------------
  relay::kafka_topics topics;
  auto cluster = relay::embedded_kafka::start(topics, opt.partitions);
  if (!cluster) die(cluster.err().message);
  const std::string bootstrap = (*cluster)->bootstrap();
  relay::embedded_kafka* cluster_ptr = cluster->get();
  note("embedded Kafka at %s", bootstrap.c_str());

  // ---- 1. registry load ----------------------------------------------------
  roaring::Roaring all_set, where_set;
  double targeting_all_ms = 0, targeting_where_ms = 0;
  {
    note("loading %zu users (%zu registry records) into %s", opt.users, opt.users * 2, db_path.c_str());
    relay::store_options so;
    auto db = relay::store::open(db_path, so);
    if (!db) die(db.err().message);
    relay::system_clock clk;
    relay::registry_writer writer(**db, clk);
    relay::registry_record up, reg;
    constexpr size_t kBatchRecords = 50000;
    const auto t0 = steady::now();
    for (size_t i = 0; i < opt.users; ++i) {
      fill_user(i, up, reg);
      if (auto r = writer.stage(up); !r) die("stage: " + r.err().message);
      if (auto r = writer.stage(reg); !r) die("stage: " + r.err().message);
      if (writer.staged_records() >= kBatchRecords || i + 1 == opt.users) {
        rocksdb::WriteBatch batch;
        writer.flush_into(batch);
        if (auto r = (*db)->write(batch); !r) die("write: " + r.err().message);
      }
    }
    const double staged_s = seconds_since(t0);
    if (opt.pending_timers > 0) {
      // Sends waiting for tomorrow's window (of a job long gone): relay must
      // take jobs just as fast with them pending (issue 4).
      relay::timer_store timers(**db);
      const relay::sys_time tomorrow = clk.now() + std::chrono::hours(24);
      rocksdb::WriteBatch batch;
      for (size_t i = 0; i < opt.pending_timers; ++i) {
        relay::timer t;
        t.due = tomorrow + std::chrono::milliseconds(i % 3'600'000);
        t.job_seq = 1'000'000'000 + i / 1000;
        t.ordinal = static_cast<uint32_t>(i % opt.users);
        timers.add(batch, t);
        if (batch.Count() >= 50000 || i + 1 == opt.pending_timers) {
          if (auto r = (*db)->write(batch); !r) die("write timers: " + r.err().message);
          batch.Clear();
        }
      }
      note("stored %zu pending timers due tomorrow", opt.pending_timers);
      out["pending_timers"] = opt.pending_timers;
    }
    (*db)->close();  // flushes the memtables: part of the load
    const double load_s = seconds_since(t0);
    const double records = static_cast<double>(opt.users) * 2;
    json j;
    j["users"] = opt.users;
    j["records"] = opt.users * 2;
    j["seconds"] = load_s;
    j["seconds_before_flush"] = staged_s;
    j["records_per_s"] = records / load_s;
    j["users_per_s"] = static_cast<double>(opt.users) / load_s;
    j["method"] = "registry_writer + WriteBatch of 50000 records, then store close (memtable flush)";
    out["registry_load"] = j;
    note("registry load: %.1f s, %s records (%s users)", load_s, fmt_rate(records / load_s).c_str(),
         fmt_rate(opt.users / load_s).c_str());
  }

  // ---- 2. RocksDB reference ------------------------------------------------
  {
    relay::store_options so;
    auto db = relay::store::open(db_path, so);
    if (!db) die(db.err().message);
    const relay::job_limits limits;
    const relay::system_clock clk;
    auto all_job = relay::parse_job(broadcast_all_job("ref-all"), limits);
    auto where_job = relay::parse_job(broadcast_where_job("ref-where"), limits);
    if (!all_job || !where_job) die("bench job does not parse");
    auto t0 = steady::now();
    auto all = relay::resolve_target(**db, *all_job, clk.now());
    targeting_all_ms = seconds_since(t0) * 1000;
    t0 = steady::now();
    auto where = relay::resolve_target(**db, *where_job, clk.now());
    targeting_where_ms = seconds_since(t0) * 1000;
    if (!all || !where) die("resolve_target failed");
    all_set = std::move(all->recipients);
    where_set = std::move(where->recipients);
    if (all_set.cardinality() != opt.users) {
      die("broadcast resolves to " + std::to_string(all_set.cardinality()) + " users, expected " +
          std::to_string(opt.users));
    }
    note("reference reads: %" PRIu64 " (all) and %" PRIu64 " (where) directory entries", all_set.cardinality(),
         where_set.cardinality());
    json ref;
    for (auto& [name, set] : {std::pair<const char*, const roaring::Roaring*>{"all", &all_set},
                              std::pair<const char*, const roaring::Roaring*>{"where", &where_set}}) {
      const read_result scan = best_of(3, [&] { return directory_scan(**db, *set); });
      const read_result mget = best_of(3, [&] { return directory_multiget(**db, *set); });
      json r;
      r["entries"] = scan.entries;
      r["iterator_per_s"] = scan.rate();
      r["multiget_per_s"] = mget.rate();
      r["reference_per_s"] = std::max(scan.rate(), mget.rate());
      r["bytes_per_entry"] = scan.entries ? double(scan.bytes) / scan.entries : 0;
      r["resolve_target_ms"] = std::string(name) == "all" ? targeting_all_ms : targeting_where_ms;
      ref[name] = r;
      note("  %s: iterator %s, MultiGet %s, resolve_target %.1f ms", name, fmt_rate(scan.rate()).c_str(),
           fmt_rate(mget.rate()).c_str(), r["resolve_target_ms"].get<double>());
    }
    out["rocksdb_reference"] = ref;
    (*db)->close();
  }

  // ---- 3. pre-fill and the bare consumer reference ---------------------------
  {
    note("producing %zu single-recipient jobs to %s", opt.jobs, topics.jobs.c_str());
    auto producer = make_producer(bootstrap, {});
    const auto t0 = steady::now();
    for (size_t i = 0; i < opt.jobs; ++i) {
      produce_or_die(*producer, topics.jobs, job_key(i),
                     single_job("tp-" + std::to_string(i), user_for_job(i, opt.users), "hello"));
    }
    if (auto r = producer->flush(std::chrono::seconds(60)); !r) die(r.err().message);
    check_nothing_trimmed(*producer, topics.jobs, opt.partitions);
    const double s = seconds_since(t0);
    out["prefill"] = {{"jobs", opt.jobs}, {"seconds", s}, {"jobs_per_s", opt.jobs / s}};
    note("pre-fill: %.1f s (%s)", s, fmt_rate(opt.jobs / s).c_str());

    // Best of three reads: the reference is what Kafka allows on this machine
    // at its least disturbed.
    consumer_result ref;
    const cpu_snapshot ref_cpu0 = cpu_now(0);
    for (int run = 0; run < 3; ++run) {
      const consumer_result r = bare_consume(bootstrap, topics.jobs, opt.partitions, opt.jobs, std::chrono::seconds(120),
                                             opt.fetch_wait_ms);
      if (r.messages < opt.jobs) die("reference consumer read only " + std::to_string(r.messages) + " messages");
      if (run == 0 || r.first_to_last_s < ref.first_to_last_s) ref = r;
    }
    json j;
    j["messages"] = ref.messages;
    j["bytes_per_message"] = double(ref.bytes) / ref.messages;
    j["first_to_last_s"] = ref.first_to_last_s;
    j["assign_to_last_s"] = ref.total_s;
    j["messages_per_s"] = (ref.messages - 1) / ref.first_to_last_s;
    j["method"] = "rd_kafka_assign (all partitions, from the beginning) + rd_kafka_consume_batch_queue(10000); best of 3";
    j["cpu_cores_3_runs"] = cpu_use(ref_cpu0, cpu_now(0));
    out["consumer_reference"] = j;
    note("bare consumer: %s (first to last message), %.2f s from assign", fmt_rate(j["messages_per_s"]).c_str(),
         ref.total_s);
  }

  // ---- 4. relayd works the backlog -------------------------------------------
  {
    std::ofstream y(config_path);
    y << "# written by relay_bench\n"
      << "data_dir: " << data_dir << "\n"
      << "kafka:\n"
      << "  brokers: \"" << bootstrap << "\"\n"
      << "  group_id: relay-bench\n"
      << "  properties:\n"
      << "    fetch.wait.max.ms: " << opt.fetch_wait_ms << "\n";
    for (const auto& [k, v] : opt.kafka_properties) y << "    " << k << ": \"" << v << "\"\n";
    y
      << "plugins_dir: " << plugins_dir << "\n"
      << "carriers:\n"
      << "  - id: " << kCarrier << "\n"
      << "    channels:\n"
      << "      sms: {plugin: bench_sink, stats_file: \"" << stats_path << "\"}\n"
      << "      email: {plugin: bench_sink, stats_file: \"" << stats_path << "\"}\n"
      << "limits:\n"
      << "  connector_queue: " << opt.connector_queue << "\n"
      << "  fanout_chunk: " << opt.fanout_chunk << "\n";
    if (opt.pending_jobs > 0) y << "  pending_jobs_per_partition: " << opt.pending_jobs << "\n";
    y
      << "log:\n"
      << "  level: " << opt.log_level << "\n";
  }
  const double self_cpu_before = self_cpu_seconds();
  g_relayd = start_relayd(relayd, config_path, log_path, opt.relayd_prefix);
  const pid_t child = g_relayd;
  auto running = [child] { return g_relayd > 0 && child_running(child); };
  {
    const auto deadline = steady::now() + std::chrono::seconds(60);
    while (!file_contains(log_path, "relayd ready")) {
      if (!running()) die("relayd exited during start-up:\n" + tail_of(log_path, 20));
      if (steady::now() >= deadline) die("relayd not ready within 60 s:\n" + tail_of(log_path, 20));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const auto relayd_ready = steady::now();
  const pid_t pid = find_relayd(child, !opt.relayd_prefix.empty());  // for CPU and memory figures
  const auto threads_at_ready = thread_cpu(pid);
  const cpu_snapshot cpu_at_ready = cpu_now(pid);
  note("relayd ready (pid %d); waiting for the backlog of %zu jobs", pid, opt.jobs);
  const sink_stats tp = wait_stats(stats_path, std::chrono::seconds(240), "backlog",
                                   [&](const sink_stats& s) { return s.count >= opt.jobs; }, running);
  const double cpu_after_tp = cpu_seconds(pid);
  {
    json j;
    j["jobs"] = opt.jobs;
    j["submitted"] = tp.count;
    const double span = (tp.last_us - tp.first_us) / 1e6;
    j["first_to_last_submit_s"] = span;
    j["ready_to_last_submit_s"] = seconds_since(relayd_ready);
    j["jobs_per_s"] = tp.count > 1 && span > 0 ? (tp.count - 1) / span : 0;
    j["relayd_cpu_s"] = cpu_after_tp;
    j["relayd_cpu_us_per_job"] = tp.count ? cpu_after_tp * 1e6 / tp.count : 0;
    j["relayd_threads_cpu_s"] = thread_cpu_delta(threads_at_ready, thread_cpu(pid));
    j["cpu_cores_ready_to_last"] = cpu_use(cpu_at_ready, cpu_now(pid));
    out["throughput"] = j;
    note("throughput: %s (%" PRIu64 " jobs in %.2f s first to last submit; relayd %.1f CPU s)",
         fmt_rate(j["jobs_per_s"]).c_str(), tp.count, span, cpu_after_tp);
  }
  const double sustained = out["throughput"]["jobs_per_s"].get<double>();

  // ---- 5. latency at half load -------------------------------------------------
  uint64_t expected = tp.count;
  uint64_t latency_start_us = 0, latency_end_us = 0;
  if (opt.latency && running() && tp.count >= opt.jobs) {
    const double rate = opt.latency_rate > 0 ? opt.latency_rate : std::clamp(sustained / 2, 100.0, 200000.0);
    const size_t n = static_cast<size_t>(rate * opt.latency_seconds);
    note("latency: %zu jobs at %.0f jobs/s", n, rate);
    // linger.ms 0: the producer sends at once, so the figure is relay's, not the client's batching.
    auto producer = make_producer(bootstrap, {{"linger.ms", "0"}});
    const double cpu0 = cpu_seconds(pid);
    const auto threads0 = thread_cpu(pid);
    const cpu_snapshot lat_cpu0 = cpu_now(pid);
    const auto t0 = steady::now();
    latency_start_us = now_unix_us();
    produce_paced(*producer, topics.jobs, rate, n, [&](size_t i, const std::string& text) {
      return single_job("lat-" + std::to_string(i), user_for_job(i + opt.jobs, opt.users), text);
    });
    const double produce_s = seconds_since(t0);
    expected += n;
    const sink_stats ls = wait_stats(stats_path, std::chrono::seconds(60), "latency",
                                     [&](const sink_stats& s) { return s.count >= expected; }, running);
    const double cpu1 = cpu_seconds(pid);
    json j;
    j["rate_jobs_per_s"] = rate;
    j["achieved_produce_rate"] = n / produce_s;
    j["jobs"] = n;
    j["measured"] = ls.lat_count;
    j["p50_us"] = ls.p50;
    j["p90_us"] = ls.p90;
    j["p99_us"] = ls.p99;
    j["p999_us"] = ls.p999;
    j["max_us"] = ls.max;
    j["relayd_cpu_fraction"] = (cpu1 - cpu0) / seconds_since(t0);
    j["relayd_threads_cpu_s"] = thread_cpu_delta(threads0, thread_cpu(pid));
    j["cpu_cores"] = cpu_use(lat_cpu0, cpu_now(pid));
    latency_end_us = now_unix_us();
    j["producer"] = "relay::kafka_producer, linger.ms=0; stamp taken just before produce()";
    out["latency"] = j;
    note("latency: p50 %s p99 %s p99.9 %s max %s (%" PRIu64 " jobs)", fmt_ms(ls.p50).c_str(),
         fmt_ms(ls.p99).c_str(), fmt_ms(ls.p999).c_str(), fmt_ms(ls.max).c_str(), ls.lat_count);
    expected = ls.count;

    // The same load through Kafka alone (relayd idles meanwhile).
    const std::string ref_topic = "bench.latency";
    if (auto r = cluster_ptr->create_topic(ref_topic, opt.partitions); !r) die(r.err().message);
    const cpu_snapshot ref_cpu0 = cpu_now(pid);
    const latency_result ref =
        bare_latency(bootstrap, ref_topic, opt.partitions, rate, n, opt.fetch_wait_ms, [&](size_t i, const std::string& text) {
          return single_job("ref-" + std::to_string(i), user_for_job(i + opt.jobs, opt.users), text);
        });
    json rj;
    rj["measured"] = ref.measured;
    rj["p50_us"] = ref.p50;
    rj["p90_us"] = ref.p90;
    rj["p99_us"] = ref.p99;
    rj["p999_us"] = ref.p999;
    rj["max_us"] = ref.max;
    rj["cpu_cores"] = cpu_use(ref_cpu0, cpu_now(pid));
    rj["method"] = "same producer, rate, job bytes and partition count on topic " + ref_topic +
                   "; bare consumer (assign + rd_kafka_consume_batch_queue) stamps each message on arrival";
    out["latency_reference"] = rj;
    note("latency reference (Kafka only): p50 %s p99 %s (%" PRIu64 " messages)", fmt_ms(ref.p50).c_str(),
         fmt_ms(ref.p99).c_str(), ref.measured);
  }

  // ---- 6. broadcasts -----------------------------------------------------------
  struct broadcast_run {
    const char* name;
    std::string job_id;
    std::string json;
    uint64_t recipients;
    uint64_t produced_us = 0;
    tracked seen;
    double cpu_s = 0;
    nlohmann::ordered_json threads;
    nlohmann::ordered_json cores;
  };
  broadcast_run runs[] = {
      {"all", "track-bc-all", broadcast_all_job("track-bc-all"), all_set.cardinality(), 0, {}, 0, {}, {}},
      // The same broadcast with channel choice: relay picks SMS or email per
      // recipient from the segment model (issue 4: at most 20 % added cost).
      {"best", "track-bc-best", broadcast_all_job("track-bc-best", "{\"mode\":\"best\",\"order\":[\"sms\",\"email\"]}"),
       all_set.cardinality(), 0, {}, 0, {}, {}},
      {"where", "track-bc-where", broadcast_where_job("track-bc-where"), where_set.cardinality(), 0, {}, 0, {}, {}},
  };
  if (opt.broadcast && running()) {
    auto producer = make_producer(bootstrap, {{"linger.ms", "0"}});
    for (broadcast_run& b : runs) {
      note("broadcast %s: %" PRIu64 " recipients", b.name, b.recipients);
      const double cpu0 = cpu_seconds(pid);
      const auto threads0 = thread_cpu(pid);
      const cpu_snapshot bc_cpu0 = cpu_now(pid);
      b.produced_us = now_unix_us();
      produce_or_die(*producer, topics.jobs, kCompany, b.json);
      if (auto r = producer->flush(std::chrono::seconds(10)); !r) die(r.err().message);
      const sink_stats s = wait_stats(
          stats_path, std::chrono::seconds(240), b.name,
          [&](const sink_stats& st) {
            auto it = st.jobs.find(b.job_id);
            return it != st.jobs.end() && it->second.count >= b.recipients;
          },
          running);
      if (auto it = s.jobs.find(b.job_id); it != s.jobs.end()) b.seen = it->second;
      b.cpu_s = cpu_seconds(pid) - cpu0;
      b.threads = thread_cpu_delta(threads0, thread_cpu(pid));
      b.cores = cpu_use(bc_cpu0, cpu_now(pid));
      if (!running()) break;
    }
  }

  const double relayd_cpu_total = g_relayd > 0 ? cpu_seconds(pid) : 0;
  const uint64_t relayd_rss_kb = g_relayd > 0 ? peak_rss_kb(pid) : 0;
  const double self_cpu = self_cpu_seconds() - self_cpu_before;
  std::string exit_text = "not running";
  if (g_relayd > 0) {
    if (pid != child) ::kill(pid, SIGTERM);  // relayd itself; the prefix command then ends too
    exit_text = stop_relayd(child, std::chrono::seconds(60));
  }
  note("relayd stopped: %s", exit_text.c_str());
  out["relayd"] = {{"stop", exit_text},
                   {"cpu_s", relayd_cpu_total},
                   {"peak_rss_mb", relayd_rss_kb / 1024.0},
                   {"bench_process_cpu_s_while_relayd_ran", self_cpu},
                   {"log_tail", tail_of(log_path, 8)}};

  // When the latency tail happened: the plug-in's 100 ms windows of the phase.
  if (out.contains("latency")) {
    std::ifstream in(stats_path + ".series");
    std::vector<std::array<uint64_t, 3>> windows;
    std::array<uint64_t, 3> w;
    while (in >> w[0] >> w[1] >> w[2]) {
      if (w[0] + 100000 > latency_start_us && w[0] <= latency_end_us) windows.push_back(w);
    }
    size_t over = 0;
    for (const auto& x : windows) over += x[2] > 10000;
    std::sort(windows.begin(), windows.end(), [](const auto& a, const auto& b) { return a[2] > b[2]; });
    json worst = json::array();
    for (size_t i = 0; i < windows.size() && i < 5; ++i) {
      worst.push_back({{"at_s", (double(windows[i][0]) - double(latency_start_us)) / 1e6},
                       {"jobs", windows[i][1]},
                       {"max_ms", windows[i][2] / 1000.0}});
    }
    out["latency"]["windows_100ms"] = windows.size();
    out["latency"]["windows_with_max_over_10ms"] = over;
    out["latency"]["worst_windows"] = worst;
  }

  // Accept times from relayd's own job records (ms resolution).
  {
    relay::store_options so;
    auto db = relay::store::open(db_path, so);
    json bc;
    for (broadcast_run& b : runs) {
      json j;
      j["recipients"] = b.recipients;
      j["submitted"] = b.seen.count;
      int64_t accepted_ms = 0;
      if (db) {
        if (auto job = relay::load_job(**db, b.job_id)) accepted_ms = job->record.accepted_at_ms;
      }
      const double accept_to_last = accepted_ms > 0 && b.seen.last_us > 0
                                        ? (double(b.seen.last_us) - double(accepted_ms) * 1000.0) / 1e6
                                        : 0;
      const double produce_to_last = b.seen.last_us > 0 ? (double(b.seen.last_us) - double(b.produced_us)) / 1e6 : 0;
      const double first_to_last = b.seen.count > 1 ? (double(b.seen.last_us) - double(b.seen.first_us)) / 1e6 : 0;
      j["produce_to_accept_s"] = accepted_ms > 0 ? (double(accepted_ms) * 1000.0 - double(b.produced_us)) / 1e6 : 0;
      j["accept_to_first_submit_s"] = accepted_ms > 0 && b.seen.first_us > 0
                                          ? (double(b.seen.first_us) - double(accepted_ms) * 1000.0) / 1e6
                                          : 0;
      j["accept_to_last_submit_s"] = accept_to_last;
      j["produce_to_last_submit_s"] = produce_to_last;
      j["recipients_per_s"] = accept_to_last > 0 ? b.seen.count / accept_to_last : 0;
      j["first_to_last_submit_per_s"] = first_to_last > 0 ? (b.seen.count - 1) / first_to_last : 0;
      j["relayd_cpu_s"] = b.cpu_s;
      j["relayd_threads_cpu_s"] = b.threads;
      j["cpu_cores"] = b.cores;
      bc[b.name] = j;
      note("broadcast %s: %" PRIu64 "/%" PRIu64 " submitted, %s accept->last (%.2f s)", b.name, b.seen.count,
           b.recipients, fmt_rate(j["recipients_per_s"]).c_str(), accept_to_last);
    }
    out["broadcast"] = bc;
  }
  out["bench_seconds"] = seconds_since(bench_start);

  // ---- report ---------------------------------------------------------------------
  const json& tpj = out["throughput"];
  const json& cref = out["consumer_reference"];
  const double ref_rate = cref["messages_per_s"].get<double>();
  const double tp_rate = tpj["jobs_per_s"].get<double>();
  std::vector<row> rows;
  json targets;
  auto verdict = [](bool ok) { return std::string(ok ? "yes" : "NO"); };
  {
    const bool ok_rate = tp_rate >= 50000;
    const bool ok_ratio = ref_rate > 0 && tp_rate / ref_rate >= 0.5;
    rows.push_back({"single-recipient jobs/s (" + std::to_string(opt.jobs) + " backlog)", fmt_rate(tp_rate),
                    fmt_rate(ref_rate) + " bare consumer", ref_rate > 0 ? fmt_pct(tp_rate / ref_rate) : "-",
                    ">= 50 k/s; >= 50 %", verdict(ok_rate) + "; " + verdict(ok_ratio)});
    targets["jobs_per_s_50k"] = ok_rate;
    targets["jobs_vs_consumer_50pct"] = ok_ratio;
  }
  if (out.contains("latency")) {
    const json& l = out["latency"];
    const bool ok = l["p99_us"].get<uint64_t>() <= 10000 && l["measured"].get<uint64_t>() > 0;
    char fig[96];
    std::snprintf(fig, sizeof fig, "latency p50 / p99 at %.0f jobs/s", l["rate_jobs_per_s"].get<double>());
    std::string ref_text = "-";
    if (out.contains("latency_reference")) {
      const json& r = out["latency_reference"];
      ref_text = fmt_ms(r["p50_us"].get<double>()) + " / " + fmt_ms(r["p99_us"].get<double>()) + " bare consumer";
    }
    rows.push_back({fig, fmt_ms(l["p50_us"].get<double>()) + " / " + fmt_ms(l["p99_us"].get<double>()), ref_text, "-",
                    "p99 <= 10 ms", verdict(ok)});
    targets["p99_10ms"] = ok;
  } else {
    rows.push_back({"latency p50 / p99", "not measured", "-", "-", "p99 <= 10 ms", "NO"});
    targets["p99_10ms"] = false;
  }
  for (const char* name : {"all", "where"}) {
    const json& b = out["broadcast"][name];
    const json& r = out["rocksdb_reference"][name];
    const double rate = b["recipients_per_s"].get<double>();
    const double ref = r["reference_per_s"].get<double>();
    const bool complete = b["submitted"].get<uint64_t>() >= b["recipients"].get<uint64_t>();
    const bool ok = complete && rate >= 1e6;
    rows.push_back({std::string("broadcast ") + name + " recipients/s (" + std::to_string(b["recipients"].get<uint64_t>()) +
                        ")",
                    complete ? fmt_rate(rate) : "incomplete", fmt_rate(ref) + " bare RocksDB",
                    ref > 0 ? fmt_pct(rate / ref) : "-", std::string(name) == "all" ? ">= 1 M/s" : "(>= 1 M/s)",
                    verdict(ok)});
    targets[std::string("broadcast_") + name + "_1M"] = ok;
  }
  if (out["broadcast"].contains("best")) {
    const json& best = out["broadcast"]["best"];
    const json& all = out["broadcast"]["all"];
    const double rate = best["recipients_per_s"].get<double>();
    const double ref = all["recipients_per_s"].get<double>();
    const bool complete = best["submitted"].get<uint64_t>() >= best["recipients"].get<uint64_t>();
    // Cost per recipient is 1/rate: choice adds (ref / rate - 1).
    const double added = rate > 0 ? ref / rate - 1 : 0;
    const bool ok = complete && rate > 0 && added <= 0.20;
    rows.push_back({"broadcast all with channel choice (best) recipients/s", complete ? fmt_rate(rate) : "incomplete",
                    fmt_rate(ref) + " specified", ref > 0 ? fmt_pct(rate / ref) : "-", "<= 20 % added cost",
                    verdict(ok)});
    targets["channel_choice_within_20pct"] = ok;
    out["channel_choice"] = {{"specified_per_s", ref}, {"best_per_s", rate}, {"added_cost", added}};
  }
  rows.push_back({"registry load records/s (" + std::to_string(opt.users * 2) + ")",
                  fmt_rate(out["registry_load"]["records_per_s"].get<double>()), "-", "-", "(millions in minutes)",
                  verdict(out["registry_load"]["seconds"].get<double>() < 300)});
  out["targets_met"] = targets;

  std::printf("\nrelay_bench %s on %s (%u cores)\n\n", out["when"].get<std::string>().c_str(),
              out["machine"]["cpu"].get<std::string>().c_str(), std::thread::hardware_concurrency());
  print_table(rows);
  std::printf("\nrelayd CPU %.1f s, peak RSS %.0f MB; bench process (Kafka brokers) CPU %.1f s; whole run %.0f s\n",
              relayd_cpu_total, relayd_rss_kb / 1024.0, self_cpu, out["bench_seconds"].get<double>());
  // Other work on the machine during each relay phase, in cores (of the machine's total).
  {
    std::string line;
    auto add = [&](const char* name, const json& phase, const char* key) {
      if (!phase.contains(key)) return;
      const json& c = phase[key];
      if (!c.contains("other_processes_cores")) return;
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s%s relayd %.2f / brokers+bench %.2f / other %.2f", line.empty() ? "" : "; ",
                    name, c["relayd_cores"].get<double>(), c["bench_process_cores"].get<double>(),
                    c["other_processes_cores"].get<double>());
      line += buf;
    };
    add("backlog:", out["throughput"], "cpu_cores_ready_to_last");
    if (out.contains("latency")) add("latency:", out["latency"], "cpu_cores");
    if (out["broadcast"].contains("all")) add("broadcast:", out["broadcast"]["all"], "cpu_cores");
    if (!line.empty()) std::printf("cores used (of %u) - %s\n", std::thread::hardware_concurrency(), line.c_str());
  }
  std::fflush(stdout);
  json table = json::array();
  for (const row& r : rows) {
    table.push_back({{"figure", r.figure}, {"relay", r.relay}, {"reference", r.reference}, {"ratio", r.ratio},
                     {"target", r.target}, {"met", r.verdict}});
  }
  out["table"] = table;

  if (!opt.no_results && !opt.results_dir.empty()) {
    fs::create_directories(opt.results_dir);
    const std::string text = out.dump(2) + "\n";
    const std::string stamped = opt.results_dir + "/" + iso_now(true) + ".json";
    for (const std::string& path : {opt.results_dir + "/latest.json", stamped}) {
      std::ofstream f(path);
      f << text;
    }
    note("results: %s/latest.json and %s", opt.results_dir.c_str(), stamped.c_str());
  }
  if (!opt.keep) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
  } else {
    note("kept %s (relayd.log, relay.yaml, data/)", tmp.c_str());
  }
  return 0;
}
