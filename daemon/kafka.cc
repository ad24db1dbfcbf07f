#include "daemon/kafka.h"

// rdkafka_mock.h must come after rdkafka.h (included by kafka.h).
#include <fcntl.h>
#include <fmt/format.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace relay {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(steady::now().time_since_epoch()).count();
}

int timeout_ms(milliseconds t) {
  return static_cast<int>(std::clamp<int64_t>(t.count(), 0, INT_MAX));
}

int remaining_ms(steady::time_point deadline) {
  return timeout_ms(std::chrono::duration_cast<milliseconds>(deadline - steady::now()));
}

// At most one line per error code and interval, so a broker outage does not
// flood the log. `times` belongs to one client object (one thread).
bool should_log(std::vector<std::pair<int, int64_t>>& times, int code,
                int64_t interval_ms = 10000) {
  const int64_t now = now_ms();
  for (auto& [c, t] : times) {
    if (c != code) continue;
    if (now - t < interval_ms) return false;
    t = now;
    return true;
  }
  times.emplace_back(code, now);
  return true;
}

// librdkafka logs errors and warnings only (kafka.properties may change it):
// its warnings are the ones an operator must see, e.g. an offset reset that
// skipped unread messages, or max.poll.interval.ms exceeded.
constexpr const char* kLibrdkafkaLogLevel = "4";

// librdkafka's own log lines, from its threads, to spdlog (thread-safe).
void log_to_spdlog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // kafka.properties is shared by producers and consumers, so "X is a
  // consumer property and will be ignored by this producer" is expected.
  if (std::strcmp(fac, "CONFWARN") == 0 && std::strstr(buf, "will be ignored by this")) {
    level = 7;
  }
  const auto lvl = level <= 3   ? spdlog::level::err
                   : level == 4 ? spdlog::level::warn
                   : level <= 6 ? spdlog::level::info
                                : spdlog::level::debug;
  spdlog::log(lvl, "kafka {}: {}: {}", rk ? rd_kafka_name(rk) : "rdkafka", fac, buf);
}

struct conf_deleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;

struct list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using list_ptr = std::unique_ptr<rd_kafka_topic_partition_list_t, list_deleter>;

result<void> set_all(rd_kafka_conf_t* conf,
                     std::initializer_list<std::pair<const char*, std::string>> props) {
  char errstr[512];
  for (const auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf, name, value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      return make_error(errc::invalid_argument, fmt::format("kafka: {}: {}", name, errstr));
    }
  }
  return {};
}

// Keys relay sets itself: a user value would silently break the config's own
// keys or the at-least-once contract (DESIGN §2), so it is an error instead.
std::string_view reserved_reason(std::string_view name) {
  if (name == "bootstrap.servers" || name == "metadata.broker.list") return "use kafka.brokers";
  if (name == "group.id") return "use kafka.group_id";
  if (name == "enable.auto.offset.store" || name == "enable.auto.commit") {
    return "relay stores offsets itself once a job is durable and commits them (at-least-once)";
  }
  return {};
}

// Applies kafka.properties after relay's defaults, so users can tune anything
// that is not reserved. An invalid property names itself and librdkafka's reason.
result<void> apply_properties(rd_kafka_conf_t* conf, const kafka_config& cfg) {
  char errstr[512];
  for (const auto& [name, value] : cfg.properties) {
    if (auto why = reserved_reason(name); !why.empty()) {
      return make_error(errc::invalid_argument,
                        fmt::format("kafka.properties.{}: set by relay ({})", name, why));
    }
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      return make_error(errc::invalid_argument,
                        fmt::format("kafka.properties.{}: {}", name, errstr));
    }
  }
  return {};
}

// Partition count of `topic` (0 when the cluster does not have it or does not
// answer within the timeout); `topic_err` says which.
int topic_partition_count(rd_kafka_t* rk, const std::string& topic, int timeout,
                          rd_kafka_resp_err_t* topic_err = nullptr) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  if (!rkt) return 0;
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout);
  int count = 0;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (topic != md->topics[i].topic) continue;
      err = md->topics[i].err;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) count = md->topics[i].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  if (topic_err) *topic_err = err;
  return count;
}

