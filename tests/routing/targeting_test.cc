#include "routing/targeting.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "routing/job.h"
#include "routing/registry.h"

namespace relay {
namespace {

using namespace std::chrono;

sys_time at(year_month_day d) { return time_point_cast<milliseconds>(sys_days(d)); }

// Records as the registry topic would carry them.
registry_record upsert(std::string user, std::string gender = "",
                       std::optional<int> birth_year = std::nullopt, std::string region = "") {
  registry_record r;
  r.kind = registry_record::op::upsert_user;
  r.user_id = std::move(user);
  r.user_profile.msisdn = "+819000000000";
  r.user_profile.gender = std::move(gender);
  r.user_profile.birth_year = birth_year;
  r.user_profile.region = std::move(region);
  return r;
}

registry_record with_company(registry_record::op kind, std::string user, std::string company,
                             std::string service) {
  registry_record r;
  r.kind = kind;
  r.user_id = std::move(user);
  r.company_id = std::move(company);
  r.service_id = std::move(service);
  return r;
}

registry_record reg(std::string user, std::string company, std::string service = "") {
  return with_company(registry_record::op::register_user, std::move(user), std::move(company),
                      std::move(service));
}

registry_record unreg(std::string user, std::string company, std::string service = "") {
  return with_company(registry_record::op::unregister_user, std::move(user), std::move(company),
                      std::move(service));
}

registry_record del(std::string user) {
  registry_record r;
  r.kind = registry_record::op::delete_user;
  r.user_id = std::move(user);
  return r;
}

// A job as a company would submit it (through the real parser).
job make_job(std::string_view to, std::string_view service = "") {
  std::string json = R"({"job_id":"j1","company_id":"acme",)";
  if (!service.empty()) json += R"("service_id":")" + std::string(service) + "\",";
  json += R"("to":)" + std::string(to) + R"(,"content":{"text":"hi"}})";
  auto r = parse_job(json, {});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
  return r.ok() ? std::move(*r) : job{};
}

class Targeting : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/relay-targeting-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store_options options;
    options.block_cache_bytes = 8u << 20;
    auto opened = store::open(dir_, options);
    ASSERT_TRUE(opened.ok()) << opened.err().message;
    db_ = std::move(*opened);
    writer_ = std::make_unique<registry_writer>(*db_, clock_);
  }

  void TearDown() override {
    writer_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void apply(std::initializer_list<registry_record> records) {
    apply(std::vector<registry_record>(records));
  }
  void apply(const std::vector<registry_record>& records) {
    for (const auto& r : records) ASSERT_TRUE(writer_->stage(r).ok()) << r.user_id;
    rocksdb::WriteBatch batch;
    writer_->flush_into(batch);
    ASSERT_TRUE(db_->write(batch).ok());
  }

  uint32_t ordinal(std::string_view user) {
    auto o = lookup_ordinal(*db_, user);
    EXPECT_TRUE(o.ok()) << user;
    return o.ok() ? *o : 0;
  }

  roaring::Roaring ordinals(std::initializer_list<std::string_view> users) {
    roaring::Roaring r;
    for (auto u : users) r.add(ordinal(u));
    return r;
  }

  target_resolution resolve(const job& j, sys_time now = at(2026y / 6 / 1)) {
    auto r = resolve_target(*db_, j, now);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    return r.ok() ? std::move(*r) : target_resolution{};
  }

  std::string dir_;
  manual_clock clock_{at(2026y / 1 / 1)};
  std::unique_ptr<store> db_;
  std::unique_ptr<registry_writer> writer_;
};

// ---- to.users ---------------------------------------------------------------------

TEST_F(Targeting, listed_user_not_registered_with_company_is_reported) {
  apply({upsert("u1"), upsert("u2"), reg("u1", "acme", "gold"), reg("u2", "globex", "gold")});
  const auto r = resolve(make_job(R"({"users":["u1","u2","nobody"]})"));
  EXPECT_EQ(r.recipients, ordinals({"u1"}));
  EXPECT_EQ(r.not_registered, (std::vector<std::string>{"u2", "nobody"}));
}

