#include "routing/registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "routing/byte_codec.h"
#include "routing/directory.h"
#include "routing/postings.h"

namespace relay {

// ---------------------------------------------------------------------------
// Value encodings owned by the registry (all varint-length-prefixed strings):
//   profiles[user]            u32 BE ordinal, u8 version, msisdn, email, gender,
//                             region, occupation, tz, locale, u8 has_birth_year,
//                             [u16 BE birth_year]
//   user_carriers[user\0car]  u8 version, u8 rank (position in the record),
//                             u8 flags (bit 0 primary), u8 channel mask,
//                             u8 override mask, one address per override bit
//   registrations[c\0s\0u]    u64 BE registered_at (unix ms), source bytes
//   user_companies[u\0c\0s]   empty
//   meta["next_ordinal"]      u64 BE: the next ordinal to hand out
// ---------------------------------------------------------------------------
namespace {

constexpr uint8_t kProfileVersion = 1;
constexpr uint8_t kCarrierVersion = 1;
constexpr uint8_t kPrimaryFlag = 1;
constexpr size_t kMaxIdBytes = 255;
constexpr std::string_view kNextOrdinalKey = "next_ordinal";

std::string encode_profile_value(uint32_t ordinal, const profile& p) {
  std::string out;
  out.reserve(16 + p.msisdn.size() + p.email.size() + p.gender.size() + p.region.size() +
              p.occupation.size() + p.tz.size() + p.locale.size());
  put_be32(out, ordinal);
  out.push_back(static_cast<char>(kProfileVersion));
  for (const std::string* s :
       {&p.msisdn, &p.email, &p.gender, &p.region, &p.occupation, &p.tz, &p.locale}) {
    codec::put_string(out, *s);
  }
  if (p.birth_year) {
    out.push_back(1);
    const auto y = static_cast<uint16_t>(*p.birth_year);
    out.push_back(static_cast<char>(y >> 8));
    out.push_back(static_cast<char>(y & 0xff));
  } else {
    out.push_back(0);
  }
  return out;
}

result<void> decode_profile_value(std::string_view v, uint32_t& ordinal, profile& p) {
  auto corrupt = [] { return make_error(errc::corruption, "profiles: malformed value"); };
  if (v.size() < 5) return corrupt();
  ordinal = get_be32(v.data());
  codec::reader r(v.substr(4));
  uint8_t version = 0;
  if (!r.byte(version) || version != kProfileVersion) return corrupt();
  for (std::string* s :
       {&p.msisdn, &p.email, &p.gender, &p.region, &p.occupation, &p.tz, &p.locale}) {
    std::string_view sv;
    if (!r.string(sv)) return corrupt();
    s->assign(sv);
  }
  uint8_t has_year = 0;
  if (!r.byte(has_year)) return corrupt();
  p.birth_year.reset();
  if (has_year) {
    uint8_t hi = 0, lo = 0;
    if (!r.byte(hi) || !r.byte(lo)) return corrupt();
    p.birth_year = (int(hi) << 8) | lo;
  }
  if (!r.done()) return corrupt();
  return {};
}

std::string encode_carrier_value(const carrier_link& c, size_t rank) {
  std::string out;
  out.push_back(static_cast<char>(kCarrierVersion));
  out.push_back(static_cast<char>(rank));
  out.push_back(static_cast<char>(c.primary ? kPrimaryFlag : 0));
  out.push_back(static_cast<char>(c.channels & kAllChannels));
  uint8_t overrides = 0;
  for (int ch = 0; ch < kChannelCount; ++ch) {
    if (!c.address[ch].empty()) overrides |= uint8_t(1u << ch);
  }
  out.push_back(static_cast<char>(overrides));
  for (int ch = 0; ch < kChannelCount; ++ch) {
    if (overrides & (1u << ch)) codec::put_string(out, c.address[ch]);
  }
  return out;
}

result<void> decode_carrier_value(std::string_view carrier_id, std::string_view v, carrier_link& c,
                                  uint8_t& rank) {
  auto corrupt = [] { return make_error(errc::corruption, "user_carriers: malformed value"); };
  codec::reader r(v);
  uint8_t version = 0, flags = 0, overrides = 0;
  if (!r.byte(version) || version != kCarrierVersion || !r.byte(rank) || !r.byte(flags) ||
      !r.byte(c.channels) || !r.byte(overrides)) {
    return corrupt();
  }
  c.carrier_id.assign(carrier_id);
  c.primary = flags & kPrimaryFlag;
  for (int ch = 0; ch < kChannelCount; ++ch) {
    c.address[ch].clear();
    if (overrides & (1u << ch)) {
      std::string_view sv;
      if (!r.string(sv)) return corrupt();
      c.address[ch].assign(sv);
    }
  }
  if (!r.done()) return corrupt();
  return {};
}

std::string user_prefix(std::string_view user_id) {
  std::string p(user_id);
  p.push_back('\0');
  return p;
}

std::string join3(std::string_view a, std::string_view b, std::string_view c) {
  std::string k;
  k.reserve(a.size() + b.size() + c.size() + 2);
  k.append(a).push_back('\0');
  k.append(b).push_back('\0');
  k.append(c);
  return k;
}

// Visits every key under `prefix` in `family` (prefix ends in '\0', so the
// upper bound is the prefix with that byte bumped to '\1').
template <class Fn>
result<void> scan_prefix(store& db, cf family, const std::string& prefix, Fn&& fn) {
  std::string upper = prefix;
  upper.back() = '\1';
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db.db().NewIterator(ro, db.handle(family)));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (k.size() < prefix.size() || k.compare(0, prefix.size(), prefix) != 0) break;
    if (auto r =
            fn(k.substr(prefix.size()), std::string_view(it->value().data(), it->value().size()));
        !r) {
      return r;
    }
  }
  if (!it->status().ok()) {
    return make_error(errc::io_error,
                      std::string(cf_name(family)) + ": scan: " + it->status().ToString());
  }
  return {};
}

