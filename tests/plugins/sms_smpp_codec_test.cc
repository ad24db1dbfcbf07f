// Unit tests of sms_smpp's protocol code (sms_smpp_core): PDUs, GSM 03.38 and
// UCS-2 text, splitting into concatenated parts, receipts, config, content.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plugins/sms_smpp/concat_assembler.h"
#include "plugins/sms_smpp/delivery_receipt.h"
#include "plugins/sms_smpp/message_content.h"
#include "plugins/sms_smpp/receipt_memory.h"
#include "plugins/sms_smpp/smpp_config.h"
#include "plugins/sms_smpp/smpp_pdu.h"
#include "plugins/sms_smpp/sms_text.h"
#include "plugins/sms_smpp/token_bucket.h"

namespace sms_smpp {
namespace {

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string unhex(std::string_view h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16));
  return out;
}

// ---------------------------------------------------------------------------
// PDUs

TEST(sms_smpp_codec, bind_transceiver_encodes_to_the_spec_layout_and_decodes_back) {
  std::string out;
  bind_transceiver b;
  b.system_id = "relay";
  b.password = "pw";
  b.system_type = "VMA";
  encode_bind_transceiver(out, 7, b);
  EXPECT_EQ(hex(out),
            "00000021"  // command_length 33
            "00000009"  // bind_transceiver
            "00000000"  // status
            "00000007"  // sequence
            "72656c617900"
            "707700"
            "564d4100"  // system_id, password, system_type
            "34"
            "00"
            "00"
            "00");  // interface_version, ton, npi, address_range
  auto p = decode(out);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->head.id, kBindTransceiver);
  EXPECT_EQ(p->head.sequence, 7u);
  ASSERT_TRUE(p->bind);
  EXPECT_EQ(p->bind->system_id, "relay");
  EXPECT_EQ(p->bind->password, "pw");
  EXPECT_EQ(p->bind->system_type, "VMA");
  EXPECT_EQ(p->bind->interface_version, 0x34);
}

TEST(sms_smpp_codec, submit_sm_round_trips_with_tlvs) {
  short_message_pdu sm;
  sm.source_addr_ton = 5;
  sm.source_addr = "ACME";
  sm.dest_addr_ton = 1;
  sm.dest_addr_npi = 1;
  sm.destination_addr = "819012345678";
  sm.esm_class = 0x40;
  sm.registered_delivery = 1;
  sm.data_coding = 8;
  sm.short_message = std::string("\x05\x00\x03\x2a\x02\x01\x30\x42", 8);
  sm.tlvs.push_back({0x0204, std::string("\x00\x01", 2)});  // user_message_reference
  std::string out;
  encode_short_message(out, kSubmitSm, 42, sm);
  auto p = decode(out);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->head.id, kSubmitSm);
  EXPECT_EQ(p->head.length, out.size());
  ASSERT_TRUE(p->sm);
  EXPECT_EQ(p->sm->source_addr, "ACME");
  EXPECT_EQ(p->sm->source_addr_ton, 5);
  EXPECT_EQ(p->sm->destination_addr, "819012345678");
  EXPECT_EQ(p->sm->esm_class, 0x40);
  EXPECT_EQ(p->sm->registered_delivery, 1);
  EXPECT_EQ(p->sm->data_coding, 8);
  EXPECT_EQ(p->sm->short_message, sm.short_message);
  ASSERT_EQ(p->sm->tlvs.size(), 1u);
  EXPECT_EQ(p->sm->tlvs[0].tag, 0x0204);
  EXPECT_EQ(p->sm->tlvs[0].value, std::string("\x00\x01", 2));
}

TEST(sms_smpp_codec, deliver_sm_receipt_tlvs_decode) {
  short_message_pdu sm;
  sm.esm_class = 0x04;
  sm.source_addr = "819012345678";
  sm.tlvs.push_back({kTagReceiptedMessageId, std::string("abc123\0", 7)});
  sm.tlvs.push_back({kTagMessageState, std::string("\x05", 1)});
  sm.tlvs.push_back({kTagNetworkErrorCode, std::string("\x03\x00\x01", 3)});
  std::string out;
  encode_short_message(out, kDeliverSm, 9, sm);
  auto p = decode(out);
  ASSERT_TRUE(p && p->sm);
  const auto r = read_receipt(*p->sm);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->smsc_id, "abc123");
  EXPECT_EQ(r->state, receipt_state::undeliverable);
  EXPECT_EQ(r->stat, "UNDELIV");
  EXPECT_EQ(r->err, "3:1");
}

