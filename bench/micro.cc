// relay_micro: what the hottest pieces of relay's core thread cost, measured
// on relay's own code (docs/performance.md, "why"):
//  1. RocksDB writes per single-recipient job, today and with fewer records;
//  2. the per-recipient work of a broadcast that is not the directory read:
//     message ids and the "sent" event's JSON.
//
// 1.
// Replays, on relay's own store (same options, column families and key
// encodings), the writes relay's core thread makes for N single-recipient
// jobs, in turns of `batch` jobs as relay_service::pump does:
//   current  - the records job_intake and fanout write today (14 memtable
//              entries per job: j, t, p, active, counter at accept; chunk and p
//              at chunk start; chunk delete, counter, p, p, j, t delete and
//              active delete when the job completes)
//   proposed - accept: j, t, active; completion: one p carrying the final
//              state, t and active deleted; counters summed per batch (6 per job)
//   current, counters summed - today's records with each batch's counter
//              deltas summed into one merge per key
//   minimal  - as proposed without the t record (a to.users job re-resolves
//              its target from its JSON on resume): 4 per job
// and prints the time spent in store::write per job.
//
//   relay_micro [--jobs N] [--batch N]

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "daemon/event_json.h"
#include "routing/counter_merge.h"
#include "routing/counters.h"
#include "routing/message_id.h"
#include "routing/job_store.h"
#include "routing/roaring_compat.h"
#include "routing/store.h"

namespace {

// One merge per call: the per-event counting relay did before counter_batch.
void add_counter(rocksdb::WriteBatch& batch, relay::store& db, relay::counter_kind kind,
                 const relay::counter_dims& dims, uint64_t n) {
  batch.Merge(db.handle(relay::cf::counters), relay::counter_key(kind, dims), relay::encode_counter(n));
}

using steady = std::chrono::steady_clock;

struct pattern_result {
  double write_s = 0;
  uint64_t entries = 0;
};

std::string job_json(size_t i) {
  // The bench's single-recipient job (about 230 bytes).
  return "{\"job_id\":\"tp-" + std::to_string(i) +
         "\",\"company_id\":\"bench\",\"service_id\":\"std\",\"to\":{\"users\":[\"u" + std::to_string(i * 7919 % 1000000) +
         "\"]},\"content\":{\"text\":\"hello\"},\"channels\":{\"mode\":\"specified\",\"order\":[\"sms\"]}}";
}

std::string target_bytes(uint32_t ordinal) {
  roaring::Roaring r;
  r.add(ordinal);
  r.runOptimize();
  std::string out(r.getSizeInBytes(), '\0');
  r.write(out.data());
  return out;
}

// current_summed: today's records, but each batch's counter deltas summed into
// one merge per key (the only change in that row), to show what the counters cost.
enum class pattern { current, current_summed, proposed, minimal };

pattern_result run(relay::store& db, pattern p, size_t jobs, size_t batch, uint64_t seq_base) {
  using relay::cf;
  pattern_result res;
  const relay::counter_dims accepted_dims{"bench", {}, {}, {}};
  const relay::counter_dims sent_dims{"bench", "carrier-a", "sms", {}};
  std::vector<size_t> previous;  // jobs of the previous turn: they complete in this turn's flush
  for (size_t begin = 0; begin <= jobs; begin += batch) {
    const size_t end = std::min(jobs, begin + batch);
    // Accept this turn's jobs (job_intake::handle: one write).
    rocksdb::WriteBatch accept;
    for (size_t i = begin; i < end; ++i) {
      const std::string id = "tp-" + std::to_string(i);
      relay::job_record rec{relay::job_state::accepted, seq_base + i, 1795430000000, int32_t(i % 32), int64_t(i), job_json(i)};
      accept.Put(db.handle(cf::jobs), relay::job_key(id, 'j'), relay::encode_job_record(rec));
      if (p != pattern::minimal) accept.Put(db.handle(cf::jobs), relay::job_key(id, 't'), target_bytes(uint32_t(i)));
      relay::job_progress prog;
      prog.total = 1;
      if (p == pattern::current || p == pattern::current_summed) {
        accept.Put(db.handle(cf::jobs), relay::job_key(id, 'p'), relay::encode_progress(prog));
      }
      if (p == pattern::current) add_counter(accept, db, relay::counter_kind::accepted, accepted_dims, 1);
      accept.Put(db.handle(cf::meta), relay::active_key(seq_base + i), id);
    }
    if (p != pattern::current && end > begin) {
      add_counter(accept, db, relay::counter_kind::accepted, accepted_dims, end - begin);
    }
    if (end > begin) {
      std::string seq;
      relay::put_be64(seq, seq_base + end);
      accept.Put(db.handle(cf::meta), "job_seq", seq);
    }

    // fanout::step's flush: completions of the previous turn, chunk starts of this one.
    rocksdb::WriteBatch fan;
    for (size_t i : previous) {
      const std::string id = "tp-" + std::to_string(i);
      relay::job_progress prog;
      prog.next_cursor = i + 1;
      prog.total = 1;
      prog.sent = 1;
      if (p == pattern::current || p == pattern::current_summed) {
        fan.Delete(db.handle(cf::jobs), relay::chunk_key(id, i));
        if (p == pattern::current) add_counter(fan, db, relay::counter_kind::sent, sent_dims, 1);
        fan.Put(db.handle(cf::jobs), relay::job_key(id, 'p'), relay::encode_progress(prog));  // complete_chunk
        fan.Put(db.handle(cf::jobs), relay::job_key(id, 'p'), relay::encode_progress(prog));  // finish_job
        relay::job_record rec{relay::job_state::done, seq_base + i, 1795430000000, int32_t(i % 32), int64_t(i), job_json(i)};
        fan.Put(db.handle(cf::jobs), relay::job_key(id, 'j'), relay::encode_job_record(rec));
      } else {
        std::string v = relay::encode_progress(prog);
        v.push_back(static_cast<char>(relay::job_state::done));  // the state rides with the final progress
        fan.Put(db.handle(cf::jobs), relay::job_key(id, 'p'), v);
      }
      if (p != pattern::minimal) fan.Delete(db.handle(cf::jobs), relay::job_key(id, 't'));
      fan.Delete(db.handle(cf::meta), relay::active_key(seq_base + i));
    }
    if (p != pattern::current && !previous.empty()) {
      add_counter(fan, db, relay::counter_kind::sent, sent_dims, previous.size());
    }
    if (p == pattern::current || p == pattern::current_summed) {
      for (size_t i = begin; i < end; ++i) {
        const std::string id = "tp-" + std::to_string(i);
        std::string e;
        relay::put_be64(e, i + 1);
        fan.Put(db.handle(cf::jobs), relay::chunk_key(id, i), e);
        relay::job_progress prog;
        prog.next_cursor = i + 1;
        prog.total = 1;
        fan.Put(db.handle(cf::jobs), relay::job_key(id, 'p'), relay::encode_progress(prog));
      }
    }

    res.entries += accept.Count() + fan.Count();
    const auto t0 = steady::now();
    if (accept.Count() > 0) (void)db.write(accept);
    if (fan.Count() > 0) (void)db.write(fan);
    res.write_s += std::chrono::duration<double>(steady::now() - t0).count();
    previous.clear();
    for (size_t i = begin; i < end; ++i) previous.push_back(i);
    if (end == jobs && begin + batch > jobs) break;
  }
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  size_t jobs = 200000, batch = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--jobs") jobs = std::stoull(argv[i + 1]);
    else if (a == "--batch") batch = std::stoull(argv[i + 1]);
  }
  std::printf("relay_micro: %zu single-recipient jobs in turns of %zu (store::write time only)\n\n", jobs, batch);
  std::printf("| %-24s | entries/job | write µs/job | write-bound jobs/s |\n|--------------------------|------------:|-------------:|-------------------:|\n", "pattern");
  const char* names[] = {"current", "current, counters summed", "proposed", "minimal"};
  for (int k = 0; k < 4; ++k) {
    // A fresh database per pattern, so each starts from empty memtables.
    char tmpl[] = "/tmp/relay-write-micro-XXXXXX";
    if (!::mkdtemp(tmpl)) return 1;
    auto db = relay::store::open(std::string(tmpl) + "/db", relay::store_options{});
    if (!db) {
      std::fprintf(stderr, "%s\n", db.err().message.c_str());
      return 1;
    }
    const pattern_result r = run(**db, static_cast<pattern>(k), jobs, batch, 1);
    (*db)->close();
    std::error_code ec;
    std::filesystem::remove_all(tmpl, ec);
    std::printf("| %-24s | %11.1f | %12.2f | %18.0f |\n", names[k], double(r.entries) / jobs, r.write_s * 1e6 / jobs,
                jobs / r.write_s);
  }