// Loads carriers in record order (the rank stored with each link).
result<void> load_carriers(store& db, std::string_view user_id, std::vector<carrier_link>& out,
                           std::map<std::string, std::string>* raw) {
  std::vector<std::pair<uint8_t, carrier_link>> ranked;
  auto r = scan_prefix(db, cf::user_carriers, user_prefix(user_id),
                       [&](std::string_view carrier_id, std::string_view v) -> result<void> {
                         carrier_link c;
                         uint8_t rank = 0;
                         if (auto d = decode_carrier_value(carrier_id, v, c, rank); !d) return d;
                         if (raw) raw->emplace(std::string(carrier_id), std::string(v));
                         ranked.emplace_back(rank, std::move(c));
                         return {};
                       });
  if (!r) return r;
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  out.clear();
  for (auto& [rank, c] : ranked) out.push_back(std::move(c));
  return {};
}

// "company\0service" for each registration of the user.
result<void> load_registrations(store& db, std::string_view user_id, std::set<std::string>& out) {
  return scan_prefix(db, cf::user_companies, user_prefix(user_id),
                     [&](std::string_view company_service, std::string_view) -> result<void> {
                       if (company_service.find('\0') == std::string_view::npos) {
                         return make_error(errc::corruption, "user_companies: malformed key");
                       }
                       out.emplace(company_service);
                       return {};
                     });
}

result<void> check_id(std::string_view field, std::string_view v, bool allow_empty) {
  if (!allow_empty && v.empty())
    return make_error(errc::invalid_argument, std::string(field) + ": must not be empty");
  if (v.size() > kMaxIdBytes) {
    return make_error(errc::invalid_argument, std::string(field) + ": longer than 255 bytes");
  }
  if (v.find('\0') != std::string_view::npos) {
    return make_error(errc::invalid_argument, std::string(field) + ": contains a NUL byte");
  }
  return {};
}

