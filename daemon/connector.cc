#include "daemon/connector.h"

#include <cctype>
#include <cstddef>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <utility>
#include <vector>

namespace relay {
namespace {

// submit_id = generation << 32 | slot index. The generation changes on every
// on_submit of a slot (retries included), so a late or repeated callback for
// an earlier submit of the same slot is recognised and ignored.
constexpr uint64_t make_submit_id(uint32_t index, uint32_t generation) {
  return (uint64_t{generation} << 32) | index;
}
constexpr uint32_t slot_of(uint64_t submit_id) { return static_cast<uint32_t>(submit_id); }
constexpr uint32_t generation_of(uint64_t submit_id) {
  return static_cast<uint32_t>(submit_id >> 32);
}

// Plug-ins may pass {NULL, n}; treat that as empty rather than crash.
std::string_view view(relay_str s) {
  return s.data != nullptr ? std::string_view(s.data, s.size) : std::string_view();
}
relay_str to_relay(std::string_view s) { return relay_str{s.data(), s.size()}; }

spdlog::level::level_enum to_spdlog(relay_log_level level) {
  switch (level) {
    case RELAY_LOG_DEBUG:
      return spdlog::level::debug;
    case RELAY_LOG_INFO:
      return spdlog::level::info;
    case RELAY_LOG_WARN:
      return spdlog::level::warn;
    case RELAY_LOG_ERROR:
      return spdlog::level::err;
  }
  return spdlog::level::warn;
}

// A vector whose elements are reused between rounds: reset() forgets them
// without destroying them, so their strings keep their capacity and a steady
// stream of callbacks causes no allocation once it has warmed up.
template <class T>
class reuse_queue {
 public:
  T& next() {
    if (size_ == items_.size()) items_.emplace_back();
    return items_[size_++];
  }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return items_[i]; }
  void reset() { size_ = 0; }
  void reserve(size_t n) { items_.reserve(n); }
  void swap(reuse_queue& other) noexcept {
    items_.swap(other.items_);
    std::swap(size_, other.size_);
  }

 private:
  std::vector<T> items_;
  size_t size_ = 0;
};

}  // namespace

struct connector::impl {
  enum class state : uint8_t { created, running, stopping, stopped };

  // One message from submit() until its final outcome, across its retries.
  // Slots are allocated once; their strings keep their capacity.
  struct slot {
    uint32_t generation = 0;
    bool busy = false;       // holds a message (in the plug-in or waiting for a retry)
    bool in_plugin = false;  // submitted, outcome not yet processed
    uint32_t attempts = 0;   // on_submit calls so far
    uint32_t flags = 0;
    uint64_t token = 0;
    const job_context* job = nullptr;  // owned by the fan-out
    message_id id{};
    std::string user_id;
    std::string address;
    std::string content;  // per-message content; empty: the job's
  };

  // Written on the plug-in's thread, read on the core thread after the swap.
  struct reported_outcome {
    uint64_t submit_id = 0;
    int status = 0;  // relay_submit_status as the plug-in passed it (validated on the core thread)
    std::string carrier_ref;
    std::string detail;
  };

  // An outcome decided by the host without the plug-in (submit() called
  // while full or not running); delivered by the next poll().
  struct host_rejection {
    uint64_t token = 0;
    const char* detail = "";
  };

  impl(connector& self, std::string carrier, channel c, std::shared_ptr<plugin_library> library,
       connector_config cfg, size_t cap, retry_policy rp, const clock& clk, uint64_t seed,
       connector_listener& l, std::function<void()> w)
      : self(self),
        carrier_id(std::move(carrier)),
        ch(c),
        name(carrier_id + "/" + std::string(to_string(c))),
        library(std::move(library)),
        config(std::move(cfg)),
        capacity(std::max<size_t>(cap, 1)),
        retry(rp),
        clk(clk),
        rng(seed),
        listener(l),
        wake(std::move(w)) {
    if (retry.max_attempts < 1) retry.max_attempts = 1;
    if (retry.jitter < 0) retry.jitter = 0;
    slots.resize(capacity);
    free_slots.reserve(capacity);
    for (size_t i = capacity; i-- > 0;) free_slots.push_back(static_cast<uint32_t>(i));
    retry_heap.reserve(capacity);
    const size_t warm = std::min<size_t>(capacity, 1024);
    pending_outcomes.reserve(warm);
    work_outcomes.reserve(warm);

    host.struct_size = sizeof(relay_host);
    host.abi_version = RELAY_PLUGIN_ABI_VERSION;
    host.host_ctx = this;
    host.callback_log = &impl::callback_log;
    host.callback_submit_done = &impl::callback_submit_done;
    host.callback_emit_event = &impl::callback_emit_event;
  }

