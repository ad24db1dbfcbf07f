// rcs_rbm's protocol code without a network: the AgentMessage bodies built
// from relay's content, the API's error bodies, the config, and the Pub/Sub
// webhooks (signatures made here with OpenSSL's HMAC) through the plug-in's
// on_webhook exactly as relay's HTTP server calls it.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plugins/rcs_rbm/agent_message.h"
#include "plugins/rcs_rbm/rbm_config.h"
#include "plugins/rcs_rbm/rbm_response.h"
#include "plugins/rcs_rbm/webhook.h"
#include "tests/plugin_test_support.h"

namespace relay::test {
namespace {

using json = nlohmann::json;
namespace rbm = relay::rcs_rbm;

json body_of(const std::string& content, rbm::millis ttl = rbm::millis(0)) {
  const rbm::built_message b = rbm::build_agent_message(content, ttl);
  EXPECT_EQ(b.error, "");
  return b.body.empty() ? json() : json::parse(b.body);
}

std::string error_of(const std::string& content) {
  const rbm::built_message b = rbm::build_agent_message(content, rbm::millis(0));
  EXPECT_TRUE(b.body.empty());
  return b.error;
}

// ---- AgentMessage bodies ----------------------------------------------------

TEST(rcs_rbm_body, text_becomes_content_message_text) {
  EXPECT_EQ(body_of(R"({"text":"Hello ☀"})"),
            json::parse(R"({"contentMessage":{"text":"Hello ☀"}})"));
}

TEST(rcs_rbm_body, ttl_config_becomes_agent_message_ttl_duration) {
  EXPECT_EQ(body_of(R"({"text":"Hi"})", std::chrono::hours(24))["ttl"], "86400s");
  EXPECT_EQ(body_of(R"({"text":"Hi"})", rbm::millis(1500))["ttl"], "1.5s");
}

TEST(rcs_rbm_body, link_becomes_an_open_url_suggested_action) {
  const json b = body_of(R"({"text":"Sale","link":"https://relay.example/t/c/TOKEN"})");
  EXPECT_EQ(b["contentMessage"]["text"], "Sale");
  EXPECT_EQ(b["contentMessage"]["suggestions"], json::parse(R"([{"action":{"text":"Open",
    "postbackData":"open_link","openUrlAction":{"url":"https://relay.example/t/c/TOKEN"}}}])"));
}

TEST(rcs_rbm_body, suggestions_become_replies_and_actions_in_order) {
  const json b = body_of(R"({"text":"Come?","rcs":{"suggestions":[
      {"reply":"Yes","postback":"yes"},{"reply":"No"},
      {"open_url":"https://acme.example/map","text":"Map"},{"dial":"+81312345678","text":"Call us"}]}})");
  EXPECT_EQ(b["contentMessage"]["suggestions"], json::parse(R"([
      {"reply":{"text":"Yes","postbackData":"yes"}},
      {"reply":{"text":"No","postbackData":"No"}},
      {"action":{"text":"Map","postbackData":"open_url","openUrlAction":{"url":"https://acme.example/map"}}},
      {"action":{"text":"Call us","postbackData":"dial","dialAction":{"phoneNumber":"+81312345678"}}}])"));
}

TEST(rcs_rbm_body, card_becomes_a_standalone_rich_card_with_media_and_card_suggestions) {
  const json b = body_of(R"({"text":"fallback text","link":"https://t.example/c/1","rcs":{"card":{
      "title":"Autumn sale","description":"Up to 50% off","media_url":"https://cdn.example/a.jpg",
      "media_height":"TALL","suggestions":[{"reply":"Later","postback":"later"}]},
      "suggestions":[{"reply":"Stop","postback":"stop"}],"link_text":"Shop now"}})");
  EXPECT_EQ(b, json::parse(R"({"contentMessage":{
      "richCard":{"standaloneCard":{"cardOrientation":"VERTICAL","cardContent":{
        "title":"Autumn sale","description":"Up to 50% off",
        "media":{"height":"TALL","contentInfo":{"fileUrl":"https://cdn.example/a.jpg"}},
        "suggestions":[
          {"action":{"text":"Shop now","postbackData":"open_link","openUrlAction":{"url":"https://t.example/c/1"}}},
          {"reply":{"text":"Later","postbackData":"later"}}]}}},
      "suggestions":[{"reply":{"text":"Stop","postbackData":"stop"}}]}})"));
}

