#include "daemon/connector.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/plugin_test_support.h"
#include "tests/test_support.h"

namespace relay {
namespace {

using test::wake_signal;

using namespace std::chrono_literals;

using test::rs;
using test::str;

// ---------------------------------------------------------------------------
// A fake plug-in: a static C table in this binary whose instance is the
// fake_plugin the test installed. The test reports outcomes and events
// through the host table the connector gave on_create, from any thread.

struct fake_plugin {
  struct submitted {
    uint64_t submit_id = 0;
    uint32_t attempt = 0, flags = 0;
    std::string message_id, job_id, company_id, service_id, user_id, carrier_id, channel, address,
        content;
  };

  std::mutex mu;
  const relay_host* host = nullptr;
  std::vector<std::pair<std::string, std::string>> config;
  std::vector<submitted> submits;
  std::atomic<int> creates{0}, destroys{0};
  std::string create_error;                     // on_create fails with it when set
  std::function<void(uint64_t)> during_submit;  // runs inside on_submit
  std::function<void()> during_destroy;         // runs inside on_destroy
  std::function<int(const relay_http_request&)> webhook;

  void done(uint64_t id, relay_submit_status status, std::string_view ref = {},
            std::string_view detail = {}) {
    host->callback_submit_done(host->host_ctx, id, status, rs(ref), rs(detail));
  }
  size_t submit_count() {
    std::lock_guard lock(mu);
    return submits.size();
  }
  submitted last() {
    std::lock_guard lock(mu);
    return submits.back();
  }
};

fake_plugin* g_fake = nullptr;

void* fake_create(const relay_host* host, const relay_kv* config, size_t n, char* error,
                  size_t error_size) {
  fake_plugin& f = *g_fake;
  f.host = host;
  for (size_t i = 0; i < n; ++i) f.config.emplace_back(str(config[i].key), str(config[i].value));
  ++f.creates;
  if (!f.create_error.empty()) {
    std::snprintf(error, error_size, "%s", f.create_error.c_str());
    return nullptr;
  }
  host->callback_log(host->host_ctx, RELAY_LOG_INFO, rs("fake created"));
  return &f;
}

void fake_destroy(void* instance) {
  auto& f = *static_cast<fake_plugin*>(instance);
  if (f.during_destroy) f.during_destroy();
  ++f.destroys;
}

void fake_submit(void* instance, uint64_t submit_id, const relay_message* m) {
  auto& f = *static_cast<fake_plugin*>(instance);
  {
    std::lock_guard lock(f.mu);
    fake_plugin::submitted s;
    s.submit_id = submit_id;
    s.attempt = m->attempt;
    s.flags = m->flags;
    s.message_id = str(m->message_id);
    s.job_id = str(m->job_id);
    s.company_id = str(m->company_id);
    s.service_id = str(m->service_id);
    s.user_id = str(m->user_id);
    s.carrier_id = str(m->carrier_id);
    s.channel = str(m->channel);
    s.address = str(m->address);
    s.content = str(m->content_json);
    f.submits.push_back(std::move(s));
  }
  if (f.during_submit) f.during_submit(submit_id);
}

int fake_webhook(void* instance, const relay_http_request* request) {
  auto& f = *static_cast<fake_plugin*>(instance);
  return f.webhook ? f.webhook(*request) : 404;
}

const relay_plugin kFakeTable = {RELAY_PLUGIN_ABI_VERSION,
                                 sizeof(relay_plugin),
                                 "fake",
                                 "0.1",
                                 &fake_create,
                                 &fake_destroy,
                                 &fake_submit,
                                 &fake_webhook};

// ---------------------------------------------------------------------------

struct recorded_outcome {
  uint64_t token;
  relay_submit_status status;
  uint32_t attempts;
  std::string carrier_ref, detail;
};

class recording_listener : public connector_listener {
 public:
  void on_outcome(connector& c, const connector_outcome& o) override {
    outcomes.push_back(
        {o.token, o.status, o.attempts, std::string(o.carrier_ref), std::string(o.detail)});
    if (then) then(c, o);
  }
  void on_event(connector&, const plugin_event& e) override { events.push_back(e); }

