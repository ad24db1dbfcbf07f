#include "routing/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <set>

#include "routing/counter_merge.h"
#include "routing/postings.h"
#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

using testing::open_store;
using testing::temp_dir;

std::string get_or_fail(store& s, cf c, std::string_view key) {
  std::string v;
  auto r = s.get(c, key, &v);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
  return v;
}

result<void> put(store& s, cf c, std::string_view k, std::string_view v) {
  rocksdb::WriteBatch b;
  b.Put(s.handle(c), rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(v.data(), v.size()));
  return s.write(b);
}

TEST(store, column_family_names_are_distinct) {
  std::set<std::string_view> names;
  for (int i = 0; i < kColumnFamilyCount; ++i) {
    auto n = cf_name(static_cast<cf>(i));
    EXPECT_NE(n, "?");
    EXPECT_NE(n, "default");
    names.insert(n);
  }
  EXPECT_EQ(names.size(), size_t(kColumnFamilyCount));
  EXPECT_EQ(cf_name(cf::registrations), "registrations");
  EXPECT_EQ(cf_name(cf::directory), "directory");
}

TEST(store, open_creates_every_column_family) {
  temp_dir dir;
  {
    auto s = open_store(dir.path());
    ASSERT_TRUE(s);
    for (int i = 0; i < kColumnFamilyCount; ++i) {
      ASSERT_NE(s->handle(static_cast<cf>(i)), nullptr);
      EXPECT_EQ(s->handle(static_cast<cf>(i))->GetName(), cf_name(static_cast<cf>(i)));
    }
  }
  std::vector<std::string> on_disk;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path(), &on_disk).ok());
  for (int i = 0; i < kColumnFamilyCount; ++i) {
    EXPECT_NE(std::find(on_disk.begin(), on_disk.end(), std::string(cf_name(static_cast<cf>(i)))),
              on_disk.end());
  }
}

TEST(store, get_of_absent_key_is_not_found) {
  temp_dir dir;
  auto s = open_store(dir.path());
  ASSERT_TRUE(s);
  std::string v;
  auto r = s->get(cf::profiles, "nobody", &v);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::not_found);
}

TEST(store, writes_survive_close_and_reopen) {
  temp_dir dir;
  {
    auto s = open_store(dir.path());
    ASSERT_TRUE(s);
    ASSERT_TRUE(put(*s, cf::meta, "k", "v1").ok());
    ASSERT_TRUE(put(*s, cf::jobs, "k", "in another family").ok());
    s->close();
    s->close();  // idempotent
    std::string v;
    EXPECT_FALSE(s->get(cf::meta, "k", &v).ok());  // closed: an error, not a crash
    rocksdb::WriteBatch b;
    EXPECT_FALSE(s->write(b).ok());
  }
  auto s = open_store(dir.path());
  ASSERT_TRUE(s);
  EXPECT_EQ(get_or_fail(*s, cf::meta, "k"), "v1");
  EXPECT_EQ(get_or_fail(*s, cf::jobs, "k"), "in another family");
}

TEST(store, sync_writes_work) {
  temp_dir dir;
  store_options o;
  o.sync_writes = true;
  auto s = open_store(dir.path(), o);
  ASSERT_TRUE(s);
  ASSERT_TRUE(put(*s, cf::meta, "k", "v").ok());
  EXPECT_EQ(get_or_fail(*s, cf::meta, "k"), "v");
}

TEST(store, opens_a_database_with_column_families_it_does_not_know) {
  temp_dir dir;
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* h = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "from_the_future", &h).ok());
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }
  auto s = open_store(dir.path());
  ASSERT_TRUE(s);
  ASSERT_TRUE(put(*s, cf::meta, "k", "v").ok());
}

