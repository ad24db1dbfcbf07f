#include "daemon/job_intake.h"

#include <rocksdb/write_batch.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "routing/counters.h"
#include "routing/job_store.h"
#include "routing/targeting.h"

namespace relay {
namespace {

// Best effort: the ids of a job that failed validation, for its rejected
// event. Only well-formed short strings are taken.
std::pair<std::string, std::string> salvage_ids(std::string_view bytes) {
  static thread_local simdjson::dom::parser parser;
  std::pair<std::string, std::string> ids;
  simdjson::dom::element doc;
  if (parser.parse(bytes.data(), bytes.size()).get(doc) != simdjson::SUCCESS) return ids;
  std::string_view s;
  if (doc["job_id"].get(s) == simdjson::SUCCESS && s.size() <= 255) ids.first.assign(s);
  if (doc["company_id"].get(s) == simdjson::SUCCESS && s.size() <= 255) ids.second.assign(s);
  return ids;
}

struct candidate {
  const rd_kafka_message_t* message;
  job spec;
  std::string key;
};

}  // namespace

job_intake::job_intake(store& db, const config& cfg, kafka_producer& producer,
                       event_publisher& events, fanout& out, const clock& clk)
    : db_(db), config_(cfg), producer_(producer), events_(events), fanout_(out), clock_(clk) {}

result<void> job_intake::start() {
  auto seq = load_next_job_seq(db_);
  if (!seq) return seq.err();
  next_seq_ = *seq;
  return {};
}

size_t job_intake::pending(int32_t partition) const {
  return partition >= 0 && static_cast<size_t>(partition) < pending_.size() ? pending_[partition] : 0;
}

void job_intake::job_handed(int32_t partition) {
  if (partition >= 0 && static_cast<size_t>(partition) < pending_.size() && pending_[partition] > 0) {
    --pending_[partition];
  }
}

void job_intake::dead_letter(const rd_kafka_message_t* m, const std::string& reason) {
  ++stats_.dead_lettered;
  const kafka_header header{"error", reason};
  if (auto r = producer_.produce(config_.kafka.topics.dlq, key(m), payload(m), {&header, 1}); !r) {
    spdlog::error("dead-lettering a job from partition {} offset {} failed: {}", m->partition,
                  m->offset, r.err().message);
  }
  auto [job_id, company_id] = salvage_ids(payload(m));
  if (company_id.empty()) company_id.assign(key(m));
  events_.publish({.type = "rejected", .job_id = job_id, .company_id = company_id,
                   .reason = "invalid_job", .detail = reason});
  spdlog::warn("job rejected (partition {} offset {}): {}", m->partition, m->offset, reason);
}

void job_intake::handle(message_batch& batch) {
  offsets_.clear();
  std::vector<candidate> candidates;
  candidates.reserve(batch.size());
  rocksdb::WriteBatch write;
  counter_batch counts;
  for (size_t i = 0; i < batch.size(); ++i) {
    const rd_kafka_message_t* m = batch[i];
    ++stats_.received;
    bool seen = false;
    for (auto& [p, next] : offsets_) {
      if (p == m->partition) {
        next = std::max(next, m->offset + 1);
        seen = true;
      }
    }
    if (!seen) offsets_.emplace_back(m->partition, m->offset + 1);

    auto parsed = parse_job(payload(m), config_.limits.job);
    if (!parsed) {
      counts.add(counter_kind::dlq, {{}, {}, {}, "invalid_job"}, 1);
      dead_letter(m, parsed.err().message);
      continue;
    }
    candidates.push_back({m, std::move(*parsed), {}});
    candidates.back().key = job_key(candidates.back().spec.job_id, 'j');
  }

  // Idempotency: a job_id already accepted (or earlier in this batch) is not accepted again.
  std::vector<rocksdb::Slice> keys;
  keys.reserve(candidates.size());
  for (const auto& c : candidates) keys.emplace_back(c.key);
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  if (!keys.empty()) {
    db_.db().MultiGet(rocksdb::ReadOptions(), db_.handle(cf::jobs), keys.size(), keys.data(),
                      values.data(), statuses.data());
  }

  std::vector<std::unique_ptr<active_job>> accepted;
  std::unordered_set<std::string_view> in_batch;
  const sys_time now = clock_.now();
  for (size_t i = 0; i < candidates.size(); ++i) {
    candidate& c = candidates[i];
    if (statuses[i].ok() || !in_batch.insert(c.key).second) {
      ++stats_.duplicates;
      counts.add(counter_kind::duplicate, {c.spec.company_id, {}, {}, {}}, 1);
      spdlog::debug("job {} received again; already accepted", c.spec.job_id);
      continue;
    }
    if (!statuses[i].IsNotFound()) {
      spdlog::critical("reading the jobs store failed: {}", statuses[i].ToString());
      std::abort();
    }
    auto resolved = resolve_target(db_, c.spec, now);
    if (!resolved) {
      if (resolved.err().code == errc::invalid_argument) {
        counts.add(counter_kind::dlq, {{}, {}, {}, "invalid_job"}, 1);
        dead_letter(c.message, resolved.err().message);
        continue;
      }
      spdlog::critical("resolving recipients of job {} failed: {}", c.spec.job_id,
                       resolved.err().message);
      std::abort();
    }
    auto job = std::make_unique<active_job>();
    job->job_id = c.spec.job_id;
    job->seq = next_seq_++;
    job->partition = c.message->partition;
    job->accepted_at = now;
    job->target = std::move(resolved->recipients);
    job->target.runOptimize();
    job->progress.total = job->target.cardinality();
    job->progress.not_registered = resolved->not_registered.size();

    job_record record{job_state::accepted, job->seq, to_unix_ms(now), job->partition,
                      c.message->offset, std::string(payload(c.message))};
    write.Put(db_.handle(cf::jobs), c.key, encode_job_record(record));
    std::string target(job->target.getSizeInBytes(), '\0');
    job->target.write(target.data());
    write.Put(db_.handle(cf::jobs), job_key(job->job_id, 't'), target);
    write.Put(db_.handle(cf::jobs), job_key(job->job_id, 'p'), encode_progress(job->progress));
    write.Put(db_.handle(cf::meta), active_key(job->seq), job->job_id);
    counts.add(counter_kind::accepted, {c.spec.company_id, {}, {}, {}}, 1);
    counts.add(counter_kind::rejected, {c.spec.company_id, {}, {}, "not_registered"},
                resolved->not_registered.size());
    for (const auto& user : resolved->not_registered) {
      events_.publish({.type = "rejected", .job_id = job->job_id, .company_id = c.spec.company_id,
                       .user_id = user, .reason = "not_registered",
                       .detail = "user is not registered with the company and service"});
    }
    job->spec = std::move(c.spec);
    accepted.push_back(std::move(job));
  }
  if (!accepted.empty()) {
    std::string seq;
    put_be64(seq, next_seq_);
    write.Put(db_.handle(cf::meta), "job_seq", seq);
  }
  counts.flush_into(write, db_);
  if (write.Count() > 0) {
    if (auto r = db_.write(write); !r) {
      spdlog::critical("accepting jobs failed: {}", r.err().message);
      std::abort();
    }
  }
  for (auto& job : accepted) {
    ++stats_.accepted;
    events_.publish({.type = "accepted", .job_id = job->job_id, .company_id = job->spec.company_id});
    if (job->partition >= 0) {
      if (pending_.size() <= static_cast<size_t>(job->partition)) pending_.resize(job->partition + 1);
      ++pending_[job->partition];
    }
    fanout_.add_job(std::move(job));
  }
}

}  // namespace relay