TEST_F(Targeting, service_id_narrows_listed_users) {
  apply({upsert("u1"), upsert("u2"), reg("u1", "acme", "gold"), reg("u2", "acme", "silver")});
  const auto gold = resolve(make_job(R"({"users":["u1","u2"]})", "gold"));
  EXPECT_EQ(gold.recipients, ordinals({"u1"}));
  EXPECT_EQ(gold.not_registered, (std::vector<std::string>{"u2"}));

  const auto any = resolve(make_job(R"({"users":["u1","u2"]})"));
  EXPECT_EQ(any.recipients, ordinals({"u1", "u2"}));
  EXPECT_TRUE(any.not_registered.empty());
}

TEST_F(Targeting, registration_with_default_service_counts_for_any_service) {
  apply({upsert("u1"), reg("u1", "acme", "")});
  const auto r = resolve(make_job(R"({"users":["u1"]})"));
  EXPECT_EQ(r.recipients, ordinals({"u1"}));
  EXPECT_TRUE(r.not_registered.empty());
}

TEST_F(Targeting, company_whose_name_extends_another_is_not_confused_with_it) {
  apply({upsert("u1"), upsert("u2"), reg("u1", "acme2", "gold"), reg("u2", "acme", "gold")});
  const auto listed = resolve(make_job(R"({"users":["u1","u2"]})"));
  EXPECT_EQ(listed.recipients, ordinals({"u2"}));
  EXPECT_EQ(listed.not_registered, (std::vector<std::string>{"u1"}));
  EXPECT_EQ(resolve(make_job(R"({"all":true})")).recipients, ordinals({"u2"}));
}

TEST_F(Targeting, long_user_lists_resolve_across_batches) {
  // More users than one MultiGet batch, every third not registered.
  std::vector<registry_record> records;
  std::string users = R"({"users":[)";
  for (int i = 0; i < 2500; ++i) {
    const std::string id = "user-" + std::to_string(i);
    records.push_back(upsert(id));
    if (i % 3 != 0) records.push_back(reg(id, "acme", "gold"));
    users += "\"" + id + "\",";
  }
  users.back() = ']';
  users += '}';
  apply(records);
  for (const std::string_view service : {"gold", ""}) {
    const auto r = resolve(make_job(users, service));
    EXPECT_EQ(r.recipients.cardinality(), 2500u - 834u) << service;
    ASSERT_EQ(r.not_registered.size(), 834u) << service;
    EXPECT_EQ(r.not_registered.front(), "user-0");
    EXPECT_EQ(r.not_registered.back(), "user-2499");
    EXPECT_TRUE(r.recipients.contains(ordinal("user-1")));
  }
}

// ---- to.all ------------------------------------------------------------------------

TEST_F(Targeting, all_covers_every_service_of_the_company_only) {
  apply({upsert("u1"), upsert("u2"), upsert("u3"), reg("u1", "acme", "gold"),
         reg("u2", "acme", "silver"), reg("u3", "globex", "gold")});
  const auto r = resolve(make_job(R"({"all":true})"));
  EXPECT_EQ(r.recipients, ordinals({"u1", "u2"}));
  EXPECT_TRUE(r.not_registered.empty());
}

TEST_F(Targeting, service_id_narrows_all) {
  apply({upsert("u1"), upsert("u2"), reg("u1", "acme", "gold"), reg("u2", "acme", "silver")});
  EXPECT_EQ(resolve(make_job(R"({"all":true})", "gold")).recipients, ordinals({"u1"}));
  EXPECT_EQ(resolve(make_job(R"({"all":true})", "silver")).recipients, ordinals({"u2"}));
  EXPECT_TRUE(resolve(make_job(R"({"all":true})", "bronze")).recipients.isEmpty());
}

TEST_F(Targeting, company_without_registrations_targets_nobody) {
  apply({upsert("u1"), reg("u1", "globex")});
  EXPECT_TRUE(resolve(make_job(R"({"all":true})")).recipients.isEmpty());
  EXPECT_TRUE(resolve(make_job(R"({"where":{"gender":"f"}})")).recipients.isEmpty());
}

TEST_F(Targeting, unregistered_user_leaves_broadcast) {
  apply({upsert("u1"), upsert("u2"), reg("u1", "acme", "gold"), reg("u2", "acme", "gold")});
  apply({unreg("u2", "acme", "gold")});
  EXPECT_EQ(resolve(make_job(R"({"all":true})")).recipients, ordinals({"u1"}));
  const auto listed = resolve(make_job(R"({"users":["u2"]})", "gold"));
  EXPECT_TRUE(listed.recipients.isEmpty());
  EXPECT_EQ(listed.not_registered, (std::vector<std::string>{"u2"}));
}

