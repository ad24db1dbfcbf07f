#include "plugins/common/abi_support.h"
#include "plugins/sms_smpp/smpp_connector.h"

#include <algorithm>
#include <cstdio>

#include "plugins/sms_smpp/delivery_receipt.h"
#include "plugins/sms_smpp/message_content.h"
#include "plugins/sms_smpp/sms_text.h"

namespace sms_smpp {

namespace {

using relay::plugin_abi::to_relay;
using relay::plugin_abi::view;

constexpr std::chrono::milliseconds kSweepInterval{20};
// How long shutdown waits for outstanding submit_sm_resps, then for unbind_resp.
constexpr std::chrono::milliseconds kDrainGrace{2000};
constexpr std::chrono::milliseconds kUnbindGrace{1000};


std::string ms_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

connector::connector(const relay_host* host, smpp_config cfg)
    : host_(host),
      cfg_(std::move(cfg)),
      work_(boost::asio::make_work_guard(io_)),
      resolver_(io_),
      sweep_timer_(io_),
      pump_timer_(io_),
      chunk_(64 * 1024),
      rng_(std::random_device{}()),
      bucket_(cfg_.tps),
      receipts_(cfg_.receipt_memory, cfg_.receipt_max_age),
      inbound_parts_(10'000, std::chrono::minutes(10)) {}

connector::~connector() { shutdown(); }

void connector::start() {
  boost::asio::post(io_, [this] {
    connect();
    arm_sweep();
  });
  thread_ = std::thread([this] { io_.run(); });
}

void connector::log(relay_log_level level, const std::string& text) const {
  host_->callback_log(host_->host_ctx, level, to_relay(text));
}

void connector::done(uint64_t submit_id, relay_submit_status status, std::string_view ref,
                     std::string_view detail) {
  host_->callback_submit_done(host_->host_ctx, submit_id, status, to_relay(ref), to_relay(detail));
}

void connector::emit(const relay_event& e) { host_->callback_emit_event(host_->host_ctx, &e); }

// ---------------------------------------------------------------------------
// Host threads.

void connector::submit(uint64_t submit_id, const relay_message& m) {
  incoming_message in;
  in.submit_id = submit_id;
  in.flags = m.flags;
  in.message_id.assign(view(m.message_id));
  in.address.assign(view(m.address));
  in.content_json.assign(view(m.content_json));
  in.at = clock::now();
  std::unique_lock lock(mu_);
  if (closing_) {
    lock.unlock();
    done(submit_id, RELAY_SUBMIT_RETRY, {}, "sms_smpp is stopping");
    return;
  }
  incoming_.push_back(std::move(in));
  if (!drain_posted_) {
    drain_posted_ = true;
    lock.unlock();
    boost::asio::post(io_, [this] { drain_incoming(); });
  }
}

void connector::shutdown() {
  {
    std::lock_guard lock(mu_);
    if (closing_) return;
    closing_ = true;
  }
  if (thread_.joinable()) {
    boost::asio::post(io_, [this] {
      drain_incoming();
      begin_shutdown();
    });
    thread_.join();
  }
  // Anything that raced in before closing_ was set but after the I/O thread's
  // last drain: report it before returning, as the ABI requires.
  std::deque<incoming_message> left;
  {
    std::lock_guard lock(mu_);
    left.swap(incoming_);
  }
  for (auto& m : left) done(m.submit_id, RELAY_SUBMIT_RETRY, {}, "sms_smpp is stopping");
}

// ---------------------------------------------------------------------------
// I/O thread: taking messages in.

void connector::drain_incoming() {
  std::deque<incoming_message> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(incoming_);
    drain_posted_ = false;
  }
  for (auto& m : batch) prepare(std::move(m));
  pump();
}

void connector::prepare(incoming_message&& m) {
  if (stopping_) {
    done(m.submit_id, RELAY_SUBMIT_RETRY, {}, "sms_smpp is stopping");
    return;
  }
  if ((m.flags & RELAY_MESSAGE_MAY_BE_DUPLICATE) != 0) {
    // SMPP does not de-duplicate; this memory does, while it remembers.
    if (auto g = receipts_.find_message(m.message_id); g && g->accepted) {
      done(m.submit_id, RELAY_SUBMIT_ACCEPTED, g->first_smsc_id, "duplicate");
      return;
    }
  }
  const auto content =
      parse_content(m.content_json.empty() ? std::string_view("{}") : m.content_json);
  if (!content) {
    done(m.submit_id, RELAY_SUBMIT_FAILED, {}, "content_json is not a JSON object");
    return;
  }
  const std::string body = sms_body(*content);
  if (body.empty()) {
    done(m.submit_id, RELAY_SUBMIT_FAILED, {}, "content has no text or link for an SMS");
    return;
  }
  const auto destination = smpp_destination(m.address, cfg_.dest_addr_ton);
  if (!destination) {
    done(m.submit_id, RELAY_SUBMIT_FAILED, {},
         "address is not an E.164 number (1 to 20 digits after \"+\")");
    return;
  }
  sms_parts parts = split_text(body);
  if (parts.payloads.size() > kMaxParts) {
    done(m.submit_id, RELAY_SUBMIT_FAILED, {},
         "text needs " + std::to_string(parts.payloads.size()) + " SMS parts (at most 255)");
    return;
  }
  short_message_pdu sm;
  sm.source_addr_ton = cfg_.effective_source_ton();
  sm.source_addr_npi = cfg_.effective_source_npi();
  sm.source_addr = cfg_.effective_source_addr();
  sm.dest_addr_ton = cfg_.dest_addr_ton;
  sm.dest_addr_npi = cfg_.dest_addr_npi;
  sm.destination_addr = *destination;
  sm.registered_delivery = cfg_.registered_delivery;
  sm.data_coding = parts.data_coding;
  job j;
  j.submit_id = m.submit_id;
  j.message_id = std::move(m.message_id);
  j.queued_at = m.at;
  const size_t total = parts.payloads.size();
  const uint8_t reference = ++concat_reference_;
  for (size_t i = 0; i < total; ++i) {
    if (total > 1) {
      sm.esm_class = kEsmClassUdhi;
      sm.short_message =
          concat_udh(reference, static_cast<uint8_t>(total), static_cast<uint8_t>(i + 1)) +
          parts.payloads[i];
    } else {
      sm.esm_class = 0;
      sm.short_message = std::move(parts.payloads[i]);
    }
    j.bodies.push_back(encode_short_message_body(sm));
  }
  j.group = std::make_shared<receipt_group>();
  j.group->message_id = j.message_id;
  j.group->parts = static_cast<uint32_t>(total);
  j.group->part_final.assign(total, false);
  const uint64_t key = ++next_job_key_;
  jobs_.emplace(key, std::move(j));
  queue_.push_back(key);
}

// ---------------------------------------------------------------------------
// I/O thread: sending within the window, the TPS limit and throttle pauses.

void connector::pump() {
  if (state_ != link_state::bound || stopping_) return;
  const auto now = clock::now();
  if (now < paused_until_) {
    arm_pump(paused_until_);
    return;
  }
  bool sent = false;
  while (!queue_.empty() && outstanding_.size() < cfg_.window) {
    auto it = jobs_.find(queue_.front());
    if (it == jobs_.end()) {  // finished (failed) while parts were still unsent
      queue_.pop_front();
      continue;
    }
    if (!bucket_.take(now)) {
      arm_pump(bucket_.next_token(now));
      break;
    }
    job& j = it->second;
    const uint32_t seq = next_sequence();
    const uint32_t part = static_cast<uint32_t>(j.next_part++);
    append_with_header(wbuf_pending_, kSubmitSm, 0, seq, j.bodies[part]);
    outstanding_.emplace(seq, outstanding_pdu{it->first, part, now + cfg_.response_timeout});
    if (j.next_part == j.bodies.size()) queue_.pop_front();
    sent = true;
  }
  max_outstanding_seen_ = std::max(max_outstanding_seen_, outstanding_.size());
  if (sent) flush();
}

void connector::arm_pump(clock::time_point at) {
  if (pump_armed_for_ != clock::time_point{} && pump_armed_for_ <= at) return;
  pump_armed_for_ = at;
  pump_timer_.expires_at(at);
  pump_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed earlier or shutting down
    pump_armed_for_ = {};
    pump();
  });
}

