#include "routing/counters.h"

#include <rocksdb/iterator.h>

#include <array>
#include <memory>

#include "routing/counter_merge.h"

namespace relay {
namespace {

constexpr char kSep = '\x1f';
constexpr std::array<std::string_view, 11> kNames = {
    "accepted", "duplicate", "dlq",     "sent",    "failed",           "rejected",
    "delivered", "opened",   "clicked", "registry_applied", "registry_rejected"};

}  // namespace

std::string_view to_string(counter_kind k) { return kNames[static_cast<size_t>(k)]; }

std::string counter_key(counter_kind kind, const counter_dims& d) {
  std::string k;
  k.reserve(16 + d.company.size() + d.carrier.size() + d.channel.size() + d.reason.size());
  k.append(to_string(kind));
  for (std::string_view part : {d.company, d.carrier, d.channel, d.reason}) {
    k.push_back(kSep);
    k.append(part);
  }
  return k;
}

void counter_batch::add(counter_kind kind, const counter_dims& dims, uint64_t n) {
  if (n == 0) return;
  key_ = counter_key(kind, dims);
  sums_[key_] += n;
}

void counter_batch::flush_into(rocksdb::WriteBatch& batch, store& db) {
  for (const auto& [key, n] : sums_) batch.Merge(db.handle(cf::counters), key, encode_counter(n));
  sums_.clear();
}

result<std::vector<counter_row>> read_counters(store& db) {
  std::vector<counter_row> rows;
  std::unique_ptr<rocksdb::Iterator> it(db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::counters)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key = it->key().ToStringView();
    std::array<std::string_view, 5> parts;
    size_t n = 0;
    while (n < parts.size()) {
      size_t pos = key.find(kSep);
      parts[n++] = key.substr(0, pos);
      if (pos == std::string_view::npos) break;
      key.remove_prefix(pos + 1);
    }
    if (n != parts.size()) continue;  // written by a newer relay; skip
    counter_row row;
    bool known = false;
    for (size_t i = 0; i < kNames.size(); ++i) {
      if (kNames[i] == parts[0]) {
        row.kind = static_cast<counter_kind>(i);
        known = true;
      }
    }
    if (!known) continue;
    row.company.assign(parts[1]);
    row.carrier.assign(parts[2]);
    row.channel.assign(parts[3]);
    row.reason.assign(parts[4]);
    row.value = decode_counter(it->value().ToStringView());
    rows.push_back(std::move(row));
  }
  if (!it->status().ok()) return make_error(errc::io_error, it->status().ToString());
  return rows;
}

}  // namespace relay
