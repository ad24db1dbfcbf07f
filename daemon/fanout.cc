#include "daemon/fanout.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "routing/counters.h"
#include "routing/message_id.h"

namespace relay {
namespace {

constexpr uint16_t kNoRoute = 0xffff;

uint64_t make_token(uint32_t slot, uint32_t index) { return (uint64_t{slot} << 32) | index; }
uint32_t token_slot(uint64_t token) { return static_cast<uint32_t>(token >> 32); }
uint32_t token_index(uint64_t token) { return static_cast<uint32_t>(token); }

std::string_view event_type_name(relay_event_type t) {
  switch (t) {
    case RELAY_EVENT_DELIVERED: return "delivered";
    case RELAY_EVENT_OPENED: return "opened";
    case RELAY_EVENT_CLICKED: return "clicked";
    case RELAY_EVENT_FAILED: return "failed";
    case RELAY_EVENT_INBOUND: return "inbound";
  }
  return "unknown";
}

}  // namespace

fanout::fanout(store& db, const config& cfg, event_publisher& events, const clock& clk)
    : db_(db), config_(cfg), events_(events), clock_(clk), directory_(db) {
  for (const auto& c : cfg.carriers) carrier_ids_.push_back(c.id);
}

void fanout::attach(std::vector<connector*> connectors) {
  connectors_ = std::move(connectors);
  demand_.assign(connectors_.size(), 0);
}

fanout::~fanout() = default;

const active_job* fanout::find(std::string_view job_id) const {
  auto it = jobs_.find(std::string(job_id));
  return it == jobs_.end() ? nullptr : it->second.get();
}

void fanout::add_job(std::unique_ptr<active_job> job) {
  active_job& j = *job;
  j.context.job_id = j.job_id;
  j.context.company_id = j.spec.company_id;
  j.context.service_id = j.spec.service_id;
  j.context.content_json = j.spec.content_json;
  jobs_.emplace(j.job_id, std::move(job));
  update_handed(j);
  if (!j.handed_all) {
    plan_queue_.push_back(&j);
  } else if (j.open_chunks == 0) {
    finish_job(j);
  }
}

void fanout::update_handed(active_job& job) {
  if (job.handed_all) return;
  job.handed_all = job.resume_chunks.empty() &&
                   (job.target.isEmpty() || job.target.maximum() < job.progress.next_cursor);
  if (job.handed_all && on_handed_) on_handed_(job);
}

uint32_t fanout::allocate_chunk() {
  uint32_t slot;
  if (!free_chunks_.empty()) {
    slot = free_chunks_.back();
    free_chunks_.pop_back();
  } else {
    slot = static_cast<uint32_t>(chunks_.size());
    chunks_.push_back(std::make_unique<chunk>());
  }
  chunk& c = *chunks_[slot];
  c.job = nullptr;
  c.resumed = false;
  c.outstanding_recipients = 0;
  c.users.clear();
  c.recipients.clear();
  c.sent = c.failed = c.no_route = 0;
  c.sent_by_connector.assign(connectors_.size(), 0);
  c.failed_by_connector.assign(connectors_.size(), 0);
  ++chunks_in_use_;
  return slot;
}

std::string_view fanout::user_of(const chunk& c, uint32_t index) const {
  const recipient_state& r = c.recipients[index];
  return std::string_view(c.users).substr(r.user_offset, r.user_size);
}

void fanout::route_recipient(active_job& job, const recipient& r, uint32_t slot, uint32_t index,
                             chunk& c) {
  c.recipients.push_back({static_cast<uint32_t>(c.users.size()),
                          static_cast<uint16_t>(r.user_id.size()), 0, -1, -1});
  c.users.append(r.user_id);

  uint16_t submissions = 0;
  const std::vector<channel>& order = job.spec.order.empty() ? config_.default_order : job.spec.order;
  for (channel ch : order) {
    const int ci = static_cast<int>(ch);
    // The user's links that can carry `ch`: (link, connector index).
    struct candidate {
      int link;
      uint16_t connector;
    };
    candidate chosen[kMaxCarriersPerUser];
    int chosen_count = 0;
    int primary = -1;
    for (int l = 0; l < r.carrier_count; ++l) {
      const recipient_carrier& link = r.carriers[l];
      if (!(link.channels & channel_bit(ch)) || link.address[ci].empty()) continue;
      const auto carrier = std::find(carrier_ids_.begin(), carrier_ids_.end(), link.carrier_id);
      if (carrier == carrier_ids_.end()) continue;  // a carrier this relay does not run
      const size_t k = static_cast<size_t>(carrier - carrier_ids_.begin()) * kChannelCount + ci;
      if (connectors_[k] == nullptr) continue;
      if (link.primary && primary < 0) primary = chosen_count;
      chosen[chosen_count++] = {l, static_cast<uint16_t>(k)};
    }
    if (chosen_count == 0) continue;
    int from = 0, to = chosen_count;
    if (config_.carriers_multi == multi_carrier::primary) {
      from = primary >= 0 ? primary : 0;
      to = from + 1;
    }
    for (int x = from; x < to; ++x) {
      const recipient_carrier& link = r.carriers[chosen[x].link];
      const uint16_t k = chosen[x].connector;
      plan_.push_back({slot, index, k, ch, static_cast<uint32_t>(plan_arena_.size()),
                       static_cast<uint16_t>(link.address[ci].size())});
      plan_arena_.append(link.address[ci]);
      ++demand_[k];
      ++submissions;
    }
    if (job.spec.mode != channel_mode::simultaneous) break;
  }
  if (submissions == 0) {
    plan_.push_back({slot, index, kNoRoute, channel::sms, 0, 0});
  } else {
    c.recipients.back().outstanding = submissions;
    ++c.outstanding_recipients;
  }
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
  demand_mark_ = demand_;
  const uint32_t slot = allocate_chunk();
  chunk& c = *chunks_[slot];
  c.job = &job;
  c.range = range;
  c.resumed = resumed;
  uint32_t index = 0;
  for (const recipient& r : *read) route_recipient(job, r, slot, index++, c);

  for (size_t k = 0; k < connectors_.size(); ++k) {
    if (demand_[k] == 0 || connectors_[k] == nullptr) continue;
    if (connectors_[k]->in_flight() + demand_[k] > connectors_[k]->capacity()) {
      plan_.resize(plan_mark);
      plan_arena_.resize(arena_mark);
      demand_ = demand_mark_;
      free_chunks_.push_back(slot);
      --chunks_in_use_;
      return false;  // blocked: wait for room
    }
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

size_t fanout::step(size_t budget) {
  plan_.clear();
  plan_arena_.clear();
  started_.clear();
  std::fill(demand_.begin(), demand_.end(), 0);

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

  // The chunk records must be durable before any of their messages leaves.
  if (auto r = flush(); !r) {
    spdlog::critical("cannot record fan-out progress: {}", r.err().message);
    std::abort();
  }

  size_t submitted = 0;
  outbound_message m;
  for (const planned& p : plan_) {
    chunk& c = *chunks_[p.chunk_slot];
    const std::string_view user = user_of(c, p.recipient);
    if (p.connector == kNoRoute) {
      ++c.no_route;
      events_.publish({.type = "rejected", .job_id = c.job->job_id, .company_id = c.job->spec.company_id,
                       .user_id = user, .reason = "no_route",
                       .detail = "no carrier of the user offers a channel of the job"});
      continue;
    }
    m.job = &c.job->context;
    m.id = make_message_id(c.job->job_id, user, p.ch);
    m.user_id = user;
    m.address = std::string_view(plan_arena_).substr(p.address_offset, p.address_size);
    m.token = make_token(p.chunk_slot, p.recipient);
    m.flags = c.resumed ? RELAY_MESSAGE_MAY_BE_DUPLICATE : 0;
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
  if (slot >= chunks_.size() || index >= chunks_[slot]->recipients.size()) {
    spdlog::error("{}: outcome for unknown message token {}", conn.name(), outcome.token);
    return;
  }
  chunk& c = *chunks_[slot];
  recipient_state& r = c.recipients[index];
  const int16_t k = static_cast<int16_t>(
      std::find(connectors_.begin(), connectors_.end(), &conn) - connectors_.begin());
  r.last_connector = k;
  if (outcome.status == RELAY_SUBMIT_ACCEPTED && r.accepted_by < 0) {
    r.accepted_by = k;
    const std::string_view user = user_of(c, index);
    const message_id id = make_message_id(c.job->job_id, user, conn.chan());
    events_.publish({.type = "sent", .job_id = c.job->job_id, .message_id = view(id),
                     .company_id = c.job->spec.company_id, .user_id = user,
                     .carrier_id = conn.carrier_id(), .channel = to_string(conn.chan())});
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
    const message_id id = make_message_id(c.job->job_id, user, conn.chan());
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
  pending_.Delete(db_.handle(cf::jobs), chunk_key(job.job_id, c.range.begin));
  for (size_t k = 0; k < connectors_.size(); ++k) {
    if (c.sent_by_connector[k] == 0 && c.failed_by_connector[k] == 0) continue;
    const counter_dims dims{job.spec.company_id, carrier_ids_[k / kChannelCount],
                            to_string(static_cast<channel>(k % kChannelCount)), {}};
    counters_.add(counter_kind::sent, dims, c.sent_by_connector[k]);
    counters_.add(counter_kind::failed, dims, c.failed_by_connector[k]);
  }
  counters_.add(counter_kind::rejected, {job.spec.company_id, {}, {}, "no_route"},
              c.no_route);
  ++stats_.chunks_completed;
  c.job = nullptr;
  free_chunks_.push_back(slot);
  --chunks_in_use_;
  if (--job.open_chunks == 0 && job.handed_all) {
    finish_job(job);  // writes the final progress
  } else {
    put_progress(job);
  }
}

void fanout::put_progress(const active_job& job) {
  pending_.Put(db_.handle(cf::jobs), job_key(job.job_id, 'p'), encode_progress(job.progress));
}

void fanout::finish_job(active_job& job) {
  // The job record itself stays as accepted; the final progress says done.
  job.progress.done = true;
  put_progress(job);
  pending_.Delete(db_.handle(cf::jobs), job_key(job.job_id, 't'));
  pending_.Delete(db_.handle(cf::meta), active_key(job.seq));
  ++stats_.jobs_finished;
  jobs_.erase(job.job_id);  // `job` is gone after this line
}

result<void> fanout::flush() {
  counters_.flush_into(pending_, db_);
  if (pending_.Count() == 0) return {};
  auto r = db_.write(pending_);
  pending_.Clear();
  return r;
}

void fanout::on_event(connector& conn, const plugin_event& e) {
  const std::string_view type = event_type_name(e.type);
  events_.publish({.type = type, .message_id = e.message_id, .carrier_id = conn.carrier_id(),
                   .channel = to_string(conn.chan()), .reason = e.reason, .at_unix_ms = e.at_unix_ms});
  counter_kind kind;
  switch (e.type) {
    case RELAY_EVENT_DELIVERED: kind = counter_kind::delivered; break;
    case RELAY_EVENT_OPENED: kind = counter_kind::opened; break;
    case RELAY_EVENT_CLICKED: kind = counter_kind::clicked; break;
    default: return;
  }
  counters_.add(kind, {{}, conn.carrier_id(), to_string(conn.chan()), {}}, 1);
}

}  // namespace relay
