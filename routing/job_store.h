#pragma once
// Durable job state in the `jobs` column family, so that a restart or a
// rebalance resumes a job without sending anything twice (DESIGN §2).
//
// Keys (job ids never contain '\0'):
//   job_id \0 'j'             job record: state, accept sequence, Kafka origin, the job's JSON
//   job_id \0 't'             the resolved recipient set (Roaring bitmap of ordinals), fixed at accept
//   job_id \0 'p'             fan-out progress: next ordinal to hand out, running totals, done
//   job_id \0 'c' be64(begin) an in-flight chunk [begin, end) of ordinals: recorded before its
//                             messages are submitted, deleted once every one has an outcome
// and in the `meta` column family:
//   "active\0" be64(seq)      job_id of every job not yet finished, in accept order
//   "job_seq"                 the next accept sequence number

#include <rocksdb/write_batch.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "routing/result.h"
#include "routing/store.h"

namespace relay {

enum class job_state : uint8_t { accepted = 1, done = 2 };

struct job_record {
  job_state state = job_state::accepted;
  uint64_t seq = 0;
  int64_t accepted_at_ms = 0;
  int32_t partition = -1;
  int64_t offset = -1;
  std::string json;  // the job as received
};

struct job_progress {
  uint64_t next_cursor = 0;  // every ordinal below has been handed to a chunk
  uint64_t total = 0;        // recipients in the resolved set
  uint64_t sent = 0;
  uint64_t failed = 0;
  uint64_t no_route = 0;
  uint64_t not_registered = 0;
  uint64_t expired = 0;    // the job expired before they could be reached
  uint64_t throttled = 0;  // their caps were used up
  bool done = false;  // every recipient has an outcome; the job is finished
  bool operator==(const job_progress&) const = default;
};

struct chunk_range {
  uint64_t begin = 0;
  uint64_t end = 0;  // exclusive
};

std::string job_key(std::string_view job_id, char kind);
std::string chunk_key(std::string_view job_id, uint64_t begin);
std::string active_key(uint64_t seq);

std::string encode_job_record(const job_record& r);
result<job_record> decode_job_record(std::string_view value);
std::string encode_progress(const job_progress& p);
result<job_progress> decode_progress(std::string_view value);

// Everything needed to resume one unfinished job.
struct stored_job {
  std::string job_id;
  job_record record;
  std::string target;  // serialized bitmap
  job_progress progress;
  std::vector<chunk_range> open_chunks;
};

// Reads the unfinished jobs in accept order.
result<std::vector<stored_job>> load_active_jobs(store& db);
result<uint64_t> load_next_job_seq(store& db);
// One job's record and progress (relayctl job); errc::not_found when unknown.
result<stored_job> load_job(store& db, std::string_view job_id);

}  // namespace relay
