#pragma once
// Small helpers for relay's compact binary values (directory entries,
// profiles, carrier links): LEB128 varints and length-prefixed strings.
// Readers are bounds-checked: they return false instead of reading past the end.

#include <cstdint>
#include <string>
#include <string_view>

namespace relay::codec {

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

// A cursor over borrowed bytes.
class reader {
 public:
  explicit reader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}

  bool done() const { return p_ == end_; }

  bool byte(uint8_t& v) {
    if (p_ == end_) return false;
    v = static_cast<uint8_t>(*p_++);
    return true;
  }

  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const auto b = static_cast<uint8_t>(*p_++);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;  // more than 10 bytes: not ours
  }

  bool string(std::string_view& s) {
    // One-byte lengths are the common case (ids, addresses, time zones).
    size_t n;
    if (p_ != end_ && !(static_cast<uint8_t>(*p_) & 0x80)) {
      n = static_cast<uint8_t>(*p_++);
    } else {
      uint64_t v;
      if (!varint(v)) return false;
      n = static_cast<size_t>(v);
    }
    if (n > static_cast<size_t>(end_ - p_)) return false;
    s = std::string_view(p_, n);
    p_ += n;
    return true;
  }

 private:
  const char* p_;
  const char* end_;
};

}  // namespace relay::codec