void pause_or_resume(rd_kafka_t* rk, const std::string& topic, int32_t partition, bool pause) {
  if (!rk) return;
  list_ptr list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
  rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(rk, list.get())
                                  : rd_kafka_resume_partitions(rk, list.get());
  if (!err) err = list->elems[0].err;
  if (err) {
    spdlog::warn("kafka: {} {} [{}] failed: {}", pause ? "pausing" : "resuming", topic, partition,
                 rd_kafka_err2str(err));
  }
}

std::string random_suffix() {
  // Not a business decision: only has to differ between processes and readers.
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

}  // namespace

// ---------------------------------------------------------------- embedded

result<std::unique_ptr<embedded_kafka>> embedded_kafka::start(const kafka_topics& topics,
                                                              int partitions, int brokers) {
  if (partitions < 1 || brokers < 1) {
    return make_error(errc::invalid_argument,
                      fmt::format("embedded Kafka: need at least one broker and one partition "
                                  "(got {} brokers, {} partitions)",
                                  brokers, partitions));
  }
  conf_ptr conf(rd_kafka_conf_new());
  if (auto r = set_all(conf.get(),
                       {{"client.id", "relay-embedded"}, {"log_level", kLibrdkafkaLogLevel}});
      !r) {
    return r.err();
  }
  rd_kafka_conf_set_log_cb(conf.get(), &log_to_spdlog);
  char errstr[512];
  // A client handle only hosts the cluster (its config and logging); it never
  // connects anywhere itself.
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr);
  if (!rk) {
    return make_error(errc::io_error, fmt::format("embedded Kafka: {}", errstr));
  }
  conf.release();  // owned by rk now
  std::unique_ptr<embedded_kafka> k(new embedded_kafka());
  k->handle_ = rk;
  // The mock brokers listen on 127.0.0.1 with ephemeral ports (librdkafka
  // binds INADDR_LOOPBACK); tests check this.
  k->cluster_ = rd_kafka_mock_cluster_new(rk, brokers);
  if (!k->cluster_) {
    return make_error(errc::io_error,
                      "embedded Kafka: could not start the mock cluster "
                      "(see the log above)");
  }
  k->bootstrap_ = rd_kafka_mock_cluster_bootstraps(k->cluster_);
  // The mock answers Metadata only up to v2, which has no AllowAutoTopicCreation
  // flag, so any client asking about a topic would create it with 4 partitions
  // (a typo in a topic name would go unnoticed). Its handler reads the flag
  // from v4 on; offering v4 makes it behave like a production broker:
  // only clients that allow auto-creation (librdkafka producers by default)
  // create topics.
  constexpr int16_t kMetadataApiKey = 3;
  if (rd_kafka_resp_err_t err = rd_kafka_mock_set_apiversion(k->cluster_, kMetadataApiKey, 0, 4)) {
    spdlog::warn(
        "embedded Kafka: cannot enable Metadata v4 ({}); unknown topics will be created "
        "on first use",
        rd_kafka_err2str(err));
  }
  for (const std::string* t :
       {&topics.jobs, &topics.registry, &topics.events, &topics.dlq, &topics.bids}) {
    if (t->empty()) continue;
    if (auto r = k->create_topic(*t, partitions); !r && r.err().code != errc::already_exists) {
      return r.err();
    }
  }
  spdlog::info("embedded Kafka: {} broker(s) at {}", brokers, k->bootstrap_);
  return k;
}

embedded_kafka::~embedded_kafka() {
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
  if (handle_) rd_kafka_destroy(handle_);
}

result<void> embedded_kafka::create_topic(const std::string& topic, int partitions) {
  if (topic.empty() || partitions < 1) {
    return make_error(errc::invalid_argument,
                      fmt::format("embedded Kafka: cannot create topic \"{}\" with {} partitions",
                                  topic, partitions));
  }
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
  if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    return make_error(errc::already_exists,
                      fmt::format("embedded Kafka: topic \"{}\" already exists", topic));
  }
  if (err) {
    return make_error(errc::io_error, fmt::format("embedded Kafka: creating topic \"{}\": {}",
                                                  topic, rd_kafka_err2str(err)));
  }
  return {};
}

// ---------------------------------------------------------------- bootstrap

std::string bootstrap_file(const config& cfg) {
  return (std::filesystem::path(cfg.data_dir) / "kafka.bootstrap").string();
}