// Records built in code (not by the parser) get the same checks, and a
// carrier list without a primary gets its first carrier as primary.
result<void> check_carriers(std::vector<carrier_link>& carriers) {
  if (carriers.size() > static_cast<size_t>(kMaxCarriersPerUser)) {
    return make_error(errc::invalid_argument,
                      "carriers: more than " + std::to_string(kMaxCarriersPerUser) + " carriers");
  }
  int primaries = 0;
  for (size_t i = 0; i < carriers.size(); ++i) {
    const std::string path = "carriers[" + std::to_string(i) + "]";
    if (auto r = check_id(path + ".carrier_id", carriers[i].carrier_id, false); !r) return r;
    for (size_t j = 0; j < i; ++j) {
      if (carriers[j].carrier_id == carriers[i].carrier_id) {
        return make_error(errc::invalid_argument, path + ".carrier_id: duplicate");
      }
    }
    if ((carriers[i].channels & kAllChannels) == 0) {
      return make_error(errc::invalid_argument, path + ".channels: must not be empty");
    }
    primaries += carriers[i].primary;
  }
  if (primaries > 1)
    return make_error(errc::invalid_argument, "carriers: more than one primary carrier");
  if (primaries == 0 && !carriers.empty()) carriers.front().primary = true;
  return {};
}

// The posting keys a user belongs to.
void posting_keys(const profile& p, const std::set<std::string>& regs,
                  std::vector<std::string>& out) {
  out.clear();
  if (!p.gender.empty()) out.push_back(attribute_posting_key("gender", p.gender));
  if (!p.region.empty()) out.push_back(attribute_posting_key("region", p.region));
  if (!p.occupation.empty()) out.push_back(attribute_posting_key("occupation", p.occupation));
  if (p.birth_year)
    out.push_back(attribute_posting_key("birth_year", std::to_string(*p.birth_year)));
  if (!p.locale.empty()) out.push_back(attribute_posting_key("locale", p.locale));
  for (const auto& cs : regs) {
    const size_t nul = cs.find('\0');
    out.push_back(registration_posting_key(std::string_view(cs).substr(0, nul),
                                           std::string_view(cs).substr(nul + 1)));
  }
}

}  // namespace

result<uint32_t> decode_profile_ordinal(std::string_view profiles_value) {
  if (profiles_value.size() < 5) return make_error(errc::corruption, "profiles: malformed value");
  return get_be32(profiles_value.data());
}

result<uint32_t> lookup_ordinal(store& db, std::string_view user_id) {
  std::string v;
  if (auto r = db.get(cf::profiles, user_id, &v); !r) return r.err();
  return decode_profile_ordinal(v);
}

// ---------------------------------------------------------------------------
// registry_writer
// ---------------------------------------------------------------------------

struct registry_writer::impl {
  // One user as first read from the DB (orig_*) and as staged so far.
  struct user_state {
    std::string user_id;

    bool orig_exists = false;
    uint32_t orig_ordinal = 0;
    std::string orig_profile_value;
    profile orig_profile;
    std::vector<carrier_link> orig_carriers;
    std::map<std::string, std::string> orig_carrier_values;  // carrier_id -> stored value
    std::set<std::string> orig_regs;                         // "company\0service"

    bool exists = false;
    uint32_t ordinal = 0;
    profile prof;
    std::vector<carrier_link> carriers;
    // "company\0service" -> value to write, or nullopt when unchanged from the DB.
    std::map<std::string, std::optional<std::string>> regs;
  };

  struct posting_delta {
    roaring::Roaring add;
    roaring::Roaring remove;
  };

  impl(store& db, const clock& clk) : db_(db), clk_(clk) {}