uint32_t connector::next_sequence() {
  if (++sequence_ > 0x7fffffffu) sequence_ = 1;
  return sequence_;
}

void connector::complete(uint64_t job_key, relay_submit_status status, std::string_view ref,
                         std::string_view detail) {
  auto it = jobs_.find(job_key);
  if (it == jobs_.end()) return;
  const uint64_t submit_id = it->second.submit_id;
  std::shared_ptr<receipt_group> group = std::move(it->second.group);
  jobs_.erase(it);
  if (status != RELAY_SUBMIT_ACCEPTED && group) group->abandoned = true;
  done(submit_id, status, ref, detail);
  if (status == RELAY_SUBMIT_ACCEPTED && group) {
    group->accepted = true;
    if (group->event_pending) {
      group->event_pending = false;
      emit_group_event(*group, group->pending_failed, group->pending_reason, group->pending_detail,
                       group->pending_carrier_ref);
    }
  }
}

void connector::on_submit_resp(uint32_t sequence, uint32_t status, std::string message_id) {
  auto o = outstanding_.find(sequence);
  if (o == outstanding_.end()) return;  // answered after its timeout: already retried
  const outstanding_pdu sent = o->second;
  outstanding_.erase(o);
  auto it = jobs_.find(sent.job_key);
  if (it != jobs_.end()) {
    job& j = it->second;
    if (status == kRok) {
      if (sent.part == 0) j.group->first_smsc_id = message_id;
      receipts_.add(message_id, j.group, sent.part, clock::now());
      if (++j.accepted == j.bodies.size()) {
        const std::string ref = j.group->first_smsc_id;
        complete(sent.job_key, RELAY_SUBMIT_ACCEPTED, ref, {});
      }
    } else {
      if (status == kRthrottled || status == kRmsgqful) {
        const auto now = clock::now();
        if (now >= paused_until_) {
          log(RELAY_LOG_INFO, "SMSC answered " + status_text(status) + ": pausing submits for " +
                                  ms_text(cfg_.throttle_pause));
        }
        paused_until_ = now + cfg_.throttle_pause;
      }
      // Parts already accepted stay with the SMSC: see README "Long messages".
      std::string detail = status_text(status);
      if (j.bodies.size() > 1)
        detail += " (part " + std::to_string(sent.part + 1) + " of " +
                  std::to_string(j.bodies.size()) + ")";
      complete(sent.job_key, status_is_transient(status) ? RELAY_SUBMIT_RETRY : RELAY_SUBMIT_FAILED,
               {}, detail);
    }
  }
  pump();
}

