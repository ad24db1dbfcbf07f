#include "routing/postings.h"

#include <gtest/gtest.h>
#include <rocksdb/merge_operator.h>

#include <deque>
#include <random>
#include <set>

#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

using testing::bitmap_of;
using testing::to_vector;

// Applies operands with the merge operator exactly as RocksDB's read path does.
std::optional<roaring::Roaring> full_merge(const std::optional<std::string>& base,
                                           const std::vector<std::string>& operands) {
  auto op = make_posting_merge_operator();
  std::vector<rocksdb::Slice> slices(operands.begin(), operands.end());
  rocksdb::Slice key("k");
  rocksdb::Slice base_slice = base ? rocksdb::Slice(*base) : rocksdb::Slice();
  rocksdb::MergeOperator::MergeOperationInput in(key, base ? &base_slice : nullptr, slices,
                                                 nullptr);
  std::string out;
  rocksdb::Slice existing;
  rocksdb::MergeOperator::MergeOperationOutput mo(out, existing);
  if (!op->FullMergeV2(in, &mo)) return std::nullopt;
  auto decoded = decode_posting(existing.data() != nullptr && out.empty()
                                    ? std::string_view(existing.data(), existing.size())
                                    : std::string_view(out));
  if (!decoded) return std::nullopt;
  return std::move(*decoded);
}

std::string full_value(const roaring::Roaring& r) {
  std::string s(r.getSizeInBytes(), '\0');
  r.write(s.data());
  return s;
}

TEST(postings, keys_have_their_documented_layout) {
  EXPECT_EQ(registration_posting_key("acme", "gold"), std::string("r\0acme\0gold", 11));
  EXPECT_EQ(registration_posting_key("acme", ""), std::string("r\0acme\0", 7));
  EXPECT_EQ(attribute_posting_key("region", "tokyo"), std::string("a\0region\0tokyo", 14));
  EXPECT_EQ(registration_posting_prefix("acme"), std::string("r\0acme\0", 7));
}

TEST(postings, company_prefix_does_not_match_a_longer_company) {
  const std::string prefix = registration_posting_prefix("ac");
  EXPECT_EQ(registration_posting_key("ac", "x").rfind(prefix, 0), 0u);
  EXPECT_NE(registration_posting_key("acme", "x").rfind(prefix, 0), 0u);
}

TEST(postings, delta_starts_with_its_op_and_holds_the_bitmap) {
  const auto d = encode_posting_delta('-', bitmap_of({7, 9}));
  ASSERT_FALSE(d.empty());
  EXPECT_EQ(d[0], '-');
  auto r = decode_posting(std::string_view(d).substr(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(to_vector(*r), (std::vector<uint32_t>{7, 9}));
  EXPECT_EQ(encode_posting_delta('+', bitmap_of({1}))[0], '+');
}

TEST(postings, decode_rejects_garbage_and_trailing_bytes) {
  EXPECT_EQ(decode_posting("").err().code, errc::corruption);
  EXPECT_EQ(decode_posting("not a bitmap at all").err().code, errc::corruption);
  std::string v = full_value(bitmap_of({1, 2}));
  EXPECT_TRUE(decode_posting(v).ok());
  EXPECT_EQ(decode_posting(v + "x").err().code, errc::corruption);
  EXPECT_EQ(decode_posting(v.substr(0, v.size() - 1)).err().code, errc::corruption);
}

TEST(postings, full_merge_applies_operands_in_order) {
  auto r = full_merge(
      std::nullopt,
      {encode_posting_delta('+', bitmap_of({1, 2, 3})), encode_posting_delta('-', bitmap_of({2})),
       encode_posting_delta('+', bitmap_of({2, 4})), encode_posting_delta('-', bitmap_of({4}))});
  ASSERT_TRUE(r);
  EXPECT_EQ(to_vector(*r), (std::vector<uint32_t>{1, 2, 3}));
}

TEST(postings, full_merge_starts_from_the_existing_bitmap) {
  auto r = full_merge(
      full_value(bitmap_of({10, 20})),
      {encode_posting_delta('-', bitmap_of({10, 99})), encode_posting_delta('+', bitmap_of({30}))});
  ASSERT_TRUE(r);
  EXPECT_EQ(to_vector(*r), (std::vector<uint32_t>{20, 30}));
}

TEST(postings, one_operand_may_carry_a_remove_and_an_add_segment) {
  const std::string both =
      encode_posting_delta('-', bitmap_of({1})) + encode_posting_delta('+', bitmap_of({5, 6}));
  auto r = full_merge(full_value(bitmap_of({1, 2})), {both});
  ASSERT_TRUE(r);
  EXPECT_EQ(to_vector(*r), (std::vector<uint32_t>{2, 5, 6}));
}

TEST(postings, malformed_operands_fail_the_merge) {
  EXPECT_FALSE(full_merge(std::nullopt, {""}));
  EXPECT_FALSE(full_merge(std::nullopt, {"*garbage"}));
  EXPECT_FALSE(full_merge(std::nullopt, {"+"}));
  std::string truncated = encode_posting_delta('+', bitmap_of({1, 2, 3}));
  truncated.pop_back();
  EXPECT_FALSE(full_merge(std::nullopt, {truncated}));
  EXPECT_FALSE(full_merge(std::string("bad base"), {encode_posting_delta('+', bitmap_of({1}))}));
}

// Partial merges fold operands without the base; applying the folded operand
// must equal applying the originals one by one, for any base.
TEST(postings, partial_merge_is_equivalent_to_applying_operands_in_order) {
  auto op = make_posting_merge_operator();
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> operands;
    std::deque<rocksdb::Slice> slices;
    const int n = 2 + int(rng() % 5);
    for (int i = 0; i < n; ++i) {
      roaring::Roaring r;
      const int k = int(rng() % 6);
      for (int j = 0; j < k; ++j) r.add(rng() % 16);
      operands.push_back(encode_posting_delta(rng() % 2 ? '+' : '-', r));
    }
    for (const auto& o : operands) slices.emplace_back(o);
    std::string folded;
    ASSERT_TRUE(op->PartialMergeMulti(rocksdb::Slice("k"), slices, &folded, nullptr));
    roaring::Roaring base;
    for (int j = 0; j < 16; ++j) {
      if (rng() % 2) base.add(j);
    }
    auto expected = full_merge(full_value(base), operands);
    auto got = full_merge(full_value(base), {folded});
    ASSERT_TRUE(expected && got);
    EXPECT_EQ(to_vector(*expected), to_vector(*got)) << "round " << round;
  }
  std::string out;
  EXPECT_FALSE(op->PartialMerge(rocksdb::Slice("k"), rocksdb::Slice("junk"),
                                rocksdb::Slice(encode_posting_delta('+', bitmap_of({1}))), &out,
                                nullptr));
}

TEST(postings, merged_values_are_run_optimised) {
  roaring::Roaring dense;
  dense.addRange(1, 1'000'001);
  auto r = full_merge(std::nullopt, {encode_posting_delta('+', dense)});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cardinality(), 1'000'000u);
  // A million consecutive ordinals fit in a few hundred bytes as runs
  // (125 KB as a plain bitmap).
  EXPECT_LT(full_value(*r).size(), 400u);
  EXPECT_LT(encode_posting_delta('+', dense).size(), 400u);
}

