#include "routing/engagement_cube.h"

#include <rocksdb/iterator.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <map>
#include <memory>

#include "routing/byte_codec.h"
#include "routing/counter_merge.h"

namespace relay {
namespace {

constexpr char kDimensionRows = 'c';
constexpr char kLocationRows = 'l';
constexpr char kHourly = 'h', kDaily = 'd', kMonthly = 'm';
constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// Month buckets past this (year 9999) are out of any calendar we print.
constexpr uint32_t kLastMonth = (9999 - 1970) * 12 + 11;
constexpr int64_t kLastDay = 2'932'896;  // 9999-12-31

constexpr std::array<std::string_view, 11> kDimensionNames = {
    "company",    "carrier", "channel", "gender",   "age_band", "region",
    "occupation", "hour",    "weekday", "location", "day"};
constexpr std::array<std::string_view, 7> kWeekdays = {"sun", "mon", "tue", "wed",
                                                       "thu", "fri", "sat"};

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

uint32_t clamp_bucket(int64_t v) {
  if (v < 0) return 0;
  if (v > std::numeric_limits<uint32_t>::max()) return std::numeric_limits<uint32_t>::max();
  return static_cast<uint32_t>(v);
}

uint32_t month_of_day(int64_t day) {
  if (day < 0) return 0;
  if (day > kLastDay) return kLastMonth;
  const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{day}}};
  return static_cast<uint32_t>((static_cast<int>(ymd.year()) - 1970) * 12 +
                               static_cast<int>(static_cast<unsigned>(ymd.month())) - 1);
}

int64_t month_start_ms(uint64_t month) {
  if (month > kLastMonth) return kNever;
  const std::chrono::year_month_day first{std::chrono::year{1970 + static_cast<int>(month / 12)},
                                          std::chrono::month{static_cast<unsigned>(month % 12) + 1},
                                          std::chrono::day{1}};
  return std::chrono::sys_days{first}.time_since_epoch().count() * kDayMs;
}

// The bucket of `level` holding `ms`.
uint32_t bucket_of(char level, int64_t ms) {
  switch (level) {
    case kHourly:
      return clamp_bucket(floor_div(ms, kHourMs));
    case kDaily:
      return clamp_bucket(floor_div(ms, kDayMs));
    default:
      return month_of_day(floor_div(ms, kDayMs));
  }
}

int64_t bucket_start_ms(char level, uint64_t bucket) {
  switch (level) {
    case kHourly:
      return static_cast<int64_t>(bucket) * kHourMs;
    case kDaily:
      return static_cast<int64_t>(bucket) * kDayMs;
    default:
      return month_start_ms(bucket);
  }
}
int64_t bucket_end_ms(char level, uint32_t bucket) {
  return bucket_start_ms(level, uint64_t{bucket} + 1);
}

bool known_level(char level) { return level == kHourly || level == kDaily || level == kMonthly; }

void put_head(std::string& out, char family, std::string_view company, char level,
              uint32_t bucket) {
  out.push_back(family);
  codec::put_string(out, company);
  out.push_back(level);
  put_be32(out, bucket);
}

// The fixed front of every row key.
struct row_head {
  char family = 0;
  std::string_view company;
  size_t level_at = 0;  // offset of the level byte in the key
  char level = 0;
  uint32_t bucket = 0;
  std::string_view rest;  // the dimensions after the bucket
};

bool parse_head(std::string_view key, row_head& h) {
  codec::reader r(key);
  uint8_t family = 0;
  if (!r.byte(family) || !r.string(h.company)) return false;
  h.family = static_cast<char>(family);
  h.level_at = static_cast<size_t>(h.company.data() + h.company.size() - key.data());
  if (key.size() < h.level_at + 5) return false;
  h.level = key[h.level_at];
  h.bucket = get_be32(key.data() + h.level_at + 1);
  h.rest = key.substr(h.level_at + 5);
  return true;
}

// A stored row's dimensions (views into its key). Location rows fill
// company, carrier, ch and location only. Trailing bytes (dimensions a newer
// relay appended) are ignored.
struct decoded_row {
  engagement_dims dims;
  std::string_view location;
  char level = 0;
  uint32_t bucket = 0;
};