TEST(store, counters_add_little_endian_uint64) {
  temp_dir dir;
  auto s = open_store(dir.path());
  ASSERT_TRUE(s);
  rocksdb::WriteBatch b;
  b.Merge(s->handle(cf::counters), "sends", encode_counter(5));
  b.Merge(s->handle(cf::counters), "sends", encode_counter(7));
  b.Merge(s->handle(cf::counters), "opens", encode_counter(1));
  ASSERT_TRUE(s->write(b).ok());
  EXPECT_EQ(decode_counter(get_or_fail(*s, cf::counters, "sends")), 12u);
  EXPECT_EQ(decode_counter(get_or_fail(*s, cf::counters, "opens")), 1u);

  // Flushed to SST and compacted: the merged value is the same.
  ASSERT_TRUE(s->db().Flush(rocksdb::FlushOptions(), s->handle(cf::counters)).ok());
  rocksdb::WriteBatch b2;
  b2.Merge(s->handle(cf::counters), "sends", encode_counter(30));
  ASSERT_TRUE(s->write(b2).ok());
  ASSERT_TRUE(
      s->db()
          .CompactRange(rocksdb::CompactRangeOptions(), s->handle(cf::counters), nullptr, nullptr)
          .ok());
  EXPECT_EQ(decode_counter(get_or_fail(*s, cf::counters, "sends")), 42u);
}

TEST(store, engagement_counts_add_element_by_element_and_survive_compaction) {
  temp_dir dir;
  auto s = open_store(dir.path());
  ASSERT_TRUE(s);
  const auto counts = [](std::initializer_list<uint64_t> v) {
    std::string out;
    for (uint64_t x : v) out += encode_counter(x);
    return out;
  };
  rocksdb::WriteBatch b;
  b.Merge(s->handle(cf::engagement), "row", counts({1, 0, 1}));
  b.Merge(s->handle(cf::engagement), "row", counts({1, 1}));  // an older relay's shorter array
  b.Merge(s->handle(cf::engagement), "row", "bad");            // malformed: counts nothing
  ASSERT_TRUE(s->write(b).ok());
  EXPECT_EQ(get_or_fail(*s, cf::engagement, "row"), counts({2, 1, 1}));

  ASSERT_TRUE(s->db().Flush(rocksdb::FlushOptions(), s->handle(cf::engagement)).ok());
  rocksdb::WriteBatch b2;
  b2.Merge(s->handle(cf::engagement), "row", counts({0, 0, 0, 5}));
  ASSERT_TRUE(s->write(b2).ok());
  ASSERT_TRUE(
      s->db()
          .CompactRange(rocksdb::CompactRangeOptions(), s->handle(cf::engagement), nullptr, nullptr)
          .ok());
  EXPECT_EQ(get_or_fail(*s, cf::engagement, "row"), counts({2, 1, 1, 5}));
}

TEST(store, counter_merge_onto_a_put_value_adds) {
  temp_dir dir;
  auto s = open_store(dir.path());
  ASSERT_TRUE(s);
  ASSERT_TRUE(put(*s, cf::counters, "c", encode_counter(100)).ok());
  rocksdb::WriteBatch b;
  b.Merge(s->handle(cf::counters), "c", encode_counter(1));
  ASSERT_TRUE(s->write(b).ok());
  EXPECT_EQ(decode_counter(get_or_fail(*s, cf::counters, "c")), 101u);
}

TEST(store, counter_encoding_is_eight_bytes_little_endian) {
  const std::string e = encode_counter(0x0102030405060708ull);
  ASSERT_EQ(e.size(), 8u);
  EXPECT_EQ(static_cast<unsigned char>(e[0]), 0x08);
  EXPECT_EQ(static_cast<unsigned char>(e[7]), 0x01);
  EXPECT_EQ(decode_counter(e), 0x0102030405060708ull);
  EXPECT_EQ(decode_counter("short"), 0u);
  EXPECT_EQ(decode_counter(encode_counter(UINT64_MAX)), UINT64_MAX);
}