result<std::string> resolve_bootstrap(const config& cfg) {
  if (!cfg.kafka.embedded()) {
    if (cfg.kafka.brokers.empty()) {
      return make_error(errc::invalid_argument, "kafka.brokers: empty");
    }
    return cfg.kafka.brokers;
  }
  const std::string path = bootstrap_file(cfg);
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  const auto first = line.find_first_not_of(" \t\r\n");
  if (!in.is_open() || first == std::string::npos) {
    return make_error(errc::not_found,
                      fmt::format("{}: no embedded Kafka address; is relayd running with "
                                  "kafka.brokers: embedded?",
                                  path));
  }
  const auto last = line.find_last_not_of(" \t\r\n");
  return line.substr(first, last - first + 1);
}

result<void> write_bootstrap_file(const config& cfg, const std::string& bootstrap) {
  const std::string path = bootstrap_file(cfg);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << bootstrap << '\n';
    out.close();
    if (!out) {
      return make_error(errc::io_error,
                        fmt::format("{}: cannot write: {}", tmp, std::strerror(errno)));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return make_error(errc::io_error,
                      fmt::format("{}: cannot rename to {}: {}", tmp, path, std::strerror(errno)));
  }
  return {};
}

// ---------------------------------------------------------------- producer

result<std::unique_ptr<kafka_producer>> kafka_producer::create(const kafka_config& cfg,
                                                               const std::string& bootstrap) {
  conf_ptr conf(rd_kafka_conf_new());
  // Tuned for ~1M small (~200 B) messages/s: linger 5 ms, 1 MB batches (the
  // broker's default message.max.bytes), room for a second of messages in the
  // local queue. No compression: loopback and CPU-bound. Topics are not
  // auto-created: a missing topic is a configuration error relay reports.
  auto r = set_all(conf.get(), {{"bootstrap.servers", bootstrap},
                                {"client.id", "relay-producer"},
                                {"enable.idempotence", "true"},
                                {"linger.ms", "5"},
                                {"batch.num.messages", "10000"},
                                {"batch.size", "1000000"},
                                {"queue.buffering.max.messages", "1000000"},
                                {"queue.buffering.max.kbytes", "1048576"},
                                {"compression.type", "none"},
                                {"partitioner", "murmur2_random"},  // as Java clients
                                {"allow.auto.create.topics", "false"},
                                {"log_level", kLibrdkafkaLogLevel}});
  if (!r) return r.err();
  if (r = apply_properties(conf.get(), cfg); !r) return r.err();

  std::unique_ptr<kafka_producer> p(new kafka_producer());
  rd_kafka_conf_set_opaque(conf.get(), p.get());
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &kafka_producer::on_delivery);
  rd_kafka_conf_set_error_cb(conf.get(), &kafka_producer::on_error);
  rd_kafka_conf_set_log_cb(conf.get(), &log_to_spdlog);
  char errstr[512];
  p->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr);
  if (!p->rk_) {
    return make_error(errc::invalid_argument, fmt::format("kafka producer: {}", errstr));
  }
  conf.release();  // owned by rk_ now
  p->bootstrap_ = bootstrap;
  return p;
}

kafka_producer::~kafka_producer() {
  if (!rk_) return;
  if (rd_kafka_flush(rk_, 5000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    spdlog::warn(
        "kafka producer: {} message(s) not delivered to {} within 5 s of shutdown; "
        "dropping them",
        rd_kafka_outq_len(rk_), bootstrap_);
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_, 0);  // their delivery reports (counted as failed)
  }
  for (auto& t : topics_) rd_kafka_topic_destroy(t.rkt);
  rd_kafka_destroy(rk_);
}

void kafka_producer::on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<kafka_producer*>(opaque);
  if (!m->err) {
    ++self->delivered_;
    return;
  }
  ++self->failed_;
  auto& seen = self->logged_delivery_errors_;
  if (std::find(seen.begin(), seen.end(), m->err) != seen.end()) return;
  seen.push_back(m->err);
  const char* what = "";
  switch (rd_kafka_message_status(m)) {
    case RD_KAFKA_MSG_STATUS_NOT_PERSISTED:
      what = "not written; a retry cannot duplicate it";
      break;
    case RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED:
      what = "possibly written; a retry may duplicate it";
      break;
    case RD_KAFKA_MSG_STATUS_PERSISTED:
      what = "written";
      break;
  }
  spdlog::error(
      "kafka producer: delivery to {} [{}] failed: {} ({}); further failures of this kind are "
      "counted, not logged",
      rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err), what);
}