TEST(rcs_rbm_body, card_without_description_takes_the_text_and_horizontal_cards_get_an_alignment) {
  const json b =
      body_of(R"({"text":"Hello","rcs":{"card":{"title":"T","media_url":"https://cdn.example/a.jpg",
      "orientation":"HORIZONTAL"}}})");
  const json& card = b["contentMessage"]["richCard"]["standaloneCard"];
  EXPECT_EQ(card["cardOrientation"], "HORIZONTAL");
  EXPECT_EQ(card["thumbnailImageAlignment"], "LEFT");
  EXPECT_EQ(card["cardContent"]["description"], "Hello");
  EXPECT_EQ(card["cardContent"]["media"]["height"], "MEDIUM");
}

TEST(rcs_rbm_body, other_content_members_are_ignored) {
  EXPECT_EQ(body_of(R"({"text":"Hi","subject":"S","html":"<p>x</p>","x-custom":{"a":[1,2]}})"),
            json::parse(R"({"contentMessage":{"text":"Hi"}})"));
}

TEST(rcs_rbm_body, content_that_can_never_be_sent_fails_with_the_reason) {
  EXPECT_NE(error_of("{not json").find("content_json:"), std::string::npos);
  EXPECT_EQ(error_of(R"(["text"])"), "content_json is not a JSON object");
  EXPECT_EQ(error_of(R"({"subject":"only"})"), "content has neither text nor rcs.card");
  EXPECT_EQ(error_of(R"({"text":"x","rcs":{"crad":{}}})"), "rcs.crad: unknown field");
  EXPECT_EQ(error_of(R"({"text":"x","rcs":{"card":{"titel":"T"}}})"),
            "rcs.card.titel: unknown field");
  EXPECT_EQ(
      error_of(R"({"text":"x","rcs":{"suggestions":[{"reply":"A very long reply text of 30+"}]}})"),
      "rcs.suggestions[0] text exceeds 25 characters");
  EXPECT_EQ(
      error_of(R"({"text":"x","rcs":{"suggestions":[{"reply":"a","open_url":"https://x"}]}})"),
      "rcs.suggestions[0] needs exactly one of reply, open_url, dial");
  EXPECT_EQ(error_of(R"({"text":"x","link":"ftp://files.example/x"})"),
            "content.link must be an http(s) URL");
  EXPECT_EQ(error_of(R"({"text":"x","rcs":{"card":{"title":"T","media_height":"HUGE"}}})"),
            "rcs.card.media_height must be SHORT, MEDIUM or TALL");
  std::string many = R"({"text":"x","rcs":{"suggestions":[)";
  for (int k = 0; k < 12; ++k)
    many += std::string(k ? "," : "") + R"({"reply":"r)" + std::to_string(k) + "\"}";
  EXPECT_EQ(error_of(many + "]}}"), "rcs.suggestions: at most 11 suggestions");
  EXPECT_EQ(error_of(R"({"text":")" + std::string(3073, 'a') + "\"}"),
            "content.text exceeds 3072 characters");
}

// ---- API answers -------------------------------------------------------------