  std::vector<recorded_outcome> outcomes;
  std::vector<plugin_event> events;
  std::function<void(connector&, const connector_outcome&)> then;  // runs after recording
};

// A manual clock that counts how often it is read, so a test can tell that
// stop() has started polling.
class counting_clock final : public clock {
 public:
  explicit counting_clock(sys_time start) : inner_(start) {}
  sys_time now() const override {
    ++reads_;
    return inner_.now();
  }
  void advance(std::chrono::milliseconds d) { inner_.advance(d); }
  int reads() const { return reads_.load(); }

 private:
  manual_clock inner_;
  mutable std::atomic<int> reads_{0};
};

class connector_test : public ::testing::Test {
 protected:
  void SetUp() override { g_fake = &fake_; }
  void TearDown() override { g_fake = nullptr; }

  std::unique_ptr<connector> make(size_t capacity = 4,
                                  std::optional<retry_policy> rp = std::nullopt,
                                  uint64_t seed = 42) {
    auto lib = plugin_library::from_table_for_test(&kFakeTable, "fake");
    EXPECT_TRUE(lib);
    connector_config cfg{"fake", {{"endpoint", "http://127.0.0.1:9"}, {"window", "32"}}};
    auto c = std::make_unique<connector>("carrier-a", channel::sms, *lib, cfg, capacity,
                                         rp.value_or(retry_), clk_, seed, listener_,
                                         [this] { on_wake(); });
    return c;
  }
  std::unique_ptr<connector> started(size_t capacity = 4,
                                     std::optional<retry_policy> rp = std::nullopt) {
    auto c = make(capacity, rp);
    auto r = c->start();
    EXPECT_TRUE(r) << r.err().message;
    return c;
  }

  outbound_message msg(uint64_t token, uint32_t flags = 0) {
    outbound_message m;
    m.job = &job_;
    char id[33];
    std::snprintf(id, sizeof(id), "%032llx", static_cast<unsigned long long>(token));
    std::copy(id, id + 32, m.id.begin());
    users_.push_back("u" + std::to_string(token));
    m.user_id = users_.back();
    users_.push_back("+8190000000" + std::to_string(token % 10));
    m.address = users_.back();
    m.token = token;
    m.flags = flags;
    return m;
  }

  void on_wake() {
    std::lock_guard lock(wake_mu_);
    ++wakes_;
  }
  int wakes() {
    std::lock_guard lock(wake_mu_);
    return wakes_;
  }

