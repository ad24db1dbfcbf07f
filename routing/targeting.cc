#include "routing/targeting.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/slice.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "routing/postings.h"
#include "routing/registry.h"

namespace relay {

bool is_targetable_attribute(std::string_view field) {
  return field == "gender" || field == "region" || field == "occupation" || field == "birth_year" ||
         field == "locale" || field == "age";
}

namespace {

// Users resolved per MultiGet: bounds the memory held by pinned values while
// keeping the number of calls small for a long `to.users`.
constexpr size_t kBatch = 1024;

error io_failure(std::string_view what, const rocksdb::Status& s) {
  return make_error(errc::io_error, std::string(what) + ": " + s.ToString());
}

// All reads of one resolution see the same snapshot, so a registry update
// applied concurrently (another thread of relayd) cannot make the
// registration check and the ordinal lookup disagree.
//
// A secondary instance (relayctl) cannot iterate under a snapshot (RocksDB
// answers NotSupported), so there we read without one: a secondary's view
// only moves when its owner calls catch_up(), which it does not do while a
// resolution runs.
class snapshot_reads {
 public:
  explicit snapshot_reads(store& db) : db_(db), snapshot_(db.db().GetSnapshot()) {
    options_.snapshot = snapshot_;
    if (snapshot_ != nullptr) {
      std::unique_ptr<rocksdb::Iterator> probe(
          db_.db().NewIterator(options_, db_.handle(cf::postings)));
      if (probe->status().IsNotSupported()) {
        release();
        options_.snapshot = nullptr;
      }
    }
  }
  ~snapshot_reads() { release(); }
  snapshot_reads(const snapshot_reads&) = delete;
  snapshot_reads& operator=(const snapshot_reads&) = delete;

  const rocksdb::ReadOptions& options() const { return options_; }
  rocksdb::DB& db() { return db_.db(); }
  rocksdb::ColumnFamilyHandle* handle(cf c) const { return db_.handle(c); }

 private:
  void release() {
    if (snapshot_ != nullptr) db_.db().ReleaseSnapshot(snapshot_);
    snapshot_ = nullptr;
  }