TEST(sms_smpp_codec, responses_enquire_link_unbind_and_generic_nack_round_trip) {
  std::string out;
  encode_message_id_resp(out, kSubmitSmResp, 0, 3, "5f2a");
  auto p = decode(out);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->head.id, kSubmitSmResp);
  EXPECT_EQ(p->message_id, "5f2a");

  // An error response without a body (allowed by SMPP 3.4 §4.4.2).
  out.clear();
  encode_empty(out, kSubmitSmResp, kRthrottled, 4);
  p = decode(out);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->head.status, 0x58u);
  EXPECT_EQ(p->message_id, "");

  for (uint32_t id : {kEnquireLink, kEnquireLinkResp, kUnbind, kUnbindResp, kGenericNack}) {
    out.clear();
    encode_empty(out, id, 0, 11);
    EXPECT_EQ(out.size(), 16u);
    p = decode(out);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->head.id, id);
    EXPECT_EQ(p->head.sequence, 11u);
  }
  out.clear();
  encode_message_id_resp(out, kBindTransceiverResp, 0, 1, "SMSC");
  out.append("\x02\x10\x00\x01\x34", 5);  // sc_interface_version TLV
  out[3] = static_cast<char>(out.size());
  p = decode(out);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->message_id, "SMSC");
  ASSERT_EQ(p->tlvs.size(), 1u);
  EXPECT_EQ(p->tlvs[0].tag, kTagScInterfaceVersion);
}

TEST(sms_smpp_codec, malformed_and_truncated_pdus_are_errors_not_crashes) {
  std::string good;
  short_message_pdu sm;
  sm.destination_addr = "8190";
  sm.short_message = "hello";
  sm.tlvs.push_back({kTagMessageState, "\x02"});
  encode_short_message(good, kDeliverSm, 1, sm);
  // Every truncation of a valid PDU, with command_length fixed up or not.
  for (size_t n = 0; n < good.size(); ++n) {
    std::string cut = good.substr(0, n);
    EXPECT_FALSE(decode(cut)) << n;
    if (n >= 16) {
      cut[0] = 0, cut[1] = 0, cut[2] = static_cast<char>(n >> 8), cut[3] = static_cast<char>(n);
      auto p = decode(cut);  // may decode (a shorter body can still be valid) but must not crash
      (void)p;
    }
  }
  EXPECT_FALSE(decode(unhex("0000000f0000001500000000000000")));  // length 15 < 16
  // sm_length larger than what follows.
  std::string bad = good;
  const size_t sm_length_at = good.find("hello") - 1;
  bad[sm_length_at] = static_cast<char>(200);
  auto p = decode(bad);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("short_message"), std::string::npos);
  // A C-string without its NUL.
  std::string no_nul = unhex("0000001480000004000000000000000161626364");
  p = decode(no_nul);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("message_id"), std::string::npos);
  // A TLV whose length runs past the end.
  std::string tlv_bad = good;
  tlv_bad.resize(tlv_bad.size() - 1);
  tlv_bad[3] = static_cast<char>(tlv_bad.size());
  EXPECT_FALSE(decode(tlv_bad));
  // Random bytes never crash.
  uint32_t x = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string junk(16 + round % 80, '\0');
    for (char& c : junk) {
      x = x * 1103515245 + 12345;
      c = static_cast<char>(x >> 16);
    }
    junk[0] = 0, junk[1] = 0, junk[2] = 0, junk[3] = static_cast<char>(junk.size());
    junk[4] = 0, junk[5] = 0, junk[6] = 0, junk[7] = static_cast<char>(round % 2 ? 5 : 4);
    (void)decode(junk);
  }
}

TEST(sms_smpp_codec, status_text_names_the_code) {
  EXPECT_EQ(status_text(0x0b), "SMPP ESME_RINVDSTADR (0x0b)");
  EXPECT_EQ(status_text(0x58), "SMPP ESME_RTHROTTLED (0x58)");
  EXPECT_EQ(status_text(0x400), "SMPP status 0x00000400");
  EXPECT_TRUE(status_is_transient(0x08));
  EXPECT_TRUE(status_is_transient(0x14));
  EXPECT_TRUE(status_is_transient(0x58));
  EXPECT_TRUE(status_is_transient(0x64));
  EXPECT_FALSE(status_is_transient(0x0b));
  EXPECT_FALSE(status_is_transient(0x45));
}

