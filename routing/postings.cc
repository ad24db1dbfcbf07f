#include "routing/postings.h"

#include <roaring/roaring.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/merge_operator.h>

#include <deque>
#include <exception>
#include <vector>

namespace relay {

namespace {

std::string join_key(char kind, std::string_view a, std::string_view b) {
  std::string k;
  k.reserve(4 + a.size() + b.size());
  k.push_back(kind);
  k.push_back('\0');
  k.append(a);
  k.push_back('\0');
  k.append(b);
  return k;
}

// Reads one portable bitmap at the front of `in` and advances past it.
// CRoaring's C++ wrapper throws on failure; nothing may escape into RocksDB.
bool read_bitmap(std::string_view& in, roaring::Roaring& out) {
  const size_t n = roaring_bitmap_portable_deserialize_size(in.data(), in.size());
  if (n == 0 || n > in.size()) return false;
  try {
    out = roaring::Roaring::readSafe(in.data(), n);
  } catch (const std::exception&) {
    return false;
  }
  in.remove_prefix(n);
  return true;
}

void append_bitmap(std::string& out, const roaring::Roaring& r) {
  const size_t n = r.getSizeInBytes();
  const size_t at = out.size();
  out.resize(at + n);
  r.write(out.data() + at);
}

// Folds the segments of one operand (`op bitmap`...) into a net change:
// afterwards `add` and `remove` are disjoint and applying "- remove, + add"
// equals applying the segments in order (the last op on an ordinal wins).
bool fold_operand(std::string_view operand, roaring::Roaring& add, roaring::Roaring& remove) {
  if (operand.empty()) return false;
  while (!operand.empty()) {
    const char op = operand.front();
    if (op != '+' && op != '-') return false;
    operand.remove_prefix(1);
    roaring::Roaring r;
    if (!read_bitmap(operand, r)) return false;
    if (op == '+') {
      add |= r;
      remove -= r;
    } else {
      remove |= r;
      add -= r;
    }
  }
  return true;
}

class posting_merge_operator final : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    try {
      roaring::Roaring bitmap;
      if (in.existing_value != nullptr) {
        std::string_view v(in.existing_value->data(), in.existing_value->size());
        if (!read_bitmap(v, bitmap) || !v.empty()) return false;
      }
      for (const auto& operand : in.operand_list) {
        roaring::Roaring add, remove;
        if (!fold_operand({operand.data(), operand.size()}, add, remove)) return false;
        bitmap -= remove;
        bitmap |= add;
      }
      bitmap.runOptimize();
      out->new_value.clear();
      append_bitmap(out->new_value, bitmap);
      return true;
    } catch (const std::exception&) {
      return false;  // allocation failure inside CRoaring
    }
  }

  // Any run of operands folds exactly into one "- remove + add" operand.
  bool PartialMergeMulti(const rocksdb::Slice& /*key*/, const std::deque<rocksdb::Slice>& operands,
                         std::string* new_value, rocksdb::Logger* /*logger*/) const override {
    try {
      roaring::Roaring add, remove;
      for (const auto& operand : operands) {
        if (!fold_operand({operand.data(), operand.size()}, add, remove)) return false;
      }
      new_value->clear();
      if (!remove.isEmpty()) *new_value += encode_posting_delta('-', remove);
      if (!add.isEmpty() || new_value->empty()) *new_value += encode_posting_delta('+', add);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  bool PartialMerge(const rocksdb::Slice& key, const rocksdb::Slice& left,
                    const rocksdb::Slice& right, std::string* new_value,
                    rocksdb::Logger* logger) const override {
    return PartialMergeMulti(key, std::deque<rocksdb::Slice>{left, right}, new_value, logger);
  }

  // The name is persisted in the OPTIONS file: never change it.
  const char* Name() const override { return "relay.posting_bitmap"; }
};

class empty_posting_filter final : public rocksdb::CompactionFilter {
 public:
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    // An empty portable bitmap is exactly its 8-byte header (cookie + zero
    // containers); anything longer holds at least one container.
    if (value.size() > 16) return false;
    auto r = decode_posting({value.data(), value.size()});
    return r.ok() && r->isEmpty();
  }
  const char* Name() const override { return "relay.empty_posting_filter"; }
};

}  // namespace

std::string registration_posting_key(std::string_view company, std::string_view service) {
  return join_key('r', company, service);
}

std::string attribute_posting_key(std::string_view field, std::string_view value) {
  return join_key('a', field, value);
}

std::string registration_posting_prefix(std::string_view company) {
  std::string k = join_key('r', company, {});
  return k;  // "r\0company\0"
}

std::string encode_posting_delta(char op, const roaring::Roaring& ordinals) {
  roaring::Roaring copy(ordinals);
  copy.runOptimize();
  std::string out;
  out.reserve(1 + copy.getSizeInBytes());
  out.push_back(op == '-' ? '-' : '+');
  append_bitmap(out, copy);
  return out;
}

result<roaring::Roaring> decode_posting(std::string_view value) {
  roaring::Roaring r;
  if (!read_bitmap(value, r)) return make_error(errc::corruption, "posting: not a Roaring bitmap");
  if (!value.empty()) return make_error(errc::corruption, "posting: trailing bytes after bitmap");
  return r;
}

std::shared_ptr<rocksdb::MergeOperator> make_posting_merge_operator() {
  return std::make_shared<posting_merge_operator>();
}

const rocksdb::CompactionFilter* posting_compaction_filter() {
  static const empty_posting_filter filter;
  return &filter;
}

}  // namespace relay