void kafka_producer::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<kafka_producer*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    const rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
    spdlog::critical("kafka producer: fatal error {}: {}; nothing more can be produced",
                     rd_kafka_err2name(orig), buf);
    return;
  }
  if (should_log(self->error_log_times_, err)) {
    spdlog::warn("kafka producer: {}: {}", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
                 reason);
  }
}

result<rd_kafka_topic_t*> kafka_producer::topic_handle(std::string_view topic, milliseconds wait) {
  for (const auto& t : topics_) {
    if (t.name == topic) return t.rkt;
  }
  std::string name(topic);
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  topic_partition_count(rk_, name, timeout_ms(std::min(wait, milliseconds(5000))), &err);
  if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
      err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
    return make_error(errc::not_found, fmt::format("kafka: topic \"{}\" on {}: {}", name,
                                                   bootstrap_, rd_kafka_err2str(err)));
  }
  // Other outcomes (cluster not answering yet): librdkafka queues and keeps
  // trying; a topic that turns out missing fails in the delivery reports.
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
  if (!rkt) {
    return make_error(errc::invalid_argument, fmt::format("kafka: topic \"{}\": {}", name,
                                                          rd_kafka_err2str(rd_kafka_last_error())));
  }
  topics_.push_back({std::move(name), rkt});
  return rkt;
}

