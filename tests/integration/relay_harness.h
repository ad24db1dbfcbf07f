#pragma once
// Integration-test harness: one Kafka-protocol cluster (librdkafka's mock)
// hosted in the test process and shared by the binary's tests, relayd run as
// a real child process against it, and readers for what relayd produced
// (topics, file_sink outboxes, its RocksDB through a secondary instance).
//
// Each test gets its own topic names, consumer group and data_dir, so tests
// do not see each other's messages.

#include <fcntl.h>
#include <sys/prctl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/kafka.h"
#include "routing/counters.h"
#include "routing/job_store.h"
#include "routing/store.h"
#include "tests/test_support.h"

namespace relay::test {

// Runs a shell command; returns its exit status and what it printed (stdout and stderr).
inline std::pair<int, std::string> run_command(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline embedded_kafka& shared_cluster() {
  static std::unique_ptr<embedded_kafka> cluster = [] {
    kafka_topics none{"bootstrap.jobs", "bootstrap.registry", "bootstrap.events", "bootstrap.dlq",
                      "bootstrap.bids"};
    auto c = embedded_kafka::start(none, 1);
    if (!c) {
      ADD_FAILURE() << "cannot start the Kafka mock cluster: " << c.err().message;
      std::abort();
    }
    return std::move(*c);
  }();
  return *cluster;
}

struct kafka_record {
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
  int32_t partition = 0;
  int64_t offset = 0;
};

// A relayd child process with its own config, topics and data_dir.
class relay_instance {
 public:
  struct options {
    int partitions = 2;
    std::string carriers_multi = "primary";
    std::string extra_yaml;  // appended to the config (limits, retry, ...)
    // Settings appended to every file_sink connector, e.g. "fsync: true".
    std::string sink_settings;
    // Settings appended to one carrier's connectors, by carrier id (after sink_settings).
    std::map<std::string, std::string> carrier_settings;
    // When set, the whole `carriers:` list (YAML, without the key) instead of
    // the three file_sink carriers, e.g. to run a real carrier plug-in.
    std::string carriers_yaml;
  };

  explicit relay_instance(const std::string& name) : relay_instance(name, options{}) {}
  relay_instance(const std::string& name, options opt) : name_(name), opt_(std::move(opt)) {
    static std::atomic<int> counter{0};
    prefix_ = name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    topics_ = {prefix_ + ".jobs", prefix_ + ".registry", prefix_ + ".events", prefix_ + ".dlq",
               prefix_ + ".bids"};
    for (const auto& t : {topics_.jobs, topics_.registry, topics_.events, topics_.dlq, topics_.bids}) {
      auto r = shared_cluster().create_topic(t, opt_.partitions);
      EXPECT_TRUE(r) << (r ? "" : r.err().message);
    }
    write_config();
  }

  ~relay_instance() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
  }

  const std::string& config_path() const { return config_path_; }
  // Change options between runs; takes effect with the next start().
  void reconfigure(const std::function<void(options&)>& change) {
    change(opt_);
    write_config();
  }
  // The address relayd's HTTP server bound (it listens on a free port).
  std::string http_address() const {
    std::ifstream in(data_dir_ + "/http.address");
    std::string line;
    std::getline(in, line);
    return line;
  }
  const std::string& data_dir() const { return data_dir_; }
  std::string outbox(const std::string& carrier) const { return dir_ / ("outbox/" + carrier); }
  const kafka_topics& topics() const { return topics_; }
  std::string log_text() const {
    std::ifstream in(log_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Starts relayd and waits until it consumes jobs (the group join takes a few seconds).
  void start() {
    ++starts_;
    const std::string relayd = std::string(RELAY_BINARY_DIR) + "/relayd";
    pid_ = ::fork();
    if (pid_ == 0) {
      // A test that dies (an assertion, a sanitizer report) takes its relayd
      // with it, so no orphan holds ctest's output pipe open until the timeout.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(relayd.c_str(), relayd.c_str(), "--config", config_path_.c_str(), nullptr);
      ::_exit(127);
    }
    ASSERT_GT(pid_, 0);
    const std::string assigned = topics_.jobs + ": assigned";
    ASSERT_TRUE(wait_until(
        [&] {
          const std::string log = log_text();
          return count_of(log, "relayd ready") >= starts_ && count_of(log, assigned) >= starts_;
        },
        std::chrono::seconds(60)))
        << "relayd did not become ready:\n"
        << log_text();
  }

  // Sends `sig` and waits for the process to exit; returns its exit status.
  int stop(int sig = SIGTERM, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    bool exited = wait_until(
        [&] {
          const pid_t r = ::waitpid(pid_, &status, WNOHANG);
          return r == pid_;
        },
        timeout);
    if (!exited) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      ADD_FAILURE() << "relayd did not exit within the timeout after signal " << sig;
    }
    pid_ = -1;
    return status;
  }

  // --- Kafka ---------------------------------------------------------------
  void produce(const std::string& topic, const std::string& key, const std::string& value) {
    auto& p = producer();
    auto r = p.produce(topic, key, value);
    ASSERT_TRUE(r) << r.err().message;
  }
  void flush() {
    auto r = producer().flush(std::chrono::seconds(30));
    ASSERT_TRUE(r) << r.err().message;
  }
  void send_job(const std::string& json, const std::string& company = "acme") {
    produce(topics_.jobs, company, json);
    flush();
  }
  void send_registry(const std::vector<std::string>& records) {
    for (const auto& r : records) {
      auto j = nlohmann::json::parse(r, nullptr, false);
      produce(topics_.registry, j.is_object() && j.contains("user_id") && j["user_id"].is_string()
                                    ? j["user_id"].get<std::string>() : "", r);
    }
    flush();
  }

  // Every record of `topic` so far (reads until the high watermarks).
  std::vector<kafka_record> read_topic(const std::string& topic) {
    std::vector<kafka_record> out;
    kafka_config kc;
    auto consumer = kafka_consumer::assign_all(kc, shared_cluster().bootstrap(), topic, {},
                                               std::chrono::seconds(10));
    EXPECT_TRUE(consumer) << (consumer ? "" : consumer.err().message);
    if (!consumer) return out;
    std::vector<int64_t> ends(opt_.partitions);
    for (int p = 0; p < opt_.partitions; ++p) {
      auto hw = (*consumer)->high_watermark(p, std::chrono::seconds(5));
      ends[p] = hw ? *hw : 0;
    }
    std::vector<int64_t> next(opt_.partitions, 0);
    auto done = [&] {
      for (int p = 0; p < opt_.partitions; ++p) {
        if (next[p] < ends[p]) return false;
      }
      return true;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      message_batch batch;
      (*consumer)->consume(batch, 1000, std::chrono::milliseconds(100));
      for (size_t i = 0; i < batch.size(); ++i) {
        const rd_kafka_message_t* m = batch[i];
        kafka_record r;
        r.key.assign(relay::key(m));
        r.value.assign(payload(m));
        r.partition = m->partition;
        r.offset = m->offset;
        rd_kafka_headers_t* hdrs = nullptr;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* name;
          const void* val;
          size_t size;
          for (size_t h = 0; rd_kafka_header_get_all(hdrs, h, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++h) {
            r.headers[name] = std::string(static_cast<const char*>(val), size);
          }
        }
        next[m->partition] = m->offset + 1;
        out.push_back(std::move(r));
      }
    }
    EXPECT_TRUE(done()) << "could not read " << topic << " to its end";
    (*consumer)->close();
    return out;
  }

  std::vector<nlohmann::json> events() {
    std::vector<nlohmann::json> out;
    for (const auto& r : read_topic(topics_.events)) out.push_back(nlohmann::json::parse(r.value));
    return out;
  }

  // --- relayd's outputs -----------------------------------------------------
  // Lines of <outbox>/<channel>.jsonl of one carrier.
  std::vector<nlohmann::json> sink(const std::string& carrier, const std::string& channel) const {
    std::vector<nlohmann::json> out;
    std::ifstream in(outbox(carrier) + "/" + channel + ".jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }
  size_t sink_line_count(const std::string& carrier, const std::string& channel) const {
    std::ifstream in(outbox(carrier) + "/" + channel + ".jsonl");
    size_t n = 0;
    std::string line;
    while (std::getline(in, line)) n += !line.empty();
    return n;
  }

  // The job as relayd recorded it, read through a secondary instance.
  std::optional<stored_job> job(const std::string& job_id) {
    store* db = secondary();
    if (db == nullptr) return std::nullopt;
    auto j = load_job(*db, job_id);
    if (!j) return std::nullopt;
    return *j;
  }
  bool job_done(const std::string& job_id) {
    auto j = job(job_id);
    return j && j->record.state == job_state::done;
  }
  void close_secondary() { secondary_.reset(); }
  // relayd's database as a secondary, caught up now (valid until the next call).
  store* database() { return secondary(); }

  // Sum of one counter over all its dimensions (relayctl stats' source).
  uint64_t counter_total(counter_kind kind) {
    store* db = secondary();
    if (db == nullptr) return 0;
    auto rows = read_counters(*db);
    uint64_t n = 0;
    if (rows) {
      for (const auto& r : *rows) n += r.kind == kind ? r.value : 0;
    }
    return n;
  }

  // Runs relayctl with this instance's config; returns its exit status and output.
  std::pair<int, std::string> relayctl(const std::string& args) {
    return run_command(std::string(RELAY_BINARY_DIR) + "/relayctl --config " + config_path_ + " " + args);
  }
  std::string path(const std::string& name) const { return dir_ / name; }

 private:
  static size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
  }

  // relayd's database as a fresh secondary instance (a long-lived secondary
  // does not always see what a primary wrote while it closed); null before
  // relayd created it.
  store* secondary() {
    secondary_.reset();
    store_options so;
    so.secondary = true;
    so.secondary_dir = dir_ / "secondary";
    auto db = store::open(data_dir_ + "/db", so);
    if (!db) return nullptr;
    secondary_ = std::move(*db);
    return secondary_.get();
  }

  kafka_producer& producer() {
    if (!producer_) {
      kafka_config kc;
      auto p = kafka_producer::create(kc, shared_cluster().bootstrap());
      if (!p) {
        ADD_FAILURE() << p.err().message;
        std::abort();
      }
      producer_ = std::move(*p);
    }
    return *producer_;
  }

  void write_config() {
    data_dir_ = dir_ / "data";
    config_path_ = dir_ / "relay.yaml";
    log_path_ = dir_ / "relayd.log";
    std::ofstream out(config_path_);
    const std::string sink_extra = opt_.sink_settings.empty() ? "" : ", " + opt_.sink_settings;
    out << "data_dir: " << data_dir_ << "\n"
        << "kafka:\n"
        << "  brokers: \"" << shared_cluster().bootstrap() << "\"\n"
        << "  group_id: " << prefix_ << "\n"
        // A restarted relayd rejoins as soon as the mock notices the old member is gone.
        << "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}\n"
        << "  topics: {jobs: " << topics_.jobs << ", registry: " << topics_.registry
        << ", events: " << topics_.events << ", dlq: " << topics_.dlq << ", bids: " << topics_.bids << "}\n"
        << "plugins_dir: " << RELAY_BINARY_DIR << "/plugins\n"
        << "carriers_multi: " << opt_.carriers_multi << "\n"
        << "shutdown: {drain_timeout: 10s}\n"
        << "http: {listen: \"127.0.0.1:0\"}\n"
        << "carriers:\n";
    if (!opt_.carriers_yaml.empty()) {
      out << opt_.carriers_yaml << opt_.extra_yaml;
      return;
    }
    for (const char* carrier : {"carrier-a", "carrier-b", "carrier-c"}) {
      out << "  - id: " << carrier << "\n    channels:\n";
      auto own = opt_.carrier_settings.find(carrier);
      const std::string carrier_extra = own == opt_.carrier_settings.end() ? "" : ", " + own->second;
      for (const char* ch : {"sms", "email"}) {
        out << "      " << ch << ": {plugin: file_sink, dir: " << outbox(carrier) << sink_extra
            << carrier_extra << "}\n";
      }
    }
    out << opt_.extra_yaml;
  }

  temp_dir dir_;
  std::string name_;
  options opt_;
  std::string prefix_;
  kafka_topics topics_;
  std::string data_dir_, config_path_, log_path_;
  pid_t pid_ = -1;
  int starts_ = 0;
  std::unique_ptr<kafka_producer> producer_;
  std::unique_ptr<store> secondary_;
};

// The events of one type, in order.
inline std::vector<nlohmann::json> of_type(const std::vector<nlohmann::json>& events, const std::string& type) {
  std::vector<nlohmann::json> out;
  for (const auto& e : events) {
    if (e["type"] == type) out.push_back(e);
  }
  return out;
}

// Registry record builders.
inline std::string upsert_user(const std::string& user, const std::string& region, const std::string& gender,
                               int birth_year, const std::vector<std::pair<std::string, bool>>& carriers) {
  nlohmann::json j{{"op", "upsert_user"},
                   {"user_id", user},
                   {"profile",
                    {{"msisdn", "+8190" + std::to_string(10000000 + std::hash<std::string>{}(user) % 89999999)},
                     {"email", user + "@example.jp"},
                     {"gender", gender},
                     {"birth_year", birth_year},
                     {"region", region},
                     {"tz", "Asia/Tokyo"}}}};
  j["carriers"] = nlohmann::json::array();
  for (const auto& [id, primary] : carriers) j["carriers"].push_back({{"carrier_id", id}, {"primary", primary}});
  return j.dump();
}

inline std::string register_user(const std::string& user, const std::string& company, const std::string& service) {
  return nlohmann::json{{"op", "register"}, {"user_id", user}, {"company_id", company}, {"service_id", service}}.dump();
}

}  // namespace relay::test
