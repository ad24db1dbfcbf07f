#include "routing/outbox.h"

#include <rocksdb/iterator.h>

#include <memory>

namespace relay {

std::string outbox_prefix(std::string_view carrier_id, channel ch) {
  std::string p;
  p.reserve(carrier_id.size() + 3);
  p.append(carrier_id);
  p.push_back('\0');
  p.push_back(static_cast<char>('0' + static_cast<int>(ch)));
  p.push_back('\0');
  return p;
}

std::string outbox_key(std::string_view prefix, uint64_t job_seq, uint32_t ordinal) {
  std::string k;
  k.reserve(prefix.size() + 12);
  k.append(prefix);
  put_be64(k, job_seq);
  put_be32(k, ordinal);
  return k;
}

bool parse_outbox_key(std::string_view key, size_t prefix_size, outbox_entry& out) {
  if (key.size() != prefix_size + 12) return false;
  out.job_seq = get_be64(key.data() + prefix_size);
  out.ordinal = get_be32(key.data() + prefix_size + 8);
  return true;
}

result<std::vector<outbox_depth>> scan_outboxes(store& db, const std::function<void(uint64_t)>& per_job) {
  std::vector<outbox_depth> out;
  std::unique_ptr<rocksdb::Iterator> it(db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::outbox)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    // carrier \0 channel \0 then 12 bytes.
    if (key.size() < 15 || key[key.size() - 13] != '\0' || key[key.size() - 15] != '\0') continue;
    const size_t prefix_size = key.size() - 12;
    const std::string_view carrier = key.substr(0, prefix_size - 3);
    const int c = key[prefix_size - 2] - '0';
    if (c < 0 || c >= kChannelCount) continue;
    if (out.empty() || out.back().carrier_id != carrier || static_cast<int>(out.back().ch) != c) {
      out.push_back({std::string(carrier), static_cast<channel>(c), 0, {}});
    }
    ++out.back().entries;
    out.back().last_key.assign(key);
    if (per_job) {
      outbox_entry e;
      if (parse_outbox_key(key, prefix_size, e)) per_job(e.job_seq);
    }
  }
  if (!it->status().ok()) return make_error(errc::io_error, "outbox scan: " + it->status().ToString());
  return out;
}

}  // namespace relay