  // 2. Per recipient, as fanout::step and fanout::on_outcome do it.
  constexpr size_t kRecipients = 1000000;
  std::vector<std::string> users(1024);
  for (size_t i = 0; i < users.size(); ++i) users[i] = "u" + std::to_string(i * 977);
  const std::string job_id = "track-bc-all";
  uint64_t sink = 0;
  auto time_ns = [&](auto&& fn) {
    const auto t0 = steady::now();
    for (size_t i = 0; i < kRecipients; ++i) fn(i);
    return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / kRecipients;
  };
  const double id_ns = time_ns([&](size_t i) {
    const relay::message_id id = relay::make_message_id(job_id, users[i % users.size()], relay::channel::sms);
    sink += static_cast<unsigned char>(id[0]);
  });
  std::string buffer;
  const int64_t now_ms = 1795430000000;
  const relay::message_id id = relay::make_message_id(job_id, users[0], relay::channel::sms);
  const double event_ns = time_ns([&](size_t i) {
    relay::encode_event({.type = "sent", .job_id = job_id, .message_id = relay::view(id), .company_id = "bench",
                         .user_id = users[i % users.size()], .carrier_id = "carrier-a", .channel = "sms",
                         .reason = {}, .detail = {}, .at_unix_ms = now_ms + int64_t(i / 1000)},
                        buffer);
    sink += buffer.size();
  });
  const size_t event_bytes = buffer.size();
  const double time_text_ns = time_ns([&](size_t i) {
    buffer.clear();
    relay::append_rfc3339(buffer, now_ms + int64_t(i / 1000));
    sink += buffer.size();
  });
  std::printf("\nper broadcast recipient (%zu runs, ns each):\n", kRecipients);
  std::printf("| piece                                             |   ns |\n|---------------------------------------------------|-----:|\n");
  std::printf("| make_message_id (fan-out computes it twice)       | %4.0f |\n", id_ns);
  std::printf("| encode_event for \"sent\" (JSON, %3zu bytes)         | %4.0f |\n", event_bytes, event_ns);
  std::printf("|   of which append_rfc3339 (snprintf)              | %4.0f |\n", time_text_ns);
  return sink == 42 ? 1 : 0;
}