  const char* plugin_name() const {
    const char* n = library->table().name;
    return n != nullptr ? n : config.plugin.c_str();
  }

  // ---- callbacks from the plug-in: any thread, concurrently; C callers, so
  // nothing may throw out of them. ----

  static void callback_log(void* ctx, relay_log_level level, relay_str message) noexcept {
    try {
      auto* s = static_cast<impl*>(ctx);
      spdlog::log(to_spdlog(level), "{}: {}", s->name, view(message));
    } catch (...) {
    }
  }

  static void callback_submit_done(void* ctx, uint64_t submit_id, relay_submit_status status,
                                   relay_str carrier_ref, relay_str detail) noexcept {
    auto* s = static_cast<impl*>(ctx);
    try {
      bool was_empty;
      {
        std::lock_guard lock(s->mu);
        was_empty = s->pending_outcomes.empty() && s->pending_events.empty();
        reported_outcome& o = s->pending_outcomes.next();
        o.submit_id = submit_id;
        // A plug-in may pass a value outside the enum; read it as the int it
        // is (a plain enum load of it would be undefined behaviour).
        static_assert(sizeof(status) == sizeof(o.status));
        std::memcpy(&o.status, &status, sizeof(o.status));
        o.carrier_ref.assign(view(carrier_ref));
        o.detail.assign(view(detail));
      }
      if (was_empty) s->notify();
    } catch (...) {
      // Out of memory while copying: the slot stays in flight until stop()
      // gives it to the checkpoint. Say so; there is nothing better to do here.
      log_lost(s, "outcome");
    }
  }

  static void callback_emit_event(void* ctx, const relay_event* event) noexcept {
    auto* s = static_cast<impl*>(ctx);
    try {
      // ABI 1.0 events end before `location`; later fields are read only when present.
      constexpr size_t kEventV10Size = offsetof(relay_event, location);
      if (event == nullptr || event->struct_size < kEventV10Size) {
        spdlog::warn("{}: ignoring an event with a missing or short relay_event ({} bytes)",
                     s->name, event != nullptr ? event->struct_size : 0u);
        return;
      }
      if (event->type < RELAY_EVENT_DELIVERED || event->type > RELAY_EVENT_INBOUND) {
        spdlog::warn("{}: ignoring an event of unknown type {}", s->name, event->type);
        return;
      }
      bool was_empty;
      {
        std::lock_guard lock(s->mu);
        was_empty = s->pending_outcomes.empty() && s->pending_events.empty();
        plugin_event& e = s->pending_events.next();
        e.type = static_cast<relay_event_type>(event->type);
        e.message_id.assign(view(event->message_id));
        e.carrier_ref.assign(view(event->carrier_ref));
        e.reason.assign(view(event->reason));
        e.detail.assign(view(event->detail));
        e.from.assign(view(event->from));
        e.to.assign(view(event->to));
        e.text.assign(view(event->text));
        e.at_unix_ms = event->at_unix_ms;
        e.location.clear();
        if (event->struct_size >= offsetof(relay_event, location) + sizeof(relay_str)) {
          e.location.assign(view(event->location));
          const bool ok = e.location.size() <= 16 &&
                          std::all_of(e.location.begin(), e.location.end(), [](char c) {
                            return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
                          });
          if (!ok) e.location.clear();  // not a location code: counted without one
        }
      }
      if (was_empty) s->notify();
    } catch (...) {
      log_lost(s, "event");
    }
  }

  static void log_lost(impl* s, const char* what) noexcept {
    try {
      spdlog::error("{}: lost a plug-in {} (could not queue it)", s->name, what);
    } catch (...) {
    }
  }

  // Plug-in thread, after the queue went from empty to non-empty.
  void notify() noexcept {
    cv.notify_all();  // stop() may be waiting
    if (wake) {
      try {
        wake();
      } catch (...) {
        log_lost(this, "wake-up");
      }
    }
  }

  // ---- core thread ----

  size_t in_flight() const { return capacity - free_slots.size(); }

  std::optional<sys_time> next_due() const {
    if (retry_heap.empty()) return std::nullopt;
    return retry_heap.front().first;
  }

