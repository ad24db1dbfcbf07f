// relayctl user and relayctl explain: one user's engagement, and what one job
// did (and will do) for one user, from what relayd stored.

#include <rocksdb/iterator.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "daemon/event_json.h"
#include "daemon/relayctl_commands.h"
#include "routing/channel_choice.h"
#include "routing/directory.h"
#include "routing/engagement_cube.h"
#include "routing/engagement_throttle.h"
#include "routing/job.h"
#include "routing/job_store.h"
#include "routing/message_id.h"
#include "routing/registry.h"
#include "routing/roaring_compat.h"
#include "routing/segment_model.h"
#include "routing/send_log.h"
#include "routing/time_zones.h"
#include "routing/timer_store.h"
#include "routing/user_engagement.h"

namespace relay::ctl {
namespace {

using json = nlohmann::ordered_json;

std::string rfc3339(sys_time t) {
  std::string out;
  append_rfc3339(out, to_unix_ms(t));
  return out;
}

sys_time from_seconds(uint32_t s) { return sys_time(std::chrono::seconds(s)); }

std::string two_digits(int v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d", v);
  return buf;
}

std::string local_date(const local_time_info& l) {
  return std::to_string(l.year) + "-" + two_digits(l.month) + "-" + two_digits(l.day);
}

std::string channel_list(uint8_t mask) {
  std::string out;
  for (int c = 0; c < kChannelCount; ++c) {
    if (!(mask & (1u << c))) continue;
    if (!out.empty()) out += ", ";
    out += to_string(static_cast<channel>(c));
  }
  return out.empty() ? "none" : out;
}

json channel_array(uint8_t mask) {
  json out = json::array();
  for (int c = 0; c < kChannelCount; ++c) {
    if (mask & (1u << c)) out.push_back(std::string(to_string(static_cast<channel>(c))));
  }
  return out;
}

std::string order_list(std::span<const channel> order) {
  std::string out;
  for (channel ch : order) {
    if (!out.empty()) out += ", ";
    out += to_string(ch);
  }
  return out;
}

json rate_json(uint64_t opened, uint64_t sent) {
  if (sent == 0) return nullptr;
  return double(opened) / double(sent);
}

std::string duration_text(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms % 86'400'000 == 0 && ms != 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms % 3'600'000 == 0 && ms != 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms != 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// The job id of an accept sequence: an active job's from meta
// "active\0" be64(seq); a finished job's by reading every job record (no
// index maps it back; fine for a command, costs one pass over the jobs).
std::optional<std::string> job_id_of_seq(store& db, uint64_t seq) {
  std::string v;
  if (db.get(cf::meta, active_key(seq), &v)) return v;
  std::unique_ptr<rocksdb::Iterator> it(
      db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::jobs)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    // job_id \0 'j' (job ids hold no '\0', so the first one is the separator).
    if (key.size() < 2 || key.back() != 'j' || key.find('\0') != key.size() - 2) continue;
    auto rec = decode_job_record(it->value().ToStringView());
    if (rec && rec->seq == seq) return std::string(key.substr(0, key.size() - 2));
  }
  return std::nullopt;
}

std::string job_of_seq_text(store& db, uint64_t seq) {
  if (auto id = job_id_of_seq(db, seq)) return "job " + *id + " (seq " + std::to_string(seq) + ")";
  return "job seq " + std::to_string(seq) + " (its record is gone)";
}

std::string throttle_text(const throttle_verdict& v) {
  std::string out;
  if (v.allowed) {
    out = "the next message is allowed";
    if (v.cap != 0)
      out += " (daily cap " + std::to_string(v.used) + " of " + std::to_string(v.cap) + " used)";
  } else {
    out = "the next message would be refused: " + std::string(v.reason) + ", " +
          std::to_string(v.used) + " of " + std::to_string(v.cap) + " used";
  }
  if (v.reduced) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "; daily cap lowered from %u for a recent open rate of %.1f%%",
                  v.base_daily_cap, 100.0 * v.recent_rate);
    out += buf;
  }
  return out;
}

json throttle_json(const throttle_verdict& v) {
  return json{{"allowed", v.allowed}, {"reason", std::string(v.reason)},    {"cap", v.cap},
              {"used", v.used},       {"base_daily_cap", v.base_daily_cap}, {"reduced", v.reduced}};
}

