#include "routing/directory.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

using testing::open_store;
using testing::temp_dir;

profile tokyo_profile() {
  profile p;
  p.msisdn = "+819012345678";
  p.email = "u1@example.jp";
  p.tz = "Asia/Tokyo";
  return p;
}

carrier_link link(std::string id, bool primary, uint8_t channels) {
  carrier_link c;
  c.carrier_id = std::move(id);
  c.primary = primary;
  c.channels = channels;
  return c;
}

TEST(directory, entry_round_trips_with_profile_addresses) {
  std::vector<carrier_link> carriers = {link("carrier-a", true, kAllChannels),
                                        link("carrier-b", false, channel_bit(channel::email))};
  const std::string v = encode_directory_entry("u1", tokyo_profile(), carriers);
  recipient r;
  ASSERT_TRUE(decode_directory_entry(v, 7, r).ok());
  EXPECT_EQ(r.ordinal, 7u);
  EXPECT_EQ(r.user_id, "u1");
  EXPECT_EQ(r.tz, "Asia/Tokyo");
  ASSERT_EQ(r.carrier_count, 2);
  EXPECT_EQ(r.carriers[0].carrier_id, "carrier-a");
  EXPECT_TRUE(r.carriers[0].primary);
  EXPECT_EQ(r.carriers[0].channels, kAllChannels);
  EXPECT_EQ(r.carriers[0].address[int(channel::rcs)], "+819012345678");
  EXPECT_EQ(r.carriers[0].address[int(channel::sms)], "+819012345678");
  EXPECT_EQ(r.carriers[0].address[int(channel::email)], "u1@example.jp");
  EXPECT_EQ(r.carriers[1].carrier_id, "carrier-b");
  EXPECT_FALSE(r.carriers[1].primary);
  EXPECT_EQ(r.carriers[1].address[int(channel::sms)], "");  // not a channel of this carrier
  EXPECT_EQ(r.carriers[1].address[int(channel::email)], "u1@example.jp");
}

TEST(directory, entry_carries_the_attributes_counting_segments_by) {
  profile p = tokyo_profile();
  p.gender = "f";
  p.birth_year = 1996;
  p.region = "tokyo";
  p.occupation = "engineer";
  const std::string v = encode_directory_entry("u1", p, {link("carrier-a", true, kAllChannels)});
  recipient r;
  ASSERT_TRUE(decode_directory_entry(v, 7, r).ok());
  EXPECT_EQ(r.gender, "f");
  EXPECT_EQ(r.birth_year, 1996);
  EXPECT_EQ(r.region, "tokyo");
  EXPECT_EQ(r.occupation, "engineer");
}

TEST(directory, entries_written_before_attributes_still_decode) {
  // A version-1 entry, as relay wrote it before issue 4: no attributes.
  const std::string v = encode_directory_entry("u1", tokyo_profile(), {link("carrier-a", true, kAllChannels)});
  std::string v1 = v.substr(0, v.size() - 4);  // four empty attributes: "", 0, "", ""
  v1[0] = 1;
  recipient r;
  r.gender = "stale";
  ASSERT_TRUE(decode_directory_entry(v1, 3, r).ok());
  EXPECT_EQ(r.user_id, "u1");
  EXPECT_EQ(r.carrier_count, 1);
  EXPECT_EQ(r.gender, "");
  EXPECT_EQ(r.birth_year, 0);
}

TEST(directory, carrier_address_overrides_the_profile) {
  carrier_link a = link("carrier-a", true, channel_bit(channel::sms) | channel_bit(channel::rcs));
  a.address[int(channel::sms)] = "+81800000000";
  a.address[int(channel::email)] = "ignored@example.jp";  // email is not one of its channels
  const std::string v = encode_directory_entry("u1", tokyo_profile(), {a});
  recipient r;
  ASSERT_TRUE(decode_directory_entry(v, 1, r).ok());
  EXPECT_EQ(r.carriers[0].address[int(channel::sms)], "+81800000000");
  EXPECT_EQ(r.carriers[0].address[int(channel::rcs)], "+819012345678");
  EXPECT_EQ(r.carriers[0].address[int(channel::email)], "");
}

TEST(directory, missing_profile_addresses_are_empty) {
  const std::string v = encode_directory_entry("u1", profile{}, {link("c", true, kAllChannels)});
  recipient r;
  ASSERT_TRUE(decode_directory_entry(v, 1, r).ok());
  EXPECT_EQ(r.tz, "");
  for (int ch = 0; ch < kChannelCount; ++ch) EXPECT_EQ(r.carriers[0].address[ch], "");
}

