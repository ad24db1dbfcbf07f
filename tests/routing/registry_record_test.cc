#include "routing/registry_record.h"

#include <gtest/gtest.h>

#include <string>

namespace relay {
namespace {

constexpr std::string_view kFullUpsert = R"({"op":"upsert_user","user_id":"u1",
  "profile":{"msisdn":"+819012345678","email":"u1@example.jp","gender":"f","birth_year":1996,
             "region":"tokyo","occupation":"engineer","tz":"Asia/Tokyo","locale":"ja-JP"},
  "carriers":[{"carrier_id":"carrier-a","primary":true,"channels":["sms","email"],
               "addresses":{"sms":"+819099999999"}},
              {"carrier_id":"carrier-b","channels":["rcs"]}]})";

std::string error_of(std::string_view json) {
  auto r = parse_registry_record(json);
  if (r.ok()) return "(parsed)";
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  return r.err().message;
}

TEST(registry_record, parses_a_full_upsert) {
  auto r = parse_registry_record(kFullUpsert);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->kind, registry_record::op::upsert_user);
  EXPECT_EQ(r->user_id, "u1");
  const profile& p = r->user_profile;
  EXPECT_EQ(p.msisdn, "+819012345678");
  EXPECT_EQ(p.email, "u1@example.jp");
  EXPECT_EQ(p.gender, "f");
  EXPECT_EQ(p.birth_year, 1996);
  EXPECT_EQ(p.region, "tokyo");
  EXPECT_EQ(p.occupation, "engineer");
  EXPECT_EQ(p.tz, "Asia/Tokyo");
  EXPECT_EQ(p.locale, "ja-JP");
  ASSERT_TRUE(r->carriers);
  ASSERT_EQ(r->carriers->size(), 2u);
  const carrier_link& a = (*r->carriers)[0];
  EXPECT_EQ(a.carrier_id, "carrier-a");
  EXPECT_TRUE(a.primary);
  EXPECT_EQ(a.channels, channel_bit(channel::sms) | channel_bit(channel::email));
  EXPECT_EQ(a.address[int(channel::sms)], "+819099999999");
  EXPECT_EQ(a.address[int(channel::email)], "");
  const carrier_link& b = (*r->carriers)[1];
  EXPECT_FALSE(b.primary);
  EXPECT_EQ(b.channels, channel_bit(channel::rcs));
}

TEST(registry_record, parses_register_unregister_and_delete) {
  auto reg = parse_registry_record(
      R"({"op":"register","user_id":"u1","company_id":"acme","service_id":"gold","source":"web"})");
  ASSERT_TRUE(reg.ok()) << reg.err().message;
  EXPECT_EQ(reg->kind, registry_record::op::register_user);
  EXPECT_EQ(reg->company_id, "acme");
  EXPECT_EQ(reg->service_id, "gold");
  EXPECT_EQ(reg->source, "web");

  auto unreg = parse_registry_record(R"({"op":"unregister","user_id":"u1","company_id":"acme"})");
  ASSERT_TRUE(unreg.ok()) << unreg.err().message;
  EXPECT_EQ(unreg->kind, registry_record::op::unregister_user);
  EXPECT_EQ(unreg->service_id, "");  // optional: the company's default service

  auto del = parse_registry_record(R"({"op":"delete_user","user_id":"u1"})");
  ASSERT_TRUE(del.ok()) << del.err().message;
  EXPECT_EQ(del->kind, registry_record::op::delete_user);
}

TEST(registry_record, first_carrier_is_primary_when_none_is_marked) {
  auto r = parse_registry_record(
      R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a"},{"carrier_id":"b"}]})");
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_TRUE((*r->carriers)[0].primary);
  EXPECT_FALSE((*r->carriers)[1].primary);
  EXPECT_EQ((*r->carriers)[0].channels, kAllChannels);  // channels default to all
}

TEST(registry_record, carriers_are_optional_and_an_empty_list_clears_them) {
  auto without = parse_registry_record(R"({"op":"upsert_user","user_id":"u1","profile":{}})");
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->carriers);
  auto empty =
      parse_registry_record(R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[]})");
  ASSERT_TRUE(empty.ok());
  ASSERT_TRUE(empty->carriers);
  EXPECT_TRUE(empty->carriers->empty());
}

