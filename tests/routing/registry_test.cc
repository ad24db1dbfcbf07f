#include "routing/registry.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "routing/directory.h"
#include "routing/postings.h"
#include "tests/routing/registry_test_util.h"

namespace relay {
namespace {

using namespace std::chrono_literals;
using testing::open_store;
using testing::temp_dir;
using testing::to_vector;

registry_record rec(std::string_view json) {
  auto r = parse_registry_record(json);
  EXPECT_TRUE(r.ok()) << json << ": " << (r.ok() ? "" : r.err().message);
  return r.ok() ? std::move(*r) : registry_record{};
}

class registry_test : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = open_store(dir_.path());
    ASSERT_TRUE(db_);
  }

  // Stages all records into one writer and writes one batch.
  void apply(std::initializer_list<std::string_view> records) {
    registry_writer w(*db_, clock_);
    for (auto json : records) {
      auto r = w.stage(rec(json));
      ASSERT_TRUE(r.ok()) << json << ": " << r.err().message;
    }
    rocksdb::WriteBatch b;
    w.flush_into(b);
    EXPECT_EQ(w.staged_records(), 0u);
    ASSERT_TRUE(db_->write(b).ok());
  }

  std::vector<uint32_t> posting(const std::string& key) {
    std::string v;
    auto r = db_->get(cf::postings, key, &v);
    if (!r.ok()) {
      EXPECT_EQ(r.err().code, errc::not_found);
      return {};
    }
    auto p = decode_posting(v);
    EXPECT_TRUE(p.ok());
    return p.ok() ? to_vector(*p) : std::vector<uint32_t>{};
  }

  uint32_t ordinal(std::string_view user) {
    auto o = lookup_ordinal(*db_, user);
    EXPECT_TRUE(o.ok()) << user;
    return o.ok() ? *o : 0;
  }

  bool has(cf c, const std::string& key) {
    std::string v;
    return db_->get(c, key, &v).ok();
  }

  std::string dir_key(uint32_t o) {
    std::string k;
    put_be32(k, o);
    return k;
  }

  // Every key and (merged) value of every column family.
  std::map<std::string, std::string> dump() {
    std::map<std::string, std::string> out;
    for (int i = 0; i < kColumnFamilyCount; ++i) {
      std::unique_ptr<rocksdb::Iterator> it(
          db_->db().NewIterator(rocksdb::ReadOptions(), db_->handle(static_cast<cf>(i))));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        std::string value = it->value().ToString();
        if (static_cast<cf>(i) == cf::postings) {
          // Compare sets, not serialisations (run optimisation may differ);
          // an empty posting is the same as none (compaction drops it).
          auto p = decode_posting(value);
          EXPECT_TRUE(p.ok());
          if (p.ok() && p->isEmpty()) continue;
          value.clear();
          for (uint32_t o : to_vector(*p)) value += std::to_string(o) + ",";
        }
        out[std::string(cf_name(static_cast<cf>(i))) + "/" + it->key().ToString()] = value;
      }
    }
    return out;
  }

  // Keys (in any CF but postings and meta) that mention the user id.
  std::vector<std::string> keys_mentioning(const std::string& user) {
    std::vector<std::string> out;
    for (const auto& [k, v] : dump()) {
      if (k.find(user) != std::string::npos) out.push_back(k);
    }
    return out;
  }

  temp_dir dir_;
  std::unique_ptr<store> db_;
  manual_clock clock_{sys_time(1'700'000'000'000ms)};
};

constexpr std::string_view kUpsertU1 = R"({"op":"upsert_user","user_id":"u1",
  "profile":{"msisdn":"+819012345678","email":"u1@example.jp","gender":"f","birth_year":1996,
             "region":"tokyo","occupation":"engineer","tz":"Asia/Tokyo","locale":"ja-JP"},
  "carriers":[{"carrier_id":"carrier-a","primary":true,"channels":["sms","email"],"addresses":{"sms":"+819011112222"}},
              {"carrier_id":"carrier-b","channels":["rcs"]}]})";