TEST(directory, user_without_carriers_decodes) {
  const std::string v = encode_directory_entry("u1", tokyo_profile(), {});
  recipient r;
  ASSERT_TRUE(decode_directory_entry(v, 3, r).ok());
  EXPECT_EQ(r.carrier_count, 0);
  EXPECT_EQ(r.user_id, "u1");
}

TEST(directory, long_strings_round_trip) {
  profile p = tokyo_profile();
  p.email = std::string(300, 'e');  // needs a two-byte length
  const std::string v =
      encode_directory_entry(std::string(200, 'u'), p, {link("c", true, kAllChannels)});
  recipient r;
  ASSERT_TRUE(decode_directory_entry(v, 1, r).ok());
  EXPECT_EQ(r.user_id.size(), 200u);
  EXPECT_EQ(r.carriers[0].address[int(channel::email)].size(), 300u);
}

TEST(directory, decode_is_bounds_checked) {
  carrier_link a = link("carrier-a", true, kAllChannels);
  a.address[int(channel::sms)] = "+81800000000";
  const std::string v =
      encode_directory_entry("u1", tokyo_profile(), {a, link("carrier-b", false, kAllChannels)});
  recipient r;
  // Every truncation is corruption, never a read past the value.
  for (size_t n = 0; n < v.size(); ++n) {
    auto d = decode_directory_entry(std::string_view(v.data(), n), 1, r);
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.err().code, errc::corruption);
  }
  EXPECT_EQ(decode_directory_entry(v + "x", 1, r).err().code, errc::corruption);
  // Random damage decodes or fails cleanly (ASan checks the "cleanly").
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    std::string bad = v;
    const int flips = 1 + int(rng() % 3);
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] = static_cast<char>(rng());
    (void)decode_directory_entry(bad, 1, r);
  }
  std::string too_many = v;
  // byte after version, user_id, tz, msisdn, email is the carrier count
  const size_t count_at = 1 + 3 + 1 + 10 + 1 + 13 + 1 + 13;
  ASSERT_EQ(too_many[count_at], 2);
  too_many[count_at] = 9;
  EXPECT_EQ(decode_directory_entry(too_many, 1, r).err().code, errc::corruption);
}

class directory_reader_test : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = open_store(dir_.path());
    ASSERT_TRUE(db_);
  }

  void put_entries(uint32_t from, uint32_t to, uint32_t step = 1) {
    rocksdb::WriteBatch b;
    for (uint32_t o = from; o <= to; o += step) {
      std::string k;
      put_be32(k, o);
      profile p = tokyo_profile();
      p.msisdn = "+81" + std::to_string(o);
      b.Put(
          db_->handle(cf::directory), k,
          encode_directory_entry("user-" + std::to_string(o), p, {link("c", true, kAllChannels)}));
    }
    ASSERT_TRUE(db_->write(b).ok());
  }

  void erase(uint32_t o) {
    rocksdb::WriteBatch b;
    std::string k;
    put_be32(k, o);
    b.Delete(db_->handle(cf::directory), k);
    ASSERT_TRUE(db_->write(b).ok());
  }

  static std::vector<uint32_t> ordinals_of(std::span<const recipient> rs) {
    std::vector<uint32_t> out;
    for (const auto& r : rs) {
      out.push_back(r.ordinal);
      EXPECT_EQ(r.user_id, "user-" + std::to_string(r.ordinal));
      EXPECT_EQ(r.carriers[0].address[int(channel::sms)], "+81" + std::to_string(r.ordinal));
    }
    return out;
  }

  temp_dir dir_;
  std::unique_ptr<store> db_;
};

TEST_F(directory_reader_test, reads_a_dense_range) {
  put_entries(1, 1000);
  directory_reader reader(*db_);
  std::vector<uint32_t> want;
  for (uint32_t o = 1; o <= 1000; ++o) want.push_back(o);
  auto got = reader.read(want);
  ASSERT_TRUE(got.ok()) << got.err().message;
  EXPECT_EQ(ordinals_of(*got), want);
}

TEST_F(directory_reader_test, directory_reader_skips_deleted_users) {
  put_entries(1, 100);
  erase(5);
  erase(6);
  erase(50);
  erase(100);
  directory_reader reader(*db_);
  std::vector<uint32_t> want;
  for (uint32_t o = 1; o <= 100; ++o) want.push_back(o);
  auto got = reader.read(want);
  ASSERT_TRUE(got.ok()) << got.err().message;
  std::vector<uint32_t> expected;
  for (uint32_t o = 1; o <= 99; ++o) {
    if (o != 5 && o != 6 && o != 50) expected.push_back(o);
  }
  EXPECT_EQ(ordinals_of(*got), expected);
}