result<void> kafka_producer::produce(std::string_view topic, std::string_view key,
                                     std::string_view value, std::span<const kafka_header> headers,
                                     milliseconds max_block) {
  auto rkt = topic_handle(topic, max_block);
  if (!rkt) return rkt.err();
  // Header names are not NUL-terminated here, so build the list with sizes
  // (RD_KAFKA_V_HEADER wants C strings). Only dead letters carry headers.
  rd_kafka_headers_t* hdrs = nullptr;
  if (!headers.empty()) {
    hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& h : headers) {
      rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
    }
  }
  const void* key_ptr = key.empty() ? nullptr : key.data();
  void* value_ptr = const_cast<char*>(value.data());  // copied (F_COPY), never written
  const auto deadline = steady::now() + max_block;
  for (;;) {
    rd_kafka_resp_err_t err;
    if (hdrs) {
      err = rd_kafka_producev(rk_, RD_KAFKA_V_RKT(*rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(key_ptr, key.size()),
                              RD_KAFKA_V_VALUE(value_ptr, value.size()), RD_KAFKA_V_HEADERS(hdrs),
                              RD_KAFKA_V_END);
    } else {
      err = rd_kafka_producev(rk_, RD_KAFKA_V_RKT(*rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(key_ptr, key.size()),
                              RD_KAFKA_V_VALUE(value_ptr, value.size()), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;  // the message owns hdrs now
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && steady::now() < deadline) {
      rd_kafka_poll(rk_, 10);  // delivery reports free room
      continue;
    }
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    switch (err) {
      case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return make_error(errc::busy,
                          fmt::format("kafka: local queue full for {} ms ({} messages waiting); "
                                      "{} is not keeping up or unreachable",
                                      max_block.count(), rd_kafka_outq_len(rk_), bootstrap_));
      case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
      case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        return make_error(errc::not_found,
                          fmt::format("kafka: topic \"{}\": {}", topic, rd_kafka_err2str(err)));
      case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return make_error(errc::invalid_argument,
                          fmt::format("kafka: message of {} bytes to \"{}\": {}",
                                      key.size() + value.size(), topic, rd_kafka_err2str(err)));
      default:
        return make_error(errc::io_error, fmt::format("kafka: producing to \"{}\": {}", topic,
                                                      rd_kafka_err2str(err)));
    }
  }
  if (++since_poll_ >= 1024) {  // keep delivery counts fresh without a call per message
    since_poll_ = 0;
    rd_kafka_poll(rk_, 0);
  }
  return {};
}

void kafka_producer::poll() { rd_kafka_poll(rk_, 0); }

result<void> kafka_producer::flush(milliseconds timeout) {
  if (rd_kafka_flush(rk_, timeout_ms(timeout)) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    return make_error(errc::busy,
                      fmt::format("kafka: {} message(s) not delivered to {} within {} ms",
                                  rd_kafka_outq_len(rk_), bootstrap_, timeout.count()));
  }
  return {};
}

size_t kafka_producer::queued() const { return static_cast<size_t>(rd_kafka_outq_len(rk_)); }

// ---------------------------------------------------------------- consumer

void message_batch::clear() {
  for (rd_kafka_message_t* m : items_) rd_kafka_message_destroy(m);
  items_.clear();
}

result<std::unique_ptr<kafka_consumer>> kafka_consumer::create(rd_kafka_conf_t* raw_conf,
                                                               const std::string& topic, bool group,
                                                               rebalance_listener* listener) {
  conf_ptr conf(raw_conf);
  std::unique_ptr<kafka_consumer> c(new kafka_consumer());
  c->topic_ = topic;
  c->group_ = group;
  c->listener_ = listener;
  rd_kafka_conf_set_opaque(conf.get(), c.get());
  rd_kafka_conf_set_log_cb(conf.get(), &log_to_spdlog);
  char errstr[512];
  c->rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof errstr);
  if (!c->rk_) {
    c->closed_ = true;
    return make_error(errc::invalid_argument, fmt::format("kafka consumer: {}", errstr));
  }
  conf.release();  // owned by rk_ now
  // Rebalances and errors arrive on the consumer queue, so consume() serves them.
  rd_kafka_poll_set_consumer(c->rk_);
  c->queue_ = rd_kafka_queue_get_consumer(c->rk_);
  if (::pipe2(c->wake_fd_, O_NONBLOCK | O_CLOEXEC) != 0) {
    return make_error(errc::io_error,
                      fmt::format("kafka consumer: pipe: {}", std::strerror(errno)));
  }
  rd_kafka_queue_io_event_enable(c->queue_, c->wake_fd_[1], "1", 1);
  c->store_list_ = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(c->store_list_, topic.c_str(), 0);
  return c;
}

result<std::unique_ptr<kafka_consumer>> kafka_consumer::subscribe(const kafka_config& cfg,
                                                                  const std::string& bootstrap,
                                                                  const std::string& topic,
                                                                  rebalance_listener* listener) {
  conf_ptr conf(rd_kafka_conf_new());
  // At-least-once (DESIGN §2): relay stores an offset only once the job is
  // durable; librdkafka commits what was stored every second and on revoke.
  auto r = set_all(conf.get(), {{"bootstrap.servers", bootstrap},
                                {"client.id", "relay-consumer"},
                                {"group.id", cfg.group_id},
                                {"enable.auto.commit", "true"},
                                {"auto.commit.interval.ms", "1000"},
                                {"enable.auto.offset.store", "false"},
                                {"auto.offset.reset", "earliest"},
                                {"enable.partition.eof", "false"},
                                {"log_level", kLibrdkafkaLogLevel}});
  if (!r) return r.err();
  if (r = apply_properties(conf.get(), cfg); !r) return r.err();
  rd_kafka_conf_set_rebalance_cb(conf.get(), &kafka_consumer::on_rebalance);

  auto c = create(conf.release(), topic, /*group=*/true, listener);
  if (!c) return c.err();
  list_ptr topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe((*c)->rk_, topics.get())) {
    return make_error(errc::io_error, fmt::format("kafka: subscribing to \"{}\": {}", topic,
                                                  rd_kafka_err2str(err)));
  }
  return c;
}

