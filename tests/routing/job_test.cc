#include "routing/job.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace relay {
namespace {

using namespace std::chrono;
using namespace std::string_literals;

// A valid job with `to`, `content` and extra top-level members replaceable.
std::string job_json(std::string_view extra = "", std::string_view to = R"({"users":["u1","u2"]})",
                     std::string_view content = R"({"text":"Hello"})") {
  std::string s = R"({"job_id":"j1","company_id":"acme","to":)";
  s += to;
  s += R"(,"content":)";
  s += content;
  s += extra;
  s += "}";
  return s;
}

std::string error_of(std::string_view json, const job_limits& limits = {}) {
  auto r = parse_job(json, limits);
  if (r.ok()) return "<parsed>";
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  return r.err().message;
}

sys_time utc(year_month_day d, hours h = hours(0), minutes m = minutes(0)) {
  return time_point_cast<milliseconds>(sys_days(d)) + h + m;
}

// ---- what a valid job becomes ------------------------------------------------

TEST(Job, design_example_parses_into_every_field) {
  const std::string json = R"({
    "job_id": "acme-20261124-0001",
    "company_id": "acme",
    "service_id": "gold",
    "to": {"users": ["u1", "u2"]},
    "content": {"text": "Hello", "subject": "Hi", "html": "<p>Hello</p>", "link": "https://acme.example/offer"},
    "channels": {"mode": "fallback", "order": ["rcs", "sms", "email"], "fallback_after": "2h"},
    "schedule": {"not_before": "2026-11-24T09:00:00+09:00", "window": {"start": "09:00", "end": "18:00", "tz": "Asia/Tokyo"}, "expires": "2026-11-25T00:00:00+09:00"},
    "priority": "exclusive",
    "bid_id": "b-7f3a"
  })";
  auto r = parse_job(json, {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  const job& j = *r;
  EXPECT_EQ(j.job_id, "acme-20261124-0001");
  EXPECT_EQ(j.company_id, "acme");
  EXPECT_EQ(j.service_id, "gold");
  EXPECT_EQ(j.target, target_kind::users);
  EXPECT_EQ(j.users, (std::vector<std::string>{"u1", "u2"}));
  EXPECT_EQ(j.text, "Hello");
  EXPECT_EQ(j.subject, "Hi");
  EXPECT_EQ(j.html, "<p>Hello</p>");
  EXPECT_EQ(j.link, "https://acme.example/offer");
  EXPECT_EQ(
      j.content_json,
      R"({"text":"Hello","subject":"Hi","html":"<p>Hello</p>","link":"https://acme.example/offer"})");
  EXPECT_EQ(j.mode, channel_mode::fallback);
  EXPECT_EQ(j.order, (std::vector<channel>{channel::rcs, channel::sms, channel::email}));
  EXPECT_EQ(j.fallback_after, hours(2));
  ASSERT_TRUE(j.schedule.not_before);
  EXPECT_EQ(*j.schedule.not_before, utc(2026y / 11 / 24));
  ASSERT_TRUE(j.schedule.expires);
  EXPECT_EQ(*j.schedule.expires, utc(2026y / 11 / 24, hours(15)));
  ASSERT_TRUE(j.schedule.window);
  EXPECT_EQ(j.schedule.window->start_minute, 9 * 60);
  EXPECT_EQ(j.schedule.window->end_minute, 18 * 60);
  EXPECT_EQ(j.schedule.window->tz, "Asia/Tokyo");
  EXPECT_EQ(j.priority, "exclusive");
  EXPECT_EQ(j.bid_id, "b-7f3a");
  EXPECT_FALSE(j.max_price_micros);
}

TEST(Job, optional_parts_take_their_defaults) {
  auto r = parse_job(job_json(), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->service_id, "");
  EXPECT_EQ(r->mode, channel_mode::specified);
  EXPECT_TRUE(r->order.empty()) << "the relay's default_order applies";
  EXPECT_EQ(r->fallback_after, seconds(0));
  EXPECT_FALSE(r->schedule.not_before);
  EXPECT_FALSE(r->schedule.expires);
  EXPECT_FALSE(r->schedule.window);
  EXPECT_EQ(r->priority, "");
  EXPECT_EQ(r->bid_id, "");
}

TEST(Job, null_optional_fields_count_as_absent) {
  auto r = parse_job(
      job_json(
          R"(,"service_id":null,"channels":null,"schedule":null,"priority":null,"bid_id":null,"max_price":null)"),
      {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->service_id, "");
  EXPECT_TRUE(r->order.empty());
}

TEST(Job, empty_service_id_means_any_service) {
  auto r = parse_job(job_json(R"(,"service_id":"")"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->service_id, "");
}

TEST(Job, unknown_top_level_fields_are_ignored) {
  auto r = parse_job(job_json(R"(,"campaign":{"name":"x"},"version":[1,2],"x_trace":null)"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
}

TEST(Job, listed_users_keep_first_occurrence_order_without_duplicates) {
  auto r = parse_job(job_json("", R"({"users":["u2","u1","u2","u3","u1"]})"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->users, (std::vector<std::string>{"u2", "u1", "u3"}));
}

TEST(Job, long_user_lists_are_deduplicated_too) {
  std::string users = R"({"users":[)";
  for (int i = 0; i < 200; ++i) users += "\"u" + std::to_string(i % 150) + "\",";
  users.back() = ']';
  users += '}';
  auto r = parse_job(job_json("", users), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_EQ(r->users.size(), 150u);
  EXPECT_EQ(r->users.front(), "u0");
  EXPECT_EQ(r->users.back(), "u149");
}

TEST(Job, all_targets_everyone_registered) {
  auto r = parse_job(job_json("", R"({"all":true})"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->target, target_kind::all);
  EXPECT_TRUE(r->users.empty());
}

TEST(Job, where_tests_take_equals_any_of_and_normalised_ranges) {
  auto r = parse_job(
      job_json("", R"({"where":{"gender":"f","region":["tokyo","osaka",13],"birth_year":1996,
                                      "age":{"gt":19,"lt":30}}})"),
      {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_EQ(r->target, target_kind::where);
  ASSERT_EQ(r->where.size(), 4u);
  const auto& w = r->where;
  EXPECT_EQ(w[0].field, "gender");
  EXPECT_EQ(w[0].form, attribute_test::kind::equals);
  EXPECT_EQ(w[0].values, (std::vector<std::string>{"f"}));
  EXPECT_EQ(w[1].field, "region");
  EXPECT_EQ(w[1].form, attribute_test::kind::any_of);
  EXPECT_EQ(w[1].values, (std::vector<std::string>{"tokyo", "osaka", "13"}));
  EXPECT_EQ(w[2].field, "birth_year");
  EXPECT_EQ(w[2].form, attribute_test::kind::equals);
  EXPECT_EQ(w[2].values, (std::vector<std::string>{"1996"}));
  EXPECT_EQ(w[3].field, "age");
  EXPECT_EQ(w[3].form, attribute_test::kind::range);
  EXPECT_EQ(w[3].min_inclusive, 20);
  EXPECT_EQ(w[3].max_inclusive, 29);
}

TEST(Job, half_open_range_keeps_one_bound) {
  auto r = parse_job(job_json("", R"({"where":{"birth_year":{"gte":1990}}})"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->where[0].min_inclusive, 1990);
  EXPECT_FALSE(r->where[0].max_inclusive);
}

TEST(Job, single_value_range_is_allowed) {
  auto r = parse_job(job_json("", R"({"where":{"age":{"gte":30,"lte":30}}})"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->where[0].min_inclusive, 30);
  EXPECT_EQ(r->where[0].max_inclusive, 30);
}

TEST(Job, content_is_reserialised_compactly_with_members_for_plugins) {
  auto r = parse_job(
      job_json("", R"({"users":["u1"]})",
               R"({ "text" : "Hi \"you\"\n",  "card" : { "title" : "T", "n" : [1, 2] } })"),
      {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->content_json, R"({"text":"Hi \"you\"\n","card":{"title":"T","n":[1,2]}})");
  EXPECT_EQ(r->text, "Hi \"you\"\n");
}

TEST(Job, html_alone_is_enough_content) {
  auto r = parse_job(job_json("", R"({"all":true})", R"({"html":"<p>x</p>"})"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->html, "<p>x</p>");
}

TEST(Job, channel_modes_and_orders_parse) {
  auto r =
      parse_job(job_json(R"(,"channels":{"mode":"simultaneous","order":["email","sms"]})"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->mode, channel_mode::simultaneous);
  EXPECT_EQ(r->order, (std::vector<channel>{channel::email, channel::sms}));

  auto resend = parse_job(job_json(R"(,"channels":{"mode":"resend","fallback_after":"30m"})"), {});
  ASSERT_TRUE(resend.ok()) << resend.err().message;
  EXPECT_EQ(resend->mode, channel_mode::resend);
  EXPECT_EQ(resend->fallback_after, minutes(30));
}

TEST(Job, channel_mode_names_round_trip) {
  for (const char* name :
       {"specified", "preferred", "best", "simultaneous", "fallback", "resend"}) {
    auto r =
        parse_job(job_json(R"(,"channels":{"mode":")"s + name + R"(","fallback_after":"1h"})"), {});
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(to_string(r->mode), name);
  }
}

TEST(Job, max_price_becomes_exact_micros) {
  auto decimal = parse_job(job_json(R"(,"max_price":0.1)"), {});
  ASSERT_TRUE(decimal.ok()) << decimal.err().message;
  EXPECT_EQ(decimal->max_price_micros, 100000);
  auto integer = parse_job(job_json(R"(,"max_price":12)"), {});
  ASSERT_TRUE(integer.ok()) << integer.err().message;
  EXPECT_EQ(integer->max_price_micros, 12000000);
  auto fraction = parse_job(job_json(R"(,"max_price":1.234567)"), {});
  ASSERT_TRUE(fraction.ok());
  EXPECT_EQ(fraction->max_price_micros, 1234567);
}

TEST(Job, timestamps_accept_rfc3339_variants) {
  struct variant {
    const char* text;
    sys_time expected;
  };
  const variant cases[] = {
      {"2026-11-24T00:00:00Z", utc(2026y / 11 / 24)},
      {"2026-11-24t00:00:00z", utc(2026y / 11 / 24)},
      {"2026-11-24T09:00:00+09:00", utc(2026y / 11 / 24)},
      {"2026-11-23T19:30:00-04:30", utc(2026y / 11 / 24)},
      {"2026-11-24T00:00:00.250Z", utc(2026y / 11 / 24) + milliseconds(250)},
      {"2026-11-24T00:00:00.1Z", utc(2026y / 11 / 24) + milliseconds(100)},
      {"2026-11-24T00:00:00.123456789Z", utc(2026y / 11 / 24) + milliseconds(123)},
      {"2028-02-29T12:00:00Z", utc(2028y / 2 / 29, hours(12))},
      {"2026-12-31T23:59:60Z", utc(2027y / 1 / 1)},
  };
  for (const auto& c : cases) {
    auto r = parse_job(job_json(R"(,"schedule":{"not_before":")"s + c.text + "\"}"), {});
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.err().message;
    EXPECT_EQ(*r->schedule.not_before, c.expected) << c.text;
  }
}

TEST(Job, window_may_cross_midnight_and_take_no_tz) {
  auto r = parse_job(job_json(R"(,"schedule":{"window":{"start":"22:00","end":"06:30"}})"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->schedule.window->start_minute, 22 * 60);
  EXPECT_EQ(r->schedule.window->end_minute, 6 * 60 + 30);
  EXPECT_EQ(r->schedule.window->tz, "");
}

TEST(Job, parser_is_reused_across_jobs_of_different_sizes) {
  std::string big_users = R"({"users":[)";
  for (int i = 0; i < 5000; ++i) big_users += "\"user-" + std::to_string(i) + "\",";
  big_users.back() = ']';
  big_users += '}';
  for (int round = 0; round < 3; ++round) {
    auto big = parse_job(job_json("", big_users), {});
    ASSERT_TRUE(big.ok()) << big.err().message;
    EXPECT_EQ(big->users.size(), 5000u);
    auto small = parse_job(job_json(), {});
    ASSERT_TRUE(small.ok()) << small.err().message;
    EXPECT_EQ(small->users.size(), 2u);
  }
}

// ---- what is rejected, and the exact reason ------------------------------------

struct bad_case {
  std::string json;
  std::string message;
};

void expect_rejections(const std::vector<bad_case>& cases) {
  for (const auto& c : cases) EXPECT_EQ(error_of(c.json), c.message) << c.json;
}

TEST(Job, oversized_job_is_rejected_before_parsing) {
  job_limits limits;
  limits.max_job_bytes = 16;
  const std::string json = "{not even json at all}";
  EXPECT_EQ(error_of(json, limits), "job is 22 bytes, limit 16 (limits.max_job_bytes)");
}

TEST(Job, invalid_json_carries_the_parsers_reason) {
  for (const char* bad :
       {"", "{", R"({"job_id":"j1",})", "{\"a\":\"\xff\"}", "nul", R"({"a":1}x)"}) {
    const std::string m = error_of(bad);
    EXPECT_EQ(m.rfind("invalid JSON: ", 0), 0u) << bad << " -> " << m;
    EXPECT_GT(m.size(), sizeof("invalid JSON: ")) << m;
  }
}

TEST(Job, non_object_documents_are_rejected) {
  for (const char* bad : {"[]", "\"job\"", "42", "null", "true"}) {
    EXPECT_EQ(error_of(bad), "job must be a JSON object") << bad;
  }
}

TEST(Job, ids_are_checked_and_named) {
  const std::string long_id(256, 'x');
  expect_rejections({
      {R"({"company_id":"acme","to":{"all":true},"content":{"text":"x"}})", "job_id: missing"},
      {R"({"job_id":null,"company_id":"acme","to":{"all":true},"content":{"text":"x"}})",
       "job_id: missing"},
      {R"({"job_id":7,"company_id":"acme","to":{"all":true},"content":{"text":"x"}})",
       "job_id: must be a string"},
      {R"({"job_id":"","company_id":"acme","to":{"all":true},"content":{"text":"x"}})",
       "job_id: must not be empty"},
      {R"({"job_id":")" + long_id +
           R"(","company_id":"acme","to":{"all":true},"content":{"text":"x"}})",
       "job_id: longer than 255 bytes"},
      {R"({"job_id":"a\u0000b","company_id":"acme","to":{"all":true},"content":{"text":"x"}})",
       "job_id: contains a control character"},
      {R"({"job_id":"a\nb","company_id":"acme","to":{"all":true},"content":{"text":"x"}})",
       "job_id: contains a control character"},
      {R"({"job_id":"j1","to":{"all":true},"content":{"text":"x"}})", "company_id: missing"},
      {R"({"job_id":"j1","company_id":["acme"],"to":{"all":true},"content":{"text":"x"}})",
       "company_id: must be a string"},
      {R"({"job_id":"j1","company_id":"","to":{"all":true},"content":{"text":"x"}})",
       "company_id: must not be empty"},
      {job_json(R"(,"service_id":5)"), "service_id: must be a string"},
      {job_json(R"(,"service_id":"go\tld")"), "service_id: contains a control character"},
      {job_json(R"(,"bid_id":5)"), "bid_id: must be a string"},
      {job_json(R"(,"bid_id":"")"), "bid_id: must not be empty"},
  });
  // 255 bytes is still fine.
  EXPECT_TRUE(parse_job(R"({"job_id":")" + std::string(255, 'x') +
                            R"(","company_id":"acme","to":{"all":true},"content":{"text":"x"}})",
                        {})
                  .ok());
}

TEST(Job, repeated_known_keys_are_rejected) {
  expect_rejections({
      {R"({"job_id":"j1","job_id":"j2","company_id":"acme","to":{"all":true},"content":{"text":"x"}})",
       "job_id: duplicate key"},
      {job_json("", R"({"users":["u1"],"users":["u2"]})"), "to.users: duplicate key"},
      {job_json("", R"({"all":true})", R"({"text":"a","text":"b"})"),
       "content.text: duplicate key"},
      {job_json("", R"({"where":{"gender":"f","gender":"m"}})"), "to.where.gender: duplicate key"},
      {job_json(R"(,"channels":{"mode":"best","mode":"fallback"})"),
       "channels.mode: duplicate key"},
  });
}

TEST(Job, to_must_name_exactly_one_target) {
  expect_rejections({
      {R"({"job_id":"j1","company_id":"acme","content":{"text":"x"}})", "to: missing"},
      {job_json("", R"(["u1"])"), "to: must be an object"},
      {job_json("", "{}"), "to: needs one of users, all or where"},
      {job_json("", R"({"users":null})"), "to: needs one of users, all or where"},
      {job_json("", R"({"users":["u1"],"all":true})"), "to: give only one of users, all or where"},
      {job_json("", R"({"segment":"vip"})"),
       "to.segment: unknown target (expected users, all or where)"},
      {job_json("", R"({"all":true,"segment":"vip"})"),
       "to.segment: unknown target (expected users, all or where)"},
      {job_json("", R"({"all":false})"), "to.all: must be true"},
      {job_json("", R"({"all":"yes"})"), "to.all: must be true"},
  });
}

TEST(Job, listed_users_are_checked_one_by_one) {
  expect_rejections({
      {job_json("", R"({"users":"u1"})"), "to.users: must be an array of user ids"},
      {job_json("", R"({"users":[]})"), "to.users: must not be empty"},
      {job_json("", R"({"users":["u1","u2","u3",4]})"), "to.users[3]: must be a string"},
      {job_json("", R"({"users":["u1",null]})"), "to.users[1]: must be a string"},
      {job_json("", R"({"users":["u1",""]})"), "to.users[1]: must not be empty"},
      {job_json("", R"({"users":["u\u0001"]})"), "to.users[0]: contains a control character"},
      {job_json("", R"({"users":[")" + std::string(300, 'u') + R"("]})"),
       "to.users[0]: longer than 255 bytes"},
  });
}

TEST(Job, too_many_listed_users_are_rejected) {
  job_limits limits;
  limits.max_users = 2;
  EXPECT_EQ(error_of(job_json("", R"({"users":["a","b","c"]})"), limits),
            "to.users: 3 users, limit 2 (limits.max_users)");
  EXPECT_TRUE(parse_job(job_json("", R"({"users":["a","b"]})"), limits).ok());
}

TEST(Job, where_tests_are_checked_and_named) {
  auto where = [](std::string_view w) {
    return job_json("", R"({"where":)" + std::string(w) + "}");
  };
  const std::string unknown_attr =
      ": not a targetable attribute (expected gender, region, occupation, birth_year, locale or "
      "age)";
  expect_rejections({
      {where(R"(["gender"])"), "to.where: must be an object of attribute tests"},
      {where("{}"), "to.where: must not be empty"},
      {where(R"({"shoe_size":"42"})"), "to.where.shoe_size" + unknown_attr},
      {where(R"({"msisdn":"+81"})"), "to.where.msisdn" + unknown_attr},
      {where(R"({"gender":true})"),
       "to.where.gender: must be a string, an integer or an array of them"},
      {where(R"({"gender":null})"),
       "to.where.gender: must be a string, an integer or an array of them"},
      {where(R"({"gender":1.5})"),
       "to.where.gender: must be a string, an integer or an array of them"},
      {where(R"({"gender":""})"), "to.where.gender: must not be empty"},
      {where(R"({"region":[]})"), "to.where.region: must not be an empty array"},
      {where(R"({"region":["tokyo",true]})"), "to.where.region[1]: must be a string or an integer"},
      {where(R"({"region":["tokyo",["osaka"]]})"),
       "to.where.region[1]: must be a string or an integer"},
      {where(R"({"region":{"gte":1}})"),
       "to.where.region: a range applies only to age or birth_year"},
      {where(R"({"age":"thirty"})"), "to.where.age: must be an integer"},
      {where(R"({"age":["20",21]})"), "to.where.age[0]: must be an integer"},
      {where(R"({"age":20.5})"),
       "to.where.age: must be an integer, an array of integers or a range object"},
      {where(R"({"birth_year":18446744073709551615})"),
       "to.where.birth_year: integer out of range"},
      {where(R"({"age":{}})"), "to.where.age: a range needs gte, gt, lte or lt"},
      {where(R"({"age":{"gte":null}})"), "to.where.age: a range needs gte, gt, lte or lt"},
      {where(R"({"age":{"gte":"20"}})"), "to.where.age.gte: must be an integer"},
      {where(R"({"age":{"lt":20.5}})"), "to.where.age.lt: must be an integer"},
      {where(R"({"age":{"between":[1,2]}})"),
       "to.where.age.between: unknown bound (expected gte, gt, lte or lt)"},
      {where(R"({"age":{"gt":20,"gte":21}})"), "to.where.age: give gte or gt, not both"},
      {where(R"({"age":{"lt":20,"lte":21}})"), "to.where.age: give lte or lt, not both"},
      {where(R"({"age":{"gte":30,"lt":20}})"),
       "to.where.age: empty range (lower bound above upper bound)"},
      {where(R"({"age":{"gte":20,"lt":20}})"),
       "to.where.age: empty range (lower bound above upper bound)"},
      {where(R"({"birth_year":{"gt":9223372036854775807}})"),
       "to.where.birth_year: empty range (lower bound above upper bound)"},
  });
}

TEST(Job, content_is_checked_and_named) {
  auto content = [](std::string_view c) { return job_json("", R"({"all":true})", c); };
  expect_rejections({
      {R"({"job_id":"j1","company_id":"acme","to":{"all":true}})", "content: missing"},
      {content(R"("Hello")"), "content: must be an object"},
      {content("{}"), "content: needs a non-empty text or html"},
      {content(R"({"subject":"Hi","link":"https://a.example"})"),
       "content: needs a non-empty text or html"},
      {content(R"({"text":""})"), "content: needs a non-empty text or html"},
      {content(R"({"text":5})"), "content.text: must be a string"},
      {content(R"({"text":"x","subject":{"a":1}})"), "content.subject: must be a string"},
      {content(R"({"html":["<p>"]})"), "content.html: must be a string"},
      {content(R"({"text":"x","link":42})"), "content.link: must be a string"},
      {content(R"({"text":"x","link":"javascript:alert"})"),
       "content.link: must be an http or https URL"},
  });
}

TEST(Job, oversized_content_is_rejected_with_its_size) {
  job_limits limits;
  limits.max_content_bytes = 16;
  // {"text":"12345678"} is 19 bytes once compact, whatever the spacing.
  EXPECT_EQ(error_of(job_json("", R"({"all":true})", R"({ "text" : "12345678" })"), limits),
            "content is 19 bytes, limit 16 (limits.max_content_bytes)");
  limits.max_content_bytes = 19;
  EXPECT_TRUE(
      parse_job(job_json("", R"({"all":true})", R"({ "text" : "12345678" })"), limits).ok());
}

TEST(Job, channels_are_checked_and_named) {
  auto channels = [](std::string_view c) { return job_json(R"(,"channels":)" + std::string(c)); };
  expect_rejections({
      {channels(R"(["rcs"])"), "channels: must be an object"},
      {channels(R"({"mode":5})"), "channels.mode: must be a string"},
      {channels(R"({"mode":"loud"})"),
       R"(channels.mode: unknown mode "loud" (expected specified, preferred, best, simultaneous, fallback or resend))"},
      {channels(R"({"order":"rcs"})"), "channels.order: must be an array of channels"},
      {channels(R"({"order":[]})"), "channels.order: must not be empty"},
      {channels(R"({"order":["rcs","fax"]})"),
       R"(channels.order[1]: unknown channel "fax" (expected rcs, sms or email))"},
      {channels(R"({"order":["RCS"]})"),
       R"(channels.order[0]: unknown channel "RCS" (expected rcs, sms or email))"},
      {channels(R"({"order":[1]})"), "channels.order[0]: must be a string"},
      {channels(R"({"order":["sms","email","sms"]})"),
       R"(channels.order[2]: duplicate channel "sms")"},
      {channels(R"({"mode":"fallback"})"),
       "channels.fallback_after: required when channels.mode is fallback"},
      {channels(R"({"mode":"resend","order":["sms"]})"),
       "channels.fallback_after: required when channels.mode is resend"},
      {channels(R"({"mode":"fallback","fallback_after":7200})"),
       "channels.fallback_after: must be a string"},
      {channels(R"({"mode":"fallback","fallback_after":"1500ms"})"),
       "channels.fallback_after: must be whole seconds"},
      {channels(R"({"mode":"fallback","fallback_after":"0s"})"),
       "channels.fallback_after: must be at least 1s"},
  });
  const std::string m = error_of(channels(R"({"mode":"fallback","fallback_after":"2 hours"})"));
  EXPECT_EQ(m.rfind("channels.fallback_after: ", 0), 0u) << m;
  EXPECT_NE(m.find("expected a non-negative integer and a unit"), std::string::npos) << m;
}

TEST(Job, schedule_is_checked_and_named) {
  auto schedule = [](std::string_view s) { return job_json(R"(,"schedule":)" + std::string(s)); };
  const std::string rfc =
      ": must be an RFC 3339 timestamp with offset (e.g. 2026-11-24T09:00:00+09:00)";
  const std::string hhmm = ": must be a time of day HH:MM (00:00 to 23:59)";
  expect_rejections({
      {schedule("[]"), "schedule: must be an object"},
      {schedule(R"({"not_before":1764000000})"), "schedule.not_before: must be a string"},
      {schedule(R"({"not_before":"2026-11-24 09:00:00+09:00"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2026-11-24T09:00:00"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2026-11-24T09:00+09:00"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2026-11-24T09:00:00+0900"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2026-11-24T09:00:00+24:00"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2026-11-24T09:00:00.Z"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2026-11-24T09:00:00Zjunk"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2027-02-29T09:00:00Z"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2026-13-01T09:00:00Z"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2026-11-24T24:00:00Z"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"2026-11-24T09:60:00Z"})"), "schedule.not_before" + rfc},
      {schedule(R"({"not_before":"tomorrow"})"), "schedule.not_before" + rfc},
      {schedule(R"({"expires":"2026-11-24"})"), "schedule.expires" + rfc},
      {schedule(R"({"not_before":"2026-11-24T09:00:00+09:00","expires":"2026-11-24T00:00:00Z"})"),
       "schedule.expires: must be after schedule.not_before"},
      {schedule(R"({"not_before":"2026-11-24T09:00:00Z","expires":"2026-11-24T08:00:00Z"})"),
       "schedule.expires: must be after schedule.not_before"},
      {schedule(R"({"window":"09:00-18:00"})"), "schedule.window: must be an object"},
      {schedule(R"({"window":{"end":"18:00"}})"), "schedule.window.start: missing"},
      {schedule(R"({"window":{"start":"09:00"}})"), "schedule.window.end: missing"},
      {schedule(R"({"window":{"start":"9:00","end":"18:00"}})"), "schedule.window.start" + hhmm},
      {schedule(R"({"window":{"start":540,"end":"18:00"}})"),
       "schedule.window.start: must be a string"},
      {schedule(R"({"window":{"start":"09:00","end":"24:00"}})"), "schedule.window.end" + hhmm},
      {schedule(R"({"window":{"start":"09:00","end":"18:61"}})"), "schedule.window.end" + hhmm},
      {schedule(R"({"window":{"start":"09:00","end":"09:00"}})"),
       "schedule.window: start and end must differ"},
      {schedule(R"({"window":{"start":"09:00","end":"18:00","tz":9}})"),
       "schedule.window.tz: must be a string"},
      {schedule(R"({"window":{"start":"09:00","end":"18:00","tz":"Asia/Tokyo; rm -rf"}})"),
       "schedule.window.tz: not a time zone name (e.g. Asia/Tokyo)"},
  });
}

TEST(Job, priority_and_price_are_checked_and_named) {
  expect_rejections({
      {job_json(R"(,"priority":"urgent")"),
       "priority: unknown priority (expected normal or exclusive)"},
      {job_json(R"(,"priority":1)"), "priority: must be a string"},
      {job_json(R"(,"max_price":"1.5")"), "max_price: must be a number"},
      {job_json(R"(,"max_price":-1)"), "max_price: must not be negative"},
      {job_json(R"(,"max_price":-0.5)"), "max_price: must not be negative"},
      {job_json(R"(,"max_price":1e13)"), "max_price: too large"},
      {job_json(R"(,"max_price":18446744073709551615)"), "max_price: too large"},
  });
  auto normal = parse_job(job_json(R"(,"priority":"normal")"), {});
  ASSERT_TRUE(normal.ok());
  EXPECT_EQ(normal->priority, "normal");
}

TEST(Job, reason_follows_field_order_not_document_order) {
  // The first failing field in document-independent order wins, so the same
  // job always gets the same reason.
  EXPECT_EQ(
      error_of(
          R"({"priority":"urgent","job_id":"j1","company_id":"acme","to":{"all":true},"content":{"text":"x"}})"),
      "priority: unknown priority (expected normal or exclusive)");
  EXPECT_EQ(error_of(R"({"content":5,"job_id":"j1","company_id":"acme","to":{"users":[1]}})"),
            "to.users[0]: must be a string");
}

// ---- what errors may contain --------------------------------------------------

TEST(Job, errors_are_one_line_and_never_quote_user_data) {
  const std::vector<std::string> bad = {
      job_json("", R"({"users":["SECRET-user",17]})"),
      job_json("", R"({"users":["SECRET\n"]})"),
      job_json("", R"({"where":{"gender":["SECRET",true]}})"),
      job_json("", R"({"where":{"age":"SECRET"}})"),
      job_json("", R"({"all":true})", R"({"text":"SECRET","link":"javascript:SECRET"})"),
      job_json("", R"({"all":true})", R"({"text":"SECRET","subject":7})"),
      job_json(R"(,"schedule":{"not_before":"SECRET"})"),
      job_json(R"(,"schedule":{"window":{"start":"09:00","end":"18:00","tz":"SECRET zone"}})"),
      job_json(R"(,"priority":"SECRET")"),
      job_json(R"(,"channels":{"mode":"fallback","fallback_after":"SECRET"})"),
      R"({"job_id":"SECRET\u0001","company_id":"acme","to":{"all":true},"content":{"text":"x"}})",
      R"({"job_id":"j1","company_id":"SECRET","service_id":"SECRET\u0007","to":{"all":true},"content":{"text":"x"}})",
  };
  for (const auto& json : bad) {
    const std::string m = error_of(json);
    EXPECT_NE(m, "<parsed>") << json;
    EXPECT_EQ(m.find("SECRET"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find('\r'), std::string::npos) << m;
  }
}

// Key names are part of the field path, so an unknown key is echoed, but
// only sanitised and cut short, never as raw bytes.
TEST(Job, echoed_tokens_are_sanitised_and_short) {
  const std::string m = error_of(job_json("", R"({"where":{"bad\nkey\u00e9":"x"}})"));
  EXPECT_EQ(m.rfind("to.where.bad?key??: not a targetable attribute", 0), 0u) << m;
  const std::string long_channel(100, 'x');
  const std::string c = error_of(job_json(R"(,"channels":{"order":[")" + long_channel + R"("]})"));
  EXPECT_EQ(c, R"(channels.order[0]: unknown channel ")" + std::string(32, 'x') +
                   R"(..." (expected rcs, sms or email))");
}

// ---- on_open follow-ups and resends -------------------------------------------

TEST(Job, on_open_carries_its_own_content_delay_and_horizon) {
  auto r = parse_job(
      job_json(R"(,"on_open":{"content":{"text":"Thanks!","link":"https://acme.example/next"},"after":"10m","within":"2d"})"),
      {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_TRUE(r->on_open.has_value());
  EXPECT_EQ(r->on_open->text, "Thanks!");
  EXPECT_EQ(r->on_open->link, "https://acme.example/next");
  EXPECT_EQ(r->on_open->content_json, R"({"text":"Thanks!","link":"https://acme.example/next"})");
  EXPECT_EQ(r->on_open->after, std::chrono::minutes(10));
  EXPECT_EQ(r->on_open->within, std::chrono::hours(48));
  EXPECT_EQ(r->text, "Hello");  // the job's own content is untouched
}

TEST(Job, bad_on_open_is_rejected_naming_the_field) {
  EXPECT_EQ(error_of(job_json(R"(,"on_open":{"after":"1m"})")), "on_open.content: missing");
  EXPECT_EQ(error_of(job_json(R"(,"on_open":{"content":{"subject":"x"}})")),
            "on_open.content: needs a non-empty text or html");
  EXPECT_EQ(error_of(job_json(R"(,"on_open":{"content":{"text":"x","link":"javascript:x"}})")),
            "on_open.content.link: must be an http or https URL");
  EXPECT_EQ(error_of(job_json(R"(,"on_open":{"content":{"text":"x"},"after":"soon"})")).substr(0, 14),
            "on_open.after:");
  EXPECT_EQ(error_of(job_json(R"(,"on_open":"yes")")), "on_open: must be an object");
}

TEST(Job, max_resends_bounds_resend_mode) {
  auto r = parse_job(
      job_json(R"(,"channels":{"mode":"resend","order":["sms"],"fallback_after":"1h","max_resends":3})"), {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->max_resends, 3);
  EXPECT_EQ(error_of(job_json(R"(,"channels":{"mode":"resend","fallback_after":"1h","max_resends":0})")),
            "channels.max_resends: must be a whole number from 1 to 10");
  EXPECT_EQ(error_of(job_json(R"(,"channels":{"mode":"fallback","fallback_after":"1h","max_resends":2})")),
            "channels.max_resends: applies only to mode resend");
}

}  // namespace
}  // namespace relay
