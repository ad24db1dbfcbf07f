#include "routing/segment_model.h"

#include <gtest/gtest.h>

namespace relay {
namespace {

engagement_dims dims(std::string_view gender, uint8_t age_band, std::string_view region,
                     uint8_t hour, channel ch) {
  engagement_dims d;
  d.company = "acme";
  d.carrier = "carrier-a";
  d.gender = gender;
  d.age_band = age_band;
  d.region = region;
  d.local_hour = hour;
  d.ch = ch;
  return d;
}

TEST(segment_model, counts_sends_and_opens_per_segment_hour_and_channel) {
  segment_model m;
  m.add(dims("f", 3, "tokyo", 9, channel::sms), engagement_count::sent, 10);
  m.add(dims("f", 3, "tokyo", 9, channel::sms), engagement_count::opened, 4);
  m.add(dims("f", 3, "tokyo", 9, channel::email), engagement_count::sent, 5);
  m.add(dims("f", 3, "tokyo", 10, channel::sms), engagement_count::sent, 7);
  m.add(dims("m", 3, "tokyo", 9, channel::sms), engagement_count::sent, 100);
  m.add(dims("f", 3, "tokyo", 9, channel::sms), engagement_count::clicked, 3);  // not kept

  const int32_t f30 = m.find(dims("f", 3, "tokyo", 0, channel::rcs));
  ASSERT_NE(f30, kNoSegment);
  EXPECT_EQ(m.cell(f30, 9, channel::sms).sent, 10u);
  EXPECT_EQ(m.cell(f30, 9, channel::sms).opened, 4u);
  EXPECT_EQ(m.cell(f30, 9, channel::email).sent, 5u);
  EXPECT_EQ(m.cell(f30, 10, channel::sms).sent, 7u);
  EXPECT_EQ(m.cell(f30, 11, channel::sms).sent, 0u);
  EXPECT_EQ(m.total(channel::sms).sent, 117u);
  EXPECT_EQ(m.total(channel::sms).opened, 4u);
  EXPECT_EQ(m.segment_count(), 2u);
  EXPECT_EQ(m.describe(f30), "gender=f age_band=30-39");
}

TEST(segment_model, only_the_configured_attributes_split_segments) {
  segment_model by_default;
  by_default.add(dims("f", 3, "tokyo", 9, channel::sms), engagement_count::sent, 1);
  by_default.add(dims("f", 3, "osaka", 9, channel::sms), engagement_count::sent, 1);
  EXPECT_EQ(by_default.segment_count(), 1u);
  EXPECT_EQ(
      by_default.cell(by_default.find(dims("f", 3, "nagoya", 9, channel::sms)), 9, channel::sms)
          .sent,
      2u);

  segment_model by_region(seg_region);
  by_region.add(dims("f", 3, "tokyo", 9, channel::sms), engagement_count::sent, 1);
  by_region.add(dims("m", 5, "tokyo", 9, channel::sms), engagement_count::sent, 1);
  by_region.add(dims("f", 3, "osaka", 9, channel::sms), engagement_count::sent, 1);
  EXPECT_EQ(by_region.segment_count(), 2u);
  EXPECT_EQ(by_region.find(dims("x", 1, "nagoya", 9, channel::sms)), kNoSegment);
  EXPECT_EQ(by_region.describe(by_region.find(dims("", 0, "tokyo", 0, channel::sms))),
            "region=tokyo");
}

TEST(segment_model, an_unknown_hour_and_unknown_attributes_have_their_own_cells) {
  segment_model m;
  m.add(dims("", kAgeBandUnknown, "", kUnknownHour, channel::rcs), engagement_count::sent, 3);
  const int32_t s = m.find(dims("", kAgeBandUnknown, "", 5, channel::rcs));
  ASSERT_NE(s, kNoSegment);
  EXPECT_EQ(m.cell(s, kUnknownHour, channel::rcs).sent, 3u);
  EXPECT_EQ(m.cell(s, 5, channel::rcs).sent, 0u);
  EXPECT_EQ(m.describe(s), "gender=? age_band=?");
  EXPECT_EQ(m.cell(kNoSegment, 5, channel::rcs).sent, 0u);
}

}  // namespace
}  // namespace relay
