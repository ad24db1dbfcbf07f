#include "routing/send_log.h"

#include "routing/byte_codec.h"
#include "routing/store.h"

namespace relay {
namespace {
constexpr uint8_t kRecordVersion = 2;
constexpr uint8_t kRecordVersionWithoutDims = 1;
}

void send_key(std::string_view message_id, std::string& k) {
  k.clear();
  k.push_back('m');
  k.append(message_id);
}

void send_ref_key(std::string_view carrier_id, std::string_view carrier_ref, std::string& k) {
  k.clear();
  k.push_back('r');
  k.append(carrier_id);
  k.push_back('\0');
  k.append(carrier_ref);
}

void encode_send(const send_record& r, std::string& v) {
  v.clear();
  put_be64(v, static_cast<uint64_t>(r.sent_at_ms));  // first, for the compaction filter
  v.push_back(static_cast<char>(kRecordVersion));
  v.push_back(static_cast<char>(r.ch));
  v.push_back(static_cast<char>(r.seen));
  codec::put_string(v, r.job_id);
  codec::put_string(v, r.company_id);
  codec::put_string(v, r.user_id);
  codec::put_string(v, r.carrier_id);
  codec::put_varint(v, r.ordinal);
  v.push_back(static_cast<char>(r.step));
  codec::put_string(v, r.gender);
  v.push_back(static_cast<char>(r.age_band));
  codec::put_string(v, r.region);
  codec::put_string(v, r.occupation);
  v.push_back(static_cast<char>(r.local_hour));
  v.push_back(static_cast<char>(r.weekday));
  codec::put_string(v, r.choice);
}

result<send_record> decode_send(std::string_view value) {
  const uint8_t version = value.size() > 8 ? static_cast<uint8_t>(value[8]) : 0;
  if (value.size() < 11 || (version != kRecordVersion && version != kRecordVersionWithoutDims) ||
      static_cast<uint8_t>(value[9]) >= kChannelCount) {
    return make_error(errc::corruption, "send record: bad header");
  }
  send_record r;
  r.sent_at_ms = static_cast<int64_t>(get_be64(value.data()));
  r.ch = static_cast<channel>(value[9]);
  r.seen = static_cast<uint8_t>(value[10]);
  codec::reader in(value.substr(11));
  if (!in.string(r.job_id) || !in.string(r.company_id) || !in.string(r.user_id) ||
      !in.string(r.carrier_id)) {
    return make_error(errc::corruption, "send record: truncated");
  }
  if (version == kRecordVersion) {
    uint64_t ordinal = 0;
    if (!in.varint(ordinal) || ordinal > UINT32_MAX || !in.byte(r.step) || !in.string(r.gender) ||
        !in.byte(r.age_band) || !in.string(r.region) || !in.string(r.occupation) || !in.byte(r.local_hour) ||
        !in.byte(r.weekday) || !in.string(r.choice)) {
      return make_error(errc::corruption, "send record: truncated");
    }
    r.ordinal = static_cast<uint32_t>(ordinal);
  }
  if (!in.done()) return make_error(errc::corruption, "send record: trailing bytes");
  return r;
}

void encode_send_ref(int64_t sent_at_ms, std::string_view message_id, std::string& v) {
  v.clear();
  put_be64(v, static_cast<uint64_t>(sent_at_ms));
  v.append(message_id);
}

std::string_view send_ref_message_id(std::string_view value) {
  return value.size() > 8 ? value.substr(8) : std::string_view();
}

bool send_log_compaction_filter::Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value,
                                        std::string*, bool*) const {
  if (value.size() < 8) return false;
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto sent_at = static_cast<int64_t>(get_be64(value.data()));
  return sent_at + retention_.count() < now_ms;
}

}  // namespace relay
