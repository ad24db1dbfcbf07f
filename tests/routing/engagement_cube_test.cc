#include "routing/engagement_cube.h"

#include <gtest/gtest.h>
#include <rocksdb/iterator.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "routing/counter_merge.h"
#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

using namespace std::chrono_literals;
using testing::open_store;
using testing::temp_dir;
using dim = engagement_dimension;

// A Monday, 00:00 UTC.
const sys_time kMonday = std::chrono::sys_days{std::chrono::year{2026} / 11 / 23};

engagement_dims dims(std::string_view company = "acme", std::string_view carrier = "carrier-a",
                     channel ch = channel::sms) {
  engagement_dims d;
  d.company = company;
  d.carrier = carrier;
  d.ch = ch;
  d.gender = "f";
  d.age_band = 2;
  d.region = "tokyo";
  d.occupation = "engineer";
  d.local_hour = 9;
  d.weekday = 1;
  return d;
}

void write(store& db, engagement_batch& b) {
  rocksdb::WriteBatch wb;
  b.flush_into(wb, db);
  ASSERT_TRUE(db.write(wb).ok());
}

// Query results as "key|key" -> counts.
std::map<std::string, engagement_counts> by(store& db, std::vector<dim> group_by,
                                            engagement_query q = {}) {
  q.group_by = std::move(group_by);
  auto r = query_engagement(db, q);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
  std::map<std::string, engagement_counts> out;
  if (!r.ok()) return out;
  for (const auto& row : *r) {
    std::string k;
    for (const auto& part : row.key) k += (k.empty() ? "" : "|") + part;
    out[k] = row.counts;
  }
  return out;
}

// The row keys in query order, joined as above.
std::vector<std::string> keys(store& db, std::vector<dim> group_by, engagement_query q = {}) {
  q.group_by = std::move(group_by);
  auto r = query_engagement(db, q);
  EXPECT_TRUE(r.ok());
  std::vector<std::string> out;
  if (!r.ok()) return out;
  for (const auto& row : *r) {
    std::string k;
    for (const auto& part : row.key) k += (k.empty() ? "" : "|") + part;
    out.push_back(k);
  }
  return out;
}

engagement_counts total(store& db, engagement_query q = {}) {
  auto rows = by(db, {}, std::move(q));
  if (rows.empty()) return {};
  EXPECT_EQ(rows.size(), 1u);
  return rows.begin()->second;
}

uint64_t sent(const engagement_counts& c) { return c[engagement_count::sent]; }
uint64_t opened(const engagement_counts& c) { return c[engagement_count::opened]; }

size_t stored_rows(store& db) {
  std::unique_ptr<rocksdb::Iterator> it(
      db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::engagement)));
  size_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  return n;
}

std::vector<std::string> stored_keys(store& db) {
  std::unique_ptr<rocksdb::Iterator> it(
      db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::engagement)));
  std::vector<std::string> out;
  for (it->SeekToFirst(); it->Valid(); it->Next()) out.push_back(it->key().ToString());
  return out;
}

rollup_result roll_up_all(store& db, sys_time now, size_t max_rows = 1'000'000,
                          int* calls = nullptr) {
  rollup_result sum;
  for (int i = 0; i < 10'000; ++i) {
    rocksdb::WriteBatch wb;
    auto r = roll_up(db, now, rollup_policy{}, max_rows, wb);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) break;
    EXPECT_TRUE(db.write(wb).ok());
    sum.rows_read += r->rows_read;
    sum.rows_written += r->rows_written;
    if (calls != nullptr) ++*calls;
    if (!r->more) break;
  }
  return sum;
}

TEST(engagement_cube, counts_survive_a_restart) {
  temp_dir dir;
  {
    auto db = open_store(dir.path());
    engagement_batch b;
    for (int i = 0; i < 3; ++i) b.add(dims(), kMonday + 9h, engagement_count::sent);
    b.add(dims(), kMonday + 9h, engagement_count::opened);
    write(*db, b);
  }
  auto db = open_store(dir.path());
  const auto t = total(*db);
  EXPECT_EQ(sent(t), 3u);
  EXPECT_EQ(opened(t), 1u);
}

