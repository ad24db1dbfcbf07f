#include "routing/message_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace relay {
namespace {

TEST(MessageId, is_32_lower_case_hex_digits) {
  const message_id id = make_message_id("acme-20261124-0001", "u1", channel::sms);
  for (const char c : id) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << c;
  EXPECT_EQ(view(id).size(), 32u);
}

TEST(MessageId, same_job_user_and_channel_give_the_same_id) {
  EXPECT_EQ(make_message_id("job-1", "user-1", channel::rcs),
            make_message_id("job-1", "user-1", channel::rcs));
  const std::string job = "job-1";
  const std::string user = "user-1";
  EXPECT_EQ(make_message_id(job, user, channel::email),
            make_message_id("job-1", "user-1", channel::email));
}

TEST(MessageId, differs_by_job_user_and_channel) {
  std::set<std::string> ids;
  for (const char* job : {"job-1", "job-2"}) {
    for (const char* user : {"u1", "u2", "u10"}) {
      for (const channel ch : {channel::rcs, channel::sms, channel::email}) {
        ids.emplace(view(make_message_id(job, user, ch)));
      }
    }
  }
  EXPECT_EQ(ids.size(), 2u * 3u * 3u);
}

TEST(MessageId, separators_keep_shifted_boundaries_apart) {
  // "ab" + "c" and "a" + "bc" concatenate to the same bytes without separators.
  EXPECT_NE(make_message_id("ab", "c", channel::sms), make_message_id("a", "bc", channel::sms));
  EXPECT_NE(make_message_id("", "u1", channel::sms), make_message_id("u1", "", channel::sms));
}

// The ids are recorded in RocksDB and handed to carriers that de-duplicate on
// them: if this value ever changes, a restart after an upgrade would send
// every in-flight message twice. Independently checked with
//   printf 'acme-20261124-0001\0u1\0sms' | xxhsum -H2
TEST(MessageId, known_value_never_changes) {
  EXPECT_EQ(view(make_message_id("acme-20261124-0001", "u1", channel::sms)),
            "d031d49becb7fdafe0cf3ee32763fce3");
}

TEST(MessageId, resends_and_follow_ups_are_messages_of_their_own) {
  const message_id first = make_message_id("j", "u1", channel::sms);
  EXPECT_EQ(make_message_id("j", "u1", channel::sms, 0), first);
  EXPECT_NE(make_message_id("j", "u1", channel::sms, 1), first);
  EXPECT_NE(make_message_id("j", "u1", channel::sms, 1), make_message_id("j", "u1", channel::sms, 2));
  EXPECT_NE(make_message_id("j", "u1", channel::sms, kFollowUpStep), first);
}

// Checked with printf 'acme-20261124-0001\0u1\0sms\0\001' | xxhsum -H2
TEST(MessageId, known_resend_value_never_changes) {
  EXPECT_EQ(view(make_message_id("acme-20261124-0001", "u1", channel::sms, 1)), "c8701b1125aed9ace62a0e10a94d8b16");
}

}  // namespace
}  // namespace relay