  std::chrono::milliseconds backoff(uint32_t attempt) {
    // initial * 2^(attempt-1), capped, then +-jitter.
    const int doublings = static_cast<int>(std::min<uint32_t>(attempt - 1, 60));
    double ms = static_cast<double>(retry.initial_backoff.count()) * std::ldexp(1.0, doublings);
    ms = std::min(ms, static_cast<double>(retry.max_backoff.count()));
    if (retry.jitter > 0) {
      std::uniform_real_distribution<double> j(-retry.jitter, retry.jitter);
      ms *= 1.0 + j(rng);
    }
    return std::chrono::milliseconds(std::llround(std::max(ms, 0.0)));
  }

  // Calls on_submit for a slot that holds a message (first submit or retry).
  void submit_slot(uint32_t index) {
    slot& sl = slots[index];
    ++sl.attempts;
    ++sl.generation;
    sl.in_plugin = true;
    ++in_plugin;
    ++stats.submitted;

    const job_context& job = *sl.job;
    relay_message m{};
    m.struct_size = sizeof(relay_message);
    m.flags = sl.flags;
    m.attempt = sl.attempts;
    m.message_id = to_relay(relay::view(sl.id));
    m.job_id = to_relay(job.job_id);
    m.company_id = to_relay(job.company_id);
    m.service_id = to_relay(job.service_id);
    m.user_id = to_relay(sl.user_id);
    m.carrier_id = to_relay(carrier_id);
    m.channel = to_relay(to_string(ch));
    m.address = to_relay(sl.address);
    m.content_json = to_relay(sl.content.empty() ? job.content_json : sl.content);
    // The plug-in may call callback_submit_done before this returns; that
    // only queues, so no state here changes under our feet.
    library->table().on_submit(instance, make_submit_id(index, sl.generation), &m);
  }

  void finish(uint32_t index, relay_submit_status status, std::string_view carrier_ref,
              std::string_view detail) {
    slot& sl = slots[index];
    connector_outcome out;
    out.token = sl.token;
    out.status = status;
    out.attempts = sl.attempts;
    out.carrier_ref = carrier_ref;
    out.detail = detail;
    // Free the slot first: the listener may submit the next message from
    // inside on_outcome and expects the room.
    sl.busy = false;
    sl.job = nullptr;
    free_slots.push_back(index);
    deliver(out);
  }

  void deliver(const connector_outcome& out) {
    try {
      listener.on_outcome(self, out);
    } catch (const std::exception& e) {
      spdlog::error("{}: outcome listener threw: {}", name, e.what());
    } catch (...) {
      spdlog::error("{}: outcome listener threw", name);
    }
  }

  void handle(const reported_outcome& o, sys_time now) {
    const uint32_t index = slot_of(o.submit_id);
    if (index >= slots.size() || !slots[index].busy || !slots[index].in_plugin ||
        slots[index].generation != generation_of(o.submit_id)) {
      spdlog::warn("{} ({}): ignoring an outcome for submit {} that is unknown or already reported",
                   name, plugin_name(), o.submit_id);
      return;
    }
    slot& sl = slots[index];
    sl.in_plugin = false;
    --in_plugin;
    switch (o.status) {
      case RELAY_SUBMIT_ACCEPTED:
        ++stats.accepted;
        finish(index, RELAY_SUBMIT_ACCEPTED, o.carrier_ref, o.detail);
        return;
      case RELAY_SUBMIT_FAILED:
        ++stats.failed;
        finish(index, RELAY_SUBMIT_FAILED, {}, o.detail);
        return;
      case RELAY_SUBMIT_RETRY:
        if (st == state::stopped) return;  // the instance is gone; left to the checkpoint
        if (sl.attempts < static_cast<uint32_t>(retry.max_attempts)) {
          ++stats.retried;
          const sys_time due = now + backoff(sl.attempts);
          retry_heap.emplace_back(due, index);
          std::push_heap(retry_heap.begin(), retry_heap.end(), std::greater<>());
          spdlog::debug("{}: attempt {} of submit {} will be retried in {} ms: {}", name,
                        sl.attempts, o.submit_id, (due - now).count(), o.detail);
          return;
        }
        ++stats.failed;
        detail_buffer.clear();
        detail_buffer.append("gave up after ")
            .append(std::to_string(sl.attempts))
            .append(" attempts: ");
        detail_buffer.append(o.detail);
        finish(index, RELAY_SUBMIT_FAILED, {}, detail_buffer);
        return;
      default:
        ++stats.failed;
        detail_buffer = "plug-in reported an unknown submit status " + std::to_string(o.status);
        spdlog::warn("{} ({}): {}", name, plugin_name(), detail_buffer);
        finish(index, RELAY_SUBMIT_FAILED, {}, detail_buffer);
        return;
    }
  }

