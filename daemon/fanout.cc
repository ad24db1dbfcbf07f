#include "daemon/fanout.h"

#include <rocksdb/iterator.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cstdio>

#include "daemon/tracked_content.h"
#include "routing/counters.h"
#include "routing/message_id.h"
#include "routing/outbox.h"

namespace relay {
namespace {

constexpr uint16_t kNoRoute = 0xffff;
constexpr uint16_t kSkipped = 0xfffe;    // the recipient waits in an outbox instead
constexpr uint16_t kWait = 0xfffd;       // not now: a timer (send window, quiet period)
constexpr uint16_t kExpired = 0xfffc;    // its job expired before it could be sent
constexpr uint16_t kThrottled = 0xfffb;  // the user's caps are used up

// Timer payloads (the fan-out's own encoding, opaque to the timer store):
//   send:              mode, exclude (channel bits not to use), step
//   fallback / resend: the previous message's channel, its step, the channels tried
std::string timer_payload(uint8_t a, uint8_t b, uint8_t c) {
  return std::string{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)};
}
uint8_t payload_byte(const std::string& p, size_t i) { return i < p.size() ? static_cast<uint8_t>(p[i]) : 0; }

std::string_view clamp_attribute(std::string_view v) { return v.substr(0, 255); }

uint64_t make_token(uint32_t slot, uint32_t index) { return (uint64_t{slot} << 32) | index; }
uint32_t token_slot(uint64_t token) { return static_cast<uint32_t>(token >> 32); }
uint32_t token_index(uint64_t token) { return static_cast<uint32_t>(token); }

int64_t unix_ms(sys_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

fanout::fanout(store& db, const config& cfg, event_publisher& events, delivery_events& delivery,
               engagement& eng, const clock& clk)
    : db_(db), config_(cfg), events_(events), delivery_(delivery), clock_(clk), directory_(db), eng_(eng) {
  started_at_ = clk.now();
  for (const auto& c : cfg.carriers) carrier_ids_.push_back(c.id);
}

fanout::~fanout() = default;

result<void> fanout::attach(std::vector<connector*> connectors) {
  connectors_ = std::move(connectors);
  room_.assign(connectors_.size(), 0);
  outbox_.clear();
  outbox_.resize(connectors_.size());
  outbox_status_.assign(connectors_.size(), {});
  for (size_t k = 0; k < connectors_.size(); ++k) {
    outbox_[k].prefix = outbox_prefix(carrier_ids_[k / kChannelCount], static_cast<channel>(k % kChannelCount));
  }
  auto timers = eng_.timers().for_each([this](const timer& t) {
    ++timed_at_start_[t.job_seq];
    ++timers_pending_;
  });
  if (!timers) return timers.err();
  if (timers_pending_ > 0) spdlog::info("{} timers pending from before the restart", timers_pending_);
  auto depths = scan_outboxes(db_, [this](uint64_t seq) { ++queued_at_start_[seq]; });
  if (!depths) return depths.err();
  for (const outbox_depth& d : *depths) {
    const auto carrier = std::find(carrier_ids_.begin(), carrier_ids_.end(), d.carrier_id);
    const size_t k = static_cast<size_t>(carrier - carrier_ids_.begin()) * kChannelCount +
                     static_cast<size_t>(d.ch);
    if (carrier == carrier_ids_.end() || connectors_[k] == nullptr) {
      spdlog::warn("outbox of {}/{} holds {} recipients, but no such connector is configured; "
                   "they wait until it is",
                   d.carrier_id, to_string(d.ch), d.entries);
      continue;
    }
    outbox_status_[k].depth = d.entries;
    outbox_[k].recorded_before_start = d.last_key;
    spdlog::info("{}: {} recipients wait in its outbox from before the restart", connectors_[k]->name(),
                 d.entries);
  }
  return {};
}

void fanout::set_tracking(const tracking_signer* signer, std::string base_url) {
  signer_ = signer;
  tracking_base_ = std::move(base_url);
}

const active_job* fanout::find(std::string_view job_id) const {
  auto it = jobs_.find(std::string(job_id));
  return it == jobs_.end() ? nullptr : it->second.get();
}

bool fanout::has_startable_work() const {
  if (!plan_queue_.empty()) return true;
  if (timers_pending_ > timers_in_flight_.size()) {
    auto next = eng_.timers().next_due();
    if (next && *next && **next <= clock_.now()) return true;
  }
  for (size_t k = 0; k < connectors_.size(); ++k) {
    if (connectors_[k] != nullptr && outbox_status_[k].depth > outbox_status_[k].in_flight &&
        !connectors_[k]->full()) {
      return true;
    }
  }
  return false;
}

void fanout::add_job(std::unique_ptr<active_job> job) {
  active_job& j = *job;
  j.context.job_id = j.job_id;
  j.context.company_id = j.spec.company_id;
  j.context.service_id = j.spec.service_id;
  j.context.content_json = j.spec.content_json;
  if (signer_ != nullptr && (!j.spec.link.empty() || !j.spec.html.empty())) {
    j.tracked = tracked_content_template::make(j.spec.content_json, tracking_base_);
  }
  if (j.spec.on_open) prepare_follow_up(j);
  if (auto q = queued_at_start_.find(j.seq); q != queued_at_start_.end()) {
    j.queued = q->second;
    queued_at_start_.erase(q);
  }
  if (auto t = timed_at_start_.find(j.seq); t != timed_at_start_.end()) {
    j.timed = t->second;
    timed_at_start_.erase(t);
  }
  jobs_by_seq_[j.seq] = &j;
  jobs_.emplace(j.job_id, std::move(job));
  update_handed(j);
  if (!j.handed_all) {
    plan_queue_.push_back(&j);
  } else {
    maybe_finish(j);
  }
}

void fanout::prepare_follow_up(active_job& j) {
  j.follow_up_context = j.context;
  j.follow_up_context.content_json = j.spec.on_open->content_json;
  if (signer_ != nullptr && (!j.spec.on_open->link.empty() || !j.spec.on_open->html.empty())) {
    j.follow_up_tracked = tracked_content_template::make(j.spec.on_open->content_json, tracking_base_);
  }
}

void fanout::on_first_open(const send_record& r) {
  if (r.step == kFollowUpStep || r.ordinal == kUnknownOrdinal) return;
  auto it = jobs_.find(std::string(r.job_id));
  if (it == jobs_.end() || !it->second->spec.on_open) return;
  active_job& job = *it->second;
  const sys_time now = clock_.now();
  if (now >= job.accepted_at + job.spec.on_open->within) return;
  add_timer(job, timer{now + job.spec.on_open->after, job.seq, r.ordinal, timer_kind::follow_up, 0,
                       timer_payload(static_cast<uint8_t>(r.ch), 0, 0)});
}

void fanout::finish_lingering() {
  const sys_time now = clock_.now();
  for (size_t i = 0; i < lingering_.size();) {
    active_job& job = *lingering_[i];
    if (now < job.accepted_at + job.spec.on_open->within) {
      ++i;
      continue;
    }
    lingering_[i] = lingering_.back();
    lingering_.pop_back();
    job.lingering = false;
    maybe_finish(job);
  }
}

void fanout::update_handed(active_job& job) {
  if (job.handed_all) return;
  job.handed_all = job.resume_chunks.empty() &&
                   (job.target.isEmpty() || job.target.maximum() < job.progress.next_cursor);
  if (job.handed_all && on_handed_) on_handed_(job);
}

uint32_t fanout::allocate_chunk(active_job& job) {
  uint32_t slot;
  if (!free_chunks_.empty()) {
    slot = free_chunks_.back();
    free_chunks_.pop_back();
  } else {
    slot = static_cast<uint32_t>(chunks_.size());
    chunks_.push_back(std::make_unique<chunk>());
  }
  chunk& c = *chunks_[slot];
  c.job = &job;
  c.range = {};
  c.resumed = false;
  c.drained_from = -1;
  c.from_timers = false;
  c.timers.clear();
  c.outstanding_recipients = 0;
  c.users.clear();
  c.recipients.clear();
  c.sent = c.failed = c.no_route = c.expired = c.throttled = 0;
  c.sent_by_connector.assign(connectors_.size(), 0);
  c.failed_by_connector.assign(connectors_.size(), 0);
  ++chunks_in_use_;
  return slot;
}

void fanout::release_chunk(uint32_t slot) {
  chunks_[slot]->job = nullptr;
  free_chunks_.push_back(slot);
  --chunks_in_use_;
}

std::string_view fanout::user_of(const chunk& c, uint32_t index) const {
  const recipient_state& r = c.recipients[index];
  return std::string_view(c.users).substr(r.user_offset, r.user_size);
}

std::string fanout::outbox_key_of(const chunk& c, uint32_t index) const {
  return outbox_key(outbox_[c.drained_from].prefix, c.job->seq, c.recipients[index].ordinal);
}

uint16_t fanout::route_recipient(active_job& job, const recipient& r, uint32_t slot, uint32_t index,
                                 plan_step step, uint8_t step_no) {
  chunk& c = *chunks_[slot];
  recipient_state state;
  state.ordinal = r.ordinal;
  state.user_offset = static_cast<uint32_t>(c.users.size());
  state.user_size = static_cast<uint16_t>(r.user_id.size());
  const std::string_view gender = clamp_attribute(r.gender), region = clamp_attribute(r.region),
                         occupation = clamp_attribute(r.occupation);
  state.gender_size = static_cast<uint8_t>(gender.size());
  state.region_size = static_cast<uint8_t>(region.size());
  state.occupation_size = static_cast<uint8_t>(occupation.size());
  state.step = step_no;
  state.tried = step.exclude;
  c.users.append(r.user_id).append(gender).append(region).append(occupation);

  // Per channel, the user's links that can carry it: (link, connector index).
  struct candidate {
    int link;
    uint16_t connector;
  };
  candidate links[kChannelCount][kMaxCarriersPerUser];
  int link_count[kChannelCount] = {};
  int primary[kChannelCount] = {-1, -1, -1};
  uint8_t reachable = 0;
  for (int ci = 0; ci < kChannelCount; ++ci) {
    const channel ch = static_cast<channel>(ci);
    for (int l = 0; l < r.carrier_count; ++l) {
      const recipient_carrier& link = r.carriers[l];
      if (!(link.channels & channel_bit(ch)) || link.address[ci].empty()) continue;
      const auto carrier = std::find(carrier_ids_.begin(), carrier_ids_.end(), link.carrier_id);
      if (carrier == carrier_ids_.end()) continue;  // a carrier this relay does not run
      const size_t k = static_cast<size_t>(carrier - carrier_ids_.begin()) * kChannelCount + ci;
      if (connectors_[k] == nullptr) continue;
      if (link.primary && primary[ci] < 0) primary[ci] = link_count[ci];
      links[ci][link_count[ci]++] = {l, static_cast<uint16_t>(k)};
      reachable |= channel_bit(ch);
    }
  }

  const std::vector<channel>& order = job.spec.order.empty() ? config_.default_order : job.spec.order;
  const recipient_facts facts{r.ordinal, r.tz, r.gender, r.region, r.occupation, r.birth_year};
  const send_plan p = eng_.plan(job.spec, job.seq, order, facts, reachable, step, clock_.now());
  state.age_band = p.age_band;
  state.local_hour = p.local_hour;
  state.weekday = p.weekday;
  state.local_day = static_cast<int32_t>(p.local_day);
  c.recipients.push_back(state);

  const auto unsent = [&](uint16_t code, std::string_view detail, int64_t at_ms) {
    plan_.push_back({slot, index, code, channel::sms, static_cast<uint32_t>(plan_arena_.size()),
                     static_cast<uint16_t>(detail.size()), step_no, at_ms});
    plan_arena_.append(detail);
    return uint16_t{0};
  };
  switch (p.what) {
    case send_plan::verdict::send:
      break;
    case send_plan::verdict::wait:
      return unsent(kWait, p.why == wait_reason::quiet ? "quiet period of an exclusive job" : "send window",
                    to_unix_ms(p.at));
    case send_plan::verdict::expired:
      return unsent(kExpired, "the job expired before the user could be reached", 0);
    case send_plan::verdict::throttled: {
      char detail[96];
      const int n = std::snprintf(detail, sizeof(detail), "%.*s: %u of %u used", static_cast<int>(p.throttle.reason.size()),
                                  p.throttle.reason.data(), p.throttle.used, p.throttle.cap);
      return unsent(kThrottled, std::string_view(detail, n > 0 ? std::min<size_t>(n, sizeof(detail) - 1) : 0), 0);
    }
    case send_plan::verdict::unreachable:
      return unsent(kNoRoute, {}, 0);
  }

  uint16_t submissions = 0;
  for (const channel ch : p.channels.picked()) {
    const int ci = static_cast<int>(ch);
    int from = 0, to = link_count[ci];
    if (to == 0) continue;
    if (config_.carriers_multi == multi_carrier::primary) {
      from = primary[ci] >= 0 ? primary[ci] : 0;
      to = from + 1;
    }
    for (int x = from; x < to; ++x) {
      const recipient_carrier& link = r.carriers[links[ci][x].link];
      plan_.push_back({slot, index, links[ci][x].connector, ch, static_cast<uint32_t>(plan_arena_.size()),
                       static_cast<uint16_t>(link.address[ci].size()), step_no, 0});
      plan_arena_.append(link.address[ci]);
      ++submissions;
    }
  }
  if (submissions == 0) return unsent(kNoRoute, {}, 0);
  return submissions;
}

void fanout::add_timer(active_job& job, const timer& t) {
  eng_.timers().add(pending_, t);
  ++job.timed;
  ++timers_pending_;
}

void fanout::settle_unsent(chunk& c, uint32_t index, const planned& p) {
  active_job& job = *c.job;
  switch (p.connector) {
    case kWait: {
      const recipient_state& r = c.recipients[index];
      // A later step keeps its place in the sequence when it has to wait.
      const bool later = r.tried != 0 || r.step != 0;
      add_timer(job, timer{sys_time(std::chrono::milliseconds(p.at_ms)), job.seq, r.ordinal, timer_kind::send, 0,
                           timer_payload(static_cast<uint8_t>(later ? channel_mode::specified : job.spec.mode),
                                         r.tried, r.step)});
      ++stats_.recipients_waiting;
      break;
    }
    case kExpired:
      ++c.expired;
      ++stats_.recipients_expired;
      break;
    case kThrottled:
      ++c.throttled;
      ++stats_.recipients_throttled;
      break;
    default:
      break;
  }
}

void fanout::schedule_next_step(chunk& c, uint32_t index, channel ch, bool accepted) {
  active_job& job = *c.job;
  const recipient_state& r = c.recipients[index];
  if (r.step == kFollowUpStep) return;  // a follow-up is a sequence of its own
  const sys_time now = clock_.now();
  timer t;
  t.job_seq = job.seq;
  t.ordinal = r.ordinal;
  if (job.spec.mode == channel_mode::fallback) {
    // Not opened within fallback_after, or failed: the next channel of `order`.
    const uint8_t tried = static_cast<uint8_t>(r.tried | channel_bit(ch));
    const std::vector<channel>& order = job.spec.order.empty() ? config_.default_order : job.spec.order;
    if (std::all_of(order.begin(), order.end(), [&](channel c) { return (tried & channel_bit(c)) != 0; })) {
      return;  // every channel of `order` was tried: the sequence ends here
    }
    t.kind = timer_kind::fallback;
    t.attempt = static_cast<uint8_t>(std::popcount(tried));
    t.due = accepted ? now + job.spec.fallback_after : now;
    t.payload = timer_payload(static_cast<uint8_t>(ch), r.step, tried);
  } else if (job.spec.mode == channel_mode::resend && accepted && r.step < job.spec.max_resends) {
    // Not delivered or opened within fallback_after: the same channel again.
    t.kind = timer_kind::resend;
    t.attempt = static_cast<uint8_t>(r.step + 1);
    t.due = now + job.spec.fallback_after;
    t.payload = timer_payload(static_cast<uint8_t>(ch), r.step, 0);
  } else {
    return;
  }
  if (job.spec.schedule.expires && t.due >= *job.spec.schedule.expires) return;
  add_timer(job, t);
  ++stats_.steps_scheduled;
}

size_t fanout::fire_timers(size_t budget) {
  if (timers_pending_ <= timers_in_flight_.size() || budget == 0) return 0;
  const sys_time now = clock_.now();
  std::string key;
  auto due = eng_.timers().due(now, std::min(budget, config_.limits.fanout_chunk), [&](const timer& t) {
    timer_key(t, key);
    return timers_in_flight_.count(key) != 0;
  });
  if (!due) {
    spdlog::error("reading timers failed: {}", due.err().message);
    return 0;
  }
  if (due->empty()) return 0;
  std::vector<timer>& fired = *due;
  // One chunk per job; within it, ordinals ascending for the directory reader.
  std::stable_sort(fired.begin(), fired.end(), [](const timer& a, const timer& b) {
    return a.job_seq != b.job_seq ? a.job_seq < b.job_seq : a.ordinal < b.ordinal;
  });
  size_t submitted = 0;
  std::string value;
  for (size_t run_begin = 0; run_begin < fired.size();) {
    const uint64_t seq = fired[run_begin].job_seq;
    size_t run_end = run_begin;
    while (run_end < fired.size() && fired[run_end].job_seq == seq) ++run_end;
    auto job_it = jobs_by_seq_.find(seq);
    if (job_it == jobs_by_seq_.end()) {
      spdlog::warn("dropping {} timers of a job that is no longer active (seq {})", run_end - run_begin, seq);
      for (size_t i = run_begin; i < run_end; ++i) {
        eng_.timers().remove(pending_, fired[i]);
        --timers_pending_;
      }
      run_begin = run_end;
      continue;
    }
    active_job& job = *job_it->second;
    ordinals_.clear();
    for (size_t i = run_begin; i < run_end; ++i) ordinals_.push_back(fired[i].ordinal);
    auto read = directory_.read(ordinals_);
    if (!read) {
      spdlog::error("job {}: reading recipients failed: {}", job.job_id, read.err().message);
      break;
    }
    const uint32_t slot = allocate_chunk(job);
    chunk& c = *chunks_[slot];
    c.from_timers = true;
    // A timer due before this process started may have fired before a crash.
    c.resumed = fired[run_begin].due < started_at_;
    size_t found = 0;
    uint32_t index = 0;
    for (size_t i = run_begin; i < run_end; ++i) {
      const timer& t = fired[i];
      ++stats_.timers_fired;
      if (found >= read->size() || (*read)[found].ordinal != t.ordinal) {
        // The user was deleted meanwhile: nothing to send.
        eng_.timers().remove(pending_, t);
        --job.timed;
        --timers_pending_;
        continue;
      }
      const recipient& r = (*read)[found++];
      plan_step step;
      uint8_t step_no = 0;
      bool done = false;
      if (t.kind == timer_kind::send) {
        step.mode = static_cast<channel_mode>(payload_byte(t.payload, 0));
        step.exclude = payload_byte(t.payload, 1);
        step_no = payload_byte(t.payload, 2);
      } else if (t.kind == timer_kind::fallback || t.kind == timer_kind::resend) {
        // Did the previous message reach the user after all?
        const channel prev = static_cast<channel>(payload_byte(t.payload, 0) % kChannelCount);
        const message_id id = make_message_id(job.job_id, r.user_id, prev, payload_byte(t.payload, 1));
        send_key(view(id), key);
        uint8_t seen = 0;
        if (db_.get(cf::sends, key, &value).ok()) {
          if (auto rec = decode_send(value)) seen = rec->seen;
        }
        const uint8_t enough = t.kind == timer_kind::fallback ? (seen_opened | seen_clicked)
                                                              : (seen_delivered | seen_opened | seen_clicked);
        done = (seen & enough) != 0;
        step.mode = channel_mode::specified;
        if (t.kind == timer_kind::fallback) {
          step.exclude = payload_byte(t.payload, 2);
        } else {
          step.exclude = static_cast<uint8_t>(kAllChannels & ~channel_bit(prev));
          step_no = t.attempt;
        }
      } else if (t.kind == timer_kind::follow_up && job.spec.on_open) {
        // Once per user, however many of the job's messages were opened.
        for (int ch = 0; ch < kChannelCount && !done; ++ch) {
          send_key(view(make_message_id(job.job_id, r.user_id, static_cast<channel>(ch), kFollowUpStep)), key);
          done = db_.get(cf::sends, key, &value).ok();
        }
        const channel opened_on = static_cast<channel>(payload_byte(t.payload, 0) % kChannelCount);
        step.mode = channel_mode::specified;
        step.exclude = static_cast<uint8_t>(kAllChannels & ~channel_bit(opened_on));
        step_no = kFollowUpStep;
      } else {
        done = true;  // a kind this build does not know
      }
      c.timers.push_back(t);
      if (done) {
        // Recorded as a recipient with nothing to send: its timer goes with the chunk.
        recipient_state state;
        state.ordinal = r.ordinal;
        state.user_offset = static_cast<uint32_t>(c.users.size());
        state.user_size = static_cast<uint16_t>(r.user_id.size());
        c.users.append(r.user_id);
        c.recipients.push_back(state);
        timer_key(t, key);
        timers_in_flight_.insert(key);
        ++index;
        continue;
      }
      const size_t begin = plan_.size();
      const uint16_t n = route_recipient(job, r, slot, index, step, step_no);
      const size_t end = n == 0 ? begin : plan_.size();
      if (n > 0 && !admit(begin, end, true)) {
        for (size_t p = begin; p < end; ++p) plan_[p].connector = kSkipped;
        c.recipients[index].held = true;
      } else {
        timer_key(t, key);
        timers_in_flight_.insert(key);
        if (n > 0) start_recipient(c, index, n);
        if (n == 0) {
          // A fallback with no channel left is the end of the user's sequence, not a failure.
          if (plan_[begin].connector == kNoRoute && step.exclude != 0) plan_[begin].connector = kSkipped;
          settle_unsent(c, index, plan_[begin]);
        }
        submitted += n;
      }
      ++index;
    }
    ++job.open_chunks;
    ++stats_.chunks_started;
    started_.push_back(slot);
    run_begin = run_end;
  }
  return submitted;
}

bool fanout::admit(size_t begin, size_t end, bool from_outbox) {
  for (size_t i = begin; i < end; ++i) {
    const uint16_t k = plan_[i].connector;
    if (room_[k] == 0) return false;
    // New recipients queue behind a connector's outbox; drained ones are its head.
    if (!from_outbox && outbox_status_[k].depth > 0) return false;
  }
  for (size_t i = begin; i < end; ++i) --room_[plan_[i].connector];
  return true;
}

void fanout::start_recipient(chunk& c, uint32_t index, uint16_t messages) {
  c.recipients[index].outstanding = messages;
  ++c.outstanding_recipients;
}

bool fanout::plan_chunk(active_job& job, size_t& budget) {
  chunk_range range;
  bool resumed = false;
  ordinals_.clear();
  const size_t limit = std::min(config_.limits.fanout_chunk, config_.limits.connector_queue);
  roaring_uint32_iterator_t it;
  roaring_init_iterator(&job.target.roaring, &it);
  if (!job.resume_chunks.empty()) {
    range = job.resume_chunks.front();
    resumed = true;
    if (range.begin <= UINT32_MAX &&
        roaring_move_uint32_iterator_equalorlarger(&it, static_cast<uint32_t>(range.begin))) {
      while (it.has_value && it.current_value < range.end) {
        ordinals_.push_back(it.current_value);
        roaring_advance_uint32_iterator(&it);
      }
    }
  } else {
    if (job.progress.next_cursor > UINT32_MAX ||
        !roaring_move_uint32_iterator_equalorlarger(&it, static_cast<uint32_t>(job.progress.next_cursor))) {
      update_handed(job);
      return false;
    }
    ordinals_.resize(limit);
    ordinals_.resize(roaring_read_uint32_iterator(&it, ordinals_.data(), static_cast<uint32_t>(limit)));
    range = {job.progress.next_cursor, uint64_t{ordinals_.back()} + 1};
  }

  auto read = directory_.read(ordinals_);
  if (!read) {
    spdlog::error("job {}: reading recipients failed: {}", job.job_id, read.err().message);
    return false;
  }
  const size_t plan_mark = plan_.size();
  const size_t arena_mark = plan_arena_.size();
  const uint32_t slot = allocate_chunk(job);
  chunk& c = *chunks_[slot];
  c.range = range;
  c.resumed = resumed;
  // Each recipient's [begin, end) in plan_, and its demand on the connectors.
  spans_.clear();
  uint32_t index = 0;
  for (const recipient& r : *read) {
    const size_t begin = plan_.size();
    const uint16_t n = route_recipient(job, r, slot, index++);
    spans_.push_back({begin, n == 0 ? begin : plan_.size()});
  }

  // A chunk waits while a connector it needs has no room for its share —
  // unless it has waited longer than limits.outbox_after: then that
  // connector is slow or down, and its recipients go to its outbox.
  demand_.assign(connectors_.size(), 0);
  for (const auto& [begin, end] : spans_) {
    bool behind_outbox = false;
    for (size_t i = begin; i < end; ++i) behind_outbox |= outbox_status_[plan_[i].connector].depth > 0;
    if (behind_outbox) continue;
    for (size_t i = begin; i < end; ++i) ++demand_[plan_[i].connector];
  }
  bool fits = true;
  for (size_t k = 0; k < connectors_.size(); ++k) fits &= demand_[k] <= room_[k];
  const sys_time now = clock_.now();
  if (!fits) {
    if (job.blocked_since == sys_time{}) job.blocked_since = now;
    if (now - job.blocked_since < config_.limits.outbox_after) {
      plan_.resize(plan_mark);
      plan_arena_.resize(arena_mark);
      release_chunk(slot);
      return false;  // wait for room
    }
  }
  job.blocked_since = {};

  std::string value;
  for (uint32_t i = 0; i < spans_.size(); ++i) {
    const auto [begin, end] = spans_[i];
    if (begin == end) {  // nothing to send now
      settle_unsent(c, i, plan_[begin]);
      continue;
    }
    const uint16_t k = plan_[begin].connector;  // its outbox, should it wait
    const std::string key = outbox_key(outbox_[k].prefix, job.seq, c.recipients[i].ordinal);
    // A resumed chunk's recipient may already wait in an outbox (recorded
    // before the restart): it stays there, and is not sent from here too.
    const bool waiting = resumed && db_.get(cf::outbox, key, &value).ok();
    if (!waiting && admit(begin, end, false)) {
      start_recipient(c, i, static_cast<uint16_t>(end - begin));
      continue;
    }
    for (size_t p = begin; p < end; ++p) plan_[p].connector = kSkipped;
    if (waiting) continue;
    pending_.Put(db_.handle(cf::outbox), key, job.job_id);
    ++job.queued;
    ++outbox_status_[k].depth;
    ++stats_.recipients_queued;
    if (!outbox_[k].cursor.empty() && key < outbox_[k].cursor) outbox_[k].rewind = true;
  }

  if (resumed) {
    job.resume_chunks.pop_front();
  } else {
    std::string end;
    put_be64(end, range.end);
    pending_.Put(db_.handle(cf::jobs), chunk_key(job.job_id, range.begin), end);
    job.progress.next_cursor = range.end;
    put_progress(job);
  }
  ++job.open_chunks;
  ++stats_.chunks_started;
  update_handed(job);
  const size_t planned = plan_.size() - plan_mark;
  budget = planned >= budget ? 0 : budget - planned;
  started_.push_back(slot);
  return true;
}

size_t fanout::drain_outbox(size_t k, size_t budget) {
  outbox_state& o = outbox_[k];
  outbox_status& st = outbox_status_[k];
  if (connectors_[k] == nullptr || st.depth <= st.in_flight || room_[k] == 0) return 0;
  const size_t want = std::min({room_[k], budget, config_.limits.fanout_chunk});

  // The oldest waiting recipients not already in flight, after the cursor.
  struct entry {
    outbox_entry e;
    std::string key;
  };
  std::vector<entry> entries;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_.db().NewIterator(rocksdb::ReadOptions(), db_.handle(cf::outbox)));
    const bool from_start = o.rewind || o.cursor.empty();
    o.rewind = false;
    it->Seek(from_start ? o.prefix : o.cursor);
    if (!from_start && it->Valid() && it->key().ToStringView() == o.cursor) it->Next();
    for (; it->Valid() && entries.size() < want; it->Next()) {
      const std::string_view key = it->key().ToStringView();
      if (!key.starts_with(o.prefix)) break;
      if (o.in_flight.count(std::string(key)) != 0) continue;
      entry x;
      if (!parse_outbox_key(key, o.prefix.size(), x.e)) continue;
      x.key.assign(key);
      entries.push_back(std::move(x));
    }
    if (!it->status().ok()) {
      spdlog::error("{}: reading its outbox failed: {}", connectors_[k]->name(), it->status().ToString());
      return 0;
    }
    // Entries behind the cursor that are not in flight (a recipient that
    // could not be admitted) are found by starting over next time.
    if (entries.size() < want && !from_start && st.depth > st.in_flight + entries.size()) o.rewind = true;
  }
  if (entries.empty()) return 0;
  o.cursor = entries.back().key;