// ---------------------------------------------------------------------------
// I/O thread: the periodic sweep (timeouts, keep-alive, reconnects, eviction).

void connector::arm_sweep() {
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    sweep();
    if (!io_.stopped()) arm_sweep();
  });
}

void connector::sweep() {
  const auto now = clock::now();
  // Submits the SMSC did not answer in time.
  std::vector<uint32_t> late;
  for (const auto& [seq, o] : outstanding_) {
    if (o.deadline <= now) late.push_back(seq);
  }
  for (uint32_t seq : late) {
    const uint64_t key = outstanding_[seq].job_key;
    outstanding_.erase(seq);
    complete(key, RELAY_SUBMIT_RETRY, {},
             "no submit_sm_resp within " + ms_text(cfg_.response_timeout));
  }
  // Messages that waited too long for a bind (or for the window).
  while (!queue_.empty()) {
    auto it = jobs_.find(queue_.front());
    if (it == jobs_.end()) {
      queue_.pop_front();
      continue;
    }
    if (it->second.next_part != 0 || now - it->second.queued_at < cfg_.queue_timeout) break;
    const uint64_t key = queue_.front();
    queue_.pop_front();
    complete(key, RELAY_SUBMIT_RETRY, {},
             state_ == link_state::bound
                 ? "not sent within queue_timeout " + ms_text(cfg_.queue_timeout)
                 : "not bound to the SMSC within queue_timeout " + ms_text(cfg_.queue_timeout) +
                       " (" + last_error_ + ")");
  }
  if (!late.empty()) pump();

  switch (state_) {
    case link_state::disconnected:
      if (!stopping_ && now >= reconnect_at_) connect();
      break;
    case link_state::connecting:
    case link_state::binding:
      if (now >= connect_deadline_) {
        drop(state_ == link_state::connecting
                 ? "connect timed out after " + ms_text(cfg_.connect_timeout)
                 : "no bind_transceiver_resp within " + ms_text(cfg_.connect_timeout));
      }
      break;
    case link_state::bound:
      if (enquire_outstanding_ && now >= enquire_deadline_) {
        drop("no enquire_link_resp within " + ms_text(cfg_.response_timeout));
        break;
      }
      if (!enquire_outstanding_ && now >= next_enquire_) {
        enquire_outstanding_ = true;
        enquire_sequence_ = next_sequence();
        enquire_deadline_ = now + cfg_.response_timeout;
        next_enquire_ = now + cfg_.enquire_link_interval;
        encode_empty(wbuf_pending_, kEnquireLink, 0, enquire_sequence_);
        flush();
      }
      if (stopping_ && (outstanding_.empty() || now >= drain_deadline_)) send_unbind();
      break;
    case link_state::unbinding:
      if (now >= unbind_deadline_) finish_shutdown();
      break;
  }
  receipts_.evict_expired(now);
  inbound_parts_.evict_expired(now);
}