  void resubmit_due(sys_time now) {
    while (!retry_heap.empty() && retry_heap.front().first <= now) {
      std::pop_heap(retry_heap.begin(), retry_heap.end(), std::greater<>());
      const uint32_t index = retry_heap.back().second;
      retry_heap.pop_back();
      submit_slot(index);
    }
  }

  std::optional<sys_time> poll() {
    if (polling) return next_due();  // called again from inside the listener
    polling = true;
    struct reset_flag {
      bool& f;
      ~reset_flag() { f = false; }
    } reset{polling};

    const sys_time now = clk.now();
    {
      std::lock_guard lock(mu);
      work_outcomes.swap(pending_outcomes);
      work_events.swap(pending_events);
    }
    for (size_t i = 0; i < rejections.size(); ++i) {
      connector_outcome out;
      out.token = rejections[i].token;
      out.status = RELAY_SUBMIT_FAILED;
      out.detail = rejections[i].detail;
      deliver(out);
    }
    rejections.clear();
    for (size_t i = 0; i < work_outcomes.size(); ++i) handle(work_outcomes[i], now);
    work_outcomes.reset();
    for (size_t i = 0; i < work_events.size(); ++i) {
      try {
        listener.on_event(self, work_events[i]);
      } catch (const std::exception& e) {
        spdlog::error("{}: event listener threw: {}", name, e.what());
      } catch (...) {
        spdlog::error("{}: event listener threw", name);
      }
    }
    work_events.reset();
    if (st == state::running || st == state::stopping) resubmit_due(now);
    return next_due();
  }

  bool queue_empty() {
    std::lock_guard lock(mu);
    return pending_outcomes.empty() && pending_events.empty();
  }

  // ---- fixed at construction ----
  connector& self;
  const std::string carrier_id;
  const channel ch;
  const std::string name;  // "carrier-a/sms"
  const std::shared_ptr<plugin_library> library;
  const connector_config config;
  const size_t capacity;
  retry_policy retry;
  const clock& clk;
  std::mt19937_64 rng;  // core thread
  connector_listener& listener;
  const std::function<void()> wake;  // called on plug-in threads
  relay_host host{};                 // handed to on_create; lives as long as the connector

  // The plug-in instance. Written on the core thread (start, stop) under the
  // unique lock; webhook() reads it on HTTP threads under the shared lock, so
  // on_destroy never runs while an on_webhook is still inside the plug-in.
  std::shared_mutex instance_mu;
  void* instance = nullptr;

  // ---- core thread only ----
  state st = state::created;
  std::vector<slot> slots;
  std::vector<uint32_t> free_slots;
  std::vector<std::pair<sys_time, uint32_t>> retry_heap;  // min-heap by due time
  std::vector<host_rejection> rejections;
  connector_stats stats;
  size_t in_plugin = 0;  // slots submitted to the plug-in and not yet answered
  bool polling = false;
  std::string detail_buffer;  // backs connector_outcome::detail for host-made details
  reuse_queue<reported_outcome> work_outcomes;
  reuse_queue<plugin_event> work_events;

  // ---- shared with plug-in threads ----
  std::mutex mu;
  std::condition_variable cv;  // signalled when the queues go from empty to non-empty
  reuse_queue<reported_outcome> pending_outcomes;
  reuse_queue<plugin_event> pending_events;
};

connector::connector(std::string carrier_id, channel ch, std::shared_ptr<plugin_library> library,
                     connector_config config, size_t capacity, retry_policy retry, const clock& clk,
                     uint64_t random_seed, connector_listener& listener, std::function<void()> wake)
    : impl_(std::make_unique<impl>(*this, std::move(carrier_id), ch, std::move(library),
                                   std::move(config), capacity, retry, clk, random_seed, listener,
                                   std::move(wake))) {}

connector::~connector() {
  try {
    if (impl_->st == impl::state::running) stop(std::chrono::milliseconds(0));
  } catch (...) {
  }
}

result<void> connector::start() {
  impl& s = *impl_;
  if (s.st != impl::state::created) {
    return make_error(errc::invalid_argument, s.name + ": connector started twice");
  }
  std::vector<relay_kv> kv;
  kv.reserve(s.config.settings.size());
  for (const auto& [key, value] : s.config.settings)
    kv.push_back(relay_kv{to_relay(key), to_relay(value)});

  char error[512] = {};
  void* instance =
      s.library->table().on_create(&s.host, kv.data(), kv.size(), error, sizeof(error));
  error[sizeof(error) - 1] = '\0';  // do not trust the plug-in to terminate it
  if (instance == nullptr) {
    std::string reason = error[0] != '\0' ? error : "on_create failed without giving a reason";
    s.st = impl::state::stopped;
    return make_error(errc::invalid_argument, s.name + " (" + s.plugin_name() + "): " + reason);
  }
  {
    std::unique_lock lock(s.instance_mu);
    s.instance = instance;
  }
  s.st = impl::state::running;
  spdlog::info("{}: started plug-in {} {} ({})", s.name, s.plugin_name(),
               s.library->table().version != nullptr ? s.library->table().version : "?",
               s.library->path());
  return {};
}