result<std::unique_ptr<kafka_consumer>> kafka_consumer::assign_all(
    const kafka_config& cfg, const std::string& bootstrap, const std::string& topic,
    std::span<const std::pair<int32_t, int64_t>> start, milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  conf_ptr conf(rd_kafka_conf_new());
  // librdkafka's consumer API needs a group.id even for manual assignment; a
  // random one that never joins nor commits (offsets live in RocksDB).
  auto r = set_all(conf.get(), {{"bootstrap.servers", bootstrap},
                                {"client.id", "relay-reader"},
                                {"group.id", "relay-reader-" + random_suffix()},
                                {"enable.auto.commit", "false"},
                                {"enable.auto.offset.store", "false"},
                                {"auto.offset.reset", "earliest"},
                                {"enable.partition.eof", "false"},
                                {"log_level", kLibrdkafkaLogLevel}});
  if (!r) return r.err();
  if (r = apply_properties(conf.get(), cfg); !r) return r.err();
  auto c = create(conf.release(), topic, /*group=*/false, nullptr);
  if (!c) return c.err();
  kafka_consumer& k = **c;

  int partitions = 0;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_resp_err_t why = RD_KAFKA_RESP_ERR__TIMED_OUT;  // the last real answer
  for (;;) {
    partitions = topic_partition_count(k.rk_, topic, remaining_ms(deadline), &err);
    if (partitions > 0) break;
    if (err != RD_KAFKA_RESP_ERR__TIMED_OUT) why = err;
    if (steady::now() >= deadline) {
      return make_error(errc::not_found,
                        fmt::format("kafka: topic \"{}\" not found on {} within {} ms ({})", topic,
                                    bootstrap, timeout.count(), rd_kafka_err2str(why)));
    }
    // The topic may be being created (or the cluster starting): ask again soon.
    std::this_thread::sleep_for(std::min(milliseconds(100), milliseconds(remaining_ms(deadline))));
  }
  list_ptr list(rd_kafka_topic_partition_list_new(partitions));
  for (int32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  for (const auto& [p, offset] : start) {
    if (p >= 0 && p < partitions) {
      list->elems[p].offset = offset;
    } else {
      spdlog::warn("kafka: {} has {} partitions; ignoring the stored offset of partition {}", topic,
                   partitions, p);
    }
  }
  if ((err = rd_kafka_assign(k.rk_, list.get()))) {
    return make_error(errc::io_error, fmt::format("kafka: assigning the partitions of \"{}\": {}",
                                                  topic, rd_kafka_err2str(err)));
  }
  k.assigned_.assign(partitions, 1);
  return c;
}

kafka_consumer::~kafka_consumer() { close(); }

void kafka_consumer::close() {
  if (closed_) return;
  closed_ = true;
  if (rk_) {
    // No more wake-ups: the pipe is closed below.
    if (queue_) rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
    // Revokes the assignment (on_revoked runs here, so the caller may still
    // store offsets) and commits stored offsets when in a group.
    if (rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_)) {
      spdlog::warn("kafka consumer ({}): close: {}", topic_, rd_kafka_err2str(err));
    }
    if (queue_) rd_kafka_queue_destroy(queue_);
    if (store_list_) rd_kafka_topic_partition_list_destroy(store_list_);
    rd_kafka_destroy(rk_);
    queue_ = nullptr;
    store_list_ = nullptr;
    rk_ = nullptr;
  }
  for (int& fd : wake_fd_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

void kafka_consumer::on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* self = static_cast<kafka_consumer*>(opaque);
  ++self->rebalances_;
  const char* protocol = rd_kafka_rebalance_protocol(rk);
  const bool cooperative = protocol && std::strcmp(protocol, "COOPERATIVE") == 0;
  std::vector<int32_t> mine;
  for (int i = 0; parts && i < parts->cnt; ++i) {
    if (self->topic_ == parts->elems[i].topic) mine.push_back(parts->elems[i].partition);
  }
  auto mark = [self](std::span<const int32_t> ps, uint8_t v) {
    for (int32_t p : ps) {
      if (p < 0) continue;
      if (static_cast<size_t>(p) >= self->assigned_.size()) self->assigned_.resize(p + 1, 0);
      self->assigned_[p] = v;
    }
  };
  // The listener is relay's code; nothing may unwind through librdkafka's C frames.
  auto notify = [self](bool assigned, std::span<const int32_t> ps) {
    if (!self->listener_) return;
    try {
      if (assigned) {
        self->listener_->on_assigned(ps);
      } else {
        self->listener_->on_revoked(ps);
      }
    } catch (const std::exception& e) {
      spdlog::error("kafka consumer ({}): rebalance listener threw: {}", self->topic_, e.what());
    }
  };

  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (!cooperative) std::fill(self->assigned_.begin(), self->assigned_.end(), 0);
    mark(mine, 1);
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts)) {
        spdlog::error("kafka consumer ({}): incremental assign: {}", self->topic_,
                      rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts)) {
      spdlog::error("kafka consumer ({}): assign: {}", self->topic_, rd_kafka_err2str(e));
    }
    spdlog::info("kafka consumer ({}): assigned partitions [{}] ({})", self->topic_,
                 fmt::join(mine, ","), protocol ? protocol : "?");
    notify(true, mine);
    return;
  }

  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    if (rd_kafka_assignment_lost(rk)) {
      spdlog::warn(
          "kafka consumer ({}): partitions [{}] lost (session expired); another member "
          "may already own them",
          self->topic_, fmt::join(mine, ","));
    } else {
      spdlog::info("kafka consumer ({}): revoking partitions [{}]", self->topic_,
                   fmt::join(mine, ","));
    }
    // Before giving them up, so the caller can store what is done; the
    // unassign below commits it (auto commit).
    notify(false, mine);
    mark(mine, 0);
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts)) {
        spdlog::error("kafka consumer ({}): incremental unassign: {}", self->topic_,
                      rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, nullptr)) {
      spdlog::error("kafka consumer ({}): unassign: {}", self->topic_, rd_kafka_err2str(e));
    }
    return;
  }

  // A failed rebalance: give everything up and let the group try again.
  spdlog::error("kafka consumer ({}): rebalance error: {}", self->topic_, rd_kafka_err2str(err));
  std::vector<int32_t> held;
  for (size_t p = 0; p < self->assigned_.size(); ++p) {
    if (self->assigned_[p]) held.push_back(static_cast<int32_t>(p));
  }
  if (!held.empty()) notify(false, held);
  std::fill(self->assigned_.begin(), self->assigned_.end(), 0);
  rd_kafka_assign(rk, nullptr);
}