TEST_F(registry_test, upsert_stores_profile_carriers_and_directory_entry) {
  apply({kUpsertU1});
  auto u = get_user(*db_, "u1");
  ASSERT_TRUE(u.ok()) << u.err().message;
  EXPECT_EQ(u->user_id, "u1");
  EXPECT_EQ(u->ordinal, 1u);
  EXPECT_EQ(u->user_profile.msisdn, "+819012345678");
  EXPECT_EQ(u->user_profile.birth_year, 1996);
  EXPECT_EQ(u->user_profile.locale, "ja-JP");
  ASSERT_EQ(u->carriers.size(), 2u);
  EXPECT_EQ(u->carriers[0].carrier_id, "carrier-a");
  EXPECT_TRUE(u->carriers[0].primary);
  EXPECT_EQ(u->carriers[0].address[int(channel::sms)], "+819011112222");
  EXPECT_EQ(u->carriers[1].carrier_id, "carrier-b");
  EXPECT_EQ(u->carriers[1].channels, channel_bit(channel::rcs));
  EXPECT_TRUE(u->registrations.empty());

  directory_reader reader(*db_);
  const uint32_t want[] = {1};
  auto got = reader.read(want);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  const recipient& r = (*got)[0];
  EXPECT_EQ(r.user_id, "u1");
  EXPECT_EQ(r.tz, "Asia/Tokyo");
  ASSERT_EQ(r.carrier_count, 2);
  EXPECT_EQ(r.carriers[0].address[int(channel::sms)], "+819011112222");
  EXPECT_EQ(r.carriers[0].address[int(channel::email)], "u1@example.jp");
  EXPECT_EQ(r.carriers[1].address[int(channel::rcs)], "+819012345678");

  EXPECT_EQ(posting(attribute_posting_key("gender", "f")), std::vector<uint32_t>{1});
  EXPECT_EQ(posting(attribute_posting_key("region", "tokyo")), std::vector<uint32_t>{1});
  EXPECT_EQ(posting(attribute_posting_key("occupation", "engineer")), std::vector<uint32_t>{1});
  EXPECT_EQ(posting(attribute_posting_key("birth_year", "1996")), std::vector<uint32_t>{1});
  EXPECT_EQ(posting(attribute_posting_key("locale", "ja-JP")), std::vector<uint32_t>{1});
}

TEST_F(registry_test, carrier_order_survives_storage) {
  apply(
      {R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"zeta"},{"carrier_id":"alpha","primary":true}]})"});
  auto u = get_user(*db_, "u1");
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->carriers.size(), 2u);
  EXPECT_EQ(u->carriers[0].carrier_id, "zeta");
  EXPECT_FALSE(u->carriers[0].primary);
  EXPECT_EQ(u->carriers[1].carrier_id, "alpha");
  EXPECT_TRUE(u->carriers[1].primary);
}

TEST_F(registry_test, ordinals_are_dense_from_one_and_never_reused) {
  apply({R"({"op":"upsert_user","user_id":"a","profile":{}})",
         R"({"op":"register","user_id":"b","company_id":"acme"})"});
  apply({R"({"op":"upsert_user","user_id":"c","profile":{}})"});
  EXPECT_EQ(ordinal("a"), 1u);
  EXPECT_EQ(ordinal("b"), 2u);
  EXPECT_EQ(ordinal("c"), 3u);
  apply({R"({"op":"delete_user","user_id":"c"})"});
  EXPECT_EQ(lookup_ordinal(*db_, "c").err().code, errc::not_found);
  apply({R"({"op":"upsert_user","user_id":"c","profile":{}})",
         R"({"op":"upsert_user","user_id":"d","profile":{}})"});
  EXPECT_EQ(ordinal("c"), 4u);
  EXPECT_EQ(ordinal("d"), 5u);
  // A reopened database continues the sequence.
  db_.reset();
  db_ = open_store(dir_.path());
  ASSERT_TRUE(db_);
  apply({R"({"op":"upsert_user","user_id":"e","profile":{}})"});
  EXPECT_EQ(ordinal("e"), 6u);
}