const std::string& connector::carrier_id() const { return impl_->carrier_id; }
channel connector::chan() const { return impl_->ch; }
const std::string& connector::name() const { return impl_->name; }
size_t connector::in_flight() const { return impl_->in_flight(); }
size_t connector::capacity() const { return impl_->capacity; }
connector_stats connector::stats() const { return impl_->stats; }

void connector::submit(const outbound_message& message) {
  impl& s = *impl_;
  // Precondition violations are a bug in the caller, but the message must
  // still get exactly one outcome, so it gets a FAILED one from the next poll.
  const char* refusal = nullptr;
  if (s.st != impl::state::running) {
    refusal = "connector is not running";
  } else if (s.free_slots.empty()) {
    refusal = "connector is full (submit() called while full())";
  } else if (message.job == nullptr) {
    refusal = "message has no job";
  }
  if (refusal != nullptr) {
    spdlog::error("{}: refusing a message: {}", s.name, refusal);
    s.rejections.push_back(impl::host_rejection{message.token, refusal});
    if (s.wake) s.wake();
    return;
  }

  const uint32_t index = s.free_slots.back();
  s.free_slots.pop_back();
  impl::slot& sl = s.slots[index];
  sl.busy = true;
  sl.attempts = 0;
  sl.flags = message.flags;
  sl.token = message.token;
  sl.job = message.job;
  sl.id = message.id;
  sl.user_id.assign(message.user_id);  // reuses the slot's capacity
  sl.address.assign(message.address);
  sl.content.assign(message.content_json);
  s.submit_slot(index);
}

std::optional<sys_time> connector::poll() { return impl_->poll(); }

void connector::stop(std::chrono::milliseconds timeout) {
  impl& s = *impl_;
  if (s.st != impl::state::running) return;
  s.st = impl::state::stopping;  // submit() refuses from here on; retries still go out
  using steady = std::chrono::steady_clock;
  const auto deadline = steady::now() + timeout;

  for (;;) {
    s.poll();
    if (s.in_flight() == 0) break;
    const auto now = steady::now();
    if (now >= deadline) break;
    auto until = deadline;
    if (auto due = s.next_due()) {
      // Retry times are on the injected clock; map the distance onto the
      // steady clock for the wait.
      const auto wait = std::max(std::chrono::milliseconds(0), *due - s.clk.now());
      if (s.in_plugin == 0 && now + wait >= deadline) break;  // only retries left, none due in time
      until = std::min(deadline, now + wait);
    }
    std::unique_lock lock(s.mu);
    s.cv.wait_until(lock, until,
                    [&] { return !s.pending_outcomes.empty() || !s.pending_events.empty(); });
  }

  {
    std::unique_lock lock(s.instance_mu);
    s.library->table().on_destroy(s.instance);
    s.instance = nullptr;
  }
  s.st = impl::state::stopped;
  // Outcomes the plug-in reported while finishing its work in on_destroy.
  s.poll();

  if (const size_t left = s.in_flight(); left > 0) {
    spdlog::warn(
        "{}: stopped with {} message(s) in flight; they are resubmitted from the checkpoint",
        s.name, left);
  } else {
    spdlog::info("{}: stopped", s.name);
  }
  for (uint32_t i = 0; i < s.slots.size(); ++i) {
    if (!s.slots[i].busy) continue;
    s.slots[i].busy = false;
    s.slots[i].in_plugin = false;
    s.slots[i].job = nullptr;
    s.free_slots.push_back(i);
  }
  s.in_plugin = 0;
  s.retry_heap.clear();
}

std::optional<int> connector::webhook(const relay_http_request& request) {
  impl& s = *impl_;
  const auto on_webhook = s.library->table().on_webhook;
  if (on_webhook == nullptr) return std::nullopt;
  std::shared_lock lock(s.instance_mu);
  if (s.instance == nullptr) return 503;  // not started or already stopped
  return on_webhook(s.instance, &request);
}

}  // namespace relay