TEST_F(directory_reader_test, a_few_ordinals_read_by_point_lookup_skip_deleted_and_unknown_users) {
  put_entries(1, 10);
  erase(3);
  directory_reader reader(*db_);
  const std::vector<uint32_t> want = {2, 3, 7, 99};  // small enough for point lookups
  auto got = reader.read(want);
  ASSERT_TRUE(got.ok()) << got.err().message;
  EXPECT_EQ(ordinals_of(*got), (std::vector<uint32_t>{2, 7}));
  auto one = reader.read(std::vector<uint32_t>{7});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].ordinal, 7u);
  EXPECT_FALSE((*one)[0].user_id.empty());
}

TEST_F(directory_reader_test, reads_sparse_sets_with_seeks_and_unknown_ordinals) {
  put_entries(10, 10000, 10);  // 10, 20, ..., 10000
  directory_reader reader(*db_);
  const std::vector<uint32_t> want = {1, 10, 11, 20, 25, 30, 500, 510, 9990, 10000, 10010, 99999};
  auto got = reader.read(want);
  ASSERT_TRUE(got.ok()) << got.err().message;
  EXPECT_EQ(ordinals_of(*got), (std::vector<uint32_t>{10, 20, 30, 500, 510, 9990, 10000}));
}

TEST_F(directory_reader_test, every_gap_pattern_matches_a_point_lookup) {
  put_entries(1, 3000);
  std::mt19937 rng(3);
  for (uint32_t o = 1; o <= 3000; ++o) {
    if (rng() % 3 == 0) erase(o);
  }
  directory_reader reader(*db_);
  for (int round = 0; round < 30; ++round) {
    std::vector<uint32_t> want;
    const uint32_t gap = 1 + rng() % 40;
    for (uint32_t o = 1 + rng() % 5; o <= 3005; o += 1 + rng() % gap) want.push_back(o);
    std::vector<uint32_t> expected;
    for (uint32_t o : want) {
      std::string k, v;
      put_be32(k, o);
      if (db_->get(cf::directory, k, &v).ok()) expected.push_back(o);
    }
    auto got = reader.read(want);
    ASSERT_TRUE(got.ok()) << got.err().message;
    EXPECT_EQ(ordinals_of(*got), expected) << "round " << round;
  }
}

TEST_F(directory_reader_test, views_stay_valid_until_the_next_read_and_reads_see_new_writes) {
  put_entries(1, 10);
  directory_reader reader(*db_);
  const std::vector<uint32_t> first = {1, 2, 3};
  auto a = reader.read(first);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 3u);
  EXPECT_EQ((*a)[2].user_id, "user-3");

  put_entries(11, 20);
  erase(2);
  const std::vector<uint32_t> second = {2, 15};
  auto b = reader.read(second);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(ordinals_of(*b), (std::vector<uint32_t>{15}));

  auto empty = reader.read({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(directory_reader_test, tolerates_unsorted_input) {
  put_entries(1, 50);
  directory_reader reader(*db_);
  const std::vector<uint32_t> want = {40, 3, 3, 45, 2};
  auto got = reader.read(want);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(ordinals_of(*got), (std::vector<uint32_t>{40, 3, 3, 45, 2}));
}

TEST_F(directory_reader_test, corrupt_entry_is_reported) {
  put_entries(1, 3);
  rocksdb::WriteBatch b;
  std::string k;
  put_be32(k, 2);
  b.Put(db_->handle(cf::directory), k, "\x01garbage");
  ASSERT_TRUE(db_->write(b).ok());
  directory_reader reader(*db_);
  const std::vector<uint32_t> want = {1, 2, 3};
  auto got = reader.read(want);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.err().code, errc::corruption);
}

TEST_F(directory_reader_test, works_on_a_secondary) {
  put_entries(1, 20);
  store_options so;
  so.secondary = true;
  so.secondary_dir = (dir_ / "secondary");
  auto secondary = open_store(dir_.path(), so);
  ASSERT_TRUE(secondary);
  directory_reader reader(*secondary);
  const std::vector<uint32_t> want = {1, 5, 20, 21};
  auto got = reader.read(want);
  ASSERT_TRUE(got.ok()) << got.err().message;
  EXPECT_EQ(ordinals_of(*got), (std::vector<uint32_t>{1, 5, 20}));
  put_entries(21, 21);
  ASSERT_TRUE(secondary->catch_up().ok());
  auto again = reader.read(want);
  ASSERT_TRUE(again.ok()) << again.err().message;
  EXPECT_EQ(ordinals_of(*again), (std::vector<uint32_t>{1, 5, 20, 21}));
}

}  // namespace
}  // namespace relay