  store& db_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions options_;
};

// A missing posting is an empty set.
result<roaring::Roaring> read_posting(snapshot_reads& r, const std::string& key) {
  rocksdb::PinnableSlice value;
  const rocksdb::Status s = r.db().Get(r.options(), r.handle(cf::postings), key, &value);
  if (s.IsNotFound()) return roaring::Roaring();
  if (!s.ok()) return io_failure("targeting: reading a posting", s);
  return decode_posting(std::string_view(value.data(), value.size()));
}

// Calls `visit(key_suffix, value)` for every posting under `prefix`, in key
// order; an error from `visit` stops the scan and is returned.
template <class Visit>
result<void> scan_postings(snapshot_reads& r, const std::string& prefix, Visit&& visit) {
  rocksdb::ReadOptions options = r.options();
  // Stop the iterator at the end of the prefix instead of reading the next
  // field's (or company's) postings into the block cache.
  std::string upper = prefix;
  upper.back() =
      static_cast<char>(upper.back() + 1);  // prefixes end in '\0', so +1 never overflows
  const rocksdb::Slice upper_slice(upper);
  options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(r.db().NewIterator(options, r.handle(cf::postings)));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    if (!k.starts_with(prefix)) break;
    const std::string_view suffix(k.data() + prefix.size(), k.size() - prefix.size());
    auto ok = visit(suffix, std::string_view(it->value().data(), it->value().size()));
    if (!ok) return ok.err();
  }
  if (!it->status().ok()) return io_failure("targeting: scanning postings", it->status());
  return {};
}

// Users registered with the company: the service's posting, or the union
// of every service's posting when the job names none.
result<roaring::Roaring> registered_set(snapshot_reads& r, const job& j) {
  if (!j.service_id.empty())
    return read_posting(r, registration_posting_key(j.company_id, j.service_id));
  roaring::Roaring all;
  auto ok = scan_postings(r, registration_posting_prefix(j.company_id),
                          [&](std::string_view, std::string_view value) -> result<void> {
                            auto bitmap = decode_posting(value);
                            if (!bitmap) return bitmap.err();
                            all |= *bitmap;
                            return {};
                          });
  if (!ok) return ok.err();
  return all;
}

// ---- to.users -----------------------------------------------------------------

void append_key(std::string& out, std::string_view a, std::string_view b, std::string_view c) {
  out.clear();
  out.append(a).push_back('\0');
  out.append(b).push_back('\0');
  out.append(c);
}

// Marks which of `users` are registered with (company, service) by one
// MultiGet on the registrations CF.
result<void> check_registered_with_service(snapshot_reads& r, const job& j,
                                           std::span<const std::string> users,
                                           std::vector<char>& registered,
                                           std::vector<std::string>& keys) {
  keys.resize(users.size());
  std::vector<rocksdb::Slice> slices(users.size());
  for (size_t i = 0; i < users.size(); ++i) {
    append_key(keys[i], j.company_id, j.service_id, users[i]);
    slices[i] = keys[i];
  }
  std::vector<rocksdb::PinnableSlice> values(users.size());
  std::vector<rocksdb::Status> statuses(users.size());
  r.db().MultiGet(r.options(), r.handle(cf::registrations), users.size(), slices.data(),
                  values.data(), statuses.data());
  for (size_t i = 0; i < users.size(); ++i) {
    if (statuses[i].ok()) {
      registered[i] = 1;
    } else if (!statuses[i].IsNotFound()) {
      return io_failure("targeting: reading registrations", statuses[i]);
    }
  }
  return {};
}

// Any service: a user is registered when some key user \0 company \0 *
// exists in the reverse index. One iterator serves the whole batch; seeking
// in key order keeps it moving forward through the same blocks.
result<void> check_registered_any_service(snapshot_reads& r, const job& j,
                                          std::span<const std::string> users,
                                          std::vector<char>& registered, std::string& key) {
  std::vector<uint32_t> by_key(users.size());
  for (uint32_t i = 0; i < by_key.size(); ++i) by_key[i] = i;
  std::sort(by_key.begin(), by_key.end(),
            [&](uint32_t a, uint32_t b) { return users[a] < users[b]; });
  std::unique_ptr<rocksdb::Iterator> it(
      r.db().NewIterator(r.options(), r.handle(cf::user_companies)));
  for (const uint32_t i : by_key) {
    append_key(key, users[i], j.company_id, {});  // user \0 company \0
    it->Seek(key);
    if (it->Valid() && it->key().starts_with(key)) registered[i] = 1;
  }
  if (!it->status().ok()) return io_failure("targeting: reading user_companies", it->status());
  return {};
}

result<void> resolve_users(snapshot_reads& r, const job& j, target_resolution& out) {
  std::vector<char> registered;
  std::vector<std::string> keys;
  std::string key;
  std::vector<rocksdb::Slice> slices;
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> statuses;
  std::vector<size_t> wanted;  // indexes (into the batch) of registered users

  for (size_t begin = 0; begin < j.users.size(); begin += kBatch) {
    const std::span<const std::string> batch(j.users.data() + begin,
                                             std::min(kBatch, j.users.size() - begin));
    registered.assign(batch.size(), 0);
    auto checked = j.service_id.empty()
                       ? check_registered_any_service(r, j, batch, registered, key)
                       : check_registered_with_service(r, j, batch, registered, keys);
    if (!checked) return checked.err();

    // Ordinals of the registered ones, from the profiles value (see
    // decode_profile_ordinal). A registration without a profile should not
    // exist (the registry creates the user on register and drops both on
    // delete); if one ever does, it cannot be sent to, so it counts as not
    // registered.
    wanted.clear();
    slices.clear();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (registered[i]) {
        wanted.push_back(i);
        slices.emplace_back(batch[i]);
      }
    }
    values.clear();
    values.resize(wanted.size());
    statuses.assign(wanted.size(), rocksdb::Status());
    if (!wanted.empty()) {
      r.db().MultiGet(r.options(), r.handle(cf::profiles), wanted.size(), slices.data(),
                      values.data(), statuses.data());
    }
    for (size_t w = 0; w < wanted.size(); ++w) {
      if (statuses[w].IsNotFound()) {
        registered[wanted[w]] = 0;
        continue;
      }
      if (!statuses[w].ok()) return io_failure("targeting: reading profiles", statuses[w]);
      auto ordinal = decode_profile_ordinal(std::string_view(values[w].data(), values[w].size()));
      if (!ordinal) return ordinal.err();
      out.recipients.add(*ordinal);
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!registered[i]) out.not_registered.push_back(batch[i]);
    }
  }
  return {};
}

// ---- to.where -----------------------------------------------------------------

int64_t saturating_sub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r))
    return b > 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  return r;
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

error bad_test(const attribute_test& t, std::string_view what) {
  return make_error(errc::invalid_argument, "to.where." + t.field + ": " + std::string(what));
}