  size_t submitted = 0;
  for (size_t run_begin = 0; run_begin < entries.size();) {
    const uint64_t seq = entries[run_begin].e.job_seq;
    size_t run_end = run_begin;
    while (run_end < entries.size() && entries[run_end].e.job_seq == seq) ++run_end;
    auto job_it = jobs_by_seq_.find(seq);
    if (job_it == jobs_by_seq_.end()) {
      // Its job is no longer active (finished or deleted by hand): nothing
      // can be sent for it any more.
      spdlog::warn("{}: dropping {} outbox entries of a job that is no longer active (seq {})",
                   connectors_[k]->name(), run_end - run_begin, seq);
      for (size_t i = run_begin; i < run_end; ++i) pending_.Delete(db_.handle(cf::outbox), entries[i].key);
      st.depth -= run_end - run_begin;
      run_begin = run_end;
      continue;
    }
    active_job& job = *job_it->second;
    ordinals_.clear();
    for (size_t i = run_begin; i < run_end; ++i) ordinals_.push_back(entries[i].e.ordinal);
    auto read = directory_.read(ordinals_);
    if (!read) {
      spdlog::error("{}: reading recipients failed: {}", connectors_[k]->name(), read.err().message);
      break;
    }
    const uint32_t slot = allocate_chunk(job);
    chunk& c = *chunks_[slot];
    c.drained_from = static_cast<int32_t>(k);
    c.resumed = entries[run_end - 1].key <= o.recorded_before_start;
    size_t found = 0;
    uint32_t index = 0;
    for (size_t i = run_begin; i < run_end; ++i) {
      const entry& x = entries[i];
      if (found >= read->size() || (*read)[found].ordinal != x.e.ordinal) {
        // The user was deleted while waiting: nothing to send.
        pending_.Delete(db_.handle(cf::outbox), x.key);
        --st.depth;
        --job.queued;
        continue;
      }
      const size_t begin = plan_.size();
      const uint16_t n = route_recipient(job, (*read)[found++], slot, index);
      const size_t end = n == 0 ? begin : plan_.size();
      if (n > 0 && !admit(begin, end, true)) {
        // Another connector this recipient needs is full: it stays queued.
        for (size_t p = begin; p < end; ++p) plan_[p].connector = kSkipped;
        c.recipients[index].held = true;
        o.rewind = true;
      } else {
        o.in_flight.insert(x.key);
        ++st.in_flight;
        if (n > 0) start_recipient(c, index, n);
        if (n == 0) settle_unsent(c, index, plan_[begin]);
        submitted += n;
      }
      ++index;
    }
    ++job.open_chunks;
    ++stats_.chunks_started;
    started_.push_back(slot);
    run_begin = run_end;
  }
  stats_.recipients_drained += submitted;
  return submitted;
}