TEST(engagement_cube, a_batch_writes_one_merge_per_row_and_adds_to_what_is_stored) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  EXPECT_TRUE(b.empty());
  for (int i = 0; i < 1000; ++i)
    b.add(dims(), kMonday + 9h + 1min * (i % 60), engagement_count::sent);
  b.add(dims("acme", "carrier-a", channel::rcs), kMonday + 9h, engagement_count::sent, 5);
  b.add(dims(), kMonday + 9h, engagement_count::clicked, 0);  // counts nothing
  EXPECT_EQ(b.rows(), 2u);
  rocksdb::WriteBatch wb;
  b.flush_into(wb, *db);
  EXPECT_EQ(wb.Count(), 2u);
  EXPECT_TRUE(b.empty());
  ASSERT_TRUE(db->write(wb).ok());

  // The next interval reuses the rows and adds onto the stored counts.
  b.add(dims(), kMonday + 9h, engagement_count::sent);
  EXPECT_EQ(b.rows(), 1u);
  write(*db, b);
  // A flush with nothing touched writes nothing.
  rocksdb::WriteBatch none;
  b.flush_into(none, *db);
  EXPECT_EQ(none.Count(), 0u);

  const auto per_channel = by(*db, {dim::channel});
  EXPECT_EQ(sent(per_channel.at("sms")), 1001u);
  EXPECT_EQ(sent(per_channel.at("rcs")), 5u);
  EXPECT_EQ(stored_rows(*db), 2u);
}

// Collects the keys of a write batch's merges, in order.
struct merge_keys final : rocksdb::WriteBatch::Handler {
  std::vector<std::string> keys;
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    keys.push_back(key.ToString());
    return rocksdb::Status::OK();
  }
};

TEST(engagement_cube, thousands_of_rows_count_exactly_across_growth_and_flushes) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  std::vector<std::string> regions;
  for (int i = 0; i < 5000; ++i) regions.push_back("region-" + std::to_string(i));
  for (int round = 0; round < 3; ++round) {
    for (int rep = 0; rep < 7; ++rep) {
      for (int i = 0; i < 5000; ++i) {
        if (rep > i % 7) continue;  // region i counted (i % 7 + 1) times per round
        engagement_dims d = dims();
        d.region = regions[i];
        b.add(d, kMonday + 1h * (i % 3), engagement_count::sent);
      }
    }
    EXPECT_EQ(b.rows(), 5000u);
    rocksdb::WriteBatch wb;
    b.flush_into(wb, *db);
    merge_keys seen;
    ASSERT_TRUE(wb.Iterate(&seen).ok());
    ASSERT_EQ(seen.keys.size(), 5000u);
    EXPECT_TRUE(std::is_sorted(seen.keys.begin(), seen.keys.end()));  // sequential memtable inserts
    ASSERT_TRUE(db->write(wb).ok());
  }
  const auto per_region = by(*db, {dim::region});
  ASSERT_EQ(per_region.size(), 5000u);
  for (int i = 0; i < 5000; ++i) {
    EXPECT_EQ(sent(per_region.at(regions[i])), 3u * (i % 7 + 1)) << regions[i];
  }
}

