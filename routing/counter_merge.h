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

}  // namespace relay