TEST(rcs_rbm_response, google_error_body_is_parsed_into_code_status_and_message) {
  const auto e = rbm::parse_api_error(
      429, R"({"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED"}})",
      "");
  EXPECT_EQ(e.code, 429);
  EXPECT_EQ(e.status, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(rbm::error_detail(e), "RBM 429 RESOURCE_EXHAUSTED: Quota exceeded.");
}

TEST(rcs_rbm_response, error_without_google_body_falls_back_to_the_http_status) {
  EXPECT_EQ(rbm::error_detail(rbm::parse_api_error(503, "<html>Service Unavailable</html>", "")),
            "RBM 503 UNAVAILABLE");
}

TEST(rcs_rbm_response, phone_numbers_never_reach_the_detail) {
  const auto e = rbm::parse_api_error(
      404,
      R"({"error":{"code":404,"message":"Phone +819012345678 (09012345678) not found","status":"NOT_FOUND"}})",
      "+819012345678");
  EXPECT_EQ(rbm::error_detail(e), "RBM 404 NOT_FOUND: Phone <number> (<number>) not found");
}

TEST(rcs_rbm_response, outcomes_follow_the_status_classes) {
  auto o =
      rbm::classify_send(200, R"({"name":"phones/+819012345678/agentMessages/m1","sendTime":"x"})",
                         "+819012345678", "m1");
  EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(o.carrier_ref, "phones/+819012345678/agentMessages/m1");
  o = rbm::classify_send(
      409, R"({"error":{"code":409,"message":"exists","status":"ALREADY_EXISTS"}})", "+1555", "m1");
  EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(o.detail, "duplicate");
  for (int s : {429, 500, 503, 504, 401})
    EXPECT_EQ(rbm::classify_send(s, "", "+1555", "m1").status, RELAY_SUBMIT_RETRY) << s;
  for (int s : {400, 403, 404})
    EXPECT_EQ(rbm::classify_send(s, "", "+1555", "m1").status, RELAY_SUBMIT_FAILED) << s;
  EXPECT_EQ(
      rbm::classify_send(
          404,
          R"({"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}})",
          "+1555", "m1")
          .detail,
      "RBM 404 NOT_FOUND: Requested entity was not found.");
}

// ---- config ------------------------------------------------------------------

TEST(rcs_rbm_config, defaults_and_durations) {
  rbm::rbm_config c;
  ASSERT_EQ(rbm::parse_config({{"agent_id", "a"}, {"auth_token", "t"}}, c), "");
  EXPECT_TRUE(c.api.tls);
  EXPECT_EQ(c.api.host, "rcsbusinessmessaging.googleapis.com");
  EXPECT_EQ(c.api.port, "443");
  EXPECT_EQ(c.connections, 8u);
  EXPECT_EQ(c.request_timeout, std::chrono::seconds(10));
  EXPECT_EQ(c.capability_ttl, std::chrono::hours(1));
  EXPECT_EQ(c.replay_memory, 1'000'000u);
  ASSERT_EQ(rbm::parse_config({{"agent_id", "a"},
                               {"auth_token", "t"},
                               {"endpoint", "http://127.0.0.1:8088/rbm/"},
                               {"revoke_after", "24h"},
                               {"ttl", "90m"},
                               {"request_timeout", "250ms"}},
                              c),
            "");
  EXPECT_FALSE(c.api.tls);
  EXPECT_EQ(c.api.port, "8088");
  EXPECT_EQ(c.api.base_path, "/rbm");
  EXPECT_EQ(c.revoke_after, std::chrono::hours(24));
  EXPECT_EQ(c.ttl, std::chrono::minutes(90));
  EXPECT_EQ(c.request_timeout, std::chrono::milliseconds(250));
}

TEST(rcs_rbm_config, unknown_and_invalid_keys_are_rejected_naming_the_key) {
  rbm::rbm_config c;
  EXPECT_EQ(rbm::parse_config({{"agent_id", "a"}, {"auth_token", "t"}, {"conections", "4"}}, c)
                .rfind("conections: unknown key", 0),
            0u);
  EXPECT_EQ(rbm::parse_config({{"agent_id", "a"}, {"auth_token", "t"}, {"revoke_after", "soon"}}, c)
                .rfind("revoke_after:", 0),
            0u);
  EXPECT_EQ(rbm::parse_config({{"agent_id", "a"}, {"auth_token", "t"}, {"endpoint", "ftp://x"}}, c)
                .rfind("endpoint:", 0),
            0u);
  EXPECT_EQ(rbm::parse_config({{"auth_token", "t"}}, c), "agent_id: required");
  EXPECT_EQ(rbm::parse_config({{"agent_id", "a"}}, c).rfind("auth_token:", 0), 0u);
}

TEST(rcs_rbm_config, plugin_refuses_an_unknown_key) {
  plugin_under_test p("rcs_rbm");
  EXPECT_EQ(p.create({{"agent_id", "a"}, {"auth_token", "t"}, {"webhook_secert", "s"}})
                .rfind("webhook_secert: unknown key", 0),
            0u);
}