// OR of the birth_year postings whose value lies in [lo, hi]. Keys sort as
// text, not numbers, so the whole birth_year prefix is scanned; it holds one
// key per distinct year (about a hundred), which is cheaper than a Get per
// year of an open-ended range.
result<roaring::Roaring> birth_years_between(snapshot_reads& r, int64_t lo, int64_t hi) {
  roaring::Roaring out;
  if (lo > hi) return out;
  auto ok = scan_postings(r, attribute_posting_key("birth_year", {}),
                          [&](std::string_view value_text, std::string_view value) -> result<void> {
                            const auto year = parse_int(value_text);
                            if (!year || *year < lo || *year > hi) return {};
                            auto bitmap = decode_posting(value);
                            if (!bitmap) return bitmap.err();
                            out |= *bitmap;
                            return {};
                          });
  if (!ok) return ok.err();
  return out;
}

// Checks a test's shape independently of the data, so a bad job fails the
// same way whatever the registry holds.
result<void> check_test(const attribute_test& t) {
  if (!is_targetable_attribute(t.field)) {
    return bad_test(t,
                    "not a targetable attribute (expected gender, region, occupation, birth_year, "
                    "locale or age)");
  }
  const bool numeric = t.field == "age" || t.field == "birth_year";
  if (t.form == attribute_test::kind::range) {
    if (!numeric) return bad_test(t, "a range applies only to age or birth_year");
    return {};
  }
  if (t.values.empty()) return bad_test(t, "no values");
  if (numeric) {
    for (const std::string& v : t.values) {
      if (!parse_int(v)) return bad_test(t, "values must be integers");
    }
  }
  return {};
}

// Users matching one (checked) test, before the registration filter.
result<roaring::Roaring> match_test(snapshot_reads& r, const attribute_test& t,
                                    int64_t current_year) {
  const bool age = t.field == "age";
  const bool numeric = age || t.field == "birth_year";

  if (t.form == attribute_test::kind::range) {
    int64_t lo = t.min_inclusive.value_or(std::numeric_limits<int64_t>::min());
    int64_t hi = t.max_inclusive.value_or(std::numeric_limits<int64_t>::max());
    if (age) {
      // Ages are approximated from birth years: age = current year -
      // birth_year, i.e. the age the user reaches this year. Before their
      // birthday a user is a year younger than we count; profiles hold no
      // birth date, so this is the best the data allows.
      const int64_t by_lo =
          t.max_inclusive ? saturating_sub(current_year, hi) : std::numeric_limits<int64_t>::min();
      const int64_t by_hi =
          t.min_inclusive ? saturating_sub(current_year, lo) : std::numeric_limits<int64_t>::max();
      lo = by_lo;
      hi = by_hi;
    }
    return birth_years_between(r, lo, hi);
  }

  // Ages have no postings of their own: an age is looked up as a birth year.
  const std::string_view posting_field =
      age ? std::string_view("birth_year") : std::string_view(t.field);
  roaring::Roaring out;
  for (const std::string& v : t.values) {
    std::string posting_value;
    if (numeric) {
      const auto n = parse_int(v);  // checked by check_test
      posting_value = std::to_string(age ? saturating_sub(current_year, *n) : *n);
    } else {
      posting_value = v;
    }
    auto bitmap = read_posting(r, attribute_posting_key(posting_field, posting_value));
    if (!bitmap) return bitmap.err();
    out |= *bitmap;
  }
  return out;
}

result<void> resolve_where(snapshot_reads& r, const job& j, sys_time now, target_resolution& out) {
  if (j.where.empty()) return make_error(errc::invalid_argument, "to.where: must not be empty");
  const auto ymd = std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(now)};
  const int64_t current_year = static_cast<int>(ymd.year());

  for (const attribute_test& t : j.where) {
    if (auto ok = check_test(t); !ok) return ok.err();
  }

  auto base = registered_set(r, j);
  if (!base) return base.err();
  roaring::Roaring set = std::move(*base);
  for (const attribute_test& t : j.where) {
    if (set.isEmpty()) break;
    auto matched = match_test(r, t, current_year);
    if (!matched) return matched.err();
    set &= *matched;
  }
  out.recipients = std::move(set);
  return {};
}

}  // namespace

result<target_resolution> resolve_target(store& db, const job& j, sys_time now) {
  try {
    snapshot_reads r(db);
    target_resolution out;
    switch (j.target) {
      case target_kind::users: {
        auto ok = resolve_users(r, j, out);
        if (!ok) return ok.err();
        break;
      }
      case target_kind::all: {
        auto set = registered_set(r, j);
        if (!set) return set.err();
        out.recipients = std::move(*set);
        break;
      }
      case target_kind::where: {
        auto ok = resolve_where(r, j, now, out);
        if (!ok) return ok.err();
        break;
      }
    }
    out.recipients.runOptimize();
    return out;
  } catch (const std::exception& e) {
    // CRoaring's C++ wrapper throws on allocation failure; errors are values
    // on the data path.
    return make_error(errc::busy, std::string("targeting: ") + e.what());
  }
}

}  // namespace relay