  store& db_;
  const clock& clk_;
  std::vector<std::unique_ptr<user_state>> users_;  // in order of first touch
  std::unordered_map<std::string, user_state*> by_id_;
  size_t staged_ = 0;
  // Cached across flushes: ordinals are never handed out twice by this writer,
  // even if a flushed batch was not written.
  std::optional<uint64_t> next_ordinal_;
  bool ordinal_dirty_ = false;

  result<user_state*> touch(std::string_view user_id) {
    if (auto it = by_id_.find(std::string(user_id)); it != by_id_.end()) return it->second;
    auto u = std::make_unique<user_state>();
    u->user_id.assign(user_id);
    auto got = db_.get(cf::profiles, user_id, &u->orig_profile_value);
    if (got) {
      if (auto r = decode_profile_value(u->orig_profile_value, u->orig_ordinal, u->orig_profile);
          !r) {
        return r.err();
      }
      u->orig_exists = true;
      // A user exists exactly when it has a profile entry, so users new to
      // the DB (the bulk of an import) need no scans.
      if (auto r = load_carriers(db_, user_id, u->orig_carriers, &u->orig_carrier_values); !r) {
        return r.err();
      }
      if (auto r = load_registrations(db_, user_id, u->orig_regs); !r) return r.err();
    } else if (got.err().code != errc::not_found) {
      return got.err();
    }
    u->exists = u->orig_exists;
    u->ordinal = u->orig_ordinal;
    u->prof = u->orig_profile;
    u->carriers = u->orig_carriers;
    for (const auto& k : u->orig_regs) u->regs.emplace(k, std::nullopt);
    user_state* raw = u.get();
    by_id_.emplace(raw->user_id, raw);
    users_.push_back(std::move(u));
    return raw;
  }

  result<void> load_next_ordinal() {
    if (next_ordinal_) return {};
    std::string v;
    auto r = db_.get(cf::meta, kNextOrdinalKey, &v);
    if (!r) {
      if (r.err().code != errc::not_found) return r;
      next_ordinal_ = 1;
      return {};
    }
    if (v.size() != 8) return make_error(errc::corruption, "meta next_ordinal: malformed value");
    next_ordinal_ = std::max<uint64_t>(1, get_be64(v.data()));
    return {};
  }

  // Brings a user into existence with a fresh ordinal (never reused).
  result<void> create(user_state& u) {
    if (auto r = load_next_ordinal(); !r) return r;
    if (*next_ordinal_ > UINT32_MAX) {
      return make_error(errc::unsupported, "registry: user ordinals exhausted");
    }
    u.exists = true;
    u.ordinal = static_cast<uint32_t>((*next_ordinal_)++);
    ordinal_dirty_ = true;
    u.prof = profile{};
    u.carriers.clear();
    u.regs.clear();
    return {};
  }

  result<void> stage(const registry_record& rec) {
    if (auto r = check_id("user_id", rec.user_id, false); !r) return r;
    const bool with_company = rec.kind == registry_record::op::register_user ||
                              rec.kind == registry_record::op::unregister_user;
    if (with_company) {
      if (auto r = check_id("company_id", rec.company_id, false); !r) return r;
      if (auto r = check_id("service_id", rec.service_id, true); !r) return r;
    }
    if (rec.kind == registry_record::op::upsert_user && rec.user_profile.birth_year &&
        (*rec.user_profile.birth_year < 1900 || *rec.user_profile.birth_year > 2100)) {
      return make_error(errc::invalid_argument, "profile.birth_year: out of range 1900..2100");
    }
    std::optional<std::vector<carrier_link>> carriers;
    if (rec.kind == registry_record::op::upsert_user && rec.carriers) {
      carriers = *rec.carriers;
      if (auto r = check_carriers(*carriers); !r) return r;
    }

    auto touched = touch(rec.user_id);
    if (!touched) return touched.err();
    user_state& u = **touched;

    switch (rec.kind) {
      case registry_record::op::upsert_user:
        if (!u.exists) {
          if (auto r = create(u); !r) return r;
        }
        u.prof = rec.user_profile;
        if (carriers) u.carriers = std::move(*carriers);
        break;
      case registry_record::op::register_user: {
        if (!u.exists) {
          if (auto r = create(u); !r) return r;
        }
        std::string k = rec.company_id;
        k.push_back('\0');
        k.append(rec.service_id);
        if (!u.regs.contains(k)) {
          // Re-registering keeps the first registered_at: applying a record
          // twice must leave the same state.
          std::string value;
          put_be64(value, static_cast<uint64_t>(to_unix_ms(clk_.now())));
          value.append(rec.source);
          u.regs.emplace(std::move(k), std::move(value));
        }
        break;
      }
      case registry_record::op::unregister_user:
        if (u.exists) {
          std::string k = rec.company_id;
          k.push_back('\0');
          k.append(rec.service_id);
          u.regs.erase(k);
        }
        break;
      case registry_record::op::delete_user:
        if (u.exists) {
          u.exists = false;
          u.ordinal = 0;
          u.prof = profile{};
          u.carriers.clear();
          u.regs.clear();
        }
        break;
    }
    ++staged_;
    return {};
  }