// ---- webhooks ------------------------------------------------------------------

std::string b64(const std::string& s) { return rbm::base64_encode(s); }

std::string sign(const std::string& secret, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha512(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &n);
  return b64(std::string(reinterpret_cast<const char*>(mac), n));
}

std::string push_body(const std::string& data) {
  return json{
      {"message",
       {{"data", b64(data)}, {"messageId", "123"}, {"publishTime", "2026-11-23T10:00:00Z"}}},
      {"subscription", "projects/p/subscriptions/s"}}
      .dump();
}

class rcs_rbm_webhook : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(p_.create({{"agent_id", "acme-agent"},
                         {"auth_token", "t"},
                         {"endpoint", "http://127.0.0.1:9"},
                         {"webhook_secret", kSecret},
                         {"replay_memory", "1000"}}),
              "");
  }
  // Posts `data` (the decoded event JSON) signed with `secret`.
  int post(const std::string& data, const std::string& secret = kSecret) {
    return p_.webhook("POST", "/hooks/carrier-a/rcs", {{"x-goog-signature", sign(secret, data)}},
                      push_body(data));
  }
  static constexpr const char* kSecret = "client-token-123";
  plugin_under_test p_{"rcs_rbm"};
};

TEST_F(rcs_rbm_webhook, delivered_and_read_become_delivered_and_opened_for_relays_message_id) {
  EXPECT_EQ(
      post(
          R"({"senderPhoneNumber":"+819012345678","eventType":"DELIVERED","eventId":"e1","messageId":"job-1.u1.rcs",
                     "sendTime":"2026-11-23T10:00:01.250Z","agentId":"acme-agent"})"),
      200);
  EXPECT_EQ(
      post(
          R"({"senderPhoneNumber":"+819012345678","eventType":"READ","eventId":"e2","messageId":"job-1.u1.rcs",
                     "sendTime":"2026-11-23T10:00:05Z","agentId":"acme-agent"})"),
      200);
  const auto events = p_.host().events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, RELAY_EVENT_DELIVERED);
  EXPECT_EQ(events[0].message_id, "job-1.u1.rcs");
  EXPECT_EQ(events[0].carrier_ref, "job-1.u1.rcs");
  EXPECT_EQ(events[0].at_unix_ms, 1795428001250);
  EXPECT_EQ(events[1].type, RELAY_EVENT_OPENED);
  EXPECT_EQ(events[1].message_id, "job-1.u1.rcs");
}

TEST_F(rcs_rbm_webhook, user_text_and_suggestion_reply_become_inbound_messages) {
  EXPECT_EQ(
      post(
          R"({"senderPhoneNumber":"+819012345678","messageId":"MxU1","sendTime":"2026-11-23T10:00:00Z",
                     "text":"Is the shop open?","agentId":"acme-agent"})"),
      200);
  EXPECT_EQ(
      post(
          R"({"senderPhoneNumber":"+819012345678","messageId":"MxU2","sendTime":"2026-11-23T10:00:00Z",
                     "suggestionResponse":{"postbackData":"yes","text":"Yes","type":"REPLY"},"agentId":"acme-agent"})"),
      200);
  const auto events = p_.host().events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, RELAY_EVENT_INBOUND);
  EXPECT_EQ(events[0].from, "+819012345678");
  EXPECT_EQ(events[0].to, "acme-agent");
  EXPECT_EQ(events[0].text, "Is the shop open?");
  EXPECT_EQ(events[1].text, "Yes");
  EXPECT_EQ(events[1].detail, "postbackData=yes");
}

TEST_F(rcs_rbm_webhook, is_typing_is_answered_200_and_ignored) {
  EXPECT_EQ(
      post(
          R"({"senderPhoneNumber":"+819012345678","eventType":"IS_TYPING","eventId":"e9","agentId":"a"})"),
      200);
  EXPECT_TRUE(p_.host().events().empty());
}

TEST_F(rcs_rbm_webhook, missing_signature_is_401_and_emits_nothing) {
  const std::string data = R"({"eventType":"DELIVERED","eventId":"e1","messageId":"m1"})";
  EXPECT_EQ(p_.webhook("POST", "/hooks/c/rcs", {}, push_body(data)), 401);
  EXPECT_TRUE(p_.host().events().empty());
}