TEST_F(registry_test, register_writes_both_indexes_and_the_posting) {
  apply(
      {kUpsertU1,
       R"({"op":"register","user_id":"u1","company_id":"acme","service_id":"gold","source":"web"})"});
  std::string v;
  ASSERT_TRUE(db_->get(cf::registrations, std::string("acme\0gold\0u1", 12), &v).ok());
  ASSERT_EQ(v.size(), 8u + 3u);
  EXPECT_EQ(get_be64(v.data()), 1'700'000'000'000u);
  EXPECT_EQ(v.substr(8), "web");
  EXPECT_TRUE(has(cf::user_companies, std::string("u1\0acme\0gold", 12)));
  EXPECT_EQ(posting(registration_posting_key("acme", "gold")), std::vector<uint32_t>{1});
  auto u = get_user(*db_, "u1");
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->registrations.size(), 1u);
  EXPECT_EQ(u->registrations[0].company_id, "acme");
  EXPECT_EQ(u->registrations[0].service_id, "gold");
}

TEST_F(registry_test, register_of_a_user_never_upserted_creates_an_empty_user) {
  apply({R"({"op":"register","user_id":"u9","company_id":"acme"})"});
  auto u = get_user(*db_, "u9");
  ASSERT_TRUE(u.ok()) << u.err().message;
  EXPECT_EQ(u->ordinal, 1u);
  EXPECT_EQ(u->user_profile.msisdn, "");
  EXPECT_TRUE(u->carriers.empty());
  ASSERT_EQ(u->registrations.size(), 1u);
  EXPECT_EQ(u->registrations[0].service_id, "");
  EXPECT_EQ(posting(registration_posting_key("acme", "")), std::vector<uint32_t>{1});
  EXPECT_TRUE(has(cf::directory, dir_key(1)));
}

TEST_F(registry_test, registering_again_keeps_the_first_registration_time) {
  apply({R"({"op":"register","user_id":"u1","company_id":"acme","source":"web"})"});
  clock_.advance(1h);
  apply({R"({"op":"register","user_id":"u1","company_id":"acme","source":"shop"})"});
  std::string v;
  ASSERT_TRUE(db_->get(cf::registrations, std::string("acme\0\0u1", 8), &v).ok());
  EXPECT_EQ(get_be64(v.data()), 1'700'000'000'000u);
  EXPECT_EQ(v.substr(8), "web");
}

TEST_F(registry_test, unregister_removes_registration_and_posting) {
  apply({kUpsertU1, R"({"op":"register","user_id":"u1","company_id":"acme","service_id":"gold"})",
         R"({"op":"register","user_id":"u1","company_id":"acme","service_id":"silver"})"});
  apply({R"({"op":"unregister","user_id":"u1","company_id":"acme","service_id":"gold"})"});
  EXPECT_FALSE(has(cf::registrations, std::string("acme\0gold\0u1", 12)));
  EXPECT_FALSE(has(cf::user_companies, std::string("u1\0acme\0gold", 12)));
  EXPECT_TRUE(posting(registration_posting_key("acme", "gold")).empty());
  EXPECT_EQ(posting(registration_posting_key("acme", "silver")), std::vector<uint32_t>{1});
  auto u = get_user(*db_, "u1");
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->registrations.size(), 1u);
  EXPECT_EQ(u->registrations[0].service_id, "silver");
}

TEST_F(registry_test, unregister_and_delete_of_unknown_users_are_no_ops) {
  registry_writer w(*db_, clock_);
  ASSERT_TRUE(w.stage(rec(R"({"op":"unregister","user_id":"ghost","company_id":"acme"})")).ok());
  ASSERT_TRUE(w.stage(rec(R"({"op":"delete_user","user_id":"ghost"})")).ok());
  EXPECT_EQ(w.staged_records(), 2u);
  rocksdb::WriteBatch b;
  w.flush_into(b);
  EXPECT_EQ(b.Count(), 0u);
  EXPECT_EQ(get_user(*db_, "ghost").err().code, errc::not_found);
}