void kafka_consumer::log_consumer_error(const rd_kafka_message_t* m) {
  if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    const rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk_, buf, sizeof buf);
    spdlog::critical("kafka consumer ({}): fatal error {}: {}", topic_, rd_kafka_err2name(orig),
                     buf);
    return;
  }
  if (!should_log(error_log_times_, m->err)) return;
  if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
    // With auto.offset.reset=error (kafka.properties): the position fell out
    // of the log (retention; the embedded cluster keeps only ~5 MiB per
    // partition). With earliest, librdkafka logs the reset as a warning.
    spdlog::error(
        "kafka consumer ({}): {} [{}]: {}; messages before the new position were "
        "skipped unread",
        topic_, m->rkt ? rd_kafka_topic_name(m->rkt) : topic_.c_str(), m->partition,
        rd_kafka_message_errstr(m));
    return;
  }
  if (m->rkt) {
    spdlog::warn("kafka consumer ({}): {} [{}]: {}", topic_, rd_kafka_topic_name(m->rkt),
                 m->partition, rd_kafka_message_errstr(m));
  } else {
    spdlog::warn("kafka consumer ({}): {}", topic_, rd_kafka_message_errstr(m));
  }
}

size_t kafka_consumer::keep_messages(std::vector<rd_kafka_message_t*>& items, size_t from,
                                     size_t n) {
  size_t kept = 0;
  for (size_t i = from; i < from + n; ++i) {
    rd_kafka_message_t* m = items[i];
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) log_consumer_error(m);
      rd_kafka_message_destroy(m);
    } else {
      items[from + kept++] = m;
    }
  }
  return kept;
}

size_t kafka_consumer::drop_unowned(std::vector<rd_kafka_message_t*>& items, size_t from,
                                    size_t n) {
  size_t kept = 0;
  for (size_t i = from; i < from + n; ++i) {
    rd_kafka_message_t* m = items[i];
    const auto p = static_cast<size_t>(m->partition);
    if (p < assigned_.size() && assigned_[p]) {
      items[from + kept++] = m;
    } else {
      rd_kafka_message_destroy(m);
    }
  }
  return kept;
}