TEST_F(rcs_rbm_webhook, signature_with_the_wrong_secret_is_401_and_emits_nothing) {
  EXPECT_EQ(post(R"({"eventType":"DELIVERED","eventId":"e1","messageId":"m1"})", "another-token"),
            401);
  EXPECT_EQ(p_.webhook("POST", "/hooks/c/rcs", {{"x-goog-signature", "not base64 !!"}},
                       push_body(R"({"eventType":"DELIVERED","eventId":"e1","messageId":"m1"})")),
            401);
  EXPECT_TRUE(p_.host().events().empty());
}

TEST_F(rcs_rbm_webhook, tampered_body_is_401_and_emits_nothing) {
  const std::string signed_data = R"({"eventType":"DELIVERED","eventId":"e1","messageId":"m1"})";
  const std::string tampered = R"({"eventType":"DELIVERED","eventId":"e1","messageId":"m2"})";
  EXPECT_EQ(p_.webhook("POST", "/hooks/c/rcs", {{"x-goog-signature", sign(kSecret, signed_data)}},
                       push_body(tampered)),
            401);
  EXPECT_TRUE(p_.host().events().empty());
}

TEST_F(rcs_rbm_webhook, replayed_event_or_user_message_is_409_and_counted_once) {
  const std::string ev =
      R"({"senderPhoneNumber":"+1555","eventType":"READ","eventId":"e-7","messageId":"m1"})";
  const std::string msg = R"({"senderPhoneNumber":"+1555","messageId":"u-7","text":"hi"})";
  EXPECT_EQ(post(ev), 200);
  EXPECT_EQ(post(ev), 409);
  EXPECT_EQ(post(msg), 200);
  EXPECT_EQ(post(msg), 409);
  EXPECT_EQ(p_.host().events().size(), 2u);
}

TEST_F(rcs_rbm_webhook, malformed_push_is_400_and_emits_nothing) {
  const auto raw = [&](const std::string& body, const std::string& sig = "c2ln") {
    return p_.webhook("POST", "/hooks/c/rcs", {{"x-goog-signature", sig}}, body);
  };
  EXPECT_EQ(raw("not json"), 400);
  EXPECT_EQ(raw(R"({"subscription":"s"})"), 400);
  EXPECT_EQ(raw(R"({"message":{"data":"%%%"}})"), 400);
  const std::string not_json = "{\"eventType\": DELIVERED";
  EXPECT_EQ(raw(push_body(not_json), sign(kSecret, not_json)), 400);
  const std::string no_id = R"({"eventType":"DELIVERED","eventId":"e1"})";
  EXPECT_EQ(raw(push_body(no_id), sign(kSecret, no_id)), 400);
  EXPECT_TRUE(p_.host().events().empty());
}

TEST(rcs_rbm_webhook_core, replay_memory_is_bounded_and_forgets_the_oldest) {
  rbm::replay_memory m(3);
  for (const char* k : {"a", "b", "c"}) EXPECT_TRUE(m.first_time(k));
  EXPECT_FALSE(m.first_time("a"));
  EXPECT_TRUE(m.first_time("d"));  // "a" forgotten now
  EXPECT_EQ(m.size(), 3u);
  EXPECT_TRUE(m.first_time("a"));
}

TEST(rcs_rbm_webhook_core, without_a_secret_every_webhook_is_refused) {
  rbm::replay_memory m(10);
  const std::string data = R"({"eventType":"DELIVERED","eventId":"e1","messageId":"m1"})";
  EXPECT_EQ(rbm::process_webhook("", sign("", data), push_body(data), m).http_status, 401);
}

TEST(rcs_rbm_webhook_core, rfc3339_times_with_offsets) {
  EXPECT_EQ(rbm::parse_rfc3339_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(rbm::parse_rfc3339_ms("2026-11-24T09:00:00.5+09:00"),
            rbm::parse_rfc3339_ms("2026-11-24T00:00:00.500Z"));
  EXPECT_EQ(rbm::parse_rfc3339_ms("yesterday"), 0);
}

}  // namespace
}  // namespace relay::test
