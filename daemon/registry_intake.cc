#include "daemon/registry_intake.h"

#include <rocksdb/iterator.h>
#include <spdlog/spdlog.h>

#include "routing/counters.h"
#include "routing/registry_record.h"

namespace relay {

std::string registry_offset_key(int32_t partition) {
  std::string k("registry_offset");
  k.push_back('\0');
  put_be32(k, static_cast<uint32_t>(partition));
  return k;
}

registry_intake::registry_intake(store& db, const config& cfg, const clock& clk)
    : db_(db), config_(cfg), clock_(clk) {}

registry_intake::~registry_intake() { close(); }

void registry_intake::close() {
  batch_.clear();
  if (consumer_) consumer_->close();
  consumer_.reset();
}

result<void> registry_intake::start(const std::string& bootstrap) {
  // Where the replica stopped, and on which cluster.
  std::vector<std::pair<int32_t, int64_t>> start;
  {
    const std::string prefix = registry_offset_key(0).substr(0, 16);
    std::unique_ptr<rocksdb::Iterator> it(db_.db().NewIterator(rocksdb::ReadOptions(), db_.handle(cf::meta)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (it->key().size() != prefix.size() + 4 || it->value().size() != 8) continue;
      start.emplace_back(static_cast<int32_t>(get_be32(it->key().data() + prefix.size())),
                         static_cast<int64_t>(get_be64(it->value().data())));
    }
  }
  std::string stored_cluster;
  (void)db_.get(cf::meta, kRegistryClusterKey, &stored_cluster);

  auto consumer = kafka_consumer::assign_all(config_.kafka, bootstrap, config_.kafka.topics.registry,
                                             start, std::chrono::seconds(30));
  if (!consumer) return consumer.err();
  consumer_ = std::move(*consumer);
  const std::string cluster = consumer_->cluster_id(std::chrono::seconds(10));
  if (!start.empty() && cluster != stored_cluster) {
    spdlog::info("registry: Kafka cluster changed ({} -> {}); re-reading {} from the beginning",
                 stored_cluster.empty() ? "unknown" : stored_cluster, cluster,
                 config_.kafka.topics.registry);
    consumer_->close();
    auto fresh = kafka_consumer::assign_all(config_.kafka, bootstrap, config_.kafka.topics.registry,
                                            {}, std::chrono::seconds(30));
    if (!fresh) return fresh.err();
    consumer_ = std::move(*fresh);
    start.clear();
  }
  if (cluster != stored_cluster && !cluster.empty()) {
    rocksdb::WriteBatch b;
    b.Put(db_.handle(cf::meta), kRegistryClusterKey, cluster);
    if (auto r = db_.write(b); !r) return r.err();
  }
  const int partitions = consumer_->partition_count(config_.kafka.topics.registry, std::chrono::seconds(10));
  next_offsets_.assign(std::max(partitions, 1), 0);
  for (auto [p, off] : start) {
    if (p >= 0 && p < static_cast<int32_t>(next_offsets_.size())) next_offsets_[p] = off;
  }
  return {};
}

size_t registry_intake::step(size_t max, std::chrono::milliseconds timeout) {
  if (!consumer_) return 0;
  batch_.clear();
  const size_t n = consumer_->consume(batch_, max, timeout);
  if (n == 0) return 0;
  registry_writer writer(db_, clock_);
  rocksdb::WriteBatch write;
  uint64_t applied = 0, rejected = 0;
  for (size_t i = 0; i < batch_.size(); ++i) {
    const rd_kafka_message_t* m = batch_[i];
    if (m->partition >= static_cast<int32_t>(next_offsets_.size())) next_offsets_.resize(m->partition + 1, 0);
    next_offsets_[m->partition] = m->offset + 1;
    if (m->payload == nullptr) continue;  // tombstone from compaction of a deleted key
    auto record = parse_registry_record(payload(m));
    result<void> staged = record ? writer.stage(*record) : result<void>(record.err());
    if (!staged) {
      ++rejected;
      spdlog::warn("registry record skipped ({} partition {} offset {}): {}",
                   config_.kafka.topics.registry, m->partition, m->offset, staged.err().message);
      continue;
    }
    ++applied;
  }
  writer.flush_into(write);
  for (size_t p = 0; p < next_offsets_.size(); ++p) {
    std::string v;
    put_be64(v, static_cast<uint64_t>(next_offsets_[p]));
    write.Put(db_.handle(cf::meta), registry_offset_key(static_cast<int32_t>(p)), v);
  }
  counter_batch counts;
  counts.add(counter_kind::registry_applied, {}, applied);
  counts.add(counter_kind::registry_rejected, {}, rejected);
  counts.flush_into(write, db_);
  if (auto r = db_.write(write); !r) {
    spdlog::critical("applying registry records failed: {}", r.err().message);
    std::abort();
  }
  applied_ += applied;
  rejected_ += rejected;
  return n;
}

bool registry_intake::catch_up(std::chrono::milliseconds timeout) {
  if (!consumer_) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<int64_t> targets(next_offsets_.size(), 0);
  for (size_t p = 0; p < targets.size(); ++p) {
    auto hw = consumer_->high_watermark(static_cast<int32_t>(p), std::chrono::seconds(5));
    if (hw) targets[p] = *hw;
  }
  for (;;) {
    bool done = true;
    for (size_t p = 0; p < targets.size(); ++p) {
      if (p < next_offsets_.size() && next_offsets_[p] < targets[p]) done = false;
    }
    if (done) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    step(20000, std::chrono::milliseconds(100));
  }
}

}  // namespace relay
