#include "routing/duration.h"

#include <gtest/gtest.h>

#include <chrono>

namespace relay {
namespace {

using std::chrono::milliseconds;

TEST(Duration, accepts_every_unit) {
  EXPECT_EQ(*parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(*parse_duration("30s"), milliseconds(30'000));
  EXPECT_EQ(*parse_duration("10m"), milliseconds(600'000));
  EXPECT_EQ(*parse_duration("2h"), milliseconds(7'200'000));
  EXPECT_EQ(*parse_duration("1d"), milliseconds(86'400'000));
}

TEST(Duration, zero_and_leading_zeros_are_accepted) {
  EXPECT_EQ(*parse_duration("0s"), milliseconds(0));
  EXPECT_EQ(*parse_duration("007m"), milliseconds(420'000));
}

TEST(Duration, rejects_malformed_text_with_a_clear_reason) {
  for (const char* bad : {"", "s", "10", "-5s", "+5s", "1.5h", "10 s", " 10s", "10s ", "10S",
                          "10sec", "1h30m", "ms", "10x", "1e3s"}) {
    auto r = parse_duration(bad);
    ASSERT_FALSE(r.ok()) << '"' << bad << '"';
    EXPECT_EQ(r.err().code, errc::invalid_argument);
    EXPECT_NE(r.err().message.find("expected a non-negative integer and a unit"), std::string::npos)
        << r.err().message;
  }
}

TEST(Duration, names_the_missing_or_unknown_unit) {
  EXPECT_NE(parse_duration("10").err().message.find("no unit"), std::string::npos);
  EXPECT_NE(parse_duration("10w").err().message.find("unknown unit"), std::string::npos);
}

TEST(Duration, rejects_values_that_overflow_milliseconds) {
  EXPECT_FALSE(parse_duration("99999999999999999999ms").ok());
  EXPECT_FALSE(parse_duration("9223372036854775807s").ok());
  EXPECT_FALSE(parse_duration("106751991168d").ok());  // just above INT64_MAX ms
  EXPECT_TRUE(parse_duration("106751991167d").ok());
  EXPECT_TRUE(parse_duration("9223372036854775807ms").ok());
  EXPECT_NE(parse_duration("99999999999999999999ms").err().message.find("too large"),
            std::string::npos);
}

TEST(Duration, error_does_not_echo_the_input) {
  auto r = parse_duration("secret-value");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace relay