std::chrono::milliseconds connector::next_backoff() {
  // Exponential from reconnect_min to reconnect_max, with "equal jitter": a
  // random point in the upper half, so many connectors do not reconnect in step.
  const unsigned shift = std::min(reconnect_attempts_, 20u);
  ++reconnect_attempts_;
  const auto full = std::min<int64_t>(cfg_.reconnect_max.count(),
                                      cfg_.reconnect_min.count() * (int64_t{1} << shift));
  std::uniform_int_distribution<int64_t> half(0, full / 2);
  return std::chrono::milliseconds(full - full / 2 + half(rng_));
}

// ---------------------------------------------------------------------------
// I/O thread: the connection.

void connector::connect() {
  state_ = link_state::connecting;
  const uint64_t gen = ++gen_;
  connect_deadline_ = clock::now() + cfg_.connect_timeout;
  socket_ = std::make_unique<tcp::socket>(io_);
  resolver_.async_resolve(
      cfg_.host, std::to_string(cfg_.port),
      [this, gen](const boost::system::error_code& ec, tcp::resolver::results_type results) {
        if (gen != gen_) return;
        if (ec) return drop("cannot resolve " + cfg_.host + ": " + ec.message());
        boost::asio::async_connect(
            *socket_, results,
            [this, gen](const boost::system::error_code& ec2, const tcp::endpoint&) {
              if (gen != gen_) return;
              if (ec2)
                return drop("cannot connect to " + cfg_.host + ":" + std::to_string(cfg_.port) +
                            ": " + ec2.message());
              on_connected(gen);
            });
      });
}

void connector::on_connected(uint64_t gen) {
  boost::system::error_code ignored;
  socket_->set_option(tcp::no_delay(true), ignored);
  state_ = link_state::binding;
  rbuf_.clear();
  bind_transceiver b;
  b.system_id = cfg_.system_id;
  b.password = cfg_.password;
  b.system_type = cfg_.system_type;
  bind_sequence_ = next_sequence();
  encode_bind_transceiver(wbuf_pending_, bind_sequence_, b);
  flush();
  start_read(gen);
}