TEST(engagement_cube, groups_by_each_dimension) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  engagement_dims m1 = dims("acme", "carrier-a", channel::rcs);
  engagement_dims m2 = dims("beta", "carrier-b", channel::sms);
  m2.gender = "m";
  m2.age_band = 4;
  m2.region = "osaka";
  m2.occupation = "teacher";
  m2.local_hour = 21;
  m2.weekday = 6;
  engagement_dims m3;  // nothing known about the user
  m3.company = "acme";
  m3.carrier = "carrier-a";
  m3.ch = channel::email;
  b.add(m1, kMonday, engagement_count::sent, 2);
  b.add(m1, kMonday, engagement_count::opened);
  b.add(m2, kMonday + 25h, engagement_count::sent);
  b.add(m3, kMonday + 1h, engagement_count::sent);
  write(*db, b);

  const auto sents = [&](dim d) {
    std::map<std::string, uint64_t> out;
    for (const auto& [k, c] : by(*db, {d})) out[k] = sent(c);
    return out;
  };
  using m = std::map<std::string, uint64_t>;
  EXPECT_EQ(sents(dim::company), (m{{"acme", 3}, {"beta", 1}}));
  EXPECT_EQ(sents(dim::carrier), (m{{"carrier-a", 3}, {"carrier-b", 1}}));
  EXPECT_EQ(sents(dim::channel), (m{{"rcs", 2}, {"sms", 1}, {"email", 1}}));
  EXPECT_EQ(sents(dim::gender), (m{{"", 1}, {"f", 2}, {"m", 1}}));
  EXPECT_EQ(sents(dim::age_band), (m{{"", 1}, {"20-29", 2}, {"40-49", 1}}));
  EXPECT_EQ(sents(dim::region), (m{{"", 1}, {"tokyo", 2}, {"osaka", 1}}));
  EXPECT_EQ(sents(dim::occupation), (m{{"", 1}, {"engineer", 2}, {"teacher", 1}}));
  EXPECT_EQ(sents(dim::hour), (m{{"", 1}, {"09", 2}, {"21", 1}}));
  EXPECT_EQ(sents(dim::weekday), (m{{"", 1}, {"mon", 2}, {"sat", 1}}));
  EXPECT_EQ(sents(dim::day), (m{{"2026-11-23", 3}, {"2026-11-24", 1}}));

  // Natural order: channels as declared, weekdays and hours by number.
  EXPECT_EQ(keys(*db, {dim::channel}), (std::vector<std::string>{"rcs", "sms", "email"}));
  EXPECT_EQ(keys(*db, {dim::weekday}), (std::vector<std::string>{"", "mon", "sat"}));
  EXPECT_EQ(keys(*db, {dim::carrier, dim::channel, dim::hour}),
            (std::vector<std::string>{"carrier-a|rcs|09", "carrier-a|email|", "carrier-b|sms|21"}));
  const auto cch = by(*db, {dim::carrier, dim::channel, dim::hour});
  EXPECT_EQ(opened(cch.at("carrier-a|rcs|09")), 1u);
}

TEST(engagement_cube, company_filter_reads_only_that_company) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  b.add(dims("acme"), kMonday, engagement_count::sent, 3);
  b.add(dims("acme", "carrier-b", channel::rcs), kMonday, engagement_count::sent, 4);
  b.add(dims("acme2"), kMonday, engagement_count::sent, 100);  // "acme" is its prefix
  b.add(dims("beta"), kMonday, engagement_count::sent, 10);
  write(*db, b);

  engagement_query q;
  q.company = "acme";
  EXPECT_EQ(sent(total(*db, q)), 7u);
  q.company = "beta";
  EXPECT_EQ(sent(total(*db, q)), 10u);
  q.company = "nobody";
  EXPECT_TRUE(by(*db, {}, q).empty());
  q.company = "acme";
  q.carrier = "carrier-b";
  EXPECT_EQ(sent(total(*db, q)), 4u);
  q.carrier.clear();
  q.ch = channel::sms;
  EXPECT_EQ(sent(total(*db, q)), 3u);
  EXPECT_EQ(sent(total(*db)), 117u);
}

// How many entries the query stepped over in the memtable (where the rows
// are in these tests): a key range read touches its rows, not the family.
uint64_t memtable_steps(const std::function<void()>& read) {
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  read();
  const uint64_t n = rocksdb::get_perf_context()->next_on_memtable_count;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  return n;
}

TEST(engagement_cube, a_company_and_time_range_is_read_as_a_key_range) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  for (int h = 0; h < 2000; ++h) b.add(dims("beta"), kMonday - 1h * h, engagement_count::sent);
  for (int h = 0; h < 2000; ++h) b.add(dims("acme"), kMonday - 1h * h, engagement_count::sent);
  b.add(dims("acme"), kMonday + 1h, engagement_count::sent);
  write(*db, b);

  engagement_query q;
  q.company = "acme";
  q.since = kMonday - 3h;  // the last 4 hours of 2,001
  uint64_t n = memtable_steps([&] { EXPECT_EQ(sent(total(*db, q)), 5u); });
  EXPECT_LT(n, 20u);
  q.company.clear();  // every company: a seek per company, still not a scan
  n = memtable_steps([&] { EXPECT_EQ(sent(total(*db, q)), 9u); });
  EXPECT_LT(n, 40u);
  q.since = {};
  n = memtable_steps([&] { EXPECT_EQ(sent(total(*db, q)), 4001u); });
  EXPECT_GE(n, 4000u);  // the counter does count a full read
}