  void flush_into(rocksdb::WriteBatch& batch) {
    std::map<std::string, posting_delta> postings;  // sorted: deterministic batches
    std::vector<std::string> before, after;
    std::set<std::string> final_regs;

    auto put = [&](cf c, std::string_view k, std::string_view v) {
      batch.Put(db_.handle(c), rocksdb::Slice(k.data(), k.size()),
                rocksdb::Slice(v.data(), v.size()));
    };
    auto del = [&](cf c, std::string_view k) {
      batch.Delete(db_.handle(c), rocksdb::Slice(k.data(), k.size()));
    };

    for (const auto& up : users_) {
      const user_state& u = *up;
      final_regs.clear();
      if (u.exists) {
        for (const auto& [k, v] : u.regs) final_regs.insert(k);
      }

      // Postings: membership diff of (key, ordinal) pairs, so an unchanged
      // user writes nothing and a user removed and re-added stays present.
      before.clear();
      after.clear();
      if (u.orig_exists) posting_keys(u.orig_profile, u.orig_regs, before);
      if (u.exists) posting_keys(u.prof, final_regs, after);
      const bool same_ordinal = u.orig_exists && u.exists && u.orig_ordinal == u.ordinal;
      for (const auto& k : before) {
        if (!same_ordinal || std::find(after.begin(), after.end(), k) == after.end()) {
          auto& d = postings[k];
          d.add.remove(u.orig_ordinal);
          d.remove.add(u.orig_ordinal);
        }
      }
      for (const auto& k : after) {
        if (!same_ordinal || std::find(before.begin(), before.end(), k) == before.end()) {
          auto& d = postings[k];
          d.remove.remove(u.ordinal);
          d.add.add(u.ordinal);
        }
      }

      // profiles
      if (!u.exists) {
        if (u.orig_exists) del(cf::profiles, u.user_id);
      } else {
        std::string v = encode_profile_value(u.ordinal, u.prof);
        if (v != u.orig_profile_value) put(cf::profiles, u.user_id, v);
      }

      // directory
      std::string key;
      if (u.orig_exists && !same_ordinal) {
        put_be32(key, u.orig_ordinal);
        del(cf::directory, key);
      }
      if (u.exists) {
        std::string v = encode_directory_entry(u.user_id, u.prof, u.carriers);
        if (!same_ordinal ||
            v != encode_directory_entry(u.user_id, u.orig_profile, u.orig_carriers)) {
          key.clear();
          put_be32(key, u.ordinal);
          put(cf::directory, key, v);
        }
      }

      // user_carriers
      std::set<std::string_view> kept;
      if (u.exists) {
        for (size_t i = 0; i < u.carriers.size(); ++i) {
          const carrier_link& c = u.carriers[i];
          kept.insert(c.carrier_id);
          std::string v = encode_carrier_value(c, i);
          auto it = u.orig_carrier_values.find(c.carrier_id);
          if (it == u.orig_carrier_values.end() || it->second != v) {
            std::string k = user_prefix(u.user_id);
            k.append(c.carrier_id);
            put(cf::user_carriers, k, v);
          }
        }
      }
      for (const auto& [carrier_id, v] : u.orig_carrier_values) {
        if (!kept.contains(carrier_id)) {
          std::string k = user_prefix(u.user_id);
          k.append(carrier_id);
          del(cf::user_carriers, k);
        }
      }

      // registrations and their reverse index
      for (const auto& cs : u.orig_regs) {
        if (!final_regs.contains(cs)) {
          const size_t nul = cs.find('\0');
          const std::string_view company = std::string_view(cs).substr(0, nul);
          const std::string_view service = std::string_view(cs).substr(nul + 1);
          del(cf::registrations, join3(company, service, u.user_id));
          del(cf::user_companies, join3(u.user_id, company, service));
        }
      }
      if (u.exists) {
        for (const auto& [cs, value] : u.regs) {
          if (!value) continue;  // unchanged since loaded
          const size_t nul = cs.find('\0');
          const std::string_view company = std::string_view(cs).substr(0, nul);
          const std::string_view service = std::string_view(cs).substr(nul + 1);
          put(cf::registrations, join3(company, service, u.user_id), *value);
          put(cf::user_companies, join3(u.user_id, company, service), {});
        }
      }
    }

    for (auto& [k, d] : postings) {
      std::string operand;
      if (!d.remove.isEmpty()) operand += encode_posting_delta('-', d.remove);
      if (!d.add.isEmpty()) operand += encode_posting_delta('+', d.add);
      if (!operand.empty()) {
        batch.Merge(db_.handle(cf::postings), rocksdb::Slice(k), rocksdb::Slice(operand));
      }
    }

    if (ordinal_dirty_) {
      std::string v;
      put_be64(v, *next_ordinal_);
      put(cf::meta, kNextOrdinalKey, v);
      ordinal_dirty_ = false;
    }

    users_.clear();
    by_id_.clear();
    staged_ = 0;
  }
};