TEST_F(registry_test, delete_user_removes_user_from_every_index) {
  apply({kUpsertU1, R"({"op":"register","user_id":"u1","company_id":"acme","service_id":"gold"})",
         R"({"op":"register","user_id":"u1","company_id":"globex"})",
         R"({"op":"upsert_user","user_id":"u2","profile":{"gender":"f","region":"tokyo"}})",
         R"({"op":"register","user_id":"u2","company_id":"acme","service_id":"gold"})"});
  ASSERT_FALSE(keys_mentioning("u1").empty());
  apply({R"({"op":"delete_user","user_id":"u1"})"});

  EXPECT_EQ(keys_mentioning("u1"), std::vector<std::string>{});
  EXPECT_EQ(get_user(*db_, "u1").err().code, errc::not_found);
  EXPECT_FALSE(has(cf::directory, dir_key(1)));
  EXPECT_TRUE(has(cf::directory, dir_key(2)));
  EXPECT_EQ(posting(registration_posting_key("acme", "gold")), std::vector<uint32_t>{2});
  EXPECT_TRUE(posting(registration_posting_key("globex", "")).empty());
  EXPECT_EQ(posting(attribute_posting_key("gender", "f")), std::vector<uint32_t>{2});
  EXPECT_EQ(posting(attribute_posting_key("region", "tokyo")), std::vector<uint32_t>{2});
  EXPECT_TRUE(posting(attribute_posting_key("birth_year", "1996")).empty());
  EXPECT_TRUE(posting(attribute_posting_key("occupation", "engineer")).empty());
  // No posting anywhere still holds ordinal 1.
  for (const auto& [k, v] : dump()) {
    if (k.rfind("postings/", 0) == 0) {
      EXPECT_EQ(("," + v).find(",1,"), std::string::npos) << k;
    }
  }
  auto u2 = get_user(*db_, "u2");
  ASSERT_TRUE(u2.ok());
  EXPECT_EQ(u2->registrations.size(), 1u);
}

TEST_F(registry_test, upsert_moves_user_between_attribute_postings) {
  apply({kUpsertU1});
  apply(
      {R"({"op":"upsert_user","user_id":"u1","profile":{"gender":"f","birth_year":1997,"region":"osaka","locale":"ja-JP"}})"});
  EXPECT_TRUE(posting(attribute_posting_key("region", "tokyo")).empty());
  EXPECT_EQ(posting(attribute_posting_key("region", "osaka")), std::vector<uint32_t>{1});
  EXPECT_TRUE(posting(attribute_posting_key("birth_year", "1996")).empty());
  EXPECT_EQ(posting(attribute_posting_key("birth_year", "1997")), std::vector<uint32_t>{1});
  EXPECT_TRUE(posting(attribute_posting_key("occupation", "engineer")).empty());       // dropped
  EXPECT_EQ(posting(attribute_posting_key("gender", "f")), std::vector<uint32_t>{1});  // kept
  auto u = get_user(*db_, "u1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->user_profile.msisdn, "");  // the profile is replaced, not merged
  EXPECT_EQ(u->carriers.size(), 2u);      // carriers absent: kept
}

TEST_F(registry_test, upsert_with_carriers_replaces_them) {
  apply({kUpsertU1});
  apply(
      {R"({"op":"upsert_user","user_id":"u1","profile":{"msisdn":"+8170"},"carriers":[{"carrier_id":"carrier-c"}]})"});
  auto u = get_user(*db_, "u1");
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->carriers.size(), 1u);
  EXPECT_EQ(u->carriers[0].carrier_id, "carrier-c");
  EXPECT_FALSE(has(cf::user_carriers, std::string("u1\0carrier-a", 12)));
  EXPECT_FALSE(has(cf::user_carriers, std::string("u1\0carrier-b", 12)));
  directory_reader reader(*db_);
  const uint32_t want[] = {1};
  auto got = reader.read(want);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ((*got)[0].carrier_count, 1);
  EXPECT_EQ((*got)[0].carriers[0].carrier_id, "carrier-c");
  EXPECT_EQ((*got)[0].carriers[0].address[int(channel::sms)], "+8170");
}