bool decode_row(const row_head& h, decoded_row& out) {
  out = decoded_row{};
  out.dims.company = h.company;
  out.level = h.level;
  out.bucket = h.bucket;
  codec::reader r(h.rest);
  uint8_t ch = 0;
  if (!r.string(out.dims.carrier) || !r.byte(ch) || ch >= kChannelCount) return false;
  out.dims.ch = static_cast<channel>(ch);
  if (h.family == kLocationRows) return r.string(out.location);
  return r.string(out.dims.gender) && r.byte(out.dims.age_band) && r.string(out.dims.region) &&
         r.string(out.dims.occupation) && r.byte(out.dims.local_hour) && r.byte(out.dims.weekday);
}

// Counts from a stored value; false when it is not whole uint64s. Counts a
// newer relay appended are ignored, missing ones are zero.
bool decode_counts(std::string_view value, engagement_counts& out) {
  if (value.size() % 8 != 0) return false;
  out = engagement_counts{};
  const size_t n = std::min<size_t>(value.size() / 8, kEngagementCounts);
  for (size_t i = 0; i < n; ++i) out.v[i] = decode_counter(value.substr(i * 8, 8));
  return true;
}

void encode_counts(const uint64_t* v, size_t n, std::string& out) {
  out.resize(n * 8);
  for (size_t i = 0; i < n; ++i) {
    for (int b = 0; b < 8; ++b) out[i * 8 + b] = static_cast<char>((v[i] >> (8 * b)) & 0xff);
  }
}

error rocks_error(std::string_view what, const rocksdb::Status& s) {
  return make_error(s.IsCorruption() ? errc::corruption : errc::io_error,
                    std::string(what) + ": " + s.ToString());
}

// Visits the rows of `family` (of `company`, or of all when empty) whose
// bucket overlaps [since, until), seeking over the buckets outside it: per
// company and level the rows are in time order, so a range costs a few seeks,
// not a scan of everything older.
template <class Fn>
result<void> walk(store& db, char family, std::string_view company, sys_time since, sys_time until,
                  Fn&& fn) {
  const int64_t since_ms = to_unix_ms(since), until_ms = to_unix_ms(until);
  std::string prefix(1, family);
  if (!company.empty()) codec::put_string(prefix, company);
  std::unique_ptr<rocksdb::Iterator> it(
      db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::engagement)));
  std::string seek;
  row_head h;
  for (it->Seek(prefix); it->Valid();) {
    const std::string_view key = it->key().ToStringView();
    if (!key.starts_with(prefix)) break;
    if (!parse_head(key, h) || h.family != family) {
      it->Next();
      continue;
    }
    if (!known_level(h.level)) {  // a newer relay's level: skip all of it
      if (static_cast<uint8_t>(h.level) == 0xff) {
        it->Next();
        continue;
      }
      seek.assign(key.substr(0, h.level_at));
      seek.push_back(static_cast<char>(h.level + 1));
      it->Seek(seek);
      continue;
    }
    const uint32_t first = bucket_of(h.level, since_ms);
    if (h.bucket < first) {
      seek.assign(key.substr(0, h.level_at + 1));
      put_be32(seek, first);
      it->Seek(seek);
      continue;
    }
    if (bucket_start_ms(h.level, h.bucket) >= until_ms) {
      seek.assign(key.substr(0, h.level_at));
      seek.push_back(static_cast<char>(h.level + 1));
      it->Seek(seek);
      continue;
    }
    fn(h, it->value().ToStringView());
    it->Next();
  }
  if (!it->status().ok()) return rocks_error("engagement: read", it->status());
  return {};
}

std::string two_digits(unsigned v) {
  std::string s(2, '0');
  s[0] = static_cast<char>('0' + v / 10 % 10);
  s[1] = static_cast<char>('0' + v % 10);
  return s;
}

std::string bucket_label(char level, uint32_t bucket) {
  const int64_t day = floor_div(bucket_start_ms(level, bucket), kDayMs);
  if (day > kLastDay) return "";  // not a bucket relay writes
  const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{day}}};
  std::string s = std::to_string(static_cast<int>(ymd.year())) + "-" +
                  two_digits(static_cast<unsigned>(ymd.month()));
  if (level != kMonthly) s += "-" + two_digits(static_cast<unsigned>(ymd.day()));
  return s;
}