registry_writer::registry_writer(store& db, const clock& clk)
    : impl_(std::make_unique<impl>(db, clk)) {}
registry_writer::~registry_writer() = default;

result<void> registry_writer::stage(const registry_record& record) { return impl_->stage(record); }
void registry_writer::flush_into(rocksdb::WriteBatch& batch) { impl_->flush_into(batch); }
size_t registry_writer::staged_records() const { return impl_->staged_; }

// ---------------------------------------------------------------------------
// get_user
// ---------------------------------------------------------------------------

result<user_view> get_user(store& db, std::string_view user_id) {
  user_view view;
  std::string v;
  if (auto r = db.get(cf::profiles, user_id, &v); !r) {
    if (r.err().code == errc::not_found) {
      return make_error(errc::not_found, "user not found");
    }
    return r.err();
  }
  view.user_id.assign(user_id);
  if (auto r = decode_profile_value(v, view.ordinal, view.user_profile); !r) return r.err();
  if (auto r = load_carriers(db, user_id, view.carriers, nullptr); !r) return r.err();
  std::set<std::string> regs;
  if (auto r = load_registrations(db, user_id, regs); !r) return r.err();
  for (const auto& cs : regs) {
    const size_t nul = cs.find('\0');
    view.registrations.push_back(registration{cs.substr(0, nul), cs.substr(nul + 1)});
  }
  return view;
}

// ---------------------------------------------------------------------------
// import_jsonl
// ---------------------------------------------------------------------------

namespace {

// Reads a file in large chunks and hands out lines as views into its buffer
// (valid until the next call). Lines longer than kMaxLine are reported as
// such and skipped without being held in memory whole.
class line_reader {
 public:
  static constexpr size_t kChunk = 4u << 20;
  static constexpr size_t kMaxLine = 2u << 20;  // above the record size limit