size_t fanout::step(size_t budget) {
  // Outboxes and timers are read from the database: outcomes recorded since
  // the last write (deleting drained entries and fired timers) must be in it first.
  const bool outbox_waiting = std::any_of(outbox_status_.begin(), outbox_status_.end(),
                                          [](const outbox_status& o) { return o.depth > 0; });
  if ((outbox_waiting || timers_pending_ > 0) && pending_.Count() > 0) {
    if (auto r = flush(); !r) {
      spdlog::critical("cannot record fan-out progress: {}", r.err().message);
      std::abort();
    }
  }
  if (!lingering_.empty()) finish_lingering();
  plan_.clear();
  plan_arena_.clear();
  started_.clear();
  for (size_t k = 0; k < connectors_.size(); ++k) {
    room_[k] = connectors_[k] == nullptr ? 0 : connectors_[k]->capacity() - connectors_[k]->in_flight();
  }

  // Recipients waiting in outboxes go before new ones, then those whose time came.
  for (size_t k = 0; k < connectors_.size() && budget > 0; ++k) {
    const size_t n = drain_outbox(k, budget);
    budget = n >= budget ? 0 : budget - n;
  }
  {
    const size_t n = fire_timers(budget);
    budget = n >= budget ? 0 : budget - n;
  }

  // Round robin: one chunk per job per round, so one broadcast cannot starve
  // a stream of single-recipient jobs.
  bool progressed = true;
  while (budget > 0 && progressed && !plan_queue_.empty()) {
    progressed = false;
    const size_t round = plan_queue_.size();
    for (size_t i = 0; i < round && budget > 0; ++i) {
      active_job* job = plan_queue_.front();
      plan_queue_.pop_front();
      if (plan_chunk(*job, budget)) progressed = true;
      if (!job->handed_all) plan_queue_.push_back(job);
    }
  }
  if (started_.empty()) return 0;

  // The chunk records and outbox entries must be durable before any of their
  // messages leaves.
  if (auto r = flush(); !r) {
    spdlog::critical("cannot record fan-out progress: {}", r.err().message);
    std::abort();
  }

  size_t submitted = 0;
  outbound_message m;
  std::string content;
  for (const planned& p : plan_) {
    if (p.connector == kSkipped) continue;
    chunk& c = *chunks_[p.chunk_slot];
    const std::string_view user = user_of(c, p.recipient);
    const std::string_view detail = std::string_view(plan_arena_).substr(p.address_offset, p.address_size);
    switch (p.connector) {
      case kNoRoute:
        ++c.no_route;
        events_.publish({.type = "rejected", .job_id = c.job->job_id, .company_id = c.job->spec.company_id,
                         .user_id = user, .reason = "no_route",
                         .detail = "no carrier of the user offers a channel of the job"});
        continue;
      case kWait:
        events_.publish({.type = "scheduled", .job_id = c.job->job_id, .company_id = c.job->spec.company_id,
                         .user_id = user, .reason = "waiting", .detail = detail, .until_unix_ms = p.at_ms});
        continue;
      case kExpired:
        events_.publish({.type = "failed", .job_id = c.job->job_id, .company_id = c.job->spec.company_id,
                         .user_id = user, .reason = "expired", .detail = detail});
        continue;
      case kThrottled:
        events_.publish({.type = "rejected", .job_id = c.job->job_id, .company_id = c.job->spec.company_id,
                         .user_id = user, .reason = "throttled", .detail = detail});
        continue;
      default:
        break;
    }
    const bool follow_up = p.step == kFollowUpStep;
    m.job = follow_up ? &c.job->follow_up_context : &c.job->context;
    m.id = make_message_id(c.job->job_id, user, p.ch, p.step);
    m.user_id = user;
    m.address = std::string_view(plan_arena_).substr(p.address_offset, p.address_size);
    m.token = make_token(p.chunk_slot, p.recipient);
    m.flags = c.resumed ? RELAY_MESSAGE_MAY_BE_DUPLICATE : 0;
    m.content_json = {};
    if (auto& tracked = follow_up ? c.job->follow_up_tracked : c.job->tracked) {
      // Each message carries its own signed links and pixel.
      tracked->render_into(m.id, *signer_, content);
      m.content_json = content;
    }
    connectors_[p.connector]->submit(m);
    ++submitted;
  }
  stats_.messages_submitted += submitted;
  for (uint32_t slot : started_) {
    if (chunks_[slot]->outstanding_recipients == 0) complete_chunk(slot);
  }
  return submitted;
}