// One dimension of a row as printed, and as sorted (a string that orders the
// values naturally: numbers by number, channels in enum order).
void component(engagement_dimension d, const decoded_row& r, std::string& printed,
               std::string& sort) {
  printed.clear();
  sort.clear();
  const auto text = [&](std::string_view v) {
    printed.assign(v);
    sort.assign(v);
  };
  switch (d) {
    case engagement_dimension::company:
      return text(r.dims.company);
    case engagement_dimension::carrier:
      return text(r.dims.carrier);
    case engagement_dimension::gender:
      return text(r.dims.gender);
    case engagement_dimension::region:
      return text(r.dims.region);
    case engagement_dimension::occupation:
      return text(r.dims.occupation);
    case engagement_dimension::location:
      return text(r.location);
    case engagement_dimension::day:
      return text(bucket_label(r.level, r.bucket));
    case engagement_dimension::channel:
      printed.assign(to_string(r.dims.ch));
      sort.push_back(static_cast<char>('0' + static_cast<int>(r.dims.ch)));
      return;
    case engagement_dimension::age_band:
      printed.assign(age_band_label(r.dims.age_band));
      if (!printed.empty()) sort.push_back(static_cast<char>('0' + r.dims.age_band));
      return;
    case engagement_dimension::hour:
      if (r.dims.local_hour < 24) printed = sort = two_digits(r.dims.local_hour);
      return;
    case engagement_dimension::weekday:
      if (r.dims.weekday < 7) {
        printed.assign(kWeekdays[r.dims.weekday]);
        sort.push_back(static_cast<char>('0' + r.dims.weekday));
      }
      return;
  }
}