TEST_F(registry_test, records_in_one_batch_see_each_other) {
  apply({R"({"op":"upsert_user","user_id":"u1","profile":{"region":"tokyo"}})",
         R"({"op":"register","user_id":"u1","company_id":"acme"})",
         R"({"op":"upsert_user","user_id":"u1","profile":{"region":"osaka"}})",
         R"({"op":"register","user_id":"u2","company_id":"acme"})",
         R"({"op":"unregister","user_id":"u2","company_id":"acme"})",
         R"({"op":"upsert_user","user_id":"u3","profile":{}})",
         R"({"op":"delete_user","user_id":"u3"})"});
  EXPECT_EQ(ordinal("u1"), 1u);
  EXPECT_EQ(posting(registration_posting_key("acme", "")), std::vector<uint32_t>{1});
  EXPECT_TRUE(posting(attribute_posting_key("region", "tokyo")).empty());
  EXPECT_EQ(posting(attribute_posting_key("region", "osaka")), std::vector<uint32_t>{1});
  auto u2 = get_user(*db_, "u2");
  ASSERT_TRUE(u2.ok());
  EXPECT_TRUE(u2->registrations.empty());
  EXPECT_EQ(get_user(*db_, "u3").err().code, errc::not_found);
  EXPECT_FALSE(has(cf::directory, dir_key(3)));
  // u3 took ordinal 3 while it existed; the next user does not reuse it.
  apply({R"({"op":"upsert_user","user_id":"u4","profile":{}})"});
  EXPECT_EQ(ordinal("u4"), 4u);
}

TEST_F(registry_test, user_removed_and_re_added_in_one_batch_stays_present) {
  apply({R"({"op":"upsert_user","user_id":"u1","profile":{"region":"tokyo"}})",
         R"({"op":"register","user_id":"u1","company_id":"acme"})"});
  apply({R"({"op":"unregister","user_id":"u1","company_id":"acme"})",
         R"({"op":"register","user_id":"u1","company_id":"acme"})",
         R"({"op":"upsert_user","user_id":"u1","profile":{"region":"osaka"}})",
         R"({"op":"upsert_user","user_id":"u1","profile":{"region":"tokyo"}})"});
  EXPECT_EQ(posting(registration_posting_key("acme", "")), std::vector<uint32_t>{1});
  EXPECT_EQ(posting(attribute_posting_key("region", "tokyo")), std::vector<uint32_t>{1});
  EXPECT_TRUE(posting(attribute_posting_key("region", "osaka")).empty());
  EXPECT_TRUE(has(cf::registrations, std::string("acme\0\0u1", 8)));
}

TEST_F(registry_test, deleted_and_recreated_in_one_batch_gets_a_new_ordinal) {
  apply({kUpsertU1, R"({"op":"register","user_id":"u1","company_id":"acme"})"});
  apply({R"({"op":"delete_user","user_id":"u1"})",
         R"({"op":"upsert_user","user_id":"u1","profile":{"region":"tokyo"}})",
         R"({"op":"register","user_id":"u1","company_id":"acme"})"});
  EXPECT_EQ(ordinal("u1"), 2u);
  EXPECT_FALSE(has(cf::directory, dir_key(1)));
  EXPECT_TRUE(has(cf::directory, dir_key(2)));
  EXPECT_EQ(posting(registration_posting_key("acme", "")), std::vector<uint32_t>{2});
  EXPECT_EQ(posting(attribute_posting_key("region", "tokyo")), std::vector<uint32_t>{2});
  auto u = get_user(*db_, "u1");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->carriers.empty());  // the old user's carriers went with it
  EXPECT_FALSE(has(cf::user_carriers, std::string("u1\0carrier-a", 12)));
}

// Counts the Merge records per key in a batch.
struct merge_counter : rocksdb::WriteBatch::Handler {
  std::map<std::string, int> merges;
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    ++merges[key.ToString()];
    return rocksdb::Status::OK();
  }
  rocksdb::Status PutCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteCF(uint32_t, const rocksdb::Slice&) override {
    return rocksdb::Status::OK();
  }
};