void connector::start_read(uint64_t gen) {
  socket_->async_read_some(
      boost::asio::buffer(chunk_), [this, gen](const boost::system::error_code& ec, size_t n) {
        if (gen != gen_) return;
        if (ec) {
          return drop(ec == boost::asio::error::eof ? "the SMSC closed the connection"
                                                    : "read: " + ec.message());
        }
        rbuf_.append(chunk_.data(), n);
        on_bytes(gen);
        if (gen == gen_) start_read(gen);
      });
}

void connector::on_bytes(uint64_t gen) {
  size_t at = 0;
  while (gen == gen_) {
    const std::string_view rest = std::string_view(rbuf_).substr(at);
    const auto len = peek_length(rest);
    if (!len) break;
    if (*len < kHeaderSize || *len > kMaxPduSize) {
      return drop("corrupt stream from the SMSC: command_length " + std::to_string(*len));
    }
    if (rest.size() < *len) break;
    handle_pdu(rest.substr(0, *len));
    at += *len;
  }
  if (gen == gen_) rbuf_.erase(0, at);
}

void connector::handle_pdu(std::string_view bytes) {
  const auto head = decode_header(bytes);
  auto decoded = decode(bytes);
  if (!decoded) {
    log(
        RELAY_LOG_WARN, "malformed PDU 0x" +
                            [&] {
                              char b[16];
                              std::snprintf(b, sizeof b, "%08x", head->id);
                              return std::string(b);
                            }() +
                            " from the SMSC: " + decoded.error().message);
  }
  switch (head->id) {
    case kBindTransceiverResp:
      if (state_ != link_state::binding || head->sequence != bind_sequence_) return;
      if (head->status == kRok) {
        state_ = link_state::bound;
        reconnect_attempts_ = 0;
        last_error_.clear();
        enquire_outstanding_ = false;
        next_enquire_ = clock::now() + cfg_.enquire_link_interval;
        log(RELAY_LOG_INFO, "bound to SMSC " + cfg_.host + ":" + std::to_string(cfg_.port) +
                                " as " + cfg_.system_id + " (transceiver)");
        if (stopping_) {
          send_unbind();
        } else {
          pump();
        }
      } else {
        drop("bind rejected by the SMSC: " + status_text(head->status));
      }
      return;
    case kSubmitSmResp:
      return on_submit_resp(head->sequence, head->status, decoded ? decoded->message_id : "");
    case kGenericNack:
      if (outstanding_.count(head->sequence) != 0)
        return on_submit_resp(head->sequence, head->status != 0 ? head->status : 0xff, "");
      if (head->sequence == bind_sequence_ && state_ == link_state::binding)
        return drop("bind answered with generic_nack " + status_text(head->status));
      return;
    case kDeliverSm:
      // Always answered, even when it cannot be read, so the SMSC does not
      // redeliver a message we can never parse.
      encode_message_id_resp(wbuf_pending_, kDeliverSmResp, kRok, head->sequence, "");
      flush();
      if (decoded && decoded->sm) on_deliver_sm(*decoded->sm);
      return;
    case kEnquireLink:
      encode_empty(wbuf_pending_, kEnquireLinkResp, kRok, head->sequence);
      flush();
      return;
    case kEnquireLinkResp:
      if (head->sequence == enquire_sequence_) enquire_outstanding_ = false;
      return;
    case kUnbind:
      encode_empty(wbuf_pending_, kUnbindResp, kRok, head->sequence);
      flush();
      return drop("the SMSC unbound");
    case kUnbindResp:
      if (state_ == link_state::unbinding && head->sequence == unbind_sequence_) finish_shutdown();
      return;
    default:
      // A request sms_smpp does not support (data_sm, query_sm, ...).
      if ((head->id & 0x80000000u) == 0) {
        encode_empty(wbuf_pending_, kGenericNack, 0x03 /* ESME_RINVCMDID */, head->sequence);
        flush();
      }
      return;
  }
}