TEST_F(Targeting, deleted_user_is_not_targeted) {
  apply({upsert("u1", "f", 1996, "tokyo"), upsert("u2", "f", 1996, "tokyo"),
         reg("u1", "acme", "gold"), reg("u2", "acme", "gold")});
  const uint32_t kept = ordinal("u1");
  apply({del("u2")});
  roaring::Roaring only_u1;
  only_u1.add(kept);
  EXPECT_EQ(resolve(make_job(R"({"all":true})")).recipients, only_u1);
  EXPECT_EQ(resolve(make_job(R"({"where":{"gender":"f","age":30}})")).recipients, only_u1);
  for (const std::string_view service : {"gold", ""}) {
    const auto listed = resolve(make_job(R"({"users":["u1","u2"]})", service));
    EXPECT_EQ(listed.recipients, only_u1);
    EXPECT_EQ(listed.not_registered, (std::vector<std::string>{"u2"}));
  }
}

// ---- to.where ----------------------------------------------------------------------

TEST_F(Targeting, where_equals_only_reaches_users_of_the_company) {
  apply({upsert("u1", "f"), upsert("u2", "f"), upsert("u3", "m"), reg("u1", "acme"),
         reg("u2", "globex"), reg("u3", "acme")});
  EXPECT_EQ(resolve(make_job(R"({"where":{"gender":"f"}})")).recipients, ordinals({"u1"}));
}

TEST_F(Targeting, where_any_of_and_age_range_intersect) {
  // In 2026: 1996 -> 30, 2000 -> 26, 1980 -> 46, 2006 -> 20.
  apply({upsert("tokyo30", "f", 1996, "tokyo"), upsert("osaka26", "m", 2000, "osaka"),
         upsert("tokyo46", "f", 1980, "tokyo"), upsert("nagoya30", "f", 1996, "nagoya"),
         upsert("osaka20", "f", 2006, "osaka"),
         upsert("tokyo_no_year", "f", std::nullopt, "tokyo")});
  for (const char* u : {"tokyo30", "osaka26", "tokyo46", "nagoya30", "osaka20", "tokyo_no_year"}) {
    apply({reg(u, "acme", "gold")});
  }
  const auto r =
      resolve(make_job(R"({"where":{"region":["tokyo","osaka"],"age":{"gt":20,"lt":40}}})"));
  EXPECT_EQ(r.recipients, ordinals({"tokyo30", "osaka26"}));
  EXPECT_TRUE(r.not_registered.empty());

  // Inclusive bounds and three tests at once.
  EXPECT_EQ(
      resolve(
          make_job(
              R"({"where":{"region":["tokyo","osaka"],"gender":"f","age":{"gte":20,"lte":30}}})"))
          .recipients,
      ordinals({"tokyo30", "osaka20"}));
}

TEST_F(Targeting, age_follows_the_clock_year) {
  apply({upsert("u1996", "f", 1996), reg("u1996", "acme")});
  const job j = make_job(R"({"where":{"age":30}})");
  EXPECT_EQ(resolve(j, at(2026y / 6 / 1)).recipients, ordinals({"u1996"}));
  EXPECT_TRUE(resolve(j, at(2027y / 1 / 1)).recipients.isEmpty());
  EXPECT_EQ(resolve(make_job(R"({"where":{"age":[29,31]}})"), at(2027y / 1 / 1)).recipients,
            ordinals({"u1996"}));
}