  fake_plugin fake_;
  counting_clock clk_{sys_time(std::chrono::hours(24 * 365 * 50))};
  recording_listener listener_;
  job_context job_{"job-1", "acme", "gold", R"({"text":"hello"})"};
  std::deque<std::string> users_;  // backs the views in outbound_message
  retry_policy retry_{100ms, 1000ms, 5, 0.0};
  std::mutex wake_mu_;
  int wakes_ = 0;
};

TEST_F(connector_test, start_hands_the_plugin_its_config_and_a_v1_host_table) {
  auto c = started();
  ASSERT_NE(fake_.host, nullptr);
  EXPECT_EQ(fake_.host->abi_version, RELAY_PLUGIN_ABI_VERSION);
  EXPECT_EQ(fake_.host->struct_size, sizeof(relay_host));
  EXPECT_EQ(fake_.config, (std::vector<std::pair<std::string, std::string>>{
                              {"endpoint", "http://127.0.0.1:9"}, {"window", "32"}}));
  EXPECT_EQ(c->name(), "carrier-a/sms");
  EXPECT_EQ(c->carrier_id(), "carrier-a");
  EXPECT_EQ(c->chan(), channel::sms);
}

TEST_F(connector_test, start_failure_names_the_connector_and_the_plugins_reason) {
  fake_.create_error = "port: must be a number";
  auto c = make();
  auto r = c->start();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "carrier-a/sms (fake): port: must be a number");
}

TEST_F(connector_test, submit_passes_the_message_and_the_outcome_comes_from_a_later_poll) {
  fake_.during_submit = [&](uint64_t id) { fake_.done(id, RELAY_SUBMIT_ACCEPTED, "ref-1"); };
  auto c = started();
  c->submit(msg(7));
  EXPECT_TRUE(listener_.outcomes.empty()) << "outcome delivered from inside submit()";

  ASSERT_EQ(fake_.submit_count(), 1u);
  const auto s = fake_.last();
  EXPECT_EQ(s.attempt, 1u);
  EXPECT_EQ(s.flags, 0u);
  EXPECT_EQ(s.message_id, "00000000000000000000000000000007");
  EXPECT_EQ(s.job_id, "job-1");
  EXPECT_EQ(s.company_id, "acme");
  EXPECT_EQ(s.service_id, "gold");
  EXPECT_EQ(s.user_id, "u7");
  EXPECT_EQ(s.carrier_id, "carrier-a");
  EXPECT_EQ(s.channel, "sms");
  EXPECT_EQ(s.address, "+81900000007");
  EXPECT_EQ(s.content, R"({"text":"hello"})");

  EXPECT_EQ(c->poll(), std::nullopt);
  ASSERT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(listener_.outcomes[0].token, 7u);
  EXPECT_EQ(listener_.outcomes[0].status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(listener_.outcomes[0].attempts, 1u);
  EXPECT_EQ(listener_.outcomes[0].carrier_ref, "ref-1");
  EXPECT_EQ(c->in_flight(), 0u);
  EXPECT_EQ(c->stats().accepted, 1u);
}

TEST_F(connector_test, transient_failure_is_retried_with_exponential_backoff_then_accepted) {
  auto c = started();
  c->submit(msg(1));
  const sys_time t0 = clk_.now();

  // attempt 1 fails transiently: retry due after 100 ms.
  fake_.done(fake_.last().submit_id, RELAY_SUBMIT_RETRY, {}, "throttled");
  EXPECT_EQ(c->poll(), t0 + 100ms);
  EXPECT_TRUE(listener_.outcomes.empty());
  clk_.advance(99ms);
  c->poll();
  EXPECT_EQ(fake_.submit_count(), 1u) << "resubmitted before the backoff elapsed";
  clk_.advance(1ms);
  EXPECT_EQ(c->poll(), std::nullopt);
  ASSERT_EQ(fake_.submit_count(), 2u);
  EXPECT_EQ(fake_.last().attempt, 2u);

  // attempt 2 fails: 200 ms; attempt 3 fails: 400 ms.
  fake_.done(fake_.last().submit_id, RELAY_SUBMIT_RETRY, {}, "throttled");
  EXPECT_EQ(c->poll(), clk_.now() + 200ms);
  clk_.advance(200ms);
  c->poll();
  ASSERT_EQ(fake_.submit_count(), 3u);
  fake_.done(fake_.last().submit_id, RELAY_SUBMIT_RETRY, {}, "throttled");
  EXPECT_EQ(c->poll(), clk_.now() + 400ms);
  clk_.advance(400ms);
  c->poll();
  ASSERT_EQ(fake_.submit_count(), 4u);
  EXPECT_EQ(fake_.last().attempt, 4u);

  fake_.done(fake_.last().submit_id, RELAY_SUBMIT_ACCEPTED, "msg-42");
  c->poll();
  ASSERT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(listener_.outcomes[0].status, RELAY_SUBMIT_ACCEPTED);
  EXPECT_EQ(listener_.outcomes[0].attempts, 4u);
  EXPECT_EQ(listener_.outcomes[0].carrier_ref, "msg-42");
  const auto st = c->stats();
  EXPECT_EQ(st.submitted, 4u);
  EXPECT_EQ(st.retried, 3u);
  EXPECT_EQ(st.accepted, 1u);
  EXPECT_EQ(st.failed, 0u);
  EXPECT_EQ(c->in_flight(), 0u);
}

TEST_F(connector_test, backoff_is_capped_and_jittered_reproducibly_from_the_seed) {
  const retry_policy rp{100ms, 400ms, 10, 0.2};
  auto delays = [&](uint64_t seed) {
    fake_plugin fresh;
    g_fake = &fresh;
    recording_listener listener;
    auto lib = plugin_library::from_table_for_test(&kFakeTable, "fake");
    connector c("carrier-a", channel::sms, *lib, {"fake", {}}, 1, rp, clk_, seed, listener,
                nullptr);
    EXPECT_TRUE(c.start());
    c.submit(msg(1));
    std::vector<int64_t> out;
    for (int i = 0; i < 6; ++i) {
      fresh.done(fresh.last().submit_id, RELAY_SUBMIT_RETRY, {}, "busy");
      auto due = c.poll();
      EXPECT_TRUE(due.has_value());
      out.push_back((*due - clk_.now()).count());
      clk_.advance(*due - clk_.now());
      c.poll();
    }
    c.stop(0ms);
    g_fake = &fake_;
    return out;
  };
  const auto a = delays(7);
  const std::vector<int64_t> nominal{100, 200, 400, 400, 400, 400};
  ASSERT_EQ(a.size(), nominal.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_GE(a[i], nominal[i] * 8 / 10) << i;
    EXPECT_LE(a[i], nominal[i] * 12 / 10) << i;
  }
  EXPECT_EQ(delays(7), a) << "same seed, same jitter";
  EXPECT_NE(delays(8), a) << "another seed, other jitter";
}

TEST_F(connector_test, permanent_failure_is_reported_once_with_its_detail) {
  auto c = started();
  c->submit(msg(3));
  fake_.done(fake_.last().submit_id, RELAY_SUBMIT_FAILED, {}, "number blocked");
  EXPECT_EQ(c->poll(), std::nullopt);
  clk_.advance(1h);
  c->poll();
  EXPECT_EQ(fake_.submit_count(), 1u);
  ASSERT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(listener_.outcomes[0].status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(listener_.outcomes[0].detail, "number blocked");
  EXPECT_EQ(listener_.outcomes[0].attempts, 1u);
  EXPECT_EQ(c->stats().failed, 1u);
  EXPECT_EQ(c->in_flight(), 0u);
}

TEST_F(connector_test, gives_up_after_max_attempts_with_the_last_detail) {
  auto c = started(4, retry_policy{10ms, 1000ms, 3, 0.0});
  c->submit(msg(5));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_EQ(fake_.submit_count(), static_cast<size_t>(attempt));
    fake_.done(fake_.last().submit_id, RELAY_SUBMIT_RETRY, {},
               "throttled " + std::to_string(attempt));
    c->poll();
    clk_.advance(1s);
    c->poll();
  }
  EXPECT_EQ(fake_.submit_count(), 3u);
  ASSERT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(listener_.outcomes[0].status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(listener_.outcomes[0].detail, "gave up after 3 attempts: throttled 3");
  EXPECT_EQ(listener_.outcomes[0].attempts, 3u);
  EXPECT_EQ(c->stats().retried, 2u);
  EXPECT_EQ(c->stats().failed, 1u);
}

TEST_F(connector_test, a_retry_keeps_the_may_be_duplicate_flag) {
  auto c = started();
  c->submit(msg(9, RELAY_MESSAGE_MAY_BE_DUPLICATE));
  EXPECT_EQ(fake_.last().flags, RELAY_MESSAGE_MAY_BE_DUPLICATE);
  fake_.done(fake_.last().submit_id, RELAY_SUBMIT_RETRY, {}, "busy");
  c->poll();
  clk_.advance(100ms);
  c->poll();
  ASSERT_EQ(fake_.submit_count(), 2u);
  EXPECT_EQ(fake_.last().flags, RELAY_MESSAGE_MAY_BE_DUPLICATE);
  EXPECT_EQ(fake_.last().attempt, 2u);
  EXPECT_EQ(fake_.last().user_id, "u9") << "the slot's copy survived the caller's string";
}

TEST_F(connector_test, is_full_at_capacity_and_has_room_again_after_outcomes) {
  auto c = started(2);
  EXPECT_EQ(c->capacity(), 2u);
  c->submit(msg(1));
  EXPECT_FALSE(c->full());
  c->submit(msg(2));
  EXPECT_TRUE(c->full());
  EXPECT_EQ(c->in_flight(), 2u);

  // A retry waiting for its backoff still holds its place.
  fake_.done(fake_.submits[0].submit_id, RELAY_SUBMIT_RETRY, {}, "busy");
  c->poll();
  EXPECT_TRUE(c->full());

  fake_.done(fake_.submits[1].submit_id, RELAY_SUBMIT_ACCEPTED);
  EXPECT_TRUE(c->full()) << "room appears when the outcome is polled, not when reported";
  c->poll();
  EXPECT_FALSE(c->full());
  EXPECT_EQ(c->in_flight(), 1u);
}

TEST_F(connector_test, the_listener_may_submit_from_inside_on_outcome_when_full) {
  auto c = started(1);
  fake_.during_submit = [&](uint64_t id) { fake_.done(id, RELAY_SUBMIT_ACCEPTED); };
  int next = 2;
  listener_.then = [&](connector& conn, const connector_outcome&) {
    EXPECT_FALSE(conn.full());
    if (next <= 3) conn.submit(msg(next++));
  };
  c->submit(msg(1));
  EXPECT_TRUE(c->full());
  c->poll();
  c->poll();
  c->poll();
  ASSERT_EQ(listener_.outcomes.size(), 3u);
  EXPECT_EQ(listener_.outcomes[2].token, 3u);
}

TEST_F(connector_test, submit_while_full_is_refused_with_a_failed_outcome_from_the_next_poll) {
  auto c = started(1);
  c->submit(msg(1));
  c->submit(msg(2));  // precondition broken by the caller
  EXPECT_EQ(fake_.submit_count(), 1u);
  EXPECT_TRUE(listener_.outcomes.empty());
  c->poll();
  ASSERT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(listener_.outcomes[0].token, 2u);
  EXPECT_EQ(listener_.outcomes[0].status, RELAY_SUBMIT_FAILED);
}

TEST_F(connector_test, callbacks_from_another_thread_wake_the_loop_once_per_batch) {
  auto c = started();
  c->submit(msg(1));
  c->submit(msg(2));
  c->submit(msg(3));
  const int before = wakes();
  std::thread carrier([&] {
    fake_.done(fake_.submits[0].submit_id, RELAY_SUBMIT_ACCEPTED, "a");
    fake_.done(fake_.submits[1].submit_id, RELAY_SUBMIT_ACCEPTED, "b");
  });
  ASSERT_TRUE(test::wait_until([&] { return wakes() > before; }));
  carrier.join();
  EXPECT_EQ(wakes(), before + 1) << "wake only when the queue goes from empty to non-empty";
  c->poll();
  ASSERT_EQ(listener_.outcomes.size(), 2u);
  EXPECT_EQ(listener_.outcomes[0].carrier_ref, "a");
  EXPECT_EQ(listener_.outcomes[1].carrier_ref, "b");

  std::thread later([&] { fake_.done(fake_.submits[2].submit_id, RELAY_SUBMIT_ACCEPTED, "c"); });
  later.join();
  EXPECT_EQ(wakes(), before + 2);
  c->poll();
  EXPECT_EQ(listener_.outcomes.size(), 3u);
}

TEST_F(connector_test, a_stale_or_duplicate_callback_is_ignored) {
  auto c = started();
  c->submit(msg(1));
  const uint64_t first = fake_.last().submit_id;
  fake_.done(first, RELAY_SUBMIT_RETRY, {}, "busy");
  c->poll();
  clk_.advance(100ms);
  c->poll();
  const uint64_t second = fake_.last().submit_id;
  ASSERT_NE(first, second) << "a retry gets a new submit id";

  fake_.done(first, RELAY_SUBMIT_ACCEPTED, "late");                    // for the earlier attempt
  fake_.done(0xffffffff00000000ull | 1234567, RELAY_SUBMIT_ACCEPTED);  // never issued
  c->poll();
  EXPECT_TRUE(listener_.outcomes.empty());
  EXPECT_EQ(c->in_flight(), 1u);

  fake_.done(second, RELAY_SUBMIT_ACCEPTED, "real");
  fake_.done(second, RELAY_SUBMIT_FAILED, {}, "again");  // reported twice
  c->poll();
  ASSERT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(listener_.outcomes[0].carrier_ref, "real");

  // The slot is reused; the old ids still do not match it.
  c->submit(msg(2));
  fake_.done(second, RELAY_SUBMIT_ACCEPTED, "stale");
  c->poll();
  EXPECT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(c->in_flight(), 1u);
}

TEST_F(connector_test, an_unknown_status_from_a_buggy_plugin_is_a_failure) {
  auto c = started();
  c->submit(msg(1));
  // What a C plug-in passing a stray int looks like from our side.
  using raw_done = void (*)(void*, uint64_t, int, relay_str, relay_str);
  reinterpret_cast<raw_done>(fake_.host->callback_submit_done)(
      fake_.host->host_ctx, fake_.last().submit_id, 7, rs(""), rs("?"));
  c->poll();
  ASSERT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(listener_.outcomes[0].status, RELAY_SUBMIT_FAILED);
  EXPECT_EQ(listener_.outcomes[0].detail, "plug-in reported an unknown submit status 7");
}

TEST_F(connector_test, events_are_copied_and_delivered_from_poll) {
  auto c = started();
  std::thread carrier([&] {
    std::string id = "00000000000000000000000000000001", ref = "sms.jsonl:1",
                from = "+819012345678";
    relay_event e{};
    e.struct_size = sizeof(relay_event);
    e.type = RELAY_EVENT_INBOUND;
    e.message_id = rs(id);
    e.carrier_ref = rs(ref);
    e.from = rs(from);
    e.to = rs("acme-agent");
    e.text = rs("STOP");
    e.at_unix_ms = 1234;
    fake_.host->callback_emit_event(fake_.host->host_ctx, &e);
    id.assign(id.size(), 'x');  // the plug-in's memory changes after the call
    ref.assign(ref.size(), 'x');

    relay_event bad = e;
    bad.struct_size = 8;  // short struct: ignored
    fake_.host->callback_emit_event(fake_.host->host_ctx, &bad);
    bad = e;
    bad.type = 99;  // unknown type: ignored
    fake_.host->callback_emit_event(fake_.host->host_ctx, &bad);
  });
  carrier.join();
  EXPECT_TRUE(listener_.events.empty());
  c->poll();
  ASSERT_EQ(listener_.events.size(), 1u);
  const plugin_event& e = listener_.events[0];
  EXPECT_EQ(e.type, RELAY_EVENT_INBOUND);
  EXPECT_EQ(e.message_id, "00000000000000000000000000000001");
  EXPECT_EQ(e.carrier_ref, "sms.jsonl:1");
  EXPECT_EQ(e.from, "+819012345678");
  EXPECT_EQ(e.to, "acme-agent");
  EXPECT_EQ(e.text, "STOP");
  EXPECT_EQ(e.at_unix_ms, 1234);
}

TEST_F(connector_test, webhooks_reach_the_plugin_and_their_events_arrive_in_poll) {
  auto c = started();
  fake_.webhook = [&](const relay_http_request& req) {
    relay_event e{};
    e.struct_size = sizeof(relay_event);
    e.type = RELAY_EVENT_DELIVERED;
    e.message_id = req.body;
    fake_.host->callback_emit_event(fake_.host->host_ctx, &e);
    return 204;
  };
  relay_http_request req{};
  req.method = rs("POST");
  req.path = rs("/hooks/carrier-a/sms");
  req.body = rs("m-1");
  EXPECT_EQ(c->webhook(req), 204);
  c->poll();
  ASSERT_EQ(listener_.events.size(), 1u);
  EXPECT_EQ(listener_.events[0].message_id, "m-1");
  c->stop(0ms);
  EXPECT_EQ(c->webhook(req), 503) << "no plug-in instance after stop";
}

TEST_F(connector_test, stop_waits_for_an_outcome_reported_while_stopping) {
  auto c = started();
  c->submit(msg(1));
  const uint64_t id = fake_.last().submit_id;
  const int reads_before = clk_.reads();
  // The carrier answers only once stop() has begun polling.
  std::thread carrier([&] {
    test::wait_until([&] { return clk_.reads() > reads_before; });
    fake_.done(id, RELAY_SUBMIT_ACCEPTED, "late-but-in-time");
  });
  const auto t0 = std::chrono::steady_clock::now();
  c->stop(30s);
  const auto took = std::chrono::steady_clock::now() - t0;
  carrier.join();
  EXPECT_LT(took, 10s);
  ASSERT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(listener_.outcomes[0].carrier_ref, "late-but-in-time");
  EXPECT_EQ(fake_.destroys.load(), 1);
  EXPECT_EQ(c->in_flight(), 0u);
}

TEST_F(connector_test, stop_gives_up_after_the_timeout_and_destroys_the_instance) {
  auto c = started();
  c->submit(msg(1));  // never answered
  const auto t0 = std::chrono::steady_clock::now();
  c->stop(150ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 10s);
  EXPECT_EQ(fake_.destroys.load(), 1);
  EXPECT_TRUE(listener_.outcomes.empty()) << "left to the checkpoint, not reported";
  EXPECT_EQ(c->in_flight(), 0u);
}

TEST_F(connector_test, stop_does_not_wait_for_a_retry_due_after_the_deadline) {
  auto c = started(4, retry_policy{20s, 60s, 5, 0.0});
  c->submit(msg(1));
  fake_.done(fake_.last().submit_id, RELAY_SUBMIT_RETRY, {}, "busy");
  const auto t0 = std::chrono::steady_clock::now();
  c->stop(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  EXPECT_EQ(fake_.submit_count(), 1u);
  EXPECT_EQ(fake_.destroys.load(), 1);
}

TEST_F(connector_test, outcomes_reported_inside_on_destroy_are_delivered) {
  auto c = started();
  c->submit(msg(1));
  c->submit(msg(2));
  fake_.during_destroy = [&] {
    fake_.done(fake_.submits[0].submit_id, RELAY_SUBMIT_ACCEPTED, "flushed");
    fake_.done(fake_.submits[1].submit_id, RELAY_SUBMIT_RETRY, {}, "shutting down");
  };
  c->stop(0ms);
  ASSERT_EQ(listener_.outcomes.size(), 1u) << "the retry is left to the checkpoint";
  EXPECT_EQ(listener_.outcomes[0].carrier_ref, "flushed");
  EXPECT_EQ(fake_.submit_count(), 2u);
}

TEST_F(connector_test, submit_after_stop_is_refused) {
  auto c = started();
  c->stop(0ms);
  c->submit(msg(1));
  c->poll();
  EXPECT_EQ(fake_.submit_count(), 0u);
  ASSERT_EQ(listener_.outcomes.size(), 1u);
  EXPECT_EQ(listener_.outcomes[0].status, RELAY_SUBMIT_FAILED);
}

TEST_F(connector_test, destroying_a_running_connector_destroys_the_instance) {
  {
    auto c = started();
    c->submit(msg(1));
  }
  EXPECT_EQ(fake_.destroys.load(), 1);
}

// ---------------------------------------------------------------------------
// With the real file_sink plug-in, real threads and the system clock.


TEST(connector_with_file_sink,
     retries_simulated_transient_failures_until_every_message_is_written_once) {
  test::temp_dir dir;
  auto lib = plugin_library::load(RELAY_BINARY_DIR "/plugins/file_sink.so");
  ASSERT_TRUE(lib) << lib.err().message;
  system_clock clk;
  recording_listener listener;
  auto signal = std::make_shared<wake_signal>();
  connector c("carrier-a", channel::email, *lib,
              {"file_sink",
               {{"dir", dir.path()}, {"transient_failure_rate", "0.4"}, {"delivered_rate", "1"}}},
              16, retry_policy{1ms, 4ms, 20, 0.2}, clk, 1, listener, [signal] { (*signal)(); });
  auto started = c.start();
  ASSERT_TRUE(started) << started.err().message;

  job_context job{"job-9", "acme", "", R"({"subject":"Hi","text":"Hello"})"};
  std::deque<std::string> users;
  constexpr int kMessages = 100;
  int next = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (listener.outcomes.size() < kMessages && std::chrono::steady_clock::now() < deadline) {
    while (next < kMessages && !c.full()) {
      outbound_message m;
      m.job = &job;
      char id[33];
      std::snprintf(id, sizeof(id), "%032x", next);
      std::copy(id, id + 32, m.id.begin());
      users.push_back("user-" + std::to_string(next));
      m.user_id = users.back();
      m.address = "user@example.jp";
      m.token = static_cast<uint64_t>(next++);
      c.submit(m);
    }
    auto due = c.poll();
    auto until = std::chrono::steady_clock::now() + 50ms;
    if (due) until = std::min(until, std::chrono::steady_clock::now() + (*due - clk.now()));
    signal->wait(until);
  }
  c.stop(5s);

  ASSERT_EQ(listener.outcomes.size(), static_cast<size_t>(kMessages));
  std::set<uint64_t> tokens;
  for (const auto& o : listener.outcomes) {
    EXPECT_EQ(o.status, RELAY_SUBMIT_ACCEPTED) << o.detail;
    tokens.insert(o.token);
  }
  EXPECT_EQ(tokens.size(), static_cast<size_t>(kMessages));
  EXPECT_GT(c.stats().retried, 0u) << "40% transient failures should have caused retries";
  EXPECT_EQ(test::read_lines(dir / "email.jsonl").size(), static_cast<size_t>(kMessages));
  EXPECT_EQ(listener.events.size(), static_cast<size_t>(kMessages));  // delivered_rate 1
}

}  // namespace
}  // namespace relay