TEST(engagement_cube, since_and_until_select_buckets_by_send_time) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  b.add(dims(), kMonday - 24h * 10, engagement_count::sent, 1);
  b.add(dims(), kMonday - 24h, engagement_count::sent, 10);
  b.add(dims(), kMonday + 9h, engagement_count::sent, 100);
  write(*db, b);

  engagement_query q;
  q.since = kMonday - 24h * 2;
  EXPECT_EQ(sent(total(*db, q)), 110u);
  q.since = kMonday + 9h + 30min;  // overlaps the 09:00 bucket
  EXPECT_EQ(sent(total(*db, q)), 100u);
  q.since = kMonday + 10h;
  EXPECT_TRUE(by(*db, {}, q).empty());
  q.since = {};
  q.until = kMonday;
  EXPECT_EQ(sent(total(*db, q)), 11u);
  q.company = "acme";  // the same with the company's key range
  EXPECT_EQ(sent(total(*db, q)), 11u);
}

TEST(engagement_cube, events_count_in_the_bucket_of_their_send) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  const sys_time sent_at = kMonday + 23h + 50min;
  b.add(dims(), sent_at, engagement_count::sent);
  write(*db, b);
  // Delivered the same evening, opened the next morning: counted on Monday.
  b.add(dims(), sent_at, engagement_count::delivered);
  b.add(dims(), sent_at, engagement_count::opened);
  write(*db, b);

  const auto per_day = by(*db, {dim::day});
  ASSERT_EQ(per_day.size(), 1u);
  const auto& monday = per_day.at("2026-11-23");
  EXPECT_EQ(sent(monday), 1u);
  EXPECT_EQ(monday[engagement_count::delivered], 1u);
  EXPECT_EQ(opened(monday), 1u);
  engagement_query q;
  q.since = kMonday + 24h;
  EXPECT_TRUE(by(*db, {}, q).empty());
}

TEST(engagement_cube, open_rate_is_opens_over_sends_with_the_counts_behind_it) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  b.add(dims("acme", "carrier-a", channel::rcs), kMonday, engagement_count::sent, 4);
  b.add(dims("acme", "carrier-a", channel::rcs), kMonday, engagement_count::opened, 1);
  b.add(dims("acme", "carrier-a", channel::sms), kMonday, engagement_count::sent, 10);
  b.add(dims("acme", "carrier-a", channel::sms), kMonday, engagement_count::opened, 5);
  b.add(dims("acme", "carrier-a", channel::email), kMonday, engagement_count::failed, 2);
  write(*db, b);
  const auto per_channel = by(*db, {dim::channel});
  EXPECT_DOUBLE_EQ(per_channel.at("rcs").open_rate().value(), 0.25);
  EXPECT_DOUBLE_EQ(per_channel.at("sms").open_rate().value(), 0.5);
  EXPECT_FALSE(per_channel.at("email").open_rate().has_value());  // nothing sent
  EXPECT_EQ(per_channel.at("email")[engagement_count::failed], 2u);
  EXPECT_DOUBLE_EQ(total(*db).open_rate().value(), 6.0 / 14.0);
}

TEST(engagement_cube, roll_up_keeps_totals_and_bounds_rows) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  const sys_time first = kMonday - 24h * 30;
  for (int h = 0; h < 30 * 24; ++h) {
    b.add(dims(), first + 1h * h, engagement_count::sent, 2);
    b.add(dims(), first + 1h * h, engagement_count::opened, 1);
  }
  b.add_location("acme", "carrier-a", channel::sms, "jp", first, engagement_count::opened, 3);
  write(*db, b);
  ASSERT_EQ(stored_rows(*db), 30u * 24 + 1);
  const auto before = total(*db);
  const auto days_before = by(*db, {dim::day});
  const auto location_before = by(*db, {dim::location});

  const auto r = roll_up_all(*db, kMonday);
  EXPECT_EQ(r.rows_read, 23u * 24 + 1);
  EXPECT_EQ(r.rows_written, 23u + 1);
  // 23 whole days older than a week are daily rows, the last 7 days hourly.
  EXPECT_EQ(stored_rows(*db), 23u + 7 * 24 + 1);
  EXPECT_EQ(total(*db).v, before.v);
  const auto days_after = by(*db, {dim::day});
  ASSERT_EQ(days_after.size(), 30u);
  for (const auto& [day, c] : days_before) EXPECT_EQ(days_after.at(day).v, c.v) << day;
  EXPECT_EQ(by(*db, {dim::location}).at("jp").v, location_before.at("jp").v);

  // Coarser for old data: since 10 days ago, 3 daily rows and 7 hourly days.
  engagement_query q;
  q.since = kMonday - 24h * 10 + 5h;
  EXPECT_EQ(sent(total(*db, q)), 10u * 48);

  // Idempotent.
  const auto again = roll_up_all(*db, kMonday);
  EXPECT_EQ(again.rows_read, 0u);
  EXPECT_EQ(total(*db).v, before.v);
}