TEST_F(Targeting, birth_year_ranges_and_lists_select_by_year) {
  // The registry accepts birth years 1900..2100; use both ends.
  apply({upsert("y1900", "", 1900), upsert("y1999", "", 1999), upsert("y2000", "", 2000),
         upsert("y2001", "", 2001), upsert("y2100", "", 2100)});
  for (const char* u : {"y1900", "y1999", "y2000", "y2001", "y2100"}) apply({reg(u, "acme")});
  EXPECT_EQ(resolve(make_job(R"({"where":{"birth_year":{"gte":1901,"lte":2000}}})")).recipients,
            ordinals({"y1999", "y2000"}));
  EXPECT_EQ(resolve(make_job(R"({"where":{"birth_year":{"gt":2000}}})")).recipients,
            ordinals({"y2001", "y2100"}));
  EXPECT_EQ(resolve(make_job(R"({"where":{"birth_year":{"lt":2000}}})")).recipients,
            ordinals({"y1900", "y1999"}));
  EXPECT_EQ(resolve(make_job(R"({"where":{"birth_year":[1999,2001,1850]}})")).recipients,
            ordinals({"y1999", "y2001"}));
  EXPECT_TRUE(resolve(make_job(R"({"where":{"birth_year":{"gt":2100}}})")).recipients.isEmpty());
  // An open-ended age range: 26 and older in 2026 means born 2000 or before.
  EXPECT_EQ(resolve(make_job(R"({"where":{"age":{"gte":26}}})")).recipients,
            ordinals({"y1900", "y1999", "y2000"}));
  // Extreme bounds saturate instead of overflowing.
  EXPECT_EQ(resolve(make_job(R"({"where":{"age":{"gte":-9223372036854775807}}})"))
                .recipients.cardinality(),
            5u);
}

TEST_F(Targeting, profile_change_moves_user_between_postings) {
  apply({upsert("u1", "f", 1996, "tokyo"), reg("u1", "acme")});
  apply({upsert("u1", "f", 1996, "osaka")});
  EXPECT_TRUE(resolve(make_job(R"({"where":{"region":"tokyo"}})")).recipients.isEmpty());
  EXPECT_EQ(resolve(make_job(R"({"where":{"region":"osaka"}})")).recipients, ordinals({"u1"}));
}

TEST_F(Targeting, unknown_attribute_is_invalid_argument_naming_the_field) {
  apply({upsert("u1", "f"), reg("u1", "acme")});
  // Built by hand: parse_job would already refuse it.
  job j = make_job(R"({"where":{"gender":"f"}})");
  j.where[0].field = "shoe_size";
  auto r = resolve_target(*db_, j, at(2026y / 6 / 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  EXPECT_EQ(r.err().message.rfind("to.where.shoe_size: ", 0), 0u) << r.err().message;

  j.where[0].field = "region";
  j.where[0].form = attribute_test::kind::range;
  j.where[0].min_inclusive = 1;
  r = resolve_target(*db_, j, at(2026y / 6 / 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  EXPECT_EQ(r.err().message, "to.where.region: a range applies only to age or birth_year");
}

TEST_F(Targeting, bad_test_fails_even_when_nobody_is_registered) {
  job j = make_job(R"({"where":{"gender":"f"}})");
  j.where[0].field = "shoe_size";
  auto r = resolve_target(*db_, j, at(2026y / 6 / 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
}

// relayctl reads through a secondary instance, where RocksDB refuses
// snapshots on iterators.
TEST_F(Targeting, secondary_instance_resolves_like_the_primary) {
  apply({upsert("u1", "f", 1996, "tokyo"), upsert("u2", "m", 1990, "osaka"),
         reg("u1", "acme", "gold"), reg("u2", "acme", "silver")});
  store_options options;
  options.secondary = true;
  options.secondary_dir = dir_ + "/secondary";
  options.block_cache_bytes = 8u << 20;
  auto secondary = store::open(dir_, options);
  ASSERT_TRUE(secondary.ok()) << secondary.err().message;
  ASSERT_TRUE((*secondary)->catch_up().ok());
  for (const char* to :
       {R"({"all":true})", R"({"where":{"age":{"gte":30}}})", R"({"users":["u1","u2","u3"]})"}) {
    auto primary = resolve(make_job(to));
    auto r = resolve_target(**secondary, make_job(to), at(2026y / 6 / 1));
    ASSERT_TRUE(r.ok()) << to << ": " << r.err().message;
    EXPECT_EQ(r->recipients, primary.recipients) << to;
    EXPECT_EQ(r->not_registered, primary.not_registered) << to;
  }
}

TEST(TargetingAttributes, targetable_attributes_are_the_indexed_ones_and_age) {
  for (const char* f : {"gender", "region", "occupation", "birth_year", "locale", "age"}) {
    EXPECT_TRUE(is_targetable_attribute(f)) << f;
  }
  for (const char* f : {"msisdn", "email", "tz", "user_id", "", "Gender"})
    EXPECT_FALSE(is_targetable_attribute(f)) << f;
}

}  // namespace
}  // namespace relay
