#include "routing/job_store.h"

#include <gtest/gtest.h>

#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

TEST(JobStore, records_and_progress_round_trip) {
  job_record r{job_state::accepted, 42, 1795435200123, 3, 99, R"({"job_id":"j"})"};
  auto back = decode_job_record(encode_job_record(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->seq, 42u);
  EXPECT_EQ(back->partition, 3);
  EXPECT_EQ(back->offset, 99);
  EXPECT_EQ(back->json, r.json);
  job_progress p{7, 10, 5, 1, 2, 3, true};
  auto pb = decode_progress(encode_progress(p));
  ASSERT_TRUE(pb);
  EXPECT_EQ(*pb, p);
  EXPECT_FALSE(decode_progress("short"));
  EXPECT_FALSE(decode_job_record(""));
}

TEST(JobStore, unfinished_jobs_load_in_accept_order_with_their_open_chunks) {
  testing::temp_dir dir;
  auto db = testing::open_store((dir / "db"));
  ASSERT_TRUE(db);
  rocksdb::WriteBatch b;
  for (auto [id, seq] : {std::pair{"second", 2u}, {"first", 1u}}) {
    b.Put(db->handle(cf::jobs), job_key(id, 'j'), encode_job_record({job_state::accepted, seq, 0, 0, 0, "{}"}));
    b.Put(db->handle(cf::jobs), job_key(id, 't'), "");
    b.Put(db->handle(cf::jobs), job_key(id, 'p'), encode_progress({2048, 5000, 0, 0, 0, 0}));
    b.Put(db->handle(cf::meta), active_key(seq), id);
  }
  std::string end;
  put_be64(end, 2048);
  b.Put(db->handle(cf::jobs), chunk_key("first", 1024), end);
  ASSERT_TRUE(db->write(b));

  auto jobs = load_active_jobs(*db);
  ASSERT_TRUE(jobs);
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].job_id, "first");
  EXPECT_EQ((*jobs)[1].job_id, "second");
  ASSERT_EQ((*jobs)[0].open_chunks.size(), 1u);
  EXPECT_EQ((*jobs)[0].open_chunks[0].begin, 1024u);
  EXPECT_EQ((*jobs)[0].open_chunks[0].end, 2048u);
  EXPECT_TRUE((*jobs)[1].open_chunks.empty());
  EXPECT_EQ((*jobs)[0].progress.next_cursor, 2048u);
}

TEST(JobStore, a_job_that_is_not_stored_is_not_found) {
  testing::temp_dir dir;
  auto db = testing::open_store((dir / "db"));
  ASSERT_TRUE(db);
  auto j = load_job(*db, "nope");
  ASSERT_FALSE(j);
  EXPECT_EQ(j.err().code, errc::not_found);
}

}  // namespace
}  // namespace relay