void connector::flush() {
  if (writing_ || wbuf_pending_.empty() || !socket_ || state_ == link_state::disconnected ||
      state_ == link_state::connecting)
    return;
  writing_ = true;
  wbuf_inflight_.swap(wbuf_pending_);
  wbuf_pending_.clear();
  const uint64_t gen = gen_;
  boost::asio::async_write(*socket_, boost::asio::buffer(wbuf_inflight_),
                           [this, gen](const boost::system::error_code& ec, size_t) {
                             if (gen != gen_) return;
                             writing_ = false;
                             wbuf_inflight_.clear();
                             if (ec) return drop("write: " + ec.message());
                             flush();
                           });
}

void connector::drop(const std::string& why) {
  if (state_ == link_state::disconnected) return;
  const bool was_bound = state_ == link_state::bound || state_ == link_state::unbinding;
  ++gen_;  // every handler of this connection is now stale
  if (socket_) {
    boost::system::error_code ignored;
    socket_->close(ignored);
  }
  resolver_.cancel();
  state_ = link_state::disconnected;
  writing_ = false;
  wbuf_pending_.clear();
  wbuf_inflight_.clear();
  rbuf_.clear();
  enquire_outstanding_ = false;
  last_error_ = why;

  // Every submit the SMSC has not answered may or may not have been taken: retry.
  std::vector<uint64_t> lost;
  for (const auto& [seq, o] : outstanding_) lost.push_back(o.job_key);
  outstanding_.clear();
  // A long message with parts not yet sent cannot be finished on a new bind.
  if (!queue_.empty()) {
    auto it = jobs_.find(queue_.front());
    if (it != jobs_.end() && it->second.next_part != 0) lost.push_back(queue_.front());
  }
  std::sort(lost.begin(), lost.end());
  lost.erase(std::unique(lost.begin(), lost.end()), lost.end());
  for (uint64_t key : lost)
    complete(key, RELAY_SUBMIT_RETRY, {}, "connection to the SMSC lost: " + why);

  if (stopping_) return finish_shutdown();
  const auto delay = next_backoff();
  reconnect_at_ = clock::now() + delay;
  log(RELAY_LOG_WARN,
      std::string(was_bound ? "SMPP bind lost: " : "SMPP bind failed: ") + why +
          (lost.empty() ? "" : "; " + std::to_string(lost.size()) + " message(s) will be retried") +
          "; reconnecting in " + ms_text(delay));
}

// ---------------------------------------------------------------------------
// I/O thread: deliver_sm (receipts and user messages).

void connector::on_deliver_sm(const short_message_pdu& sm) {
  if ((sm.esm_class & 0x04) != 0) {
    on_receipt(sm);
  } else {
    on_user_message(sm);
  }
}

void connector::emit_group_event(receipt_group& g, bool failed, const std::string& reason,
                                 const std::string& detail, const std::string& carrier_ref) {
  relay_event e{};
  e.struct_size = sizeof(relay_event);
  e.type = failed ? RELAY_EVENT_FAILED : RELAY_EVENT_DELIVERED;
  e.message_id = to_relay(g.message_id);
  e.carrier_ref = to_relay(carrier_ref);
  e.reason = to_relay(reason);
  e.detail = to_relay(detail);
  emit(e);
}

void connector::on_receipt(const short_message_pdu& sm) {
  const auto r = read_receipt(sm);
  if (!r) {
    log(RELAY_LOG_WARN, "delivery receipt without a message id or state ignored");
    return;
  }
  if (!receipt_is_final(r->state)) return;  // ENROUTE, ACCEPTD, UNKNOWN: wait for the final one
  const bool failed = r->state != receipt_state::delivered;
  const std::string reason = failed ? std::string(failure_reason(r->state)) : std::string();
  const std::string detail = receipt_detail(*r);
  const receipt_match match = receipts_.find(r->smsc_id);
  if (!match.group) {
    // Not (or no longer) in memory: relay matches carrier_ref itself.
    relay_event e{};
    e.struct_size = sizeof(relay_event);
    e.type = failed ? RELAY_EVENT_FAILED : RELAY_EVENT_DELIVERED;
    e.carrier_ref = to_relay(r->smsc_id);
    e.reason = to_relay(reason);
    e.detail = to_relay(detail);
    emit(e);
    return;
  }
  receipt_group& g = *match.group;
  if (g.abandoned || g.finished) return;  // relay retries it, or the event went out already
  if (match.part < g.part_final.size()) {
    if (g.part_final[match.part]) return;  // a repeated receipt
    g.part_final[match.part] = true;
  }
  if (!failed && ++g.delivered < g.parts) return;  // DELIVERED once every part is
  g.finished = true;
  const std::string ref = g.first_smsc_id.empty() ? r->smsc_id : g.first_smsc_id;
  if (!g.accepted) {
    // A receipt overtook the last submit_sm_resp: report after ACCEPTED.
    g.event_pending = true;
    g.pending_failed = failed;
    g.pending_reason = reason;
    g.pending_detail = detail;
    g.pending_carrier_ref = ref;
    return;
  }
  emit_group_event(g, failed, reason, detail, ref);
}

