#include "routing/directory.h"

#include <rocksdb/db.h>

#include <algorithm>

#include "routing/byte_codec.h"

namespace relay {

// Value layout (version 2), all strings varint-length-prefixed:
//   u8 version, user_id, tz, msisdn, email, u8 carrier_count,
//   per carrier: carrier_id, u8 flags (bit 0 primary), u8 channel mask,
//                u8 override mask, then one address per override bit (rcs, sms, email order);
//   then the attributes counting and channel choice use: gender,
//   varint birth_year (0: unknown), region, occupation.
// Version 1 (before issue 4) ends after the carriers: its users count under
// unknown attributes until their next upsert rewrites the entry.
// The profile's msisdn/email are stored once and shared by every carrier
// without an override, which keeps the common entry around 60 bytes.
namespace {
constexpr uint8_t kDirectoryVersion = 2;
constexpr uint8_t kDirectoryVersionWithoutAttributes = 1;
constexpr uint8_t kPrimaryFlag = 1;
// How far ahead (in ordinals) the reader steps with Next() before a Seek is
// cheaper; a Seek costs a binary search per level, a Next a few comparisons.
constexpr uint32_t kMaxNextGap = 16;
}  // namespace

std::string encode_directory_entry(std::string_view user_id, const profile& p,
                                   const std::vector<carrier_link>& carriers) {
  std::string out;
  out.reserve(16 + user_id.size() + p.tz.size() + p.msisdn.size() + p.email.size() +
              carriers.size() * 16);
  out.push_back(static_cast<char>(kDirectoryVersion));
  codec::put_string(out, user_id);
  codec::put_string(out, p.tz);
  codec::put_string(out, p.msisdn);
  codec::put_string(out, p.email);
  const size_t n = std::min(carriers.size(), static_cast<size_t>(kMaxCarriersPerUser));
  out.push_back(static_cast<char>(n));
  for (size_t i = 0; i < n; ++i) {
    const carrier_link& c = carriers[i];
    codec::put_string(out, c.carrier_id);
    out.push_back(static_cast<char>(c.primary ? kPrimaryFlag : 0));
    const uint8_t mask = c.channels & kAllChannels;
    out.push_back(static_cast<char>(mask));
    uint8_t overrides = 0;
    for (int ch = 0; ch < kChannelCount; ++ch) {
      if ((mask & (1u << ch)) && !c.address[ch].empty()) overrides |= uint8_t(1u << ch);
    }
    out.push_back(static_cast<char>(overrides));
    for (int ch = 0; ch < kChannelCount; ++ch) {
      if (overrides & (1u << ch)) codec::put_string(out, c.address[ch]);
    }
  }
  codec::put_string(out, p.gender);
  codec::put_varint(out, p.birth_year && *p.birth_year > 0 ? static_cast<uint64_t>(*p.birth_year) : 0);
  codec::put_string(out, p.region);
  codec::put_string(out, p.occupation);
  return out;
}

result<void> decode_directory_entry(std::string_view value, uint32_t ordinal, recipient& out) {
  auto corrupt = [ordinal](const char* what) {
    return make_error(errc::corruption, "directory entry " + std::to_string(ordinal) + ": " + what);
  };
  codec::reader r(value);
  uint8_t version = 0;
  if (!r.byte(version)) return corrupt("empty");
  if (version != kDirectoryVersion && version != kDirectoryVersionWithoutAttributes) {
    return corrupt("unknown version");
  }
  std::string_view msisdn, email;
  if (!r.string(out.user_id) || !r.string(out.tz) || !r.string(msisdn) || !r.string(email)) {
    return corrupt("truncated");
  }
  uint8_t count = 0;
  if (!r.byte(count)) return corrupt("truncated");
  if (count > kMaxCarriersPerUser) return corrupt("too many carriers");
  for (uint8_t i = 0; i < count; ++i) {
    recipient_carrier& c = out.carriers[i];
    uint8_t flags = 0, mask = 0, overrides = 0;
    if (!r.string(c.carrier_id) || !r.byte(flags) || !r.byte(mask) || !r.byte(overrides)) {
      return corrupt("truncated carrier");
    }
    if ((mask & ~kAllChannels) || (overrides & ~mask)) return corrupt("bad channel mask");
    c.primary = flags & kPrimaryFlag;
    c.channels = mask;
    for (int ch = 0; ch < kChannelCount; ++ch) {
      const uint8_t bit = uint8_t(1u << ch);
      if (overrides & bit) {
        if (!r.string(c.address[ch])) return corrupt("truncated address");
      } else if (mask & bit) {
        c.address[ch] = ch == static_cast<int>(channel::email) ? email : msisdn;
      } else {
        c.address[ch] = {};
      }
    }
  }
  out.gender = out.region = out.occupation = {};
  out.birth_year = 0;
  if (version == kDirectoryVersion) {
    uint64_t birth_year = 0;
    if (!r.string(out.gender) || !r.varint(birth_year) || !r.string(out.region) || !r.string(out.occupation)) {
      return corrupt("truncated attributes");
    }
    out.birth_year = birth_year <= 9999 ? static_cast<uint16_t>(birth_year) : 0;
  }
  if (!r.done()) return corrupt("trailing bytes");
  out.ordinal = ordinal;
  out.carrier_count = count;
  return {};
}

namespace {
constexpr size_t kPointLookupMax = 4;
}  // namespace

directory_reader::directory_reader(store& db) : db_(db) {}
directory_reader::~directory_reader() = default;

result<std::span<const recipient>> directory_reader::read(std::span<const uint32_t> ordinals) {
  arena_.clear();
  slots_.clear();
  if (ordinals.empty()) return std::span<const recipient>();

  if (ordinals.size() <= kPointLookupMax) {
    // A job to a few listed users: point lookups (bloom filters, no
    // iterator to create) cost less than positioning an iterator.
    rocksdb::PinnableSlice v;
    std::string key;
    for (const uint32_t want : ordinals) {
      key.clear();
      put_be32(key, want);
      v.Reset();
      const rocksdb::Status st = db_.db().Get(rocksdb::ReadOptions(), db_.handle(cf::directory), key, &v);
      if (st.IsNotFound()) continue;  // deleted user
      if (!st.ok()) return make_error(errc::io_error, "directory: read: " + st.ToString());
      slots_.push_back(slot{want, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(v.size())});
      arena_.append(v.data(), v.size());
    }
  } else {
    // A fresh iterator per batch, released before returning: the views point
    // into arena_, not into the iterator, and an iterator kept between batches
    // would pin memtables and obsolete SST files (and must not outlive the
    // store). Creating one costs a few microseconds per batch.
    it_.reset(db_.db().NewIterator(rocksdb::ReadOptions(), db_.handle(cf::directory)));
    struct release {
      std::unique_ptr<rocksdb::Iterator>& it;
      ~release() { it.reset(); }
    } release_at_exit{it_};
    rocksdb::Iterator& it = *it_;

    std::string seek_key;
    seek_key.reserve(4);
    bool positioned = false;
    uint32_t current = 0;  // ordinal under the iterator when positioned and valid
    uint32_t previous = 0;
    bool first = true;
    for (const uint32_t want : ordinals) {
      const bool ascending = first || want > previous;
      first = false;
      previous = want;
      if (positioned && ascending) {
        if (!it.Valid()) break;        // past the last entry: later ordinals have none either
        if (current > want) continue;  // `want` falls in a gap: deleted user
        if (current == want) {
          // Already here (duplicate ordinal is excluded by `ascending`).
        } else if (want - current <= kMaxNextGap) {
          while (it.Valid() && current < want) {
            it.Next();
            if (it.Valid()) {
              if (it.key().size() != 4) return make_error(errc::corruption, "directory: bad key");
              current = get_be32(it.key().data());
            }
          }
          if (!it.Valid()) break;
          if (current != want) continue;
        } else {
          positioned = false;
        }
      }
      if (!positioned || !ascending) {
        seek_key.clear();
        put_be32(seek_key, want);
        it.Seek(rocksdb::Slice(seek_key));
        positioned = true;
        if (!it.Valid()) {
          if (!ascending) continue;
          break;
        }
        if (it.key().size() != 4) return make_error(errc::corruption, "directory: bad key");
        current = get_be32(it.key().data());
        if (current != want) continue;
      }
      // The iterator's value is only valid until it moves: copy it into the
      // arena now and make views once the arena has stopped growing.
      const rocksdb::Slice v = it.value();
      slots_.push_back(
          slot{want, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(v.size())});
      arena_.append(v.data(), v.size());
    }
    if (!it.status().ok()) {
      return make_error(errc::io_error, "directory: read: " + it.status().ToString());
    }
  }

  if (out_.size() < slots_.size()) out_.resize(slots_.size());
  const std::string_view all(arena_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    const slot& s = slots_[i];
    if (auto r = decode_directory_entry(all.substr(s.offset, s.size), s.ordinal, out_[i]); !r) {
      return r.err();
    }
  }
  return std::span<const recipient>(out_.data(), slots_.size());
}

}  // namespace relay
