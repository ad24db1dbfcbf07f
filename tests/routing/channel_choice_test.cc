#include "routing/channel_choice.h"

#include <gtest/gtest.h>

#include <vector>

namespace relay {
namespace {

constexpr channel kRcs = channel::rcs, kSms = channel::sms, kEmail = channel::email;
const std::vector<channel> kAll = {kRcs, kSms, kEmail};

engagement_dims segment_dims(uint8_t hour, channel ch = kSms) {
  engagement_dims d;
  d.company = "acme";
  d.gender = "f";
  d.age_band = 3;
  d.local_hour = hour;
  d.ch = ch;
  return d;
}

void add_cell(segment_model& m, uint8_t hour, channel ch, uint64_t sent, uint64_t opened) {
  m.add(segment_dims(hour, ch), engagement_count::sent, sent);
  m.add(segment_dims(hour, ch), engagement_count::opened, opened);
}

choice pick(channel_mode mode, const std::vector<channel>& order, uint8_t reachable,
            const user_record* user = nullptr, const segment_model* model = nullptr,
            const engagement_dims* dims = nullptr) {
  static const segment_model empty;
  return choose_channel({mode, order, reachable, user, dims}, model ? *model : empty, {});
}

std::vector<channel> channels_of(const choice& c) { return {c.picked().begin(), c.picked().end()}; }

TEST(channel_choice, specified_fallback_and_resend_take_the_first_reachable_of_order) {
  for (channel_mode mode :
       {channel_mode::specified, channel_mode::fallback, channel_mode::resend}) {
    EXPECT_EQ(channels_of(pick(mode, kAll, kAllChannels)), std::vector<channel>{kRcs});
    EXPECT_EQ(channels_of(pick(mode, kAll, channel_bit(kSms) | channel_bit(kEmail))),
              std::vector<channel>{kSms});
    EXPECT_EQ(channels_of(pick(mode, {kEmail, kSms}, kAllChannels)), std::vector<channel>{kEmail});
    EXPECT_TRUE(pick(mode, {kRcs}, channel_bit(kSms)).empty());
  }
}

TEST(channel_choice, next_fallback_skips_tried_and_unreachable_channels) {
  const uint8_t reach = channel_bit(kRcs) | channel_bit(kEmail);
  EXPECT_EQ(next_fallback(kAll, reach, 0), kRcs);
  EXPECT_EQ(next_fallback(kAll, reach, channel_bit(kRcs)), kEmail);  // sms unreachable
  EXPECT_EQ(next_fallback(kAll, reach, channel_bit(kRcs) | channel_bit(kEmail)), std::nullopt);
}

TEST(channel_choice, simultaneous_sends_on_every_reachable_channel_of_order) {
  EXPECT_EQ(channels_of(pick(channel_mode::simultaneous, kAll, kAllChannels)), kAll);
  EXPECT_EQ(channels_of(pick(channel_mode::simultaneous, {kEmail, kRcs, kSms},
                             channel_bit(kRcs) | channel_bit(kEmail))),
            (std::vector<channel>{kEmail, kRcs}));
  EXPECT_TRUE(pick(channel_mode::simultaneous, kAll, 0).empty());
  // A channel listed twice is sent once.
  EXPECT_EQ(channels_of(pick(channel_mode::simultaneous, {kSms, kSms}, kAllChannels)),
            std::vector<channel>{kSms});
}

TEST(channel_choice, preferred_picks_the_channel_the_user_opened_most) {
  user_record u;
  u.sent = {10, 10, 10};
  u.opened = {1, 6, 3};
  EXPECT_EQ(channels_of(pick(channel_mode::preferred, kAll, kAllChannels, &u)),
            std::vector<channel>{kSms});
  // Unreachable now: the next most opened.
  EXPECT_EQ(
      channels_of(pick(channel_mode::preferred, kAll, channel_bit(kRcs) | channel_bit(kEmail), &u)),
      std::vector<channel>{kEmail});
  // Equal opens: the higher open rate.
  u.sent = {10, 20, 10};
  u.opened = {0, 6, 6};
  EXPECT_EQ(channels_of(pick(channel_mode::preferred, kAll, kAllChannels, &u)),
            std::vector<channel>{kEmail});
  // Equal opens and rates: order decides.
  u.sent = {0, 10, 10};
  EXPECT_EQ(channels_of(pick(channel_mode::preferred, {kEmail, kSms}, kAllChannels, &u)),
            std::vector<channel>{kEmail});
  EXPECT_EQ(channels_of(pick(channel_mode::preferred, {kSms, kEmail}, kAllChannels, &u)),
            std::vector<channel>{kSms});
}

TEST(channel_choice, preferred_without_opens_falls_back_to_order) {
  user_record u;
  u.sent = {5, 5, 5};
  EXPECT_EQ(channels_of(pick(channel_mode::preferred, {kEmail, kRcs}, kAllChannels, &u)),
            std::vector<channel>{kEmail});
  EXPECT_EQ(channels_of(pick(channel_mode::preferred, {kEmail, kRcs}, channel_bit(kRcs), nullptr)),
            std::vector<channel>{kRcs});
  // Opens only on an unreachable channel count for nothing.
  u.opened = {0, 0, 4};
  EXPECT_EQ(channels_of(pick(channel_mode::preferred, {kEmail, kRcs, kSms},
                             channel_bit(kRcs) | channel_bit(kSms), &u)),
            std::vector<channel>{kRcs});
}

TEST(channel_choice, best_prefers_the_channel_with_the_higher_rate_in_the_segment_and_hour) {
  segment_model m;
  // Overall sms is better, but for this segment at 20h email wins clearly.
  add_cell(m, 9, kSms, 5000, 2000);
  add_cell(m, 9, kEmail, 5000, 500);
  add_cell(m, 20, kSms, 1000, 100);
  add_cell(m, 20, kEmail, 1000, 350);
  const engagement_dims at20 = segment_dims(20), at9 = segment_dims(9);
  EXPECT_EQ(channels_of(pick(channel_mode::best, {kSms, kEmail}, kAllChannels, nullptr, &m, &at20)),
            std::vector<channel>{kEmail});
  EXPECT_EQ(channels_of(pick(channel_mode::best, {kSms, kEmail}, kAllChannels, nullptr, &m, &at9)),
            std::vector<channel>{kSms});
  // Unreachable winner: the other.
  EXPECT_EQ(
      channels_of(pick(channel_mode::best, {kSms, kEmail}, channel_bit(kSms), nullptr, &m, &at20)),
      std::vector<channel>{kSms});
  EXPECT_TRUE(
      pick(channel_mode::best, {kSms, kEmail}, channel_bit(kRcs), nullptr, &m, &at20).empty());
  // An unseen segment follows the overall rates (the prior).
  engagement_dims other = segment_dims(20);
  other.gender = "m";
  EXPECT_EQ(
      channels_of(pick(channel_mode::best, {kEmail, kSms}, kAllChannels, nullptr, &m, &other)),
      std::vector<channel>{kSms});
}

// A simulated stream of recipients of one segment × hour: each choice is sent
// (and counted, as the fan-out does), and opened at the channel's true rate.
struct simulation {
  segment_model model;
  std::array<double, kChannelCount> true_rate{};
  std::array<double, kChannelCount> open_debt{};
  std::array<int, kChannelCount> picks{};