TEST(engagement_cube, roll_up_in_small_steps_reaches_the_same_result) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  const sys_time first = kMonday - 24h * 30;
  for (int h = 0; h < 30 * 24; ++h) {
    b.add(dims("acme"), first + 1h * h, engagement_count::sent, 1);
    b.add(dims("beta"), first + 1h * h, engagement_count::sent, 1);
  }
  write(*db, b);
  int calls = 0;
  const auto r = roll_up_all(*db, kMonday, 100, &calls);
  EXPECT_EQ(r.rows_read, 2u * 23 * 24);
  EXPECT_GE(calls, 2 * 23 * 24 / 100);
  EXPECT_EQ(stored_rows(*db), 2u * (23 + 7 * 24));
  const auto per_company = by(*db, {dim::company});
  EXPECT_EQ(sent(per_company.at("acme")), 30u * 24);
  EXPECT_EQ(sent(per_company.at("beta")), 30u * 24);
  const auto per_day = by(*db, {dim::company, dim::day});
  EXPECT_EQ(per_day.size(), 60u);
  for (const auto& [k, c] : per_day) EXPECT_EQ(sent(c), 24u) << k;
}

TEST(engagement_cube, a_late_event_after_roll_up_is_folded_by_the_next_roll_up) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  const sys_time sent_at = kMonday - 24h * 10 + 14h;
  b.add(dims(), sent_at, engagement_count::sent, 5);
  write(*db, b);
  roll_up_all(*db, kMonday);
  ASSERT_EQ(stored_rows(*db), 1u);  // the daily row

  // An open of one of those messages arrives now, counted in its send's hour.
  b.add(dims(), sent_at, engagement_count::opened);
  write(*db, b);
  EXPECT_EQ(stored_rows(*db), 2u);  // the daily row and the hourly row again
  auto per_day = by(*db, {dim::day});
  EXPECT_EQ(sent(per_day.at("2026-11-13")), 5u);
  EXPECT_EQ(opened(per_day.at("2026-11-13")), 1u);

  const auto r = roll_up_all(*db, kMonday);
  EXPECT_EQ(r.rows_read, 1u);
  EXPECT_EQ(stored_rows(*db), 1u);
  per_day = by(*db, {dim::day});
  ASSERT_EQ(per_day.size(), 1u);
  EXPECT_EQ(sent(per_day.at("2026-11-13")), 5u);
  EXPECT_EQ(opened(per_day.at("2026-11-13")), 1u);
}

TEST(engagement_cube, old_hours_and_days_fold_into_months) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  b.add(dims(), kMonday - 24h * 200, engagement_count::sent, 1);  // 2026-05-07
  b.add(dims(), kMonday - 24h * 199, engagement_count::sent, 2);  // 2026-05-08
  b.add(dims(), kMonday - 24h * 2, engagement_count::sent, 4);
  write(*db, b);
  roll_up_all(*db, kMonday);
  EXPECT_EQ(stored_rows(*db), 2u);
  using m = std::map<std::string, uint64_t>;
  m per_day;
  for (const auto& [k, c] : by(*db, {dim::day})) per_day[k] = sent(c);
  EXPECT_EQ(per_day, (m{{"2026-05", 3}, {"2026-11-21", 4}}));

  // Days rolled earlier fold into their month once it is old enough.
  temp_dir dir2;
  auto db2 = open_store(dir2.path());
  b.add(dims(), kMonday - 24h * 20, engagement_count::sent, 7);  // 2026-11-03
  write(*db2, b);
  roll_up_all(*db2, kMonday);
  EXPECT_EQ(by(*db2, {dim::day}).count("2026-11-03"), 1u);
  roll_up_all(*db2, kMonday + 24h * 120);
  const auto later = by(*db2, {dim::day});
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(sent(later.at("2026-11")), 7u);
}