void fanout::on_outcome(connector& conn, const connector_outcome& outcome) {
  const uint32_t slot = token_slot(outcome.token);
  const uint32_t index = token_index(outcome.token);
  if (slot >= chunks_.size() || chunks_[slot]->job == nullptr || index >= chunks_[slot]->recipients.size()) {
    spdlog::error("{}: outcome for unknown message token {}", conn.name(), outcome.token);
    return;
  }
  chunk& c = *chunks_[slot];
  recipient_state& r = c.recipients[index];
  const int16_t k = static_cast<int16_t>(
      std::find(connectors_.begin(), connectors_.end(), &conn) - connectors_.begin());
  r.last_connector = k;
  if (outcome.status == RELAY_SUBMIT_ACCEPTED) {
    const bool first = r.accepted_by < 0;
    const std::string_view user = user_of(c, index);
    const message_id id = make_message_id(c.job->job_id, user, conn.chan(), r.step);
    const sys_time now = clock_.now();
    send_record record;
    record.job_id = c.job->job_id;
    record.company_id = c.job->spec.company_id;
    record.user_id = user;
    record.carrier_id = conn.carrier_id();
    record.ch = conn.chan();
    record.sent_at_ms = unix_ms(now);
    record.ordinal = r.ordinal;
    record.step = r.step;
    size_t at = r.user_offset + r.user_size;
    record.gender = std::string_view(c.users).substr(at, r.gender_size);
    record.region = std::string_view(c.users).substr(at += r.gender_size, r.region_size);
    record.occupation = std::string_view(c.users).substr(at += r.region_size, r.occupation_size);
    record.age_band = r.age_band;
    record.local_hour = r.local_hour;
    record.weekday = r.weekday;
    delivery_.record_send(pending_, view(id), record, outcome.carrier_ref, first);
    if (first) {
      eng_.count_send(record, now, r.local_day);
      schedule_next_step(c, index, conn.chan(), true);
      r.accepted_by = k;
      events_.publish({.type = "sent", .job_id = c.job->job_id, .message_id = view(id),
                       .company_id = c.job->spec.company_id, .user_id = user,
                       .carrier_id = conn.carrier_id(), .channel = to_string(conn.chan())});
    }
  }
  if (--r.outstanding == 0) finish_recipient(c, index, slot, outcome.detail);
}

