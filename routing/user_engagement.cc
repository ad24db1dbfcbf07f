#include "routing/user_engagement.h"

#include <rocksdb/iterator.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "routing/byte_codec.h"

namespace relay {
namespace {

constexpr uint8_t kRecordVersion = 1;
constexpr uint8_t kCapsVersion = 1;
constexpr char kUserPrefix = 'u';
constexpr char kCompanyPrefix = 'c';
constexpr double kLn2 = 0.69314718055994530942;

template <class T>
void saturating_inc(T& v) {
  if (v != std::numeric_limits<T>::max()) ++v;
}

uint32_t to_seconds(sys_time t) {
  const int64_t s = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
  return static_cast<uint32_t>(std::clamp<int64_t>(s, 1, std::numeric_limits<uint32_t>::max()));
}

uint32_t to_seconds_ceil(sys_time t) {
  const int64_t s = std::chrono::ceil<std::chrono::seconds>(t).time_since_epoch().count();
  return static_cast<uint32_t>(std::clamp<int64_t>(s, 1, std::numeric_limits<uint32_t>::max()));
}

sys_time from_seconds(uint32_t s) { return sys_time(std::chrono::seconds(s)); }

// Brings the decayed counts forward to `at_s`. Events older than the record's
// time (late receipts) are added without moving the time back.
void decay_to(user_record& r, uint32_t at_s, double per_second) {
  if (r.recent_at_s != 0 && at_s > r.recent_at_s) {
    const double f = std::exp(-per_second * double(at_s - r.recent_at_s));
    r.recent_sends = static_cast<float>(r.recent_sends * f);
    r.recent_opens = static_cast<float>(r.recent_opens * f);
  }
  r.recent_at_s = std::max(r.recent_at_s, at_s);
}

void put_float(std::string& out, float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

bool get_float(codec::reader& in, float& f) {
  uint32_t bits = 0;
  for (int i = 0; i < 4; ++i) {
    uint8_t b;
    if (!in.byte(b)) return false;
    bits |= uint32_t(b) << (8 * i);
  }
  f = std::bit_cast<float>(bits);
  return std::isfinite(f) && f >= 0;
}

template <class T>
bool get_uint(codec::reader& in, T& v) {
  uint64_t x;
  if (!in.varint(x) || x > std::numeric_limits<T>::max()) return false;
  v = static_cast<T>(x);
  return true;
}

void put_caps(std::string& out, const cap_counts& c) {
  codec::put_varint(out, c.day);
  codec::put_varint(out, c.day_sends);
  codec::put_varint(out, c.week);
  codec::put_varint(out, c.week_sends);
}

bool get_caps(codec::reader& in, cap_counts& c) {
  return get_uint(in, c.day) && get_uint(in, c.day_sends) && get_uint(in, c.week) &&
         get_uint(in, c.week_sends);
}

void set_bit(std::vector<uint64_t>& bits, uint32_t i) { bits[i >> 6] |= uint64_t(1) << (i & 63); }
bool test_bit(const std::vector<uint64_t>& bits, uint32_t i) {
  return (bits[i >> 6] >> (i & 63)) & 1;
}

}  // namespace

void cap_counts::count_send(int64_t local_day, int32_t local_week) {
  const auto d = static_cast<uint16_t>(local_day);
  const auto w = static_cast<uint16_t>(local_week);
  if (day != d) {
    day = d;
    day_sends = 0;
  }
  if (week != w) {
    week = w;
    week_sends = 0;
  }
  saturating_inc(day_sends);
  saturating_inc(week_sends);
}

recent_engagement decayed(const user_record& r, sys_time now, std::chrono::seconds half_life) {
  recent_engagement out{r.recent_sends, r.recent_opens};
  const int64_t now_s = std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
  if (r.recent_at_s != 0 && now_s > r.recent_at_s && half_life.count() > 0) {
    const double f = std::exp(-kLn2 * double(now_s - r.recent_at_s) / double(half_life.count()));
    out.sends *= f;
    out.opens *= f;
  }
  return out;
}

std::optional<sys_time> quiet_blocks(const user_record* r, uint64_t job_seq, sys_time at) {
  if (r == nullptr || !r->has_quiet() || r->quiet_job_seq() == job_seq) return std::nullopt;
  const sys_time from = from_seconds(r->quiet_from_s);
  const sys_time until = from_seconds(r->quiet_until_s);
  if (at < from || at >= until) return std::nullopt;
  return until;
}

void encode_user_record(const user_record& r, std::string& out) {
  out.clear();
  out.push_back(static_cast<char>(kRecordVersion));
  for (uint32_t v : r.sent) codec::put_varint(out, v);
  for (uint32_t v : r.opened) codec::put_varint(out, v);
  codec::put_varint(out, r.delivered);
  codec::put_varint(out, r.clicked);
  codec::put_varint(out, r.failed);
  put_float(out, r.recent_sends);
  put_float(out, r.recent_opens);
  codec::put_varint(out, r.recent_at_s);
  put_caps(out, r.caps);
  codec::put_varint(out, r.quiet_from_s);
  codec::put_varint(out, r.quiet_until_s);
  codec::put_varint(out, r.quiet_job_seq());
}

result<user_record> decode_user_record(std::string_view in_bytes) {
  codec::reader in(in_bytes);
  uint8_t version;
  if (!in.byte(version)) return make_error(errc::corruption, "user record: empty");
  if (version != kRecordVersion) {
    return make_error(errc::unsupported,
                      "user record: version " + std::to_string(version) + " (this relay reads 1)");
  }
  user_record r;
  uint64_t seq = 0;
  bool ok = true;
  for (uint32_t& v : r.sent) ok = ok && get_uint(in, v);
  for (uint32_t& v : r.opened) ok = ok && get_uint(in, v);
  ok = ok && get_uint(in, r.delivered) && get_uint(in, r.clicked) && get_uint(in, r.failed) &&
       get_float(in, r.recent_sends) && get_float(in, r.recent_opens) &&
       get_uint(in, r.recent_at_s) && get_caps(in, r.caps) && get_uint(in, r.quiet_from_s) &&
       get_uint(in, r.quiet_until_s) && in.varint(seq) && seq < (uint64_t(1) << 48) && in.done();
  if (!ok) return make_error(errc::corruption, "user record: malformed or truncated");
  r.quiet_seq_lo = static_cast<uint32_t>(seq);
  r.quiet_seq_hi = static_cast<uint16_t>(seq >> 32);
  return r;
}

void encode_cap_counts(const cap_counts& c, std::string& out) {
  out.clear();
  out.push_back(static_cast<char>(kCapsVersion));
  put_caps(out, c);
}

result<cap_counts> decode_cap_counts(std::string_view in_bytes) {
  codec::reader in(in_bytes);
  uint8_t version;
  if (!in.byte(version)) return make_error(errc::corruption, "cap counts: empty");
  if (version != kCapsVersion) {
    return make_error(errc::unsupported,
                      "cap counts: version " + std::to_string(version) + " (this relay reads 1)");
  }
  cap_counts c;
  if (!get_caps(in, c) || !in.done()) {
    return make_error(errc::corruption, "cap counts: malformed or truncated");
  }
  return c;
}

std::string user_stats_key(uint32_t ordinal) {
  std::string k(1, kUserPrefix);
  put_be32(k, ordinal);
  return k;
}

std::string user_company_stats_key(std::string_view company, uint32_t ordinal) {
  std::string k(1, kCompanyPrefix);
  k.append(company);
  k.push_back('\0');
  put_be32(k, ordinal);
  return k;
}

user_engagement::user_engagement(user_engagement_params params) : params_(std::move(params)) {
  const auto hl = std::max<int64_t>(1, params_.half_life.count());
  decay_per_second_ = kLn2 / double(hl);
  set_capped_companies(params_.capped_companies);
}

void user_engagement::set_capped_companies(std::span<const std::string> companies) {
  std::vector<std::string> names(companies.begin(), companies.end());
  for (company_table& t : companies_) t.capped = false;
  for (const std::string& name : names) company(name).capped = true;
  params_.capped_companies = std::move(names);
}

void user_engagement::reserve(uint32_t count) {
  if (count <= records_.size()) return;
  records_.resize(count);
  dirty_bits_.resize((size_t(count) + 63) / 64);
}

user_record& user_engagement::at(uint32_t ordinal) {
  if (ordinal >= records_.size()) {
    // Geometric growth: a broadcast in ordinal order must not resize per recipient.
    const size_t want = std::max<size_t>(size_t(ordinal) + 1, records_.size() * 3 / 2);
    records_.resize(want);
    dirty_bits_.resize((want + 63) / 64);
  }
  return records_[ordinal];
}

void user_engagement::mark_dirty(uint32_t ordinal) {
  if (test_bit(dirty_bits_, ordinal)) return;
  set_bit(dirty_bits_, ordinal);
  dirty_.push_back(ordinal);
}

user_engagement::company_table& user_engagement::company(std::string_view name) {
  if (auto it = company_index_.find(name); it != company_index_.end())
    return companies_[it->second];
  company_index_.emplace(std::string(name), companies_.size());
  companies_.push_back(company_table{std::string(name), false, {}, {}, {}});
  return companies_.back();
}

void user_engagement::mark_company_dirty(company_table& t, uint32_t ordinal) {
  if (test_bit(t.dirty_bits, ordinal)) return;
  set_bit(t.dirty_bits, ordinal);
  t.dirty.push_back(ordinal);
}

const user_record* user_engagement::find(uint32_t ordinal) const {
  if (ordinal >= records_.size()) return nullptr;
  const user_record& r = records_[ordinal];
  return r.empty() ? nullptr : &r;
}

const cap_counts* user_engagement::company_counts(std::string_view company,
                                                  uint32_t ordinal) const {
  auto it = company_index_.find(company);
  if (it == company_index_.end()) return nullptr;
  const company_table& t = companies_[it->second];
  if (ordinal >= t.by_ordinal.size()) return nullptr;
  return &t.by_ordinal[ordinal];
}

void user_engagement::on_sent(uint32_t ordinal, channel ch, std::string_view company_id,
                              sys_time when, int64_t local_day, int32_t local_week) {
  user_record& r = at(ordinal);
  saturating_inc(r.sent[static_cast<size_t>(ch)]);
  decay_to(r, to_seconds(when), decay_per_second_);
  r.recent_sends += 1.0f;
  r.caps.count_send(local_day, local_week);
  mark_dirty(ordinal);

  if (companies_.empty()) return;
  auto it = company_index_.find(company_id);
  if (it == company_index_.end() || !companies_[it->second].capped) return;
  company_table& t = companies_[it->second];
  if (ordinal >= t.by_ordinal.size()) {
    const size_t want = std::max<size_t>(size_t(ordinal) + 1, t.by_ordinal.size() * 3 / 2);
    t.by_ordinal.resize(want);
    t.dirty_bits.resize((want + 63) / 64);
  }
  t.by_ordinal[ordinal].count_send(local_day, local_week);
  if (!test_bit(t.dirty_bits, ordinal)) ++company_dirty_count_;
  mark_company_dirty(t, ordinal);
}

void user_engagement::on_event(uint32_t ordinal, channel ch, engagement_count what, sys_time when) {
  if (what == engagement_count::sent) return;
  user_record& r = at(ordinal);
  switch (what) {
    case engagement_count::opened:
      saturating_inc(r.opened[static_cast<size_t>(ch)]);
      decay_to(r, to_seconds(when), decay_per_second_);
      r.recent_opens += 1.0f;
      break;
    case engagement_count::delivered:
      saturating_inc(r.delivered);
      break;
    case engagement_count::clicked:
      saturating_inc(r.clicked);
      break;
    case engagement_count::failed:
      saturating_inc(r.failed);
      break;
    case engagement_count::sent:
      break;
  }
  if (r.recent_at_s == 0) r.recent_at_s = to_seconds(when);  // counted: no longer "never messaged"
  mark_dirty(ordinal);
}

bool user_engagement::reserve_quiet(uint32_t ordinal, uint64_t job_seq, sys_time from,
                                    sys_time until, sys_time now) {
  user_record& r = at(ordinal);
  if (r.has_quiet() && r.quiet_job_seq() != job_seq && from_seconds(r.quiet_until_s) > now) {
    return false;
  }
  r.quiet_from_s = to_seconds(from);
  r.quiet_until_s = std::max(to_seconds_ceil(until), r.quiet_from_s);
  r.quiet_seq_lo = static_cast<uint32_t>(job_seq);
  r.quiet_seq_hi = static_cast<uint16_t>(job_seq >> 32);
  mark_dirty(ordinal);
  return true;
}

void user_engagement::release_quiet(uint32_t ordinal, uint64_t job_seq) {
  if (ordinal >= records_.size()) return;
  user_record& r = records_[ordinal];
  if (!r.has_quiet() || r.quiet_job_seq() != job_seq) return;
  r.quiet_from_s = r.quiet_until_s = r.quiet_seq_lo = 0;
  r.quiet_seq_hi = 0;
  mark_dirty(ordinal);
}

void user_engagement::flush_into(rocksdb::WriteBatch& batch, store& db) {
  rocksdb::ColumnFamilyHandle* h = db.handle(cf::user_stats);
  for (uint32_t ordinal : dirty_) {
    key_.assign(1, kUserPrefix);
    put_be32(key_, ordinal);
    encode_user_record(records_[ordinal], value_);
    batch.Put(h, key_, value_);
    dirty_bits_[ordinal >> 6] = 0;  // whole word: every bit in it is cleared by this loop
  }
  dirty_.clear();
  for (company_table& t : companies_) {
    for (uint32_t ordinal : t.dirty) {
      key_.assign(1, kCompanyPrefix);
      key_.append(t.name);
      key_.push_back('\0');
      put_be32(key_, ordinal);
      encode_cap_counts(t.by_ordinal[ordinal], value_);
      batch.Put(h, key_, value_);
      t.dirty_bits[ordinal >> 6] = 0;
    }
    t.dirty.clear();
  }
  company_dirty_count_ = 0;
}

result<void> user_engagement::load(store& db) {
  std::unique_ptr<rocksdb::Iterator> it(
      db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::user_stats)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    const std::string_view value = it->value().ToStringView();
    if (key.size() == 5 && key[0] == kUserPrefix) {
      const uint32_t ordinal = get_be32(key.data() + 1);
      auto r = decode_user_record(value);
      if (!r) {
        return make_error(r.err().code,
                          "user_stats ordinal " + std::to_string(ordinal) + ": " + r.err().message);
      }
      at(ordinal) = *r;
    } else if (key.size() >= 6 && key[0] == kCompanyPrefix && key[key.size() - 5] == '\0') {
      const std::string_view name = key.substr(1, key.size() - 6);
      const uint32_t ordinal = get_be32(key.data() + key.size() - 4);
      auto c = decode_cap_counts(value);
      if (!c) {
        return make_error(c.err().code, "user_stats company " + std::string(name) + " ordinal " +
                                            std::to_string(ordinal) + ": " + c.err().message);
      }
      company_table& t = company(name);
      if (ordinal >= t.by_ordinal.size()) {
        t.by_ordinal.resize(size_t(ordinal) + 1);
        t.dirty_bits.resize((size_t(ordinal) + 64) / 64);
      }
      t.by_ordinal[ordinal] = *c;
    }
    // Anything else was written by a newer relay: skipped.
  }
  if (!it->status().ok()) return make_error(errc::io_error, it->status().ToString());
  return {};
}

result<user_record> user_engagement::read(store& db, uint32_t ordinal) {
  std::string value;
  auto got = db.get(cf::user_stats, user_stats_key(ordinal), &value);
  if (!got) return got.err();
  return decode_user_record(value);
}

result<cap_counts> user_engagement::read_company(store& db, std::string_view company,
                                                 uint32_t ordinal) {
  std::string value;
  auto got = db.get(cf::user_stats, user_company_stats_key(company, ordinal), &value);
  if (!got) return got.err();
  return decode_cap_counts(value);
}

}  // namespace relay
