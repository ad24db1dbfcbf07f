#include "routing/counter_merge.h"

#include <rocksdb/merge_operator.h>

#include <algorithm>
#include <cstring>

namespace relay {

std::string encode_counter(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

uint64_t decode_counter(std::string_view value) {
  if (value.size() != 8) return 0;
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(value[i]);
  return v;
}

namespace {

class counter_add_operator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing_value,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* /*logger*/) const override {
    uint64_t base =
        existing_value ? decode_counter({existing_value->data(), existing_value->size()}) : 0;
    *new_value = encode_counter(base + decode_counter({value.data(), value.size()}));
    return true;
  }
  // The name is persisted in the OPTIONS file: never change it.
  const char* Name() const override { return "relay.uint64_le_add"; }
};

class counter_array_add_operator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing_value,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* /*logger*/) const override {
    const std::string_view base = existing_value ? well_formed({existing_value->data(), existing_value->size()})
                                                 : std::string_view{};
    const std::string_view add = well_formed({value.data(), value.size()});
    const size_t n = std::max(base.size(), add.size()) / 8;
    new_value->assign(n * 8, '\0');
    for (size_t i = 0; i < n; ++i) {
      uint64_t v = 0;
      if (i * 8 < base.size()) v += decode_counter(base.substr(i * 8, 8));
      if (i * 8 < add.size()) v += decode_counter(add.substr(i * 8, 8));
      for (int b = 0; b < 8; ++b) (*new_value)[i * 8 + b] = static_cast<char>((v >> (8 * b)) & 0xff);
    }
    return true;
  }
  // The name is persisted in the OPTIONS file: never change it.
  const char* Name() const override { return "relay.uint64_le_array_add"; }

 private:
  static std::string_view well_formed(std::string_view v) { return v.size() % 8 == 0 ? v : std::string_view{}; }
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> make_counter_merge_operator() {
  return std::make_shared<counter_add_operator>();
}

std::shared_ptr<rocksdb::MergeOperator> make_counter_array_merge_operator() {
  return std::make_shared<counter_array_add_operator>();
}

}  // namespace relay
