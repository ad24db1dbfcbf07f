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
// Merge operands: one byte '+' (add) or '-' (remove) followed by a portable
// Roaring bitmap. The full merge applies operands in order.

#include <roaring/roaring.hh>

#include <memory>
#include <string>
#include <string_view>

#include "routing/result.h"

namespace rocksdb {
class MergeOperator;
}

namespace relay {

std::string registration_posting_key(std::string_view company, std::string_view service);
std::string attribute_posting_key(std::string_view field, std::string_view value);
// Prefix of every registration posting of a company (all its services).
std::string registration_posting_prefix(std::string_view company);

std::string encode_posting_delta(char op, const roaring::Roaring& ordinals);  // op: '+' or '-'
result<roaring::Roaring> decode_posting(std::string_view value);

std::shared_ptr<rocksdb::MergeOperator> make_posting_merge_operator();

}  // namespace relay