TEST(registry_record, unknown_fields_and_nulls_are_ignored) {
  auto r = parse_registry_record(
      R"({"op":"upsert_user","user_id":"u1","extra":{"deep":[1,2]},"profile":{"gender":null,"hobby":"go"}})");
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->user_profile.gender, "");
  EXPECT_FALSE(r->user_profile.birth_year);
}

TEST(registry_record, malformed_record_is_rejected_whole) {
  // The second carrier is bad: nothing of the record comes back.
  auto r = parse_registry_record(
      R"({"op":"upsert_user","user_id":"u1","profile":{"region":"tokyo"},"carriers":[{"carrier_id":"a"},{"primary":true}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message, "carriers[1].carrier_id: missing");
}

TEST(registry_record, errors_name_the_field) {
  EXPECT_EQ(error_of("not json"), error_of("not json"));
  EXPECT_EQ(error_of("not json").rfind("record: invalid JSON", 0), 0u);
  EXPECT_EQ(error_of("[1,2]"), "record: must be a JSON object");
  EXPECT_EQ(
      error_of(R"({"op":"upsert_user","user_id":"u1","profile":{}} trailing)").rfind("record:", 0),
      0u);
  EXPECT_EQ(error_of(R"({"user_id":"u1"})"), "op: missing");
  EXPECT_EQ(error_of(R"({"op":7,"user_id":"u1"})"), "op: must be a string");
  EXPECT_EQ(error_of(R"({"op":"frobnicate","user_id":"u1"})"), R"(op: unknown "frobnicate")");
  EXPECT_EQ(error_of(R"({"op":"delete_user"})"), "user_id: missing");
  EXPECT_EQ(error_of(R"({"op":"delete_user","user_id":null})"), "user_id: missing");
  EXPECT_EQ(error_of(R"({"op":"delete_user","user_id":""})"), "user_id: must not be empty");
  EXPECT_EQ(error_of(R"({"op":"delete_user","user_id":12})"), "user_id: must be a string");
  EXPECT_EQ(error_of(R"({"op":"delete_user","user_id":"a\u0000b"})"),
            "user_id: contains a NUL byte");
  EXPECT_EQ(error_of(R"({"op":"delete_user","user_id":")" + std::string(256, 'x') + "\"}"),
            "user_id: longer than 255 bytes");
  EXPECT_EQ(error_of(R"({"op":"delete_user","user_id":")" + std::string(255, 'x') + "\"}"),
            "(parsed)");
  EXPECT_EQ(error_of(R"({"op":"register","user_id":"u1"})"), "company_id: missing");
  EXPECT_EQ(error_of(R"({"op":"register","user_id":"u1","company_id":""})"),
            "company_id: must not be empty");
  EXPECT_EQ(error_of(R"({"op":"register","user_id":"u1","company_id":"c","service_id":1})"),
            "service_id: must be a string");
  EXPECT_EQ(error_of(R"({"op":"register","user_id":"u1","company_id":"c","service_id":"s\u0000"})"),
            "service_id: contains a NUL byte");
  EXPECT_EQ(error_of(R"({"op":"register","user_id":"u1","company_id":"c","source":false})"),
            "source: must be a string");
  EXPECT_EQ(error_of(R"({"op":"upsert_user","user_id":"u1"})"), "profile: missing");
  EXPECT_EQ(error_of(R"({"op":"upsert_user","user_id":"u1","profile":[]})"),
            "profile: must be an object");
  EXPECT_EQ(error_of(R"({"op":"upsert_user","user_id":"u1","profile":{"region":5}})"),
            "profile.region: must be a string");
  EXPECT_EQ(error_of(R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":{}})"),
            "carriers: must be an array");
  EXPECT_EQ(error_of(R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[7]})"),
            "carriers[0]: must be an object");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a","primary":"yes"}]})"),
      "carriers[0].primary: must be true or false");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a","primary":true},{"carrier_id":"b","primary":true}]})"),
      "carriers[1].primary: more than one primary carrier");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a"},{"carrier_id":"a"}]})"),
      R"(carriers[1].carrier_id: duplicate "a")");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":""}]})"),
      "carriers[0].carrier_id: must not be empty");
}

