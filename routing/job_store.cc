#include "routing/job_store.h"

#include <rocksdb/iterator.h>

#include <memory>

namespace relay {
namespace {

constexpr uint8_t kJobRecordVersion = 1;
constexpr std::string_view kActivePrefix{"active\0", 7};

}  // namespace

std::string job_key(std::string_view job_id, char kind) {
  std::string k;
  k.reserve(job_id.size() + 2);
  k.append(job_id);
  k.push_back('\0');
  k.push_back(kind);
  return k;
}

std::string chunk_key(std::string_view job_id, uint64_t begin) {
  std::string k = job_key(job_id, 'c');
  put_be64(k, begin);
  return k;
}

std::string active_key(uint64_t seq) {
  std::string k(kActivePrefix);
  put_be64(k, seq);
  return k;
}

std::string encode_job_record(const job_record& r) {
  std::string v;
  v.reserve(2 + 8 + 8 + 4 + 8 + r.json.size());
  v.push_back(static_cast<char>(kJobRecordVersion));
  v.push_back(static_cast<char>(r.state));
  put_be64(v, r.seq);
  put_be64(v, static_cast<uint64_t>(r.accepted_at_ms));
  put_be32(v, static_cast<uint32_t>(r.partition));
  put_be64(v, static_cast<uint64_t>(r.offset));
  v.append(r.json);
  return v;
}

result<job_record> decode_job_record(std::string_view v) {
  constexpr size_t kHeader = 2 + 8 + 8 + 4 + 8;
  if (v.size() < kHeader || static_cast<uint8_t>(v[0]) != kJobRecordVersion) {
    return make_error(errc::corruption, "job record: unknown format");
  }
  job_record r;
  r.state = static_cast<job_state>(v[1]);
  r.seq = get_be64(v.data() + 2);
  r.accepted_at_ms = static_cast<int64_t>(get_be64(v.data() + 10));
  r.partition = static_cast<int32_t>(get_be32(v.data() + 18));
  r.offset = static_cast<int64_t>(get_be64(v.data() + 22));
  r.json.assign(v.substr(kHeader));
  return r;
}

// Six counts and the done byte (49 bytes), then, since issue 4, expired and
// throttled (65 bytes). The shorter form still decodes (both zero).
std::string encode_progress(const job_progress& p) {
  std::string v;
  v.reserve(65);
  for (uint64_t x : {p.next_cursor, p.total, p.sent, p.failed, p.no_route, p.not_registered}) {
    put_be64(v, x);
  }
  v.push_back(p.done ? 1 : 0);
  put_be64(v, p.expired);
  put_be64(v, p.throttled);
  return v;
}

result<job_progress> decode_progress(std::string_view v) {
  if (v.size() != 49 && v.size() != 65) return make_error(errc::corruption, "job progress: unknown format");
  job_progress p;
  uint64_t* fields[] = {&p.next_cursor, &p.total, &p.sent, &p.failed, &p.no_route, &p.not_registered};
  for (size_t i = 0; i < 6; ++i) *fields[i] = get_be64(v.data() + 8 * i);
  p.done = v[48] != 0;
  if (v.size() == 65) {
    p.expired = get_be64(v.data() + 49);
    p.throttled = get_be64(v.data() + 57);
  }
  return p;
}

result<stored_job> load_job(store& db, std::string_view job_id) {
  stored_job j;
  j.job_id.assign(job_id);
  std::string value;
  if (auto r = db.get(cf::jobs, job_key(job_id, 'j'), &value); !r) return r.err();
  auto rec = decode_job_record(value);
  if (!rec) return rec.err();
  j.record = std::move(*rec);
  // A finished job keeps its record and progress; its recipient set is gone.
  if (auto r = db.get(cf::jobs, job_key(job_id, 't'), &j.target); !r && r.err().code != errc::not_found) {
    return r.err();
  }
  if (auto r = db.get(cf::jobs, job_key(job_id, 'p'), &value); r) {
    auto p = decode_progress(value);
    if (!p) return p.err();
    j.progress = *p;
    if (p->done) j.record.state = job_state::done;
  } else if (r.err().code != errc::not_found) {
    return r.err();
  }
  const std::string prefix = job_key(job_id, 'c');
  std::unique_ptr<rocksdb::Iterator> it(db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::jobs)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key().size() != prefix.size() + 8 || it->value().size() != 8) {
      return make_error(errc::corruption, "job " + j.job_id + ": malformed chunk record");
    }
    j.open_chunks.push_back({get_be64(it->key().data() + prefix.size()), get_be64(it->value().data())});
  }
  if (!it->status().ok()) return make_error(errc::io_error, it->status().ToString());
  return j;
}

result<std::vector<stored_job>> load_active_jobs(store& db) {
  std::vector<std::string> ids;
  {
    std::unique_ptr<rocksdb::Iterator> it(db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::meta)));
    const rocksdb::Slice prefix(kActivePrefix.data(), kActivePrefix.size());
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      ids.emplace_back(it->value().ToStringView());
    }
    if (!it->status().ok()) return make_error(errc::io_error, it->status().ToString());
  }
  std::vector<stored_job> jobs;
  jobs.reserve(ids.size());
  for (const auto& id : ids) {
    auto j = load_job(db, id);
    if (!j) return j.err();
    jobs.push_back(std::move(*j));
  }
  return jobs;
}

result<uint64_t> load_next_job_seq(store& db) {
  std::string v;
  auto r = db.get(cf::meta, "job_seq", &v);
  if (!r) return r.err().code == errc::not_found ? result<uint64_t>(uint64_t{1}) : result<uint64_t>(r.err());
  if (v.size() != 8) return make_error(errc::corruption, "meta job_seq: malformed");
  return get_be64(v.data());
}

}  // namespace relay