TEST(engagement_cube, opens_by_location_are_their_own_rows) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  b.add(dims(), kMonday, engagement_count::sent, 10);
  b.add(dims(), kMonday, engagement_count::opened, 3);
  b.add_location("acme", "carrier-a", channel::sms, "jp", kMonday, engagement_count::opened, 2);
  b.add_location("acme", "carrier-a", channel::sms, "us", kMonday, engagement_count::opened, 1);
  b.add_location("acme", "carrier-a", channel::sms, "jp", kMonday, engagement_count::clicked, 1);
  b.add_location("beta", "carrier-a", channel::rcs, "jp", kMonday, engagement_count::opened, 5);
  write(*db, b);

  engagement_query q;
  q.company = "acme";
  const auto per_location = by(*db, {dim::location}, q);
  ASSERT_EQ(per_location.size(), 2u);
  EXPECT_EQ(opened(per_location.at("jp")), 2u);
  EXPECT_EQ(per_location.at("jp")[engagement_count::clicked], 1u);
  EXPECT_EQ(opened(per_location.at("us")), 1u);
  EXPECT_EQ(sent(per_location.at("jp")), 0u);  // sends are not known per location
  EXPECT_FALSE(per_location.at("jp").open_rate().has_value());
  EXPECT_EQ(opened(by(*db, {dim::channel, dim::location}).at("rcs|jp")), 5u);

  // Location rows are not part of the dimension totals.
  EXPECT_EQ(opened(total(*db)), 3u);
  // And carry no user attributes.
  q.group_by = {dim::location, dim::gender};
  auto bad = query_engagement(*db, q);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
}

TEST(engagement_cube, values_holding_separators_stay_in_their_field) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  engagement_dims d = dims("ac\x1fme", "carrier\x1f");
  d.gender = "\x1f";
  d.region = "to\x1f\x1fkyo\x01";
  d.occupation = std::string_view("\xff\x80", 2);
  b.add(d, kMonday, engagement_count::sent, 1);
  engagement_dims e = dims("ac", "me");  // would collide if fields were only joined
  b.add(e, kMonday, engagement_count::sent, 2);
  write(*db, b);
  const auto rows =
      by(*db, {dim::company, dim::carrier, dim::gender, dim::region, dim::occupation});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(sent(rows.at("ac\x1fme|carrier\x1f|\x1f|to\x1f\x1fkyo\x01|\xff\x80")), 1u);
  EXPECT_EQ(sent(rows.at("ac|me|f|tokyo|engineer")), 2u);
  engagement_query q;
  q.company = "ac";
  EXPECT_EQ(sent(total(*db, q)), 2u);
}