void fanout::finish_recipient(chunk& c, uint32_t index, uint32_t slot, std::string_view detail) {
  recipient_state& r = c.recipients[index];
  if (r.accepted_by >= 0) {
    ++c.sent;
    ++c.sent_by_connector[r.accepted_by];
  } else {
    ++c.failed;
    ++c.failed_by_connector[r.last_connector];
    connector& conn = *connectors_[r.last_connector];
    const std::string_view user = user_of(c, index);
    const message_id id = make_message_id(c.job->job_id, user, conn.chan(), r.step);
    schedule_next_step(c, index, conn.chan(), false);
    events_.publish({.type = "failed", .job_id = c.job->job_id, .message_id = view(id),
                     .company_id = c.job->spec.company_id, .user_id = user,
                     .carrier_id = conn.carrier_id(), .channel = to_string(conn.chan()),
                     .reason = "carrier_failed", .detail = detail});
  }
  if (--c.outstanding_recipients == 0) complete_chunk(slot);
}

void fanout::complete_chunk(uint32_t slot) {
  chunk& c = *chunks_[slot];
  active_job& job = *c.job;
  job.progress.sent += c.sent;
  job.progress.failed += c.failed;
  job.progress.no_route += c.no_route;
  stats_.recipients_sent += c.sent;
  stats_.recipients_failed += c.failed;
  stats_.recipients_no_route += c.no_route;
  if (c.from_timers) {
    // Fired timers go with their recipients' outcomes; held ones fire again.
    for (uint32_t i = 0; i < c.recipients.size(); ++i) {
      if (c.recipients[i].held) continue;
      const timer& t = c.timers[i];
      eng_.timers().remove(pending_, t);
      std::string key;
      timer_key(t, key);
      timers_in_flight_.erase(key);
      --job.timed;
      --timers_pending_;
    }
  } else if (c.drained_from >= 0) {
    // Drained recipients leave their outbox with their outcome.
    outbox_state& o = outbox_[c.drained_from];
    outbox_status& st = outbox_status_[c.drained_from];
    for (uint32_t i = 0; i < c.recipients.size(); ++i) {
      if (c.recipients[i].held) continue;
      const std::string key = outbox_key_of(c, i);
      pending_.Delete(db_.handle(cf::outbox), key);
      o.in_flight.erase(key);
      --st.in_flight;
      --st.depth;
      --job.queued;
    }
  } else {
    pending_.Delete(db_.handle(cf::jobs), chunk_key(job.job_id, c.range.begin));
  }
  for (size_t k = 0; k < connectors_.size(); ++k) {
    if (c.sent_by_connector[k] == 0 && c.failed_by_connector[k] == 0) continue;
    const counter_dims dims{job.spec.company_id, carrier_ids_[k / kChannelCount],
                            to_string(static_cast<channel>(k % kChannelCount)), {}};
    counters_.add(counter_kind::sent, dims, c.sent_by_connector[k]);
    counters_.add(counter_kind::failed, dims, c.failed_by_connector[k]);
  }
  counters_.add(counter_kind::rejected, {job.spec.company_id, {}, {}, "no_route"}, c.no_route);
  counters_.add(counter_kind::rejected, {job.spec.company_id, {}, {}, "throttled"}, c.throttled);
  counters_.add(counter_kind::rejected, {job.spec.company_id, {}, {}, "expired"}, c.expired);
  job.progress.expired += c.expired;
  job.progress.throttled += c.throttled;
  ++stats_.chunks_completed;
  release_chunk(slot);
  --job.open_chunks;
  put_progress(job);
  maybe_finish(job);
}

