#include "daemon/event_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace relay {
namespace {

TEST(EventJson, fields_that_do_not_apply_are_left_out) {
  std::string out;
  encode_event({.type = "accepted", .job_id = "j1", .company_id = "acme", .at_unix_ms = 1795435200123}, out);
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["type"], "accepted");
  EXPECT_EQ(j["job_id"], "j1");
  EXPECT_EQ(j["company_id"], "acme");
  EXPECT_FALSE(j.contains("user_id"));
  EXPECT_FALSE(j.contains("reason"));
  EXPECT_EQ(j["at"], "2026-11-23T12:00:00.123Z");
}

TEST(EventJson, detail_text_is_escaped_into_valid_json) {
  std::string out;
  encode_event({.type = "rejected", .reason = "invalid_job", .detail = "bad \"quote\" \\ \n\x01 end",
                .at_unix_ms = 0},
               out);
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["detail"], "bad \"quote\" \\ \n\x01 end");
  EXPECT_EQ(j["at"], "1970-01-01T00:00:00.000Z");
}

TEST(EventJson, timestamps_in_the_same_second_and_across_seconds_are_right) {
  std::string a, b, c;
  append_rfc3339(a, 1795435200999);
  append_rfc3339(b, 1795435201000);
  append_rfc3339(c, 1795435200001);
  EXPECT_EQ(a, "2026-11-23T12:00:00.999Z");
  EXPECT_EQ(b, "2026-11-23T12:00:01.000Z");
  EXPECT_EQ(c, "2026-11-23T12:00:00.001Z");
}

}  // namespace
}  // namespace relay
