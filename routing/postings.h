#pragma once
// Posting lists: Roaring bitmaps of user ordinals, stored in the `postings`
// column family and updated with a merge operator so a registry change writes
// a small delta instead of rewriting a bitmap of millions of users.
//
// Keys:
//   "r" \0 company \0 service       users registered with (company, service)
//   "a" \0 field \0 value           users whose profile attribute `field` equals `value`
//                                   (fields: gender, region, occupation, birth_year, locale)
// Values: a Roaring bitmap in portable serialisation.
// Merge operands: one or more segments, each one byte '+' (add) or '-'
// (remove) followed by a portable Roaring bitmap. The full merge applies
// operands, and the segments inside each, in order; a writer that both adds
// and removes ordinals under one key in a batch concatenates a '-' and a '+'
// segment into a single Merge. Partial merges fold any run of operands into
// one "- removed + added" operand (the last op on an ordinal wins), so they
// never need the base value. Malformed data fails the merge (RocksDB reports
// Corruption) rather than silently dropping recipients.

#include <memory>
#include <string>
#include <string_view>

#include "routing/result.h"
#include "routing/roaring_compat.h"

namespace rocksdb {
class CompactionFilter;
class MergeOperator;
}  // namespace rocksdb

namespace relay {

std::string registration_posting_key(std::string_view company, std::string_view service);
std::string attribute_posting_key(std::string_view field, std::string_view value);
// Prefix of every registration posting of a company (all its services).
std::string registration_posting_prefix(std::string_view company);

// One segment; op: '+' or '-' (anything else is treated as '+'). Run-optimised.
std::string encode_posting_delta(char op, const roaring::Roaring& ordinals);
// A full posting value (the merge result); errc::corruption when malformed.
result<roaring::Roaring> decode_posting(std::string_view value);

std::shared_ptr<rocksdb::MergeOperator> make_posting_merge_operator();

// Drops posting values that became empty bitmaps (the last user of a company,
// service or attribute value left), so churn does not leave dead keys behind;
// an absent posting reads as empty. Stateless, static lifetime, safe from any
// compaction thread.
const rocksdb::CompactionFilter* posting_compaction_filter();

}  // namespace relay
