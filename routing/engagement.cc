#include "routing/engagement.h"

#include "routing/send_time.h"

namespace relay {

engagement::engagement(store& db, engagement_settings settings)
    : db_(db),
      settings_(std::move(settings)),
      timers_(db),
      users_(user_engagement_params{settings_.throttle.half_life, {}}),
      model_(settings_.segment_attributes) {
  std::vector<std::string> capped;
  for (const auto& [company, caps] : settings_.throttle.company_caps) capped.push_back(company);
  users_.set_capped_companies(capped);
}

result<void> engagement::load(sys_time now) {
  if (auto r = users_.load(db_); !r) return r;
  return scan_engagement(db_, now - settings_.lookback, [this](const engagement_dims& d, const engagement_counts& c) {
    model_.add(d, engagement_count::sent, c[engagement_count::sent]);
    model_.add(d, engagement_count::opened, c[engagement_count::opened]);
  });
}

send_plan engagement::plan(const job& spec, uint64_t job_seq, std::span<const channel> order,
                           const recipient_facts& r, uint8_t reachable, plan_step step, sys_time now) {
  send_plan p;
  const date::time_zone* tz = r.tz.empty() ? nullptr : zones_.find(r.tz);
  const channel_mode mode = step.mode.value_or(spec.mode);
  const bool later_step = step.exclude != 0;

  // When: not_before, the send window, expires.
  const send_decision when = next_send_time(spec.schedule, tz, zones_, now);
  if (when.what == send_decision::kind::expired) {
    p.what = send_plan::verdict::expired;
    p.at = when.at;
    return p;
  }
  const sys_time at = when.what == send_decision::kind::now ? now : when.at;

  // Another job's quiet period: wait for its end (then the window is looked
  // at again), unless the job expires first.
  const user_record* user = users_.find(r.ordinal);
  if (const std::optional<sys_time> until = quiet_blocks(user, job_seq, at)) {
    if (spec.schedule.expires && *until >= *spec.schedule.expires) {
      p.what = send_plan::verdict::expired;
      p.at = *spec.schedule.expires;
      return p;
    }
    p.what = send_plan::verdict::wait;
    p.at = *until;
    p.why = wait_reason::quiet;
    p.quiet_holder = user->quiet_job_seq();
    return p;
  }

  // An exclusive send holds the user quiet around it — from the moment it is
  // planned, so jobs that come before its time already keep clear.
  const bool exclusive = spec.priority == "exclusive" && !later_step;
  if (exclusive) {
    users_.reserve_quiet(r.ordinal, job_seq, at - settings_.quiet_before, at + settings_.quiet_after, now);
  }
  if (at > now) {
    p.what = send_plan::verdict::wait;
    p.at = at;
    p.why = wait_reason::schedule;
    return p;
  }

  const local_time_info local = local_time(now, tz);
  p.local_day = local.local_day;
  if (tz != nullptr) {
    p.local_hour = static_cast<uint8_t>(local.hour);
    p.weekday = static_cast<uint8_t>(local.weekday);
  }
  p.age_band = age_band_of(r.birth_year == 0 ? std::nullopt : std::optional<int>(r.birth_year), local.year);

  // Caps count messages of jobs, not the later steps of one job's message.
  if (!later_step) {
    p.throttle = check_throttle(user, users_.company_counts(spec.company_id, r.ordinal), spec.company_id,
                                p.local_day, week_of_day(p.local_day), now, settings_.throttle);
    if (!p.throttle.allowed) {
      if (exclusive) users_.release_quiet(r.ordinal, job_seq);
      p.what = send_plan::verdict::throttled;
      return p;
    }
  }

  engagement_dims dims;
  dims.company = spec.company_id;
  dims.gender = r.gender;
  dims.age_band = p.age_band;
  dims.region = r.region;
  dims.occupation = r.occupation;
  dims.local_hour = p.local_hour;
  dims.weekday = p.weekday;
  const choice_input in{mode, order, static_cast<uint8_t>(reachable & ~step.exclude), user, &dims};
  p.channels = choose_channel(in, model_, settings_.choice);
  if (p.channels.empty()) {
    if (exclusive) users_.release_quiet(r.ordinal, job_seq);
    p.what = send_plan::verdict::unreachable;
  }
  return p;
}

engagement_dims engagement::dims_of(const send_record& r) {
  engagement_dims d;
  d.company = r.company_id;
  d.carrier = r.carrier_id;
  d.ch = r.ch;
  d.gender = r.gender;
  d.age_band = r.age_band;
  d.region = r.region;
  d.occupation = r.occupation;
  d.local_hour = r.local_hour;
  d.weekday = r.weekday;
  return d;
}

void engagement::count_send(const send_record& r, sys_time at, int64_t local_day) {
  const engagement_dims d = dims_of(r);
  cube_.add(d, sys_time(std::chrono::milliseconds(r.sent_at_ms)), engagement_count::sent);
  model_.add(d, engagement_count::sent, 1);
  if (r.ordinal != kUnknownOrdinal) {
    users_.on_sent(r.ordinal, r.ch, r.company_id, at, local_day, week_of_day(local_day));
  }
}

void engagement::count_event(const send_record& r, engagement_count what, sys_time at, std::string_view location) {
  const engagement_dims d = dims_of(r);
  const sys_time sent_at{std::chrono::milliseconds(r.sent_at_ms)};
  cube_.add(d, sent_at, what);
  if (!location.empty() && (what == engagement_count::opened || what == engagement_count::clicked)) {
    cube_.add_location(r.company_id, r.carrier_id, r.ch, location, sent_at, what);
  }
  model_.add(d, what, 1);
  if (r.ordinal != kUnknownOrdinal) users_.on_event(r.ordinal, r.ch, what, at);
}

void engagement::flush_into(rocksdb::WriteBatch& batch) {
  cube_.flush_into(batch, db_);
  users_.flush_into(batch, db_);
}

result<rollup_result> engagement::roll_up(sys_time now, size_t max_rows, rocksdb::WriteBatch& batch) {
  return relay::roll_up(db_, now, settings_.rollup, max_rows, batch);
}

}  // namespace relay