// ---------------------------------------------------------------------------
// Text

TEST(sms_smpp_codec, gsm_round_trips_including_escape_characters) {
  const std::string text =
      "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà";
  auto gsm = gsm_encode(utf8_to_code_points(text));
  ASSERT_TRUE(gsm);
  EXPECT_EQ(gsm->size(), utf8_to_code_points(text).size());  // one septet per character
  EXPECT_EQ((*gsm)[0], 0x00);                                // '@'
  EXPECT_EQ(gsm_decode(*gsm), text);

  const std::string escapes = "€[]{}~\\^|\f";
  gsm = gsm_encode(utf8_to_code_points(escapes));
  ASSERT_TRUE(gsm);
  EXPECT_EQ(hex(*gsm), "1b651b3c1b3e1b281b291b3d1b2f1b141b401b0a");
  EXPECT_EQ(gsm_decode(*gsm), escapes);
}

TEST(sms_smpp_codec, characters_outside_gsm_choose_ucs2) {
  EXPECT_FALSE(gsm_encode(utf8_to_code_points("back`tick")));
  EXPECT_FALSE(gsm_encode(utf8_to_code_points("こんにちは")));
  const auto parts = split_text("こんにちは");
  EXPECT_EQ(parts.data_coding, kDataCodingUcs2);
  ASSERT_EQ(parts.payloads.size(), 1u);
  EXPECT_EQ(hex(parts.payloads[0]), "30533093306b3061306f");
  EXPECT_EQ(ucs2_decode(parts.payloads[0]), "こんにちは");
}

TEST(sms_smpp_codec, emoji_become_surrogate_pairs_and_round_trip) {
  const std::string text = "ok 😀";
  const auto parts = split_text(text);
  EXPECT_EQ(parts.data_coding, kDataCodingUcs2);
  EXPECT_EQ(hex(parts.payloads[0]), "006f006b0020d83dde00");
  EXPECT_EQ(ucs2_decode(parts.payloads[0]), text);
  EXPECT_EQ(ucs2_decode(unhex("d83d0041")),
            "\xef\xbf\xbd"
            "A");  // a lone surrogate
}

TEST(sms_smpp_codec, gsm_splits_at_160_then_153_per_part) {
  EXPECT_EQ(split_text(std::string(160, 'a')).payloads.size(), 1u);
  const auto p161 = split_text(std::string(161, 'a'));
  ASSERT_EQ(p161.payloads.size(), 2u);
  EXPECT_EQ(p161.payloads[0].size(), 153u);
  EXPECT_EQ(p161.payloads[1].size(), 8u);
  const auto p306 = split_text(std::string(306, 'a'));
  ASSERT_EQ(p306.payloads.size(), 2u);
  EXPECT_EQ(split_text(std::string(307, 'a')).payloads.size(), 3u);
  // Escapes count two septets: 80 euros are 160 septets, one part; 81 are two.
  std::string euros;
  for (int i = 0; i < 80; ++i) euros += "€";
  EXPECT_EQ(split_text(euros).payloads.size(), 1u);
  EXPECT_EQ(split_text(euros + "€").payloads.size(), 2u);
}

TEST(sms_smpp_codec, gsm_split_never_breaks_an_escape_sequence) {
  // 152 'a' then '€': the escape would be septet 153, its character 154.
  const std::string text = std::string(152, 'a') + "€" + std::string(20, 'b');
  const auto parts = split_text(text);
  ASSERT_EQ(parts.payloads.size(), 2u);
  EXPECT_EQ(parts.payloads[0].size(), 152u);
  EXPECT_EQ(hex(parts.payloads[1].substr(0, 2)), "1b65");
  EXPECT_EQ(gsm_decode(parts.payloads[0]) + gsm_decode(parts.payloads[1]), text);
  // 151 'a' then '€': fits exactly in 153.
  const auto exact = split_text(std::string(151, 'a') + "€" + std::string(20, 'b'));
  EXPECT_EQ(exact.payloads[0].size(), 153u);
}