void connector::on_user_message(const short_message_pdu& sm) {
  std::string_view octets = sm.short_message;
  if (octets.empty()) {
    if (const tlv* payload = sm.find(kTagMessagePayload)) octets = payload->value;
  }
  std::string text_octets(octets);
  if ((sm.esm_class & kEsmClassUdhi) != 0) {
    const auto udh = parse_udh(octets);
    if (!udh) {
      log(RELAY_LOG_WARN, "user message with a malformed UDH ignored");
      return;
    }
    text_octets = std::string(octets.substr(udh->header_size));
    if (udh->concatenated && udh->total > 1) {
      const std::string key = sm.source_addr + '\x1f' + sm.destination_addr + '\x1f' +
                              std::to_string(udh->reference) + '\x1f' +
                              std::to_string(sm.data_coding);
      auto whole =
          inbound_parts_.add(key, udh->total, udh->sequence, std::move(text_octets), clock::now());
      if (!whole) return;  // waiting for the other parts
      text_octets = std::move(*whole);
    }
  }
  const std::string text = decode_text(sm.data_coding, text_octets);
  const std::string from = relay_address(sm.source_addr, sm.source_addr_ton);
  relay_event e{};
  e.struct_size = sizeof(relay_event);
  e.type = RELAY_EVENT_INBOUND;
  e.from = to_relay(from);
  e.to = to_relay(sm.destination_addr);
  e.text = to_relay(text);
  emit(e);
}

// ---------------------------------------------------------------------------
// I/O thread: stopping.

void connector::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  // Messages not handed to the SMSC yet go back to relay now.
  std::vector<uint64_t> unsent;
  for (uint64_t key : queue_) unsent.push_back(key);
  queue_.clear();
  for (uint64_t key : unsent) complete(key, RELAY_SUBMIT_RETRY, {}, "sms_smpp is stopping");
  pump_timer_.cancel();
  drain_deadline_ =
      clock::now() + std::min<std::chrono::milliseconds>(kDrainGrace, cfg_.response_timeout);
  if (state_ != link_state::bound) return finish_shutdown();
  if (outstanding_.empty()) send_unbind();
  // else: the sweep unbinds once the window drains or drain_deadline_ passes.
}

void connector::send_unbind() {
  if (state_ != link_state::bound) return;
  state_ = link_state::unbinding;
  unbind_sequence_ = next_sequence();
  unbind_deadline_ = clock::now() + kUnbindGrace;
  encode_empty(wbuf_pending_, kUnbind, 0, unbind_sequence_);
  flush();
}

void connector::finish_shutdown() {
  if (finished_) return;
  finished_ = true;
  ++gen_;
  if (socket_) {
    boost::system::error_code ignored;
    socket_->close(ignored);
  }
  resolver_.cancel();
  state_ = link_state::disconnected;
  std::vector<uint64_t> left;
  for (const auto& [key, j] : jobs_) left.push_back(key);
  std::sort(left.begin(), left.end());
  for (uint64_t key : left)
    complete(key, RELAY_SUBMIT_RETRY, {}, "sms_smpp stopped before the SMSC answered");
  outstanding_.clear();
  sweep_timer_.cancel();
  pump_timer_.cancel();
  work_.reset();
  io_.stop();
}

}  // namespace sms_smpp