TEST(registry_record, unknown_channel_names_are_rejected) {
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a","channels":["sms","fax"]}]})"),
      R"(carriers[0].channels[1]: unknown channel "fax")");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a","channels":[3]}]})"),
      "carriers[0].channels[0]: must be a string");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a","channels":"sms"}]})"),
      "carriers[0].channels: must be an array of channel names");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a","channels":[]}]})"),
      "carriers[0].channels: must not be empty");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a","addresses":{"pager":"123"}}]})"),
      R"(carriers[0].addresses: unknown channel "pager")");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a","addresses":{"sms":""}}]})"),
      "carriers[0].addresses.sms: must not be empty");
  EXPECT_EQ(
      error_of(
          R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[{"carrier_id":"a","addresses":["x"]}]})"),
      "carriers[0].addresses: must be an object");
}

TEST(registry_record, more_than_eight_carriers_are_rejected) {
  std::string json = R"({"op":"upsert_user","user_id":"u1","profile":{},"carriers":[)";
  for (int i = 0; i < 9; ++i)
    json += (i ? "," : "") + std::string(R"({"carrier_id":"c)") + std::to_string(i) + "\"}";
  json += "]}";
  EXPECT_EQ(error_of(json), "carriers: more than 8 carriers (9)");
}

TEST(registry_record, birth_year_must_be_an_integer_in_range) {
  auto with_year = [](std::string y) {
    return error_of(R"({"op":"upsert_user","user_id":"u1","profile":{"birth_year":)" + y + "}}");
  };
  EXPECT_EQ(with_year("1900"), "(parsed)");
  EXPECT_EQ(with_year("2100"), "(parsed)");
  EXPECT_EQ(with_year("1899"), "profile.birth_year: out of range 1900..2100");
  EXPECT_EQ(with_year("2101"), "profile.birth_year: out of range 1900..2100");
  EXPECT_EQ(with_year("-5"), "profile.birth_year: out of range 1900..2100");
  EXPECT_EQ(with_year("18446744073709551615"), "profile.birth_year: out of range 1900..2100");
  EXPECT_EQ(with_year("1996.5"), "profile.birth_year: must be an integer");
  EXPECT_EQ(with_year("\"1996\""), "profile.birth_year: must be a number");
}

TEST(registry_record, errors_never_quote_personal_data) {
  const std::string secret_msisdn = "+819012345678";
  const std::string secret_email = "secret.person@example.jp";
  const std::string cases[] = {
      R"({"op":"upsert_user","user_id":"u1","profile":{"msisdn":")" + secret_msisdn +
          R"(","email":)" + "5}}",
      R"({"op":"upsert_user","user_id":"u1","profile":{"email":")" + secret_email +
          R"(","msisdn":[]}})",
      R"({"op":"upsert_user","user_id":"u1","profile":{"email":")" + secret_email +
          std::string(300, 'x') + "\"}}",
      R"({"op":"upsert_user","user_id":"u1","profile":{"email":")" + secret_email + R"(\u0000"}})",
      R"({"op":"upsert_user","user_id":"u1","profile":{"msisdn":")" + secret_msisdn +
          R"("},"carriers":[{"carrier_id":"a","addresses":{"sms":")" + secret_msisdn +
          R"(","fax":")" + secret_msisdn + R"("}}]})",
      R"({"op":")" + secret_email + R"(","user_id":"u1"})",
      R"({"op":"upsert_user","user_id":"u1","profile":{"msisdn":")" + secret_msisdn +
          R"("},"carriers":[{"carrier_id":"a","channels":[")" + secret_msisdn + R"("]}]})",
      R"({"op":"upsert_user","user_id":"u1","profile":{"msisdn":")" + secret_msisdn +
          "\"",  // truncated JSON
  };
  for (const auto& json : cases) {
    const std::string msg = error_of(json);
    EXPECT_NE(msg, "(parsed)") << json;
    EXPECT_EQ(msg.find("819012345678"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("secret"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(registry_record, oversized_records_are_rejected) {
  std::string big =
      R"({"op":"delete_user","user_id":"u1","pad":")" + std::string(2u << 20, 'x') + "\"}";
  EXPECT_EQ(error_of(big).rfind("record: larger than", 0), 0u);
}

TEST(registry_record, parser_is_reusable_after_errors) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(parse_registry_record("{").ok());
    auto ok = parse_registry_record(kFullUpsert);
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok->user_profile.region, "tokyo");
  }
}

}  // namespace
}  // namespace relay