bool location_dimension(engagement_dimension d) {
  switch (d) {
    case engagement_dimension::company:
    case engagement_dimension::carrier:
    case engagement_dimension::channel:
    case engagement_dimension::location:
    case engagement_dimension::day:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string_view to_string(engagement_dimension d) {
  const auto i = static_cast<size_t>(d);
  return i < kDimensionNames.size() ? kDimensionNames[i] : "?";
}

std::optional<engagement_dimension> parse_engagement_dimension(std::string_view name) {
  for (size_t i = 0; i < kDimensionNames.size(); ++i) {
    if (kDimensionNames[i] == name) return static_cast<engagement_dimension>(i);
  }
  return std::nullopt;
}

// ---- counting ---------------------------------------------------------------

void engagement_batch::add(const engagement_dims& d, sys_time sent_at, engagement_count what,
                           uint64_t n) {
  if (n == 0) return;
  const size_t at = arena_.size();
  put_head(arena_, kDimensionRows, d.company, kHourly, bucket_of(kHourly, to_unix_ms(sent_at)));
  codec::put_string(arena_, d.carrier);
  arena_.push_back(static_cast<char>(d.ch));
  codec::put_string(arena_, d.gender);
  arena_.push_back(static_cast<char>(d.age_band));
  codec::put_string(arena_, d.region);
  codec::put_string(arena_, d.occupation);
  arena_.push_back(static_cast<char>(d.local_hour));
  arena_.push_back(static_cast<char>(d.weekday));
  count(at, what, n);
}

void engagement_batch::add_location(std::string_view company, std::string_view carrier, channel ch,
                                    std::string_view location, sys_time sent_at,
                                    engagement_count what, uint64_t n) {
  if (n == 0) return;
  const size_t at = arena_.size();
  put_head(arena_, kLocationRows, company, kHourly, bucket_of(kHourly, to_unix_ms(sent_at)));
  codec::put_string(arena_, carrier);
  arena_.push_back(static_cast<char>(ch));
  codec::put_string(arena_, location);
  count(at, what, n);
}

void engagement_batch::count(size_t key_at, engagement_count what, uint64_t n) {
  const auto i = static_cast<size_t>(what);
  if (i >= kEngagementCounts) {
    arena_.resize(key_at);
    return;
  }
  if ((rows_.size() + 1) * 2 > slots_.size()) grow();
  const char* key = arena_.data() + key_at;
  const size_t len = arena_.size() - key_at;
  const uint64_t hash = XXH3_64bits(key, len);
  const size_t mask = slots_.size() - 1;
  for (size_t s = hash & mask;; s = (s + 1) & mask) {
    const uint32_t at = slots_[s];
    if (at == 0) {  // a new row: its key stays in the arena
      row& r = rows_.emplace_back();
      r.hash = hash;
      r.key_at = static_cast<uint32_t>(key_at);
      r.key_len = static_cast<uint32_t>(len);
      r.slot = static_cast<uint32_t>(s);
      r.counts.v[i] = n;
      slots_[s] = static_cast<uint32_t>(rows_.size());
      return;
    }
    row& r = rows_[at - 1];
    if (r.hash == hash && r.key_len == len &&
        std::memcmp(arena_.data() + r.key_at, key, len) == 0) {
      r.counts.v[i] += n;
      arena_.resize(key_at);
      return;
    }
  }
}

void engagement_batch::grow() {
  slots_.assign(std::max<size_t>(1024, slots_.size() * 2), 0);
  const size_t mask = slots_.size() - 1;
  for (size_t k = 0; k < rows_.size(); ++k) {
    size_t s = rows_[k].hash & mask;
    while (slots_[s] != 0) s = (s + 1) & mask;
    slots_[s] = static_cast<uint32_t>(k + 1);
    rows_[k].slot = static_cast<uint32_t>(s);
  }
}

void engagement_batch::flush_into(rocksdb::WriteBatch& batch, store& db) {
  order_.clear();
  for (uint32_t k = 0; k < rows_.size(); ++k) {
    order_.push_back({arena_.data() + rows_[k].key_at, rows_[k].key_len, k});
  }
  // In key order, each memtable insert starts from where the previous one
  // ended (RocksDB's skip list keeps a splice for sequential inserts) rather
  // than searching the whole memtable: the rows of a flush are mostly new
  // keys, and that search was most of the cost of counting.
  std::sort(order_.begin(), order_.end(), [](const sorted_key& a, const sorted_key& b) {
    const int c = std::memcmp(a.key, b.key, std::min(a.len, b.len));
    return c != 0 ? c < 0 : a.len < b.len;
  });
  rocksdb::ColumnFamilyHandle* h = db.handle(cf::engagement);
  for (const sorted_key& s : order_) {
    const row& r = rows_[s.row];
    encode_counts(r.counts.v.data(), r.counts.v.size(), value_);
    batch.Merge(h, rocksdb::Slice(s.key, s.len), value_);
  }
  for (const row& r : rows_) slots_[r.slot] = 0;
  rows_.clear();
  arena_.clear();
}

// ---- reading ------------------------------------------------------------------

result<std::vector<engagement_row>> query_engagement(store& db, const engagement_query& q) {
  const bool by_location = std::find(q.group_by.begin(), q.group_by.end(),
                                     engagement_dimension::location) != q.group_by.end();
  for (engagement_dimension d : q.group_by) {
    if (static_cast<size_t>(d) >= kDimensionNames.size()) {
      return make_error(errc::invalid_argument, "engagement: unknown dimension");
    }
    if (by_location && !location_dimension(d)) {
      return make_error(errc::invalid_argument,
                        "engagement: counts by location are kept per company, carrier, channel "
                        "and day only, not by " +
                            std::string(to_string(d)));
    }
  }
  std::map<std::string, engagement_row> rows;  // by sort key
  std::string sort_key, printed, sort;
  std::vector<std::string> key(q.group_by.size());
  decoded_row r;
  engagement_counts counts;
  auto done = walk(db, by_location ? kLocationRows : kDimensionRows, q.company, q.since, q.until,
                   [&](const row_head& h, std::string_view value) {
                     if (!decode_counts(value, counts) || !decode_row(h, r)) return;
                     if (!q.carrier.empty() && r.dims.carrier != q.carrier) return;
                     if (q.ch && r.dims.ch != *q.ch) return;
                     sort_key.clear();
                     for (size_t i = 0; i < q.group_by.size(); ++i) {
                       component(q.group_by[i], r, printed, sort);
                       sort_key.append(sort);
                       sort_key.push_back('\0');  // values never hold '\0'
                       key[i] = printed;
                     }
                     auto [it, fresh] = rows.try_emplace(sort_key);
                     if (fresh) it->second.key = key;
                     it->second.counts += counts;
                   });
  if (!done) return done.err();
  std::vector<engagement_row> out;
  out.reserve(rows.size());
  for (auto& [k, row] : rows) out.push_back(std::move(row));
  return out;
}

result<void> scan_engagement(
    store& db, sys_time since,
    const std::function<void(const engagement_dims&, const engagement_counts&)>& fn) {
  decoded_row r;
  engagement_counts counts;
  return walk(db, kDimensionRows, {}, since, sys_time::max(),
              [&](const row_head& h, std::string_view value) {
                if (decode_counts(value, counts) && decode_row(h, r)) fn(r.dims, counts);
              });
}

// ---- roll-up ------------------------------------------------------------------

result<rollup_result> roll_up(store& db, sys_time now, const rollup_policy& p, size_t max_rows,
                              rocksdb::WriteBatch& batch) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  // Buckets ending at or before these are folded.
  const int64_t hours_until = to_unix_ms(now) - duration_cast<milliseconds>(p.hourly_for).count();
  const int64_t days_until = to_unix_ms(now) - duration_cast<milliseconds>(p.daily_for).count();

  rollup_result out;
  // Target row -> summed counts (as many as the longest source carried, so
  // counts a newer relay appended survive).
  std::map<std::string, std::vector<uint64_t>> targets;
  rocksdb::ColumnFamilyHandle* cfh = db.handle(cf::engagement);
  std::unique_ptr<rocksdb::Iterator> it(db.db().NewIterator(rocksdb::ReadOptions(), cfh));
  std::string seek, target;
  row_head h;
  const auto next_level = [&](std::string_view key) {
    if (static_cast<uint8_t>(h.level) == 0xff) return it->Next();
    seek.assign(key.substr(0, h.level_at));
    seek.push_back(static_cast<char>(h.level + 1));
    it->Seek(seek);
  };
  for (it->SeekToFirst(); it->Valid();) {
    const std::string_view key = it->key().ToStringView();
    if (!parse_head(key, h) || (h.family != kDimensionRows && h.family != kLocationRows)) {
      it->Next();
      continue;
    }
    char to_level = 0;
    uint32_t to_bucket = 0;
    if (h.level == kHourly) {
      const int64_t day = h.bucket / 24;
      if (bucket_end_ms(kDaily, static_cast<uint32_t>(day)) > hours_until) {
        next_level(key);  // later hours are newer still
        continue;
      }
      const uint32_t month = month_of_day(day);
      if (bucket_end_ms(kMonthly, month) <= days_until) {
        to_level = kMonthly;
        to_bucket = month;
      } else {
        to_level = kDaily;
        to_bucket = static_cast<uint32_t>(day);
      }
    } else if (h.level == kDaily) {
      const uint32_t month = month_of_day(h.bucket);
      if (bucket_end_ms(kMonthly, month) > days_until) {
        next_level(key);
        continue;
      }
      to_level = kMonthly;
      to_bucket = month;
    } else {
      next_level(key);
      continue;
    }
    if (out.rows_read == max_rows) {
      out.more = true;
      break;
    }
    target.assign(key.substr(0, h.level_at));
    target.push_back(to_level);
    put_be32(target, to_bucket);
    target.append(h.rest);
    // A value that is not whole uint64s counts as nothing, as in the merge
    // operator; it is deleted with the rest.
    const std::string_view value = it->value().ToStringView();
    auto& sum = targets[target];
    if (value.size() % 8 == 0) {
      if (sum.size() < value.size() / 8) sum.resize(value.size() / 8);
      for (size_t i = 0; i < value.size() / 8; ++i)
        sum[i] += decode_counter(value.substr(i * 8, 8));
    }
    batch.Delete(cfh, key);
    ++out.rows_read;
    it->Next();
  }
  if (!it->status().ok()) return rocks_error("engagement: roll-up read", it->status());
  std::string value;
  for (const auto& [k, sum] : targets) {
    if (sum.empty()) continue;
    encode_counts(sum.data(), sum.size(), value);
    batch.Merge(cfh, k, value);
    ++out.rows_written;
  }
  return out;
}

}  // namespace relay