TEST(sms_smpp_codec, ucs2_splits_at_70_then_67_per_part) {
  std::string s70, s71, s134, s135;
  for (int i = 0; i < 70; ++i) s70 += "あ";
  s71 = s70 + "い";
  for (int i = 0; i < 134; ++i) s134 += "あ";
  s135 = s134 + "い";
  EXPECT_EQ(split_text(s70).payloads.size(), 1u);
  const auto p71 = split_text(s71);
  ASSERT_EQ(p71.payloads.size(), 2u);
  EXPECT_EQ(p71.payloads[0].size(), 134u);  // 67 units
  EXPECT_EQ(p71.payloads[1].size(), 8u);
  EXPECT_EQ(split_text(s134).payloads.size(), 2u);
  EXPECT_EQ(split_text(s135).payloads.size(), 3u);
}

TEST(sms_smpp_codec, ucs2_split_never_breaks_a_surrogate_pair) {
  // 66 units, then an emoji (2 units) that would straddle units 67/68.
  std::string text;
  for (int i = 0; i < 66; ++i) text += "あ";
  text += "😀";
  text += "おわり";
  const auto parts = split_text(text);
  ASSERT_EQ(parts.payloads.size(), 2u);
  EXPECT_EQ(parts.payloads[0].size(), 132u);  // 66 units: the pair moved on
  EXPECT_EQ(hex(parts.payloads[1].substr(0, 4)), "d83dde00");
  EXPECT_EQ(ucs2_decode(parts.payloads[0]) + ucs2_decode(parts.payloads[1]), text);
}

TEST(sms_smpp_codec, concat_udh_is_written_and_parsed) {
  EXPECT_EQ(hex(concat_udh(0x2a, 3, 2)), "0500032a0302");
  auto u = parse_udh(concat_udh(0x2a, 3, 2) + "text");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->concatenated);
  EXPECT_EQ(u->reference, 0x2a);
  EXPECT_EQ(u->total, 3);
  EXPECT_EQ(u->sequence, 2);
  EXPECT_EQ(u->header_size, 6u);
  u = parse_udh(unhex("060804beef0201") + "x");  // 16-bit reference
  ASSERT_TRUE(u);
  EXPECT_EQ(u->reference, 0xbeef);
  EXPECT_EQ(u->sequence, 1);
  EXPECT_FALSE(parse_udh(unhex("0500")));  // header longer than the message
}

TEST(sms_smpp_codec, inbound_text_decodes_from_each_coding) {
  EXPECT_EQ(decode_text(kDataCodingGsm, unhex("48656c6c6f1b65")), "Hello€");
  EXPECT_EQ(decode_text(kDataCodingLatin1, unhex("e9")), "é");
  EXPECT_EQ(decode_text(kDataCodingUcs2, unhex("65e5672c")), "日本");
}

TEST(sms_smpp_codec, concatenated_inbound_parts_reassemble_in_any_order) {
  concat_assembler a(10, std::chrono::minutes(1));
  const auto now = std::chrono::steady_clock::now();
  EXPECT_FALSE(a.add("k", 3, 3, "c", now));
  EXPECT_FALSE(a.add("k", 3, 1, "a", now));
  const auto whole = a.add("k", 3, 2, "b", now);
  ASSERT_TRUE(whole);
  EXPECT_EQ(*whole, "abc");
  EXPECT_EQ(a.pending(), 0u);
  EXPECT_FALSE(a.add("k", 2, 1, "x", now));
  a.evict_expired(now + std::chrono::minutes(2));
  EXPECT_EQ(a.pending(), 0u);
}

// ---------------------------------------------------------------------------
// Receipts

TEST(sms_smpp_codec, receipt_text_parses_the_conventional_form_and_variants) {
  auto r = parse_receipt_text(
      "id:0123456789 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:DELIVRD "
      "err:000 text:Hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->smsc_id, "0123456789");
  EXPECT_EQ(r->state, receipt_state::delivered);
  EXPECT_EQ(r->err, "000");

  r = parse_receipt_text(
      "ID:ab12 SUB:001 DLVRD:000 SUBMIT DATE:2601011200 DONE DATE:2601011201 STAT:UNDELIV ERR:034");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->smsc_id, "ab12");
  EXPECT_EQ(r->state, receipt_state::undeliverable);
  EXPECT_EQ(r->err, "034");
  EXPECT_EQ(receipt_detail(*r), "SMPP receipt stat:UNDELIV err:034");

  r = parse_receipt_text("id:7 stat:REJECTD");  // minimal
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, receipt_state::rejected);
  EXPECT_EQ(failure_reason(r->state), "rejected");
  EXPECT_EQ(parse_receipt_text("id:7 stat:EXPIRED")->state, receipt_state::expired);
  EXPECT_EQ(parse_receipt_text("id:7 stat:DELETED")->state, receipt_state::deleted);
  EXPECT_FALSE(receipt_is_final(parse_receipt_text("id:7 stat:ENROUTE")->state));
  EXPECT_FALSE(receipt_is_final(parse_receipt_text("id:7 stat:ACCEPTD")->state));
  // "id:" inside another word is not the id.
  EXPECT_FALSE(parse_receipt_text("msgid:5 stat:DELIVRD"));
  EXPECT_FALSE(parse_receipt_text("id:5 stat:WHATEVER"));
  EXPECT_FALSE(parse_receipt_text("hello"));
  EXPECT_FALSE(parse_receipt_text(""));
}