void fanout::maybe_finish(active_job& job) {
  if (job.open_chunks != 0 || !job.handed_all || job.queued != 0 || job.timed != 0) return;
  // A job with an on_open follow-up stays until an open can no longer trigger it.
  if (job.spec.on_open && clock_.now() < job.accepted_at + job.spec.on_open->within) {
    if (!job.lingering) {
      job.lingering = true;
      lingering_.push_back(&job);
    }
    return;
  }
  finish_job(job);
}

void fanout::put_progress(const active_job& job) {
  pending_.Put(db_.handle(cf::jobs), job_key(job.job_id, 'p'), encode_progress(job.progress));
}

void fanout::finish_job(active_job& job) {
  if (job.lingering) lingering_.erase(std::find(lingering_.begin(), lingering_.end(), &job));
  // The job record itself stays as accepted; the final progress says done.
  job.progress.done = true;
  put_progress(job);
  pending_.Delete(db_.handle(cf::jobs), job_key(job.job_id, 't'));
  pending_.Delete(db_.handle(cf::meta), active_key(job.seq));
  ++stats_.jobs_finished;
  jobs_by_seq_.erase(job.seq);
  jobs_.erase(job.job_id);  // `job` is gone after this line
}

result<void> fanout::flush() {
  counters_.flush_into(pending_, db_);
  eng_.flush_into(pending_);
  if (pending_.Count() == 0) return {};
  auto r = db_.write(pending_);
  pending_.Clear();
  return r;
}

void fanout::on_event(connector& conn, const plugin_event& e) { delivery_.add(conn.carrier_id(), conn.chan(), e); }

}  // namespace relay