TEST(engagement_cube, malformed_rows_are_skipped_not_fatal) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  b.add(dims("acme", "carrier-a"), kMonday, engagement_count::sent, 1);
  b.add(dims("acme", "carrier-b"), kMonday, engagement_count::sent, 1);
  b.add(dims("acme", "carrier-c"), kMonday, engagement_count::sent, 1);
  write(*db, b);
  auto stored = stored_keys(*db);
  ASSERT_EQ(stored.size(), 3u);
  rocksdb::WriteBatch wb;
  auto* h = db->handle(cf::engagement);
  wb.Put(h, stored[0], "bad");  // not whole uint64s
  std::string longer;
  for (uint64_t v : {5, 0, 1, 0, 0, 99}) longer += encode_counter(v);  // a newer relay's count
  wb.Put(h, stored[1], longer);
  wb.Put(h, stored[2], encode_counter(2));  // an older relay's shorter array
  wb.Put(h, "z", encode_counter(1));
  wb.Put(h,
         std::string("c\x09"
                     "acme",
                     6),
         encode_counter(1));  // company runs past the key
  wb.Put(h, stored[0].substr(0, stored[0].size() - 3), encode_counter(1));  // truncated dims
  std::string bad_channel = stored[0];
  // 'c', "\x04acme", 'h', bucket (4), "\x09carrier-a", then the channel.
  bad_channel[1 + 5 + 1 + 4 + 10] = 9;  // no such channel
  wb.Put(h, bad_channel, encode_counter(1));
  ASSERT_TRUE(db->write(wb).ok());

  const auto per_carrier = by(*db, {dim::carrier});
  ASSERT_EQ(per_carrier.size(), 2u);
  EXPECT_EQ(sent(per_carrier.at("carrier-b")), 5u);
  EXPECT_EQ(opened(per_carrier.at("carrier-b")), 1u);
  EXPECT_EQ(sent(per_carrier.at("carrier-c")), 2u);
  size_t scanned = 0;
  ASSERT_TRUE(scan_engagement(*db, {}, [&](const engagement_dims&, const engagement_counts&) {
                ++scanned;
              }).ok());
  EXPECT_EQ(scanned, 2u);

  // Roll-up folds what it can read and keeps the newer relay's extra count.
  roll_up_all(*db, kMonday + 24h * 30);
  EXPECT_EQ(sent(total(*db)), 7u);
  std::string value;
  for (const auto& k : stored_keys(*db)) {
    if (k.find("carrier-b") == std::string::npos) continue;
    ASSERT_TRUE(db->get(cf::engagement, k, &value).ok());
    EXPECT_EQ(value, longer);
  }
}

TEST(engagement_cube, buckets_past_any_calendar_print_no_day) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  b.add(dims(), kMonday, engagement_count::sent);
  write(*db, b);
  const std::string key = stored_keys(*db).at(0);
  rocksdb::WriteBatch wb;
  for (char level : {'h', 'd', 'm'}) {
    std::string far = key;
    far[1 + 5] = level;  // after 'c' and "\x04acme"
    for (int i = 0; i < 4; ++i) far[1 + 5 + 1 + i] = '\xff';
    wb.Merge(db->handle(cf::engagement), far, encode_counter(1));
  }
  ASSERT_TRUE(db->write(wb).ok());
  const auto per_day = by(*db, {dim::day});
  EXPECT_EQ(sent(per_day.at("2026-11-23")), 1u);
  // The hour and day rows print no day; the month row starts after year
  // 9999, so no time range holds it.
  EXPECT_EQ(sent(per_day.at("")), 2u);
  roll_up_all(*db, kMonday + 24h * 365);
  EXPECT_EQ(sent(total(*db)), 3u);
}

TEST(engagement_cube, scan_gives_every_dimension_row_decoded) {
  temp_dir dir;
  auto db = open_store(dir.path());
  engagement_batch b;
  engagement_dims d = dims("acme", "carrier-a", channel::rcs);
  b.add(d, kMonday + 9h, engagement_count::sent, 3);
  b.add(dims("acme", "carrier-b"), kMonday - 24h * 3, engagement_count::sent, 1);
  b.add_location("acme", "carrier-a", channel::rcs, "jp", kMonday, engagement_count::opened);
  write(*db, b);
  std::vector<std::pair<std::string, uint64_t>> seen;
  ASSERT_TRUE(
      scan_engagement(*db, kMonday, [&](const engagement_dims& got, const engagement_counts& c) {
        EXPECT_EQ(got.company, "acme");
        EXPECT_EQ(got.ch, channel::rcs);
        EXPECT_EQ(got.gender, "f");
        EXPECT_EQ(got.age_band, 2);
        EXPECT_EQ(got.region, "tokyo");
        EXPECT_EQ(got.occupation, "engineer");
        EXPECT_EQ(got.local_hour, 9);
        EXPECT_EQ(got.weekday, 1);
        seen.emplace_back(std::string(got.carrier), sent(c));
      }).ok());
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, uint64_t>>{{"carrier-a", 3}}));
}

TEST(engagement_cube, dimension_names_round_trip) {
  for (int i = 0; i <= static_cast<int>(dim::day); ++i) {
    const auto d = static_cast<dim>(i);
    EXPECT_EQ(parse_engagement_dimension(to_string(d)), d);
  }
  EXPECT_EQ(parse_engagement_dimension("age_band"), dim::age_band);
  EXPECT_FALSE(parse_engagement_dimension("age").has_value());
}

}  // namespace
}  // namespace relay