TEST_F(registry_test, one_merge_per_posting_key_per_batch) {
  apply({R"({"op":"upsert_user","user_id":"old","profile":{"region":"tokyo"}})"});
  registry_writer w(*db_, clock_);
  for (int i = 0; i < 50; ++i) {
    const std::string id = "u" + std::to_string(i);
    ASSERT_TRUE(w.stage(rec(R"({"op":"upsert_user","user_id":")" + id +
                            R"(","profile":{"region":"tokyo"}})"))
                    .ok());
    ASSERT_TRUE(
        w.stage(rec(R"({"op":"register","user_id":")" + id + R"(","company_id":"acme"})")).ok());
  }
  ASSERT_TRUE(
      w.stage(rec(R"({"op":"upsert_user","user_id":"old","profile":{"region":"osaka"}})")).ok());
  rocksdb::WriteBatch b;
  w.flush_into(b);
  merge_counter mc;
  ASSERT_TRUE(b.Iterate(&mc).ok());
  EXPECT_EQ(mc.merges.size(), 3u);  // region tokyo (+50 and -old), region osaka, acme
  for (const auto& [k, n] : mc.merges) EXPECT_EQ(n, 1) << k;
  ASSERT_TRUE(db_->write(b).ok());
  EXPECT_EQ(posting(attribute_posting_key("region", "tokyo")).size(), 50u);
  EXPECT_EQ(posting(attribute_posting_key("region", "osaka")), std::vector<uint32_t>{1});
  EXPECT_EQ(posting(registration_posting_key("acme", "")).size(), 50u);
}

TEST_F(registry_test, applying_the_same_records_twice_leaves_the_same_state) {
  const std::initializer_list<std::string_view> records = {
      kUpsertU1,
      R"({"op":"register","user_id":"u1","company_id":"acme","service_id":"gold"})",
      R"({"op":"register","user_id":"u2","company_id":"acme"})",
      R"({"op":"upsert_user","user_id":"u3","profile":{"region":"kyoto"}})",
      R"({"op":"unregister","user_id":"u2","company_id":"acme"})",
      R"({"op":"delete_user","user_id":"u3"})"};
  apply(records);
  const auto once = dump();
  clock_.advance(5min);
  // Record by record, each its own batch, after the fact.
  for (auto r : records) {
    if (r.find("\"u3\"") != std::string_view::npos)
      continue;  // u3 re-created would get a new ordinal
    apply({r});
  }
  EXPECT_EQ(dump(), once);

  // An unchanged user writes nothing at all.
  registry_writer w(*db_, clock_);
  ASSERT_TRUE(w.stage(rec(kUpsertU1)).ok());
  ASSERT_TRUE(
      w.stage(rec(R"({"op":"register","user_id":"u1","company_id":"acme","service_id":"gold"})"))
          .ok());
  rocksdb::WriteBatch b;
  w.flush_into(b);
  EXPECT_EQ(b.Count(), 0u);
}

TEST_F(registry_test, a_record_that_fails_to_stage_leaves_nothing) {
  registry_writer w(*db_, clock_);
  registry_record bad = rec(R"({"op":"upsert_user","user_id":"u1","profile":{"region":"tokyo"}})");
  bad.carriers.emplace();
  for (int i = 0; i < 9; ++i) {
    carrier_link c;
    c.carrier_id = "c" + std::to_string(i);
    bad.carriers->push_back(c);
  }
  auto r = w.stage(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  registry_record empty_id;
  empty_id.kind = registry_record::op::delete_user;
  EXPECT_FALSE(w.stage(empty_id).ok());
  registry_record no_company = rec(R"({"op":"register","user_id":"u1","company_id":"x"})");
  no_company.company_id.clear();
  EXPECT_FALSE(w.stage(no_company).ok());
  EXPECT_EQ(w.staged_records(), 0u);
  rocksdb::WriteBatch b;
  w.flush_into(b);
  EXPECT_EQ(b.Count(), 0u);
}

TEST_F(registry_test, get_user_of_unknown_user_is_not_found) {
  auto u = get_user(*db_, "nobody");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.err().code, errc::not_found);
}

// ---- import_jsonl ---------------------------------------------------------

struct collected {
  std::vector<std::pair<size_t, std::string>> errors;
  static void on_error(size_t line, const error& e, void* ctx) {
    static_cast<collected*>(ctx)->errors.emplace_back(line, e.message);
  }
};