size_t kafka_consumer::consume(message_batch& out, size_t max, milliseconds timeout) {
  if (closed_ || max == 0) return 0;
  auto& items = out.items();
  const size_t base = items.size();
  const auto deadline = steady::now() + timeout;
  uint64_t rebalances = rebalances_;
  // A revoke served inside this call (on_revoked already ran, the caller
  // flushed): drop what was taken for partitions this member no longer owns.
  auto drop_revoked = [&](size_t n) {
    if (!group_ || rebalances_ == rebalances) return n;
    rebalances = rebalances_;
    return drop_unowned(items, base, n);
  };
  items.resize(base + max);
  size_t added = 0;
  for (;;) {
    // Wait (at most until the deadline) for one, then take what is already
    // queued without waiting: the batch call alone would wait for all `max`.
    // Returning fewer than `max` thus means the queue was empty, which is
    // what the wake_fd() contract relies on.
    const ssize_t first =
        rd_kafka_consume_batch_queue(queue_, remaining_ms(deadline), &items[base], 1);
    if (first > 0) {
      added = keep_messages(items, base, static_cast<size_t>(first));
      while (added < max) {
        const ssize_t n =
            rd_kafka_consume_batch_queue(queue_, 0, &items[base + added], max - added);
        if (n <= 0) break;
        added += keep_messages(items, base + added, static_cast<size_t>(n));
        added = drop_revoked(added);
      }
    } else if (first < 0 && should_log(error_log_times_, rd_kafka_last_error())) {
      spdlog::warn("kafka consumer ({}): consume: {}", topic_,
                   rd_kafka_err2str(rd_kafka_last_error()));
    }
    added = drop_revoked(added);
    if (added > 0 || steady::now() >= deadline) break;
  }
  items.resize(base + added);
  return added;
}

void kafka_consumer::store_offset(int32_t partition, int64_t next_offset) {
  if (!rk_) return;
  rd_kafka_topic_partition_t& e = store_list_->elems[0];
  e.partition = partition;
  e.offset = next_offset;
  e.err = RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_resp_err_t err = rd_kafka_offsets_store(rk_, store_list_);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = e.err;
  // __STATE: the partition is no longer assigned (revoked); its next owner
  // reads from the last committed offset, so there is nothing to do.
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__STATE) return;
  if (should_log(error_log_times_, err)) {
    spdlog::warn("kafka consumer ({}): storing offset {} of partition {}: {}", topic_, next_offset,
                 partition, rd_kafka_err2str(err));
  }
}

void kafka_consumer::pause(int32_t partition) { pause_or_resume(rk_, topic_, partition, true); }

void kafka_consumer::resume(int32_t partition) { pause_or_resume(rk_, topic_, partition, false); }

void kafka_consumer::clear_wake() {
  if (wake_fd_[0] < 0) return;
  char buf[256];
  while (::read(wake_fd_[0], buf, sizeof buf) > 0) {
  }
}

result<void> kafka_consumer::commit() {
  if (!rk_ || !group_) return {};  // assign_all() readers keep offsets elsewhere
  const rd_kafka_resp_err_t err = rd_kafka_commit(rk_, nullptr, 0);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return {};
  return make_error(errc::io_error, fmt::format("kafka: committing offsets of \"{}\": {}", topic_,
                                                rd_kafka_err2str(err)));
}

std::string kafka_consumer::cluster_id(milliseconds timeout) {
  if (!rk_) return {};
  char* id = rd_kafka_clusterid(rk_, timeout_ms(timeout));
  if (!id) return {};
  std::string s(id);
  rd_kafka_mem_free(rk_, id);
  return s;
}

int kafka_consumer::partition_count(const std::string& topic, milliseconds timeout) {
  if (!rk_) return 0;
  return topic_partition_count(rk_, topic, timeout_ms(timeout));
}

result<int64_t> kafka_consumer::high_watermark(int32_t partition, milliseconds timeout) {
  if (!rk_) return make_error(errc::invalid_argument, "kafka consumer: closed");
  int64_t low = 0, high = 0;
  const rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
      rk_, topic_.c_str(), partition, &low, &high, timeout_ms(timeout));
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return high;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
      return make_error(errc::not_found, fmt::format("kafka: {} [{}]: {}", topic_, partition,
                                                     rd_kafka_err2str(err)));
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
      return make_error(errc::busy, fmt::format("kafka: {} [{}]: no watermark within {} ms", topic_,
                                                partition, timeout.count()));
    default:
      return make_error(errc::io_error, fmt::format("kafka: {} [{}]: {}", topic_, partition,
                                                    rd_kafka_err2str(err)));
  }
}

}  // namespace relay
