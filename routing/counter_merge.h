#pragma once
// The `counters` column family's merge operator: values are uint64
// little-endian (8 bytes) and a Merge adds its operand to the stored value,
// so counting a send or an open is one blind write, never a read-modify-write.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rocksdb {
class MergeOperator;
}

namespace relay {

std::string encode_counter(uint64_t v);
// A value that is not exactly 8 bytes decodes as 0 (as RocksDB's own uint64add does).
uint64_t decode_counter(std::string_view value);

// Wrapping addition; a malformed stored value or operand counts as 0 rather
// than failing the merge (a failed merge stops compaction of the whole DB).
std::shared_ptr<rocksdb::MergeOperator> make_counter_merge_operator();

// The `engagement` column family's merge operator: values are arrays of
// uint64 little-endian and a Merge adds its operand element by element (the
// shorter side counts as zeros), so one key carries several counts (sent,
// delivered, opened, ...) and a newer relay may append counts to the array.
// A value whose size is not a multiple of 8 counts as empty.
std::shared_ptr<rocksdb::MergeOperator> make_counter_array_merge_operator();

}  // namespace relay