// Reachable channels of one directory entry, as the fan-out computes them:
// the link offers the channel, has an address for it, and relay runs that
// carrier's connector for it.
uint8_t reachable_of(const recipient& r, const config& cfg) {
  uint8_t mask = 0;
  for (int ci = 0; ci < kChannelCount; ++ci) {
    for (int l = 0; l < r.carrier_count; ++l) {
      const recipient_carrier& link = r.carriers[l];
      if (!(link.channels & channel_bit(static_cast<channel>(ci))) || link.address[ci].empty())
        continue;
      for (const carrier_config& c : cfg.carriers) {
        if (c.id == link.carrier_id && c.channels[ci].has_value())
          mask |= channel_bit(static_cast<channel>(ci));
      }
    }
  }
  return mask;
}

std::string step_text(uint8_t step) {
  if (step == 0) return "first";
  if (step == kFollowUpStep) return "follow-up";
  return "resend " + std::to_string(step);
}

std::string seen_text(uint8_t seen) {
  std::string out;
  for (auto [bit, name] : {std::pair{seen_delivered, "delivered"},
                           {seen_opened, "opened"},
                           {seen_clicked, "clicked"},
                           {seen_failed, "failed"}}) {
    if (!(seen & bit)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "nothing yet" : out;
}

constexpr std::array<const char*, 7> kWeekdays = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

std::string dims_text(const send_record& r) {
  std::string out;
  out += r.local_hour < 24 ? "hour " + two_digits(r.local_hour) : "hour ?";
  if (r.weekday < 7) out += std::string(" ") + kWeekdays[r.weekday];
  out += ", gender " + (r.gender.empty() ? std::string("?") : std::string(r.gender));
  const std::string_view band = age_band_label(r.age_band);
  out += ", age " + (band.empty() ? std::string("?") : std::string(band));
  out += ", region " + (r.region.empty() ? std::string("?") : std::string(r.region));
  if (!r.occupation.empty()) out += ", occupation " + std::string(r.occupation);
  return out;
}

json dims_json(const send_record& r) {
  const auto text = [](std::string_view v) -> json {
    return v.empty() ? json(nullptr) : json(std::string(v));
  };
  return json{{"local_hour", r.local_hour < 24 ? json(r.local_hour) : json(nullptr)},
              {"weekday", r.weekday < 7 ? json(kWeekdays[r.weekday]) : json(nullptr)},
              {"gender", text(r.gender)},
              {"age_band", text(age_band_label(r.age_band))},
              {"region", text(r.region)},
              {"occupation", text(r.occupation)}};
}

std::string_view kind_name(timer_kind k) {
  switch (k) {
    case timer_kind::send:
      return "send";
    case timer_kind::fallback:
      return "fallback";
    case timer_kind::resend:
      return "resend";
    case timer_kind::follow_up:
      return "follow_up";
  }
  return "unknown";
}

uint8_t payload_byte(const std::string& p, size_t i) {
  return i < p.size() ? static_cast<uint8_t>(p[i]) : 0;
}

// Timers of (job seq, ordinal). Keys sort by due time, so this reads them all:
// fine for a command, not for a hot path.
result<std::vector<timer>> timers_of(store& db, uint64_t job_seq, uint32_t ordinal) {
  std::vector<timer> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db.db().NewIterator(rocksdb::ReadOptions(), db.handle(cf::timers)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    timer t;
    if (!parse_timer_key(it->key().ToStringView(), t) || t.job_seq != job_seq ||
        t.ordinal != ordinal)
      continue;
    t.payload.assign(it->value().data(), it->value().size());
    out.push_back(std::move(t));
  }
  if (!it->status().ok()) return make_error(errc::io_error, "timers: " + it->status().ToString());
  return out;
}

// One message's send record; `record` views into `value`, so a stored_send
// is not moved once decoded.
struct stored_send {
  std::string message_id;
  std::string value;
  send_record record;
};

}  // namespace

// ---- user ------------------------------------------------------------------------

int user(const config& cfg, std::string_view user_id, bool as_json, sys_time now) {
  auto db = open_secondary(cfg);
  if (!db) return fail(db.err().message);
  store& s = **db;
  auto u = get_user(s, user_id);
  if (!u) {
    return fail(u.err().code == errc::not_found ? "user " + std::string(user_id) + " not found"
                                                : u.err().message);
  }
  const engagement_settings settings = engagement_settings_of(cfg);
  auto stored = user_engagement::read(s, u->ordinal);
  if (!stored && stored.err().code != errc::not_found) return fail(stored.err().message);
  const user_record rec = stored ? *stored : user_record{};

  time_zones zones;
  const date::time_zone* tz = u->user_profile.tz.empty() ? nullptr : zones.find(u->user_profile.tz);
  const local_time_info local = local_time(now, tz);
  const int32_t week = week_of_day(local.local_day);
  const recent_engagement recent = decayed(rec, now, settings.throttle.half_life);
  const throttle_verdict verdict = check_throttle(stored ? &rec : nullptr, nullptr, {},
                                                  local.local_day, week, now, settings.throttle);

  // Per-company counts: kept only for companies with a cap configured.
  struct company_row {
    std::string company;
    cap_counts counts;
    throttle_verdict verdict;
  };
  std::vector<company_row> companies;
  for (const auto& [company, caps] : settings.throttle.company_caps) {
    auto c = user_engagement::read_company(s, company, u->ordinal);
    if (!c && c.err().code != errc::not_found) return fail(c.err().message);
    const cap_counts counts = c ? *c : cap_counts{};
    companies.push_back({company, counts,
                         check_throttle(stored ? &rec : nullptr, &counts, company, local.local_day,
                                        week, now, settings.throttle)});
  }
  std::sort(companies.begin(), companies.end(),
            [](const company_row& a, const company_row& b) { return a.company < b.company; });

  const std::string tz_name = tz != nullptr ? u->user_profile.tz : "UTC";
  const bool quiet = rec.has_quiet();
  const std::optional<std::string> quiet_job =
      quiet ? job_id_of_seq(s, rec.quiet_job_seq()) : std::nullopt;

  if (as_json) {
    json out{{"user_id", u->user_id}, {"ordinal", u->ordinal}, {"tz", tz_name}};
    out["channels"] = json::array();
    for (int c = 0; c < kChannelCount; ++c) {
      out["channels"].push_back({{"channel", std::string(to_string(static_cast<channel>(c)))},
                                 {"sent", rec.sent[c]},
                                 {"opened", rec.opened[c]},
                                 {"open_rate", rate_json(rec.opened[c], rec.sent[c])}});
    }
    out["sent"] = rec.total_sent();
    out["opened"] = rec.total_opened();
    out["open_rate"] = rate_json(rec.total_opened(), rec.total_sent());
    out["delivered"] = rec.delivered;
    out["clicked"] = rec.clicked;
    out["failed"] = rec.failed;
    out["recent"] = {{"sends", recent.sends},
                     {"opens", recent.opens},
                     {"open_rate", recent.rate() ? json(*recent.rate()) : json(nullptr)},
                     {"half_life_s", settings.throttle.half_life.count()}};
    out["today"] = {{"local_date", local_date(local)},
                    {"sent", rec.caps.sends_on_day(local.local_day)}};
    out["this_week"] = {{"sent", rec.caps.sends_in_week(week)}};
    out["throttle"] = throttle_json(verdict);
    out["companies"] = json::array();
    for (const company_row& c : companies) {
      out["companies"].push_back({{"company_id", c.company},
                                  {"today", c.counts.sends_on_day(local.local_day)},
                                  {"this_week", c.counts.sends_in_week(week)},
                                  {"throttle", throttle_json(c.verdict)}});
    }
    if (quiet) {
      out["quiet"] = {{"from", rfc3339(from_seconds(rec.quiet_from_s))},
                      {"until", rfc3339(from_seconds(rec.quiet_until_s))},
                      {"active", now >= from_seconds(rec.quiet_from_s) &&
                                     now < from_seconds(rec.quiet_until_s)},
                      {"job_seq", rec.quiet_job_seq()},
                      {"job_id", quiet_job ? json(*quiet_job) : json(nullptr)}};
    } else {
      out["quiet"] = nullptr;
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }

  std::printf("user %s (ordinal %u), time zone %s\n", u->user_id.c_str(), u->ordinal,
              tz_name.c_str());
  if (!stored) std::printf("no message counted for this user yet\n");
  std::vector<std::vector<std::string>> rows;
  for (int c = 0; c < kChannelCount; ++c) {
    rows.push_back({std::string(to_string(static_cast<channel>(c))), std::to_string(rec.sent[c]),
                    std::to_string(rec.opened[c]), open_rate_text(rec.opened[c], rec.sent[c])});
  }
  rows.push_back({"total", std::to_string(rec.total_sent()), std::to_string(rec.total_opened()),
                  open_rate_text(rec.total_opened(), rec.total_sent())});
  print_table({"channel", "sent", "opened", "open rate"}, rows, 1);
  std::printf("delivered %u, clicked %u, failed %u (all channels; these stop at 65535)\n",
              rec.delivered, rec.clicked, rec.failed);
  if (rec.recent_at_s != 0) {
    char rate[32] = "-";
    if (recent.rate()) std::snprintf(rate, sizeof rate, "%.1f%%", 100.0 * *recent.rate());
    std::printf("recent (decayed, half-life %s): %.2f sends, %.2f opens, open rate %s\n",
                duration_text(settings.throttle.half_life).c_str(), recent.sends, recent.opens,
                rate);
  }
  std::printf("sent today (%s, %s): %u; this week: %u\n", local_date(local).c_str(),
              tz_name.c_str(), rec.caps.sends_on_day(local.local_day),
              rec.caps.sends_in_week(week));
  std::printf("throttle: %s\n", throttle_text(verdict).c_str());
  for (const company_row& c : companies) {
    std::printf("company %s: today %u, this week %u; %s\n", c.company.c_str(),
                c.counts.sends_on_day(local.local_day), c.counts.sends_in_week(week),
                throttle_text(c.verdict).c_str());
  }
  if (quiet) {
    const sys_time from = from_seconds(rec.quiet_from_s), until = from_seconds(rec.quiet_until_s);
    std::printf("quiet period (%s): from %s until %s, held by %s\n",
                now >= from && now < until ? "in force" : (now < from ? "ahead" : "over"),
                describe_time(from, now).c_str(), describe_time(until, now).c_str(),
                job_of_seq_text(s, rec.quiet_job_seq()).c_str());
  } else {
    std::printf("quiet period: none\n");
  }
  return 0;
}

// ---- explain ---------------------------------------------------------------------

int explain(const config& cfg, std::string_view job_id, std::string_view user_id, bool as_json,
            sys_time now) {
  auto db = open_secondary(cfg);
  if (!db) return fail(db.err().message);
  store& s = **db;
  auto sj = load_job(s, job_id);
  if (!sj) {
    return fail(sj.err().code == errc::not_found ? "job " + std::string(job_id) + " not found"
                                                 : sj.err().message);
  }
  auto spec = parse_job(sj->record.json, cfg.limits.job);
  if (!spec)
    return fail("job " + std::string(job_id) +
                ": its stored JSON does not parse: " + spec.err().message);
  auto profile = get_user(s, user_id);
  if (!profile) {
    return fail(profile.err().code == errc::not_found
                    ? "user " + std::string(user_id) + " not found"
                    : profile.err().message);
  }
  const uint32_t* ordinal = &profile->ordinal;
  directory_reader directory(s);
  auto entries = directory.read(std::span<const uint32_t>(ordinal, 1));
  if (!entries) return fail(entries.err().message);
  if (entries->empty())
    return fail("user " + std::string(user_id) + " not found (no directory entry)");
  const recipient& r = (*entries)[0];
  const uint8_t reachable = reachable_of(r, cfg);
  const std::vector<channel>& order = spec->order.empty() ? cfg.default_order : spec->order;
  const engagement_settings settings = engagement_settings_of(cfg);

  // Was the user among the job's recipients? The set was fixed when the job
  // was accepted and is deleted when it finishes; then a `to.users` job still
  // says, and a `to.all` job is judged by the user's registrations now.
  std::optional<bool> recipient_of_job;
  bool recipient_guessed = false;
  bool listed_not_registered = false;
  const bool registered_now = std::any_of(
      profile->registrations.begin(), profile->registrations.end(), [&](const registration& g) {
        return g.company_id == spec->company_id && (spec->service_id.empty() || g.service_id == spec->service_id);
      });
  if (!sj->target.empty()) {
    try {
      const roaring::Roaring target =
          roaring::Roaring::readSafe(sj->target.data(), sj->target.size());
      recipient_of_job = target.contains(*ordinal);
    } catch (const std::exception&) {
      // Unreadable: say nothing about membership.
    }
  } else if (spec->target == target_kind::users) {
    const bool listed = std::find(spec->users.begin(), spec->users.end(), user_id) != spec->users.end();
    listed_not_registered = listed && !registered_now;
    recipient_of_job = listed && registered_now;
    recipient_guessed = listed_not_registered;
  } else if (spec->target == target_kind::all) {
    recipient_of_job = registered_now;
    recipient_guessed = true;
  }

  // The job's messages to the user: every channel, every step it may use.
  std::vector<stored_send> sends;
  std::vector<uint8_t> steps;
  for (int st = 0; st <= std::max(spec->max_resends, 0) && st < kFollowUpStep; ++st)
    steps.push_back(static_cast<uint8_t>(st));
  steps.push_back(kFollowUpStep);
  std::string key;
  for (int ci = 0; ci < kChannelCount; ++ci) {
    for (uint8_t st : steps) {
      const message_id id = make_message_id(spec->job_id, r.user_id, static_cast<channel>(ci), st);
      send_key(view(id), key);
      stored_send m;
      if (!s.get(cf::sends, key, &m.value)) continue;
      m.message_id.assign(view(id));
      sends.push_back(std::move(m));
    }
  }
  // In the order they were sent (a record starts with its sent_at, be64);
  // sorted before decoding, as the records' views point into `value`.
  const auto sent_at_of = [](const stored_send& m) {
    return m.value.size() >= 8 ? get_be64(m.value.data()) : 0;
  };
  std::stable_sort(sends.begin(), sends.end(), [&](const stored_send& a, const stored_send& b) {
    return sent_at_of(a) < sent_at_of(b);
  });
  for (stored_send& m : sends) {
    auto rec = decode_send(m.value);
    if (!rec) return fail("message " + m.message_id + ": " + rec.err().message);
    m.record = *rec;
  }

  auto timers = timers_of(s, sj->record.seq, *ordinal);
  if (!timers) return fail(timers.err().message);

  auto stored_user = user_engagement::read(s, *ordinal);
  if (!stored_user && stored_user.err().code != errc::not_found)
    return fail(stored_user.err().message);
  const user_record* user_rec = stored_user ? &*stored_user : nullptr;

  // Why this channel: the choice recomputed on a segment model rebuilt as
  // relayd does at start-up, with today's counts.
  segment_model model(settings.segment_attributes);
  if (auto scanned =
          scan_engagement(s, now - settings.lookback,
                          [&](const engagement_dims& d, const engagement_counts& c) {
                            model.add(d, engagement_count::sent, c[engagement_count::sent]);
                            model.add(d, engagement_count::opened, c[engagement_count::opened]);
                          });
      !scanned) {
    return fail(scanned.err().message);
  }
  time_zones zones;
  const date::time_zone* tz = r.tz.empty() ? nullptr : zones.find(r.tz);
  const local_time_info local = local_time(now, tz);
  engagement_dims dims;
  dims.company = spec->company_id;
  dims.gender = r.gender;
  dims.region = r.region;
  dims.occupation = r.occupation;
  const stored_send* first = nullptr;
  for (const stored_send& m : sends) {
    if (m.record.step == 0 && first == nullptr) first = &m;
  }
  std::string hour_source;
  if (first != nullptr && first->record.ordinal != kUnknownOrdinal) {
    // The hour and age band of the first send, as the choice saw them.
    dims.age_band = first->record.age_band;
    dims.local_hour = first->record.local_hour;
    dims.weekday = first->record.weekday;
    hour_source = "the first send's local hour";
  } else {
    dims.age_band = age_band_of(r.birth_year == 0 ? std::nullopt : std::optional<int>(r.birth_year),
                                local.year);
    if (tz != nullptr) {
      dims.local_hour = static_cast<uint8_t>(local.hour);
      dims.weekday = static_cast<uint8_t>(local.weekday);
    }
    hour_source = "the user's local hour now";
  }
  const choice_input in{spec->mode, order, reachable, user_rec, &dims};
  choice_explanation why = explain_channel(in, model, settings.choice);
  // The counts behind every mode (explain_channel fills only those its mode
  // reads): the user's own, the segment at that hour, all users.
  const int32_t segment = model.find(dims);
  for (channel_score& sc : why.scores) {
    const auto c = static_cast<size_t>(sc.ch);
    if (user_rec != nullptr) {
      sc.user_sent = user_rec->sent[c];
      sc.user_opened = user_rec->opened[c];
    }
    sc.cell = model.cell(segment, dims.local_hour, sc.ch);
    sc.overall = model.total(sc.ch);
  }

  // What each pending timer will do when it fires (daemon/fanout.cc's payloads).
  struct timer_view {
    const timer* t;
    std::string what;
    json detail;
  };
  std::vector<timer_view> pending;
  for (const timer& t : *timers) {
    timer_view v{&t, {}, json::object()};
    if (t.kind == timer_kind::send) {
      const auto mode = static_cast<channel_mode>(payload_byte(t.payload, 0));
      const uint8_t exclude = payload_byte(t.payload, 1), step = payload_byte(t.payload, 2);
      std::string reason = "its send window or not_before";
      v.detail["waiting_for"] = "schedule";
      if (user_rec != nullptr && user_rec->has_quiet() &&
          user_rec->quiet_job_seq() != sj->record.seq &&
          std::llabs(to_unix_ms(t.due) - to_unix_ms(from_seconds(user_rec->quiet_until_s))) <
              1000) {
        reason = "the quiet period of exclusive " + job_of_seq_text(s, user_rec->quiet_job_seq());
        v.detail["waiting_for"] = "quiet";
        v.detail["quiet_job_seq"] = user_rec->quiet_job_seq();
        const auto holder = job_id_of_seq(s, user_rec->quiet_job_seq());
        v.detail["quiet_job_id"] = holder ? json(*holder) : json(nullptr);
      }
      v.what = "waiting for " + reason + "; then the " + step_text(step) +
               " message, channel by mode " + std::string(to_string(mode));
      if (exclude != 0) v.what += " (not " + channel_list(exclude) + ", tried already)";
      v.detail["mode"] = std::string(to_string(mode));
      v.detail["step"] = step;
      v.detail["tried"] = channel_array(exclude);
    } else if (t.kind == timer_kind::fallback || t.kind == timer_kind::resend) {
      const auto prev = static_cast<channel>(payload_byte(t.payload, 0) % kChannelCount);
      const uint8_t prev_step = payload_byte(t.payload, 1);
      const std::string prev_text =
          "the " + std::string(to_string(prev)) + " message (" + step_text(prev_step) + ")";
      v.detail["previous_channel"] = std::string(to_string(prev));
      v.detail["previous_step"] = prev_step;
      uint8_t prev_seen = 0;
      for (const stored_send& m : sends) {
        if (m.record.ch == prev && m.record.step == prev_step) prev_seen = m.record.seen;
      }
      if (t.kind == timer_kind::fallback) {
        const uint8_t tried = payload_byte(t.payload, 2);
        const std::optional<channel> next = next_fallback(order, reachable, tried);
        v.detail["tried"] = channel_array(tried);
        v.detail["next_channel"] = next ? json(std::string(to_string(*next))) : json(nullptr);
        v.what = "unless " + prev_text + " is opened or clicked by then, " +
                 (next ? "send " + std::string(to_string(*next))
                       : std::string("nothing is left to try")) +
                 " (tried: " + channel_list(tried) + ")";
        if (prev_seen & (seen_opened | seen_clicked))
          v.what += "; it was opened, so the sequence will end there";
      } else {
        v.detail["next_channel"] = std::string(to_string(prev));
        v.detail["next_step"] = t.attempt;
        v.what = "unless " + prev_text + " is delivered, opened or clicked by then, send " +
                 std::string(to_string(prev)) + " again (" + step_text(t.attempt) + ")";
        if (prev_seen & (seen_delivered | seen_opened | seen_clicked)) {
          v.what += "; it was " + seen_text(prev_seen) + ", so the sequence will end there";
        }
      }
    } else if (t.kind == timer_kind::follow_up) {
      v.what = "the on_open follow-up";
    } else {
      v.what = "a timer of a kind this relayctl does not know";
    }
    pending.push_back(std::move(v));
  }

  const bool reached = sj->progress.done || sj->record.state == job_state::done ||
                       uint64_t{*ordinal} < sj->progress.next_cursor;
  std::string note;
  if (recipient_of_job && !*recipient_of_job && sends.empty() && pending.empty()) {
    const std::string registered_with =
        spec->company_id + (spec->service_id.empty() ? "" : " (service " + spec->service_id + ")");
    note = listed_not_registered
               ? "user " + std::string(user_id) + " is listed by the job but not registered with " +
                     registered_with + ": never sent to (rejected: not_registered)"
           : recipient_guessed
               ? "user " + std::string(user_id) + " is not registered with " + registered_with +
                     " now, so it was probably not a recipient of this job"
               : "user " + std::string(user_id) + " is not a recipient of this job";
  } else if (sends.empty() && pending.empty()) {
    note = reached ? "no message and no pending timer: see relay.events for this job and user"
                   : "the fan-out has not reached this user yet";
  }

  const std::string state = sj->record.state == job_state::done ? "done" : "in progress";
  const std::string tz_name = tz != nullptr ? std::string(r.tz) : "UTC";
  const std::string priority = spec->priority.empty() ? "normal" : spec->priority;

  if (as_json) {
    json out;
    json job{
        {"job_id", spec->job_id},
        {"company_id", spec->company_id},
        {"seq", sj->record.seq},
        {"accepted_at", rfc3339(sys_time(std::chrono::milliseconds(sj->record.accepted_at_ms)))},
        {"state", state},
        {"mode", std::string(to_string(spec->mode))},
        {"order", json::array()},
        {"fallback_after_s", spec->fallback_after.count()},
        {"max_resends", spec->max_resends},
        {"priority", priority}};
    for (channel ch : order) job["order"].push_back(std::string(to_string(ch)));
    if (spec->schedule.not_before) job["not_before"] = rfc3339(*spec->schedule.not_before);
    if (spec->schedule.expires) job["expires"] = rfc3339(*spec->schedule.expires);
    if (spec->schedule.window) {
      const send_window& w = *spec->schedule.window;
      job["window"] = {
          {"start", two_digits(w.start_minute / 60) + ":" + two_digits(w.start_minute % 60)},
          {"end", two_digits(w.end_minute / 60) + ":" + two_digits(w.end_minute % 60)},
          {"tz", w.tz.empty() ? json(nullptr) : json(w.tz)}};
    }
    out["job"] = job;
    out["user"] = {{"user_id", std::string(r.user_id)},
                   {"ordinal", *ordinal},
                   {"tz", tz_name},
                   {"reachable", channel_array(reachable)},
                   {"recipient", recipient_of_job ? json(*recipient_of_job) : json(nullptr)}};
    out["messages"] = json::array();
    for (const stored_send& m : sends) {
      const send_record& rec = m.record;
      json mj{{"channel", std::string(to_string(rec.ch))},
              {"step", rec.step},
              {"message_id", m.message_id},
              {"sent_at", rfc3339(sys_time(std::chrono::milliseconds(rec.sent_at_ms)))},
              {"carrier_id", std::string(rec.carrier_id)},
              {"seen",
               {{"delivered", (rec.seen & seen_delivered) != 0},
                {"opened", (rec.seen & seen_opened) != 0},
                {"clicked", (rec.seen & seen_clicked) != 0},
                {"failed", (rec.seen & seen_failed) != 0}}},
              {"dims", dims_json(rec)}};
      if (!rec.choice.empty()) mj["choice"] = std::string(rec.choice);
      out["messages"].push_back(std::move(mj));
    }
    out["timers"] = json::array();
    for (const timer_view& v : pending) {
      json tj{{"kind", std::string(kind_name(v.t->kind))},
              {"attempt", v.t->attempt},
              {"due", rfc3339(v.t->due)},
              {"what", v.what}};
      for (auto& [k, val] : v.detail.items()) tj[k] = val;
      out["timers"].push_back(std::move(tj));
    }
    json scores = json::array();
    const bool scored = spec->mode == channel_mode::best;  // the estimates exist for `best` only
    const auto number = [&](double v) { return scored ? json(v) : json(nullptr); };
    for (const channel_score& sc : why.scores) {
      scores.push_back({{"channel", std::string(to_string(sc.ch))},
                        {"reachable", sc.reachable},
                        {"user_sent", sc.user_sent},
                        {"user_opened", sc.user_opened},
                        {"cell_sent", sc.cell.sent},
                        {"cell_opened", sc.cell.opened},
                        {"overall_sent", sc.overall.sent},
                        {"overall_opened", sc.overall.opened},
                        {"prior_mean", number(sc.prior_mean)},
                        {"posterior_mean", number(sc.posterior_mean)},
                        {"bonus", number(sc.bonus)},
                        {"score", number(sc.score)}});
    }
    json picked = json::array();
    for (channel ch : why.picked.picked()) picked.push_back(std::string(to_string(ch)));
    out["choice"] = {{"channels", picked},
                     {"reason", why.reason},
                     {"as_of", rfc3339(now)},
                     {"local_hour", dims.local_hour < 24 ? json(dims.local_hour) : json(nullptr)},
                     {"hour_from", hour_source},
                     {"segment", model.describe(segment)},
                     {"scores", scores}};
    out["note"] = note.empty() ? json(nullptr) : json(note);
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }

  std::printf(
      "job %s: company %s, accepted %s (seq %llu), %s\n", spec->job_id.c_str(),
      spec->company_id.c_str(),
      describe_time(sys_time(std::chrono::milliseconds(sj->record.accepted_at_ms)), now).c_str(),
      static_cast<unsigned long long>(sj->record.seq), state.c_str());
  std::printf("  channels: mode %s, order %s", std::string(to_string(spec->mode)).c_str(),
              order_list(order).c_str());
  if (spec->mode == channel_mode::fallback || spec->mode == channel_mode::resend) {
    std::printf(", fallback_after %s", duration_text(spec->fallback_after).c_str());
  }
  if (spec->mode == channel_mode::resend) std::printf(", max_resends %d", spec->max_resends);
  std::printf("; priority %s\n", priority.c_str());
  if (spec->schedule.not_before)
    std::printf("  not_before %s\n", describe_time(*spec->schedule.not_before, now).c_str());
  if (spec->schedule.expires)
    std::printf("  expires %s\n", describe_time(*spec->schedule.expires, now).c_str());
  if (spec->schedule.window) {
    const send_window& w = *spec->schedule.window;
    std::printf("  window %s:%s-%s:%s (%s)\n", two_digits(w.start_minute / 60).c_str(),
                two_digits(w.start_minute % 60).c_str(), two_digits(w.end_minute / 60).c_str(),
                two_digits(w.end_minute % 60).c_str(),
                w.tz.empty() ? "the user's time zone" : w.tz.c_str());
  }
  std::printf("user %.*s (ordinal %u): time zone %s; can receive %s\n",
              static_cast<int>(r.user_id.size()), r.user_id.data(), *ordinal, tz_name.c_str(),
              channel_list(reachable).c_str());
  if (!note.empty()) std::printf("%s\n", note.c_str());

  std::printf("\nmessages:");
  if (sends.empty()) {
    std::printf(" none\n");
  } else {
    std::printf("\n");
    std::vector<std::vector<std::string>> rows;
    for (const stored_send& m : sends) {
      const send_record& rec = m.record;
      rows.push_back({"  " + std::string(to_string(rec.ch)), step_text(rec.step),
                      describe_time(sys_time(std::chrono::milliseconds(rec.sent_at_ms)), now),
                      std::string(rec.carrier_id), seen_text(rec.seen), dims_text(rec)});
    }
    print_table({"  channel", "step", "sent at", "carrier", "seen", "counted under"}, rows, 6);
    for (const stored_send& m : sends) {
      if (!m.record.choice.empty()) {
        std::printf("  %s (%s), noted at the send: %.*s\n",
                    std::string(to_string(m.record.ch)).c_str(), step_text(m.record.step).c_str(),
                    static_cast<int>(m.record.choice.size()), m.record.choice.data());
      }
    }
  }

  std::printf("\npending timers:");
  if (pending.empty()) {
    std::printf(" none\n");
  } else {
    std::printf("\n");
    for (const timer_view& v : pending) {
      std::printf("  %s #%u due %s: %s\n", std::string(kind_name(v.t->kind)).c_str(), v.t->attempt,
                  describe_time(v.t->due, now).c_str(), v.what.c_str());
    }
  }
  if (user_rec != nullptr && user_rec->has_quiet() && user_rec->quiet_job_seq() == sj->record.seq) {
    std::printf("  this job holds the user quiet from %s until %s (priority exclusive)\n",
                describe_time(from_seconds(user_rec->quiet_from_s), now).c_str(),
                describe_time(from_seconds(user_rec->quiet_until_s), now).c_str());
  }

  std::printf("\nchoice of the first message: %s\n",
              why.picked.empty() ? "none" : order_list(why.picked.picked()).c_str());
  std::printf("  %s\n", why.reason.c_str());
  std::printf(
      "  recomputed with the counts as of now, %s (they include what was counted since the send),\n"
      "  for segment %s at %s%s\n",
      rfc3339(now).c_str(), model.describe(segment).c_str(), hour_source.c_str(),
      dims.local_hour < 24 ? (" (" + two_digits(dims.local_hour) + "h)").c_str() : " (unknown)");
  std::vector<std::vector<std::string>> rows;
  for (const channel_score& sc : why.scores) {
    char score[32] = "-";
    if (spec->mode == channel_mode::best && sc.reachable)
      std::snprintf(score, sizeof score, "%.4f", sc.score);
    rows.push_back({"  " + std::string(to_string(sc.ch)), sc.reachable ? "yes" : "no",
                    open_rate_text(sc.user_opened, sc.user_sent),
                    open_rate_text(sc.cell.opened, sc.cell.sent),
                    open_rate_text(sc.overall.opened, sc.overall.sent), score});
  }
  print_table(
      {"  channel", "reachable", "this user opened", "segment at that hour", "all users", "score"},
      rows, 2);
  return 0;
}

}  // namespace relay::ctl