  channel step(const std::vector<channel>& order, uint8_t reachable) {
    const engagement_dims d = segment_dims(9);
    const choice c = choose_channel({channel_mode::best, order, reachable, nullptr, &d}, model, {});
    const channel ch = c.channels[0];
    const auto i = static_cast<size_t>(ch);
    ++picks[i];
    model.add(segment_dims(9, ch), engagement_count::sent, 1);
    open_debt[i] += true_rate[i];
    if (open_debt[i] >= 1) {
      open_debt[i] -= 1;
      model.add(segment_dims(9, ch), engagement_count::opened, 1);
    }
    return ch;
  }
};

TEST(channel_choice, best_explores_a_new_channel_and_stops_once_it_is_known_to_be_worse) {
  simulation s;
  s.true_rate = {0.10, 0.30, 0.0};  // rcs (new here) is worse than sms
  // History: sms well known in this segment and hour; rcs known elsewhere at 10 %.
  add_cell(s.model, 9, kSms, 2000, 600);
  engagement_dims elsewhere = segment_dims(14, kRcs);
  elsewhere.gender = "m";
  s.model.add(elsewhere, engagement_count::sent, 1000);
  s.model.add(elsewhere, engagement_count::opened, 100);

  const std::vector<channel> order = {kSms, kRcs};
  std::array<int, kChannelCount> first_500{};
  for (int i = 0; i < 500; ++i) ++first_500[static_cast<size_t>(s.step(order, kAllChannels))];
  EXPECT_GE(first_500[0], 5) << "rcs was not explored";
  EXPECT_GT(first_500[1], 450);

  for (int i = 0; i < 20000; ++i) s.step(order, kAllChannels);
  std::array<int, kChannelCount> last{};
  for (int i = 0; i < 5000; ++i) ++last[static_cast<size_t>(s.step(order, kAllChannels))];
  EXPECT_LT(last[0], 5000 / 100) << "still exploring rcs after its rate is known";
  const int32_t seg = s.model.find(segment_dims(9));
  const open_counts rcs = s.model.cell(seg, 9, kRcs);
  EXPECT_GE(rcs.sent, 20u);
  EXPECT_LT(rcs.sent, 200u);  // exploration cost stays bounded (grows with ln of the sends)
  // Known to be worse: rcs's mean plus its optimism stays under sms's score.
  const engagement_dims d = segment_dims(9);
  const choice_explanation e =
      explain_channel({channel_mode::best, order, kAllChannels, nullptr, &d}, s.model, {});
  ASSERT_EQ(e.scores.size(), 2u);
  EXPECT_LT(e.scores[1].posterior_mean, 0.15);
  EXPECT_LT(e.scores[1].score, e.scores[0].score);
}

TEST(channel_choice, best_adopts_a_channel_that_is_better_here_than_elsewhere) {
  simulation s;
  s.true_rate = {0.45, 0.30, 0.0};  // rcs: 10 % elsewhere, 45 % in this segment and hour
  add_cell(s.model, 9, kSms, 2000, 600);
  engagement_dims elsewhere = segment_dims(14, kRcs);
  elsewhere.gender = "m";
  s.model.add(elsewhere, engagement_count::sent, 1000);
  s.model.add(elsewhere, engagement_count::opened, 100);
  const std::vector<channel> order = {kSms, kRcs};
  for (int i = 0; i < 3000; ++i) s.step(order, kAllChannels);
  std::array<int, kChannelCount> last{};
  for (int i = 0; i < 1000; ++i) ++last[static_cast<size_t>(s.step(order, kAllChannels))];
  EXPECT_GT(last[0], 900);
}

TEST(channel_choice, best_switches_to_a_new_channel_that_proves_better) {
  simulation s;
  s.true_rate = {0.50, 0.20, 0.0};
  add_cell(s.model, 9, kSms, 2000, 400);
  // rcs never used anywhere: the prior starts at 0.5, so it is tried at once.
  const std::vector<channel> order = {kSms, kRcs};
  for (int i = 0; i < 3000; ++i) s.step(order, kAllChannels);
  std::array<int, kChannelCount> last{};
  for (int i = 0; i < 1000; ++i) ++last[static_cast<size_t>(s.step(order, kAllChannels))];
  EXPECT_GT(last[0], 950);
}

TEST(channel_choice, best_is_deterministic_and_explain_agrees_with_the_choice) {
  segment_model m;
  add_cell(m, 9, kSms, 400, 100);
  add_cell(m, 9, kEmail, 30, 12);
  add_cell(m, 9, kRcs, 3, 0);
  const engagement_dims d = segment_dims(9);
  const choice_input in{channel_mode::best, kAll, kAllChannels, nullptr, &d};
  const choice a = choose_channel(in, m, {});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(channels_of(choose_channel(in, m, {})), channels_of(a));
  const choice_explanation e = explain_channel(in, m, {});
  EXPECT_EQ(channels_of(e.picked), channels_of(a));
  ASSERT_EQ(e.scores.size(), 3u);
  double top = -1;
  channel top_ch = kRcs;
  for (const channel_score& s : e.scores) {
    EXPECT_NEAR(s.score, s.posterior_mean + s.bonus, 1e-12);
    if (s.score > top) top = s.score, top_ch = s.ch;
  }
  EXPECT_EQ(top_ch, a.channels[0]);
  const channel_score& sms = e.scores[1];
  EXPECT_EQ(sms.cell.sent, 400u);
  EXPECT_EQ(sms.cell.opened, 100u);
  EXPECT_NEAR(sms.prior_mean, 101.0 / 402.0, 1e-12);
  EXPECT_NEAR(sms.posterior_mean, (100 + 20 * sms.prior_mean) / 420.0, 1e-12);
  EXPECT_NE(e.reason.find("opened 100 of 400 here"), std::string::npos) << e.reason;
  EXPECT_NE(e.reason.find("gender=f age_band=30-39 at 09h"), std::string::npos) << e.reason;
}

TEST(channel_choice, explain_says_why_in_every_mode) {
  user_record u;
  u.sent = {4, 9, 2};
  u.opened = {1, 5, 0};
  const uint8_t no_rcs = channel_bit(kSms) | channel_bit(kEmail);
  segment_model m;
  auto why = [&](channel_mode mode, uint8_t reach) {
    return explain_channel({mode, kAll, reach, &u, nullptr}, m, {}).reason;
  };
  EXPECT_EQ(why(channel_mode::specified, no_rcs),
            "specified: sms, the first reachable channel of order [rcs (unreachable), sms, email]");
  EXPECT_EQ(why(channel_mode::preferred, kAllChannels),
            "preferred: sms, the channel this user opens most: rcs opened 1 of 4 sent; sms opened "
            "5 of 9 sent; email opened 0 of 2 sent");
  EXPECT_EQ(why(channel_mode::simultaneous, no_rcs),
            "simultaneous: every reachable channel of order [rcs (unreachable), sms, email]");
  EXPECT_EQ(why(channel_mode::fallback, 0),
            "fallback: no channel of order [rcs (unreachable), sms (unreachable), email "
            "(unreachable)] is reachable");
}

}  // namespace
}  // namespace relay