TEST(sms_smpp_codec, receipt_tlvs_win_over_the_text) {
  short_message_pdu sm;
  sm.esm_class = 0x04;
  sm.short_message = "id:textid sub:001 dlvrd:001 submit date:x done date:y stat:DELIVRD err:000";
  sm.tlvs.push_back({kTagReceiptedMessageId, "tlvid"});
  EXPECT_EQ(read_receipt(sm)->smsc_id, "tlvid");
  EXPECT_EQ(read_receipt(sm)->state, receipt_state::delivered);  // state from text
  sm.tlvs.push_back({kTagMessageState, "\x08"});
  EXPECT_EQ(read_receipt(sm)->state, receipt_state::rejected);
  short_message_pdu none;
  EXPECT_FALSE(read_receipt(none));
}

TEST(sms_smpp_codec, receipt_memory_is_bounded_and_matches_hex_and_decimal_ids) {
  receipt_memory m(3, std::chrono::seconds(10));
  const auto now = std::chrono::steady_clock::now();
  auto g1 = std::make_shared<receipt_group>();
  g1->message_id = "m1";
  auto g2 = std::make_shared<receipt_group>();
  g2->message_id = "m2";
  m.add("1f", g1, 0, now);
  m.add("20", g1, 1, now);
  m.add("abc", g2, 0, now);
  EXPECT_EQ(m.find("1f").group, g1);
  EXPECT_EQ(m.find("20").part, 1u);
  EXPECT_EQ(m.find("31").group, g1);    // 31 decimal = 0x1f
  EXPECT_EQ(m.find("2748").group, g2);  // 0xabc
  m.add("x4", g2, 1, now);              // evicts "1f"
  EXPECT_EQ(m.size(), 3u);
  EXPECT_FALSE(m.find("1f").group);
  EXPECT_EQ(m.find_message("m1"), g1);  // still one id of m1 left
  m.evict_expired(now + std::chrono::seconds(11));
  EXPECT_EQ(m.size(), 0u);
  EXPECT_FALSE(m.find_message("m1"));
  EXPECT_FALSE(m.find_message("m2"));
}

// ---------------------------------------------------------------------------
// Config, content, addresses, TPS