TEST_F(registry_test, import_reports_bad_lines_and_applies_the_rest) {
  const std::string path = (dir_ / "registry.jsonl");
  {
    std::ofstream f(path, std::ios::binary);
    f << R"({"op":"upsert_user","user_id":"u1","profile":{"region":"tokyo"}})"
      << "\n"  // 1
      << "\n"  // 2 blank
      << R"({"op":"register","user_id":"u1","company_id":"acme"})"
      << "\r\n"         // 3 CRLF
      << "{not json\n"  // 4
      << "   \t \n"     // 5 blank
      << R"({"op":"frobnicate","user_id":"u2"})"
      << "\n"  // 6
      << R"({"op":"upsert_user","user_id":"u2","profile":{}})"
      << "\n"  // 7
      << R"({"op":"register","user_id":"u2","company_id":"acme"})"
      << "\n"  // 8
      << R"({"op":"upsert_user","user_id":"u3","profile":{"birth_year":1800}})"
      << "\n"                                                        // 9
      << R"({"op":"register","user_id":"u3","company_id":"acme"})";  // 10, no newline
  }
  collected c;
  auto r = import_jsonl(*db_, clock_, path, &collected::on_error, &c, /*batch_records=*/2);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->applied, 5u);
  EXPECT_EQ(r->rejected, 3u);
  ASSERT_EQ(c.errors.size(), 3u);
  EXPECT_EQ(c.errors[0].first, 4u);
  EXPECT_EQ(c.errors[0].second.rfind("record: invalid JSON", 0), 0u);
  EXPECT_EQ(c.errors[1].first, 6u);
  EXPECT_EQ(c.errors[1].second, R"(op: unknown "frobnicate")");
  EXPECT_EQ(c.errors[2].first, 9u);
  EXPECT_EQ(c.errors[2].second, "profile.birth_year: out of range 1900..2100");
  EXPECT_EQ(posting(registration_posting_key("acme", "")), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(posting(attribute_posting_key("region", "tokyo")), std::vector<uint32_t>{1});
}

TEST_F(registry_test, import_of_a_missing_file_is_not_found) {
  auto r = import_jsonl(*db_, clock_, (dir_ / "missing.jsonl"), nullptr, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::not_found);
}

TEST_F(registry_test, import_streams_a_file_larger_than_its_buffer) {
  const std::string path = (dir_ / "big.jsonl");
  constexpr int kUsers = 40000;
  {
    std::ofstream f(path, std::ios::binary);
    const std::string pad(100, 'p');
    for (int i = 1; i <= kUsers; ++i) {
      f << R"({"op":"upsert_user","user_id":"user-)" << i << R"(","pad":")" << pad
        << R"(","profile":{"region":"r)" << (i % 7) << R"(","msisdn":"+81)" << i
        << R"("},"carriers":[{"carrier_id":"carrier-a"}]})"
        << "\n";
      if (i == 20000)
        f << R"({"op":"delete_user","user_id":")" << std::string(3u << 20, 'x') << "\"}\n";
      if (i == 30000)
        f << R"({"op":"delete_user","user_id":")" << std::string(10u << 20, 'x') << "\"}\n";
    }
  }
  collected c;
  auto r = import_jsonl(*db_, clock_, path, &collected::on_error, &c, 5000);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->applied, size_t(kUsers));
  ASSERT_EQ(c.errors.size(), 2u);
  EXPECT_EQ(c.errors[0].first, 20001u);
  EXPECT_EQ(c.errors[0].second, "record: larger than 1048576 bytes");
  EXPECT_EQ(c.errors[1].first, 30002u);
  EXPECT_EQ(c.errors[1].second, "record: line too long");  // skipped without holding it whole
  EXPECT_EQ(ordinal("user-1"), 1u);
  EXPECT_EQ(ordinal("user-40000"), 40000u);
  size_t total = 0;
  for (int region = 0; region < 7; ++region) {
    total += posting(attribute_posting_key("region", "r" + std::to_string(region))).size();
  }
  EXPECT_EQ(total, size_t(kUsers));
  directory_reader reader(*db_);
  std::vector<uint32_t> want(kUsers);
  for (int i = 0; i < kUsers; ++i) want[i] = i + 1;
  auto got = reader.read(want);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), size_t(kUsers));
  EXPECT_EQ((*got)[39999].user_id, "user-40000");
  EXPECT_EQ((*got)[39999].carriers[0].address[int(channel::sms)], "+8140000");
}

}  // namespace
}  // namespace relay
