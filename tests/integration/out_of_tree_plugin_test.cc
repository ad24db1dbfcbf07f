// Proves that a carrier can build a plug-in out of relay's tree, against the
// header `cmake --install` puts into <prefix>/include, and that relay loads it
// and runs messages through it: the plug-in is C, compiled by `cc` at test
// time, and reports from its own thread.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/connector.h"
#include "daemon/plugin_host.h"
#include "routing/clock.h"
#include "tests/plugin_test_support.h"
#include "tests/test_support.h"

namespace relay {
namespace {

using test::wake_signal;

using namespace std::chrono_literals;

// A plug-in as a carrier might write it: a bounded queue and a worker thread
// that answers each message and reports it delivered.
constexpr const char* kThreadedPlugin = R"(
#include <relay/plugin.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_SIZE 64

typedef struct job {
  uint64_t submit_id;
  uint32_t attempt;
  char message_id[64];
} job;

typedef struct oot {
  const relay_host* host;
  char greeting[32];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job queue[QUEUE_SIZE];
  size_t head, count;
  int stopping;
  pthread_t worker;
} oot;

static relay_str str(const char* s) { relay_str r; r.data = s; r.size = strlen(s); return r; }

static void* work(void* arg) {
  oot* s = arg;
  for (;;) {
    job j;
    char ref[128];
    relay_str none = {NULL, 0};
    relay_event e;
    pthread_mutex_lock(&s->mu);
    while (s->count == 0 && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
    if (s->count == 0) {
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    j = s->queue[s->head];
    s->head = (s->head + 1) % QUEUE_SIZE;
    s->count--;
    pthread_mutex_unlock(&s->mu);

    snprintf(ref, sizeof ref, "%s:%s:%u", s->greeting, j.message_id, (unsigned)j.attempt);
    s->host->callback_submit_done(s->host->host_ctx, j.submit_id, RELAY_SUBMIT_ACCEPTED, str(ref), none);
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    e.type = RELAY_EVENT_DELIVERED;
    e.message_id = str(j.message_id);
    e.carrier_ref = str(ref);
    s->host->callback_emit_event(s->host->host_ctx, &e);
  }
}

static void* on_create(const relay_host* host, const relay_kv* config, size_t n, char* error, size_t error_size) {
  oot* s;
  size_t i;
  const relay_kv* greeting = NULL;
  for (i = 0; i < n; ++i) {
    if (config[i].key.size == 8 && memcmp(config[i].key.data, "greeting", 8) == 0 && config[i].value.size < 32) {
      greeting = &config[i];
    } else {
      snprintf(error, error_size, "%.*s: unknown key", (int)config[i].key.size, config[i].key.data);
      return NULL;
    }
  }
  if (greeting == NULL) {
    snprintf(error, error_size, "greeting: required");
    return NULL;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->host = host;
  memcpy(s->greeting, greeting->value.data, greeting->value.size);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->worker, NULL, work, s) != 0) {
    snprintf(error, error_size, "cannot start worker thread");
    free(s);
    return NULL;
  }
  host->callback_log(host->host_ctx, RELAY_LOG_INFO, str("out-of-tree plug-in ready"));
  return s;
}

static void on_submit(void* instance, uint64_t submit_id, const relay_message* m) {
  oot* s = instance;
  job* j;
  size_t len = m->message_id.size < 63 ? m->message_id.size : 63;
  pthread_mutex_lock(&s->mu);
  if (s->count == QUEUE_SIZE) {
    relay_str none = {NULL, 0};
    pthread_mutex_unlock(&s->mu);
    s->host->callback_submit_done(s->host->host_ctx, submit_id, RELAY_SUBMIT_RETRY, none, str("queue full"));
    return;
  }
  j = &s->queue[(s->head + s->count) % QUEUE_SIZE];
  j->submit_id = submit_id;
  j->attempt = m->attempt;
  memcpy(j->message_id, m->message_id.data, len);
  j->message_id[len] = '\0';
  s->count++;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void on_destroy(void* instance) {
  oot* s = instance;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->worker, NULL); /* answers what is queued before it exits */
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static const relay_plugin table = {RELAY_PLUGIN_ABI_VERSION, sizeof(relay_plugin), "oot", "0.0.1",
                                   on_create, on_destroy, on_submit, NULL};

RELAY_PLUGIN_EXPORT const relay_plugin* relay_plugin_entry(void) { return &table; }
)";

// The first ```c block after `marker` in a Markdown file.
std::string code_block_after(const std::string& markdown, const std::string& marker) {
  const size_t at = markdown.find(marker);
  if (at == std::string::npos) return "";
  const size_t open = markdown.find("```c\n", at);
  if (open == std::string::npos) return "";
  const size_t body = open + 5;
  const size_t close = markdown.find("\n```", body);
  if (close == std::string::npos) return "";
  return markdown.substr(body, close - body + 1);
}

class recording_listener : public connector_listener {
 public:
  void on_outcome(connector&, const connector_outcome& o) override {
    statuses.push_back(o.status);
    tokens.push_back(o.token);
    refs.emplace_back(o.carrier_ref);
    details.emplace_back(o.detail);
  }
  void on_event(connector&, const plugin_event& e) override { events.push_back(e); }
  std::vector<relay_submit_status> statuses;
  std::vector<uint64_t> tokens;
  std::vector<std::string> refs, details;
  std::vector<plugin_event> events;
};


class out_of_tree_plugin : public ::testing::Test {
 protected:
  // One install per test binary: `cmake --install` into a temporary prefix.
  static void SetUpTestSuite() {
    if (!test::have_cc()) return;
    prefix_dir_ = new test::temp_dir();
    std::string output;
    install_rc_ =
        test::run_command("cmake --install " + test::shell_quote(RELAY_BINARY_DIR) + " --prefix " +
                              test::shell_quote(prefix_dir_->path() + "/prefix"),
                          output, prefix_dir_->path());
    install_output_ = output;
  }
  static void TearDownTestSuite() {
    delete prefix_dir_;
    prefix_dir_ = nullptr;
  }

  void SetUp() override {
    if (!test::have_cc()) GTEST_SKIP() << "no C compiler (cc) to build an out-of-tree plug-in";
    ASSERT_EQ(install_rc_, 0) << install_output_;
    include_dir_ = prefix_dir_->path() + "/prefix/include";
    ASSERT_TRUE(std::filesystem::exists(include_dir_ + "/relay/plugin.h")) << install_output_;
  }

  // Compiles `source` against the installed header only; returns the .so path.
  std::string build(const std::string& name, const std::string& source) {
    const std::string err = test::compile_c_plugin(work_.path(), name, source, include_dir_);
    EXPECT_EQ(err, "") << "the plug-in does not build against the installed header";
    return work_ / (name + ".so");
  }

  // Runs `count` messages through a connector on `library` until all have an
  // outcome (or 20 s pass).
  void run_messages(connector& c, int count, wake_signal& signal) {
    std::deque<std::string> users;
    int next = 0;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (listener_.statuses.size() < static_cast<size_t>(count) &&
           std::chrono::steady_clock::now() < deadline) {
      while (next < count && !c.full()) {
        outbound_message m;
        m.job = &job_;
        char id[33];
        std::snprintf(id, sizeof(id), "%032x", next + 1);
        std::copy(id, id + 32, m.id.begin());
        users.push_back("user-" + std::to_string(next));
        m.user_id = users.back();
        m.address = "+819012345678";
        m.token = static_cast<uint64_t>(next++);
        c.submit(m);
      }
      c.poll();
      signal.wait(50ms);
    }
  }

  static inline test::temp_dir* prefix_dir_ = nullptr;
  static inline int install_rc_ = -1;
  static inline std::string install_output_;

  std::string include_dir_;
  test::temp_dir work_;
  system_clock clk_;
  recording_listener listener_;
  job_context job_{"job-oot", "acme", "", R"({"text":"hello"})"};
};

TEST_F(out_of_tree_plugin, a_c_plugin_built_against_the_installed_header_loads_and_delivers) {
  const std::string path = build("oot", kThreadedPlugin);
  auto lib = plugin_library::load(path);
  ASSERT_TRUE(lib) << lib.err().message;
  EXPECT_STREQ((*lib)->table().name, "oot");

  // Its config is checked by the plug-in and the reason reaches the operator.
  {
    connector bad("carrier-x", channel::sms, *lib, {"oot", {{"colour", "red"}}}, 8, retry_policy{},
                  clk_, 1, listener_, nullptr);
    auto r = bad.start();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().message, "carrier-x/sms (oot): colour: unknown key");
  }

  auto signal = std::make_shared<wake_signal>();
  connector c("carrier-x", channel::sms, *lib, {"oot", {{"greeting", "hej"}}}, 8, retry_policy{},
              clk_, 1, listener_, [signal] { (*signal)(); });
  auto started = c.start();
  ASSERT_TRUE(started) << started.err().message;
  constexpr int kMessages = 20;  // more than the window: exercises back-pressure too
  run_messages(c, kMessages, *signal);
  c.stop(5s);

  ASSERT_EQ(listener_.statuses.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(listener_.statuses[i], RELAY_SUBMIT_ACCEPTED) << listener_.details[i];
    char id[33];
    std::snprintf(id, sizeof(id), "%032x", static_cast<int>(listener_.tokens[i]) + 1);
    EXPECT_EQ(listener_.refs[i], std::string("hej:") + id + ":1");
  }
  EXPECT_EQ(listener_.events.size(), static_cast<size_t>(kMessages));
  for (const auto& e : listener_.events) EXPECT_EQ(e.type, RELAY_EVENT_DELIVERED);
  EXPECT_EQ(c.stats().accepted, static_cast<uint64_t>(kMessages));
}

TEST_F(out_of_tree_plugin, the_example_in_the_plugin_guide_builds_and_runs) {
  const std::string guide = test::read_file(RELAY_SOURCE_DIR "/docs/plugins.md");
  const std::string source = code_block_after(guide, "<!-- example: counter_sink.c -->");
  ASSERT_FALSE(source.empty()) << "docs/plugins.md lost its counter_sink.c example";
  build("counter_sink", source);
  plugin_loader loader(work_.path());
  auto lib = loader.get("counter_sink");
  ASSERT_TRUE(lib) << lib.err().message;

  auto signal = std::make_shared<wake_signal>();
  connector c("carrier-a", channel::email, *lib, {"counter_sink", {{"prefix", "mail"}}}, 4,
              retry_policy{}, clk_, 1, listener_, [signal] { (*signal)(); });
  auto started = c.start();
  ASSERT_TRUE(started) << started.err().message;
  run_messages(c, 3, *signal);
  c.stop(1s);
  ASSERT_EQ(listener_.statuses.size(), 3u);
  EXPECT_EQ(listener_.refs, (std::vector<std::string>{"mail-1", "mail-2", "mail-3"}));
}

}  // namespace
}  // namespace relay