TEST(sms_smpp_codec, config_parses_durations_and_defaults_and_rejects_unknown_keys) {
  smpp_config c;
  EXPECT_EQ(parse_config({{"host", "smsc"}, {"system_id", "r"}}, c), "");
  EXPECT_EQ(c.port, 2775);
  EXPECT_EQ(c.window, 32u);
  EXPECT_EQ(c.tps, 0);
  EXPECT_EQ(c.enquire_link_interval, millis(30'000));
  EXPECT_EQ(c.response_timeout, millis(10'000));
  EXPECT_EQ(c.queue_timeout, millis(30'000));
  EXPECT_EQ(c.throttle_pause, millis(1'000));
  EXPECT_EQ(c.reconnect_min, millis(500));
  EXPECT_EQ(c.reconnect_max, millis(30'000));
  EXPECT_EQ(c.dest_addr_ton, 1);
  EXPECT_EQ(c.dest_addr_npi, 1);
  EXPECT_EQ(c.registered_delivery, 1);
  EXPECT_EQ(c.receipt_memory, 1'000'000u);

  smpp_config d;
  EXPECT_EQ(parse_config({{"host", "h"},
                          {"system_id", "r"},
                          {"throttle_pause", "250ms"},
                          {"enquire_link_interval", "2m"},
                          {"window", "64"},
                          {"tps", "12.5"}},
                         d),
            "");
  EXPECT_EQ(d.throttle_pause, millis(250));
  EXPECT_EQ(d.enquire_link_interval, millis(120'000));
  EXPECT_EQ(d.tps, 12.5);

  smpp_config e;
  EXPECT_EQ(parse_config({{"host", "h"}, {"system_id", "r"}, {"colour", "red"}}, e)
                .rfind("colour: unknown key", 0),
            0u);
  EXPECT_EQ(
      parse_config({{"host", "h"}, {"system_id", "r"}, {"window", "0"}}, e).rfind("window:", 0),
      0u);
  EXPECT_EQ(parse_config({{"host", "h"}, {"system_id", "r"}, {"queue_timeout", "30"}}, e)
                .rfind("queue_timeout:", 0),
            0u);
  EXPECT_EQ(parse_config({{"host", "h"}, {"system_id", "r"}, {"password", "123456789"}}, e)
                .rfind("password:", 0),
            0u);
  EXPECT_EQ(
      parse_config({{"host", "h"}, {"system_id", "r"}, {"port", "70000"}}, e).rfind("port:", 0),
      0u);
  smpp_config fresh;
  EXPECT_EQ(parse_config({{"host", "h"}}, fresh).rfind("system_id: required", 0), 0u);
  EXPECT_EQ(
      parse_config(
          {{"host", "h"}, {"system_id", "r"}, {"reconnect_min", "5s"}, {"reconnect_max", "1s"}}, e)
          .rfind("reconnect_max:", 0),
      0u);
}

TEST(sms_smpp_codec, source_address_ton_follows_its_form_unless_configured) {
  smpp_config c;
  c.source_addr = "+819011112222";
  EXPECT_EQ(c.effective_source_ton(), 1);
  EXPECT_EQ(c.effective_source_npi(), 1);
  EXPECT_EQ(c.effective_source_addr(), "819011112222");
  c.source_addr = "12345";
  EXPECT_EQ(c.effective_source_ton(), 3);
  c.source_addr = "ACME";
  EXPECT_EQ(c.effective_source_ton(), 5);
  EXPECT_EQ(c.effective_source_npi(), 0);
  c.source_addr_ton = 2;
  EXPECT_EQ(c.effective_source_ton(), 2);
}

TEST(sms_smpp_codec, content_text_and_link_are_read_from_json) {
  auto c = parse_content(
      R"({"subject":"s","text":"Hi \"you\" \u65e5\ud83d\ude00","html":{"a":[1,2,{"b":null}]},"link":"https://x.example/c/1"})");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->text, "Hi \"you\" 日😀");
  EXPECT_EQ(c->link, "https://x.example/c/1");
  EXPECT_EQ(sms_body(*c), "Hi \"you\" 日😀\nhttps://x.example/c/1");
  c = parse_content(R"({"text":"only"})");
  ASSERT_TRUE(c);
  EXPECT_EQ(sms_body(*c), "only");
  EXPECT_FALSE(parse_content("[1]"));
  EXPECT_FALSE(parse_content(R"({"text":"x")"));
  EXPECT_FALSE(parse_content(R"({"text":"x"} trailing)"));
}

TEST(sms_smpp_codec, addresses_convert_between_e164_and_smpp) {
  EXPECT_EQ(smpp_destination("+819012345678", 1), "819012345678");
  EXPECT_FALSE(smpp_destination("+81-90", 1));
  EXPECT_FALSE(smpp_destination("", 1));
  EXPECT_FALSE(smpp_destination("+", 1));
  EXPECT_EQ(relay_address("819012345678", 1), "+819012345678");
  EXPECT_EQ(relay_address("12345", 3), "12345");
}

TEST(sms_smpp_codec, token_bucket_limits_the_rate) {
  token_bucket b(10);  // 10/s, burst 1
  auto t = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_TRUE(b.take(t));
  EXPECT_FALSE(b.take(t));
  EXPECT_EQ(b.next_token(t) - t, std::chrono::milliseconds(100));
  EXPECT_FALSE(b.take(t + std::chrono::milliseconds(99)));
  EXPECT_TRUE(b.take(t + std::chrono::milliseconds(200)));
  int taken = 0;
  for (int ms = 200; ms <= 1200; ++ms) taken += b.take(t + std::chrono::milliseconds(ms));
  EXPECT_EQ(taken, 10);
  token_bucket unlimited(0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.take(t));
}

}  // namespace
}  // namespace sms_smpp