TEST(postings, merges_survive_flush_and_compaction_in_the_database) {
  testing::temp_dir dir;
  auto s = testing::open_store(dir.path());
  ASSERT_TRUE(s);
  auto* h = s->handle(cf::postings);
  const std::string key = attribute_posting_key("region", "tokyo");
  for (uint32_t i = 1; i <= 50; ++i) {
    rocksdb::WriteBatch b;
    b.Merge(h, key, encode_posting_delta('+', bitmap_of({i})));
    if (i % 2 == 0) b.Merge(h, key, encode_posting_delta('-', bitmap_of({i - 1})));
    ASSERT_TRUE(s->write(b).ok());
    if (i % 10 == 0) {
      ASSERT_TRUE(s->db().Flush(rocksdb::FlushOptions(), h).ok());
    }
  }
  ASSERT_TRUE(s->db().CompactRange(rocksdb::CompactRangeOptions(), h, nullptr, nullptr).ok());
  std::string v;
  ASSERT_TRUE(s->get(cf::postings, key, &v).ok());
  auto r = decode_posting(v);
  ASSERT_TRUE(r.ok());
  std::vector<uint32_t> evens;
  for (uint32_t i = 2; i <= 50; i += 2) evens.push_back(i);
  EXPECT_EQ(to_vector(*r), evens);
}

TEST(postings, compaction_drops_postings_that_became_empty) {
  testing::temp_dir dir;
  auto s = testing::open_store(dir.path());
  ASSERT_TRUE(s);
  auto* h = s->handle(cf::postings);
  const std::string gone = registration_posting_key("acme", "old");
  const std::string kept = registration_posting_key("acme", "new");
  rocksdb::WriteBatch b;
  b.Merge(h, gone, encode_posting_delta('+', bitmap_of({1, 2})));
  b.Merge(h, kept, encode_posting_delta('+', bitmap_of({3})));
  ASSERT_TRUE(s->write(b).ok());
  ASSERT_TRUE(s->db().Flush(rocksdb::FlushOptions(), h).ok());
  rocksdb::WriteBatch b2;
  b2.Merge(h, gone, encode_posting_delta('-', bitmap_of({1, 2})));
  ASSERT_TRUE(s->write(b2).ok());
  // First compaction merges to an empty bitmap, the next one drops it.
  for (int i = 0; i < 2; ++i) {
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    ASSERT_TRUE(s->db().CompactRange(o, h, nullptr, nullptr).ok());
  }
  std::string v;
  EXPECT_EQ(s->get(cf::postings, gone, &v).err().code, errc::not_found);
  ASSERT_TRUE(s->get(cf::postings, kept, &v).ok());
  EXPECT_EQ(to_vector(*decode_posting(v)), std::vector<uint32_t>{3});
  // A later add onto the dropped key starts from empty.
  rocksdb::WriteBatch b3;
  b3.Merge(h, gone, encode_posting_delta('+', bitmap_of({9})));
  ASSERT_TRUE(s->write(b3).ok());
  ASSERT_TRUE(s->get(cf::postings, gone, &v).ok());
  EXPECT_EQ(to_vector(*decode_posting(v)), std::vector<uint32_t>{9});
}

}  // namespace
}  // namespace relay