TEST(store, postings_family_merges_bitmap_deltas) {
  temp_dir dir;
  auto s = open_store(dir.path());
  ASSERT_TRUE(s);
  rocksdb::WriteBatch b;
  b.Merge(s->handle(cf::postings), "k", encode_posting_delta('+', testing::bitmap_of({1, 2, 3})));
  b.Merge(s->handle(cf::postings), "k", encode_posting_delta('-', testing::bitmap_of({2})));
  ASSERT_TRUE(s->write(b).ok());
  auto p = decode_posting(get_or_fail(*s, cf::postings, "k"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->cardinality(), 2u);
  EXPECT_TRUE(p->contains(1));
  EXPECT_FALSE(p->contains(2));
  EXPECT_TRUE(p->contains(3));
}

TEST(store, secondary_sees_primary_writes_after_catch_up) {
  temp_dir dir;
  const std::string db_path = (dir / "db");
  auto primary = open_store(db_path);
  ASSERT_TRUE(primary);
  ASSERT_TRUE(put(*primary, cf::profiles, "u1", "first").ok());

  store_options so;
  so.secondary = true;
  so.secondary_dir = (dir / "secondary");
  auto secondary = open_store(db_path, so);
  ASSERT_TRUE(secondary);
  EXPECT_EQ(get_or_fail(*secondary, cf::profiles, "u1"), "first");

  ASSERT_TRUE(put(*primary, cf::profiles, "u2", "second").ok());
  rocksdb::WriteBatch merges;
  merges.Merge(primary->handle(cf::counters), "n", encode_counter(2));
  ASSERT_TRUE(primary->write(merges).ok());
  std::string v;
  EXPECT_EQ(secondary->get(cf::profiles, "u2", &v).err().code, errc::not_found);

  ASSERT_TRUE(secondary->catch_up().ok());
  EXPECT_EQ(get_or_fail(*secondary, cf::profiles, "u2"), "second");
  EXPECT_EQ(decode_counter(get_or_fail(*secondary, cf::counters, "n")), 2u);

  // After the primary flushes (WAL switched, SST written) the secondary still catches up.
  ASSERT_TRUE(put(*primary, cf::profiles, "u3", "third").ok());
  ASSERT_TRUE(primary->db().Flush(rocksdb::FlushOptions(), primary->handle(cf::profiles)).ok());
  ASSERT_TRUE(secondary->catch_up().ok());
  EXPECT_EQ(get_or_fail(*secondary, cf::profiles, "u3"), "third");
}

TEST(store, secondary_is_read_only) {
  temp_dir dir;
  auto primary = open_store((dir / "db"));
  ASSERT_TRUE(primary);
  store_options so;
  so.secondary = true;
  so.secondary_dir = (dir / "secondary");
  auto secondary = open_store((dir / "db"), so);
  ASSERT_TRUE(secondary);
  auto r = put(*secondary, cf::meta, "k", "v");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unsupported);
}

TEST(store, secondary_needs_an_existing_database_and_a_dir) {
  temp_dir dir;
  store_options so;
  so.secondary = true;
  EXPECT_FALSE(store::open((dir / "db"), so).ok());  // no secondary_dir
  so.secondary_dir = (dir / "secondary");
  EXPECT_FALSE(store::open((dir / "missing"), so).ok());
}

TEST(store, catch_up_on_a_primary_is_unsupported) {
  temp_dir dir;
  auto s = open_store(dir.path());
  ASSERT_TRUE(s);
  auto r = s->catch_up();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unsupported);
}

TEST(store, big_endian_helpers_round_trip_and_sort_numerically) {
  std::string a, b;
  put_be32(a, 255);
  put_be32(b, 256);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_LT(a, b);
  EXPECT_EQ(get_be32(a.data()), 255u);
  EXPECT_EQ(get_be32(b.data()), 256u);
  std::string c;
  put_be32(c, 0xfedcba98u);
  EXPECT_EQ(get_be32(c.data()), 0xfedcba98u);
  std::string d;
  put_be64(d, 0x0123456789abcdefull);
  ASSERT_EQ(d.size(), 8u);
  EXPECT_EQ(static_cast<unsigned char>(d[0]), 0x01);
  EXPECT_EQ(get_be64(d.data()), 0x0123456789abcdefull);
}

}  // namespace
}  // namespace relay