  explicit line_reader(int fd) : fd_(fd) { buf_.resize(kChunk + kMaxLine); }

  enum class status { line, too_long, eof, io_error };

  status next(std::string_view& line) {
    for (;;) {
      const char* nl = static_cast<const char*>(memchr(buf_.data() + pos_, '\n', len_ - pos_));
      if (nl) {
        const size_t end = nl - buf_.data();
        line = std::string_view(buf_.data() + pos_, end - pos_);
        pos_ = end + 1;
        if (skipping_) {
          skipping_ = false;
          return status::too_long;
        }
        return status::line;
      }
      if (eof_) {
        if (pos_ == len_) {
          if (skipping_) {
            skipping_ = false;
            return status::too_long;
          }
          return status::eof;
        }
        line = std::string_view(buf_.data() + pos_, len_ - pos_);  // last line, no newline
        pos_ = len_;
        if (skipping_) {
          skipping_ = false;
          return status::too_long;
        }
        return status::line;
      }
      // Keep the partial line, drop the rest; a line past kMaxLine is dropped too.
      if (skipping_ || len_ - pos_ > kMaxLine) {
        skipping_ = true;
        pos_ = len_;
      }
      std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
      len_ -= pos_;
      pos_ = 0;
      const ssize_t n = ::read(fd_, buf_.data() + len_, buf_.size() - len_);
      if (n < 0) {
        if (errno == EINTR) continue;
        return status::io_error;
      }
      if (n == 0) eof_ = true;
      len_ += static_cast<size_t>(n);
    }
  }

 private:
  int fd_;
  std::string buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  bool eof_ = false;
  bool skipping_ = false;
};

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

}  // namespace

result<import_report> import_jsonl(store& db, const clock& clk, std::string_view path,
                                   void (*on_error)(size_t line, const error& e, void* ctx),
                                   void* ctx, size_t batch_records) {
  const std::string p(path);
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return make_error(e == ENOENT ? errc::not_found : errc::io_error,
                      "import " + p + ": " + std::strerror(e));
  }
  struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
  } closer{fd};
#ifdef POSIX_FADV_SEQUENTIAL
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif

  if (batch_records == 0) batch_records = 1;
  import_report report;
  registry_writer writer(db, clk);
  auto reject = [&](size_t line_no, const error& e) {
    ++report.rejected;
    if (on_error) on_error(line_no, e, ctx);
  };
  auto write_batch = [&]() -> result<void> {
    const size_t n = writer.staged_records();
    if (n == 0) return {};
    rocksdb::WriteBatch batch;
    writer.flush_into(batch);
    if (auto r = db.write(batch); !r) return r;
    report.applied += n;
    return {};
  };

  line_reader lines(fd);
  size_t line_no = 0;
  for (;;) {
    std::string_view line;
    const auto st = lines.next(line);
    if (st == line_reader::status::eof) break;
    if (st == line_reader::status::io_error) {
      return make_error(errc::io_error, "import " + p + ": read: " + std::strerror(errno));
    }
    ++line_no;
    if (st == line_reader::status::too_long) {
      reject(line_no, make_error(errc::invalid_argument, "record: line too long"));
      continue;
    }
    if (is_blank(line)) continue;
    if (line.back() == '\r') line.remove_suffix(1);
    auto rec = parse_registry_record(line);
    if (!rec) {
      reject(line_no, rec.err());
      continue;
    }
    if (auto r = writer.stage(*rec); !r) {
      if (r.err().code != errc::invalid_argument) return r.err();  // I/O or corruption: stop
      reject(line_no, r.err());
      continue;
    }
    if (writer.staged_records() >= batch_records) {
      if (auto r = write_batch(); !r) return r.err();
    }
  }
  if (auto r = write_batch(); !r) return r.err();
  return report;
}

}  // namespace relay
