#include "routing/send_log.h"

#include <gtest/gtest.h>

#include <map>

#include "routing/outbox.h"
#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

send_record record(channel ch, int64_t sent_at_ms, uint8_t seen) {
  send_record r;
  r.job_id = "job-1";
  r.company_id = "acme";
  r.user_id = "u1";
  r.carrier_id = "carrier-a";
  r.ch = ch;
  r.sent_at_ms = sent_at_ms;
  r.seen = seen;
  return r;
}

TEST(send_log, a_record_round_trips_with_its_seen_bits) {
  std::string value;
  encode_send(record(channel::email, 1700000000123, seen_delivered | seen_opened),
              value);
  auto r = decode_send(value);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->job_id, "job-1");
  EXPECT_EQ(r->company_id, "acme");
  EXPECT_EQ(r->user_id, "u1");
  EXPECT_EQ(r->carrier_id, "carrier-a");
  EXPECT_EQ(r->ch, channel::email);
  EXPECT_EQ(r->sent_at_ms, 1700000000123);
  EXPECT_EQ(r->seen, seen_delivered | seen_opened);
}

TEST(send_log, a_record_keeps_the_dimensions_its_events_count_under) {
  send_record in = record(channel::rcs, 1700000000123, 0);
  in.ordinal = 70000;
  in.step = 2;
  in.gender = "f";
  in.age_band = 3;
  in.region = "tokyo";
  in.occupation = "engineer";
  in.local_hour = 9;
  in.weekday = 1;
  in.choice = "why";
  std::string value;
  encode_send(in, value);
  auto r = decode_send(value);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->ordinal, 70000u);
  EXPECT_EQ(r->step, 2);
  EXPECT_EQ(r->gender, "f");
  EXPECT_EQ(r->age_band, 3);
  EXPECT_EQ(r->region, "tokyo");
  EXPECT_EQ(r->occupation, "engineer");
  EXPECT_EQ(r->local_hour, 9);
  EXPECT_EQ(r->weekday, 1);
  EXPECT_EQ(r->choice, "why");
}

TEST(send_log, records_written_before_dimensions_still_decode) {
  // Version 1: sent_at, version, channel, seen, job, company, user, carrier.
  std::string v1;
  put_be64(v1, 1700000000123);
  v1 += std::string("\x01\x01\x02", 3);
  for (std::string_view f : {"job-1", "acme", "u1", "carrier-a"}) {
    v1.push_back(static_cast<char>(f.size()));
    v1.append(f);
  }
  auto r = decode_send(v1);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->carrier_id, "carrier-a");
  EXPECT_EQ(r->seen, seen_opened);
  EXPECT_EQ(r->local_hour, 0xff);
  EXPECT_EQ(r->gender, "");
}

TEST(send_log, truncated_or_foreign_bytes_are_errors_not_reads_past_the_end) {
  std::string value;
  encode_send(record(channel::sms, 1, 0), value);
  for (size_t n = 0; n < value.size(); ++n) EXPECT_FALSE(decode_send(value.substr(0, n)).ok()) << n;
  std::string bad = value;
  bad[9] = 7;  // no such channel
  EXPECT_FALSE(decode_send(bad).ok());
}

TEST(send_log, refs_are_per_carrier_and_point_at_the_message) {
  std::string a, b, v;
  send_ref_key("carrier-a", "ref-1", a);
  send_ref_key("carrier-b", "ref-1", b);
  EXPECT_NE(a, b);
  encode_send_ref(5, "0123456789abcdef0123456789abcdef", v);
  EXPECT_EQ(send_ref_message_id(v), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(send_ref_message_id("short"), "");
}

TEST(send_log, compaction_drops_records_older_than_the_retention_only) {
  send_log_compaction_filter filter(std::chrono::hours(24));
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string fresh, old;
  encode_send(record(channel::sms, now - 1000, 0), fresh);
  encode_send(record(channel::sms, now - 25 * 3600 * 1000LL, 0), old);
  std::string nv;
  bool changed = false;
  EXPECT_FALSE(filter.Filter(0, "m1", fresh, &nv, &changed));
  EXPECT_TRUE(filter.Filter(0, "m2", old, &nv, &changed));
}

TEST(outbox, keys_order_by_job_then_recipient_and_scan_counts_per_connector) {
  testing::temp_dir dir;
  auto db = testing::open_store(dir.path());
  const std::string a = outbox_prefix("carrier-a", channel::sms);
  const std::string b = outbox_prefix("carrier-b", channel::email);
  EXPECT_LT(outbox_key(a, 1, 900), outbox_key(a, 2, 1));
  EXPECT_LT(outbox_key(a, 2, 1), outbox_key(a, 2, 2));
  outbox_entry e;
  ASSERT_TRUE(parse_outbox_key(outbox_key(a, 7, 42), a.size(), e));
  EXPECT_EQ(e.job_seq, 7u);
  EXPECT_EQ(e.ordinal, 42u);
  EXPECT_FALSE(parse_outbox_key(a, a.size(), e));

  rocksdb::WriteBatch batch;
  for (uint32_t i = 0; i < 3; ++i) batch.Put(db->handle(cf::outbox), outbox_key(a, 1, i), "job-1");
  batch.Put(db->handle(cf::outbox), outbox_key(a, 2, 0), "job-2");
  batch.Put(db->handle(cf::outbox), outbox_key(b, 2, 5), "job-2");
  ASSERT_TRUE(db->write(batch).ok());
  std::map<uint64_t, int> per_job;
  auto depths = scan_outboxes(*db, [&](uint64_t seq) { ++per_job[seq]; });
  ASSERT_TRUE(depths.ok());
  ASSERT_EQ(depths->size(), 2u);
  EXPECT_EQ((*depths)[0].carrier_id, "carrier-a");
  EXPECT_EQ((*depths)[0].ch, channel::sms);
  EXPECT_EQ((*depths)[0].entries, 4u);
  EXPECT_EQ((*depths)[0].last_key, outbox_key(a, 2, 0));
  EXPECT_EQ((*depths)[1].carrier_id, "carrier-b");
  EXPECT_EQ((*depths)[1].entries, 1u);
  EXPECT_EQ(per_job[1], 3);
  EXPECT_EQ(per_job[2], 2);
}

}  // namespace
}  // namespace relay
