#pragma once
// Helpers for tests that talk to plug-ins through the C ABI.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <map>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "daemon/plugin_host.h"
#include "relay/plugin.h"
#include "tests/test_support.h"

namespace relay::test {

inline relay_str rs(std::string_view s) { return relay_str{s.data(), s.size()}; }
inline std::string str(relay_str s) {
  return s.data != nullptr ? std::string(s.data, s.size) : std::string();
}

// The core thread's wake-up, as relayd's event loop provides it to a
// connector: callable from any thread; the test thread waits on it.
class wake_signal {
 public:
  void operator()() {
    {
      std::lock_guard lock(mu_);
      woken_ = true;
    }
    cv_.notify_one();
  }
  // Waits for a wake-up or until `until`; clears it.
  void wait(std::chrono::steady_clock::time_point until) {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, until, [&] { return woken_; });
    woken_ = false;
  }
  void wait(std::chrono::milliseconds at_most) { wait(std::chrono::steady_clock::now() + at_most); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

// The host side of the ABI for plug-in tests: records what the plug-in
// reports, from any thread, and lets the test wait for it.
class recording_host {
 public:
  struct outcome {
    uint64_t submit_id;
    relay_submit_status status;
    std::string carrier_ref, detail;
    std::chrono::steady_clock::time_point at;
  };
  struct event {
    relay_event_type type;
    std::string message_id, carrier_ref, reason, detail, from, to, text;
    int64_t at_unix_ms;
  };

  recording_host() {
    host_.struct_size = sizeof(relay_host);
    host_.abi_version = RELAY_PLUGIN_ABI_VERSION;
    host_.host_ctx = this;
    host_.callback_log = [](void* ctx, relay_log_level, relay_str m) {
      auto* h = static_cast<recording_host*>(ctx);
      std::lock_guard lock(h->mu_);
      h->logs_.push_back(str(m));
    };
    host_.callback_submit_done = [](void* ctx, uint64_t id, relay_submit_status st, relay_str ref,
                                    relay_str detail) {
      auto* h = static_cast<recording_host*>(ctx);
      std::lock_guard lock(h->mu_);
      h->outcomes_.push_back({id, st, str(ref), str(detail), std::chrono::steady_clock::now()});
    };
    host_.callback_emit_event = [](void* ctx, const relay_event* e) {
      auto* h = static_cast<recording_host*>(ctx);
      std::lock_guard lock(h->mu_);
      h->events_.push_back({static_cast<relay_event_type>(e->type), str(e->message_id),
                            str(e->carrier_ref), str(e->reason), str(e->detail), str(e->from),
                            str(e->to), str(e->text), e->at_unix_ms});
    };
  }
  const relay_host* table() const { return &host_; }

  bool wait_for_outcomes(size_t n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    return wait_until(
        [&] {
          std::lock_guard lock(mu_);
          return outcomes_.size() >= n;
        },
        limit);
  }
  bool wait_for_events(size_t n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    return wait_until(
        [&] {
          std::lock_guard lock(mu_);
          return events_.size() >= n;
        },
        limit);
  }
  std::vector<outcome> outcomes() {
    std::lock_guard lock(mu_);
    return outcomes_;
  }
  std::map<uint64_t, outcome> outcomes_by_id() {
    std::map<uint64_t, outcome> out;
    for (auto& o : outcomes()) out.emplace(o.submit_id, o);
    return out;
  }
  std::vector<event> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::vector<std::string> logs() {
    std::lock_guard lock(mu_);
    return logs_;
  }

 private:
  relay_host host_{};
  std::mutex mu_;
  std::vector<outcome> outcomes_;
  std::vector<event> events_;
  std::vector<std::string> logs_;
};

// One message as a test writes it; submit() turns it into a relay_message.
struct message_spec {
  std::string message_id = "m1";
  std::string job_id = "job-1";
  std::string company_id = "acme";
  std::string service_id;
  std::string user_id = "u1";
  std::string carrier_id = "carrier-a";
  std::string channel = "sms";
  std::string address = "+819012345678";
  std::string content = R"({"text":"hi"})";
  uint32_t attempt = 1;
  uint32_t flags = 0;
};

using plugin_settings = std::vector<std::pair<std::string, std::string>>;

// A plug-in loaded from the build tree (build/plugins/<name>.so) through
// relay's own loader, driven through its C table exactly as relayd drives it.
class plugin_under_test {
 public:
  explicit plugin_under_test(const std::string& name) {
    auto lib = plugin_library::load(std::string(RELAY_BINARY_DIR) + "/plugins/" + name + ".so");
    if (!lib) throw std::runtime_error(lib.err().message);
    lib_ = *lib;
  }
  ~plugin_under_test() { destroy(); }
  plugin_under_test(const plugin_under_test&) = delete;
  plugin_under_test& operator=(const plugin_under_test&) = delete;

  // Creates the instance; returns "" or the plug-in's one-line error.
  std::string create(const plugin_settings& config) {
    destroy();
    std::vector<relay_kv> kv;
    for (const auto& [k, v] : config) kv.push_back({rs(k), rs(v)});
    char error[512] = {};
    instance_ = lib_->table().on_create(host_.table(), kv.data(), kv.size(), error, sizeof(error));
    return instance_ != nullptr ? "" : std::string(error);
  }
  // on_destroy; every outcome the plug-in reports arrives before it returns.
  void destroy() {
    if (instance_ != nullptr) lib_->table().on_destroy(instance_);
    instance_ = nullptr;
  }
  uint64_t submit(const message_spec& s) {
    relay_message m{};
    m.struct_size = sizeof(relay_message);
    m.flags = s.flags;
    m.attempt = s.attempt;
    m.message_id = rs(s.message_id);
    m.job_id = rs(s.job_id);
    m.company_id = rs(s.company_id);
    m.service_id = rs(s.service_id);
    m.user_id = rs(s.user_id);
    m.carrier_id = rs(s.carrier_id);
    m.channel = rs(s.channel);
    m.address = rs(s.address);
    m.content_json = rs(s.content);
    const uint64_t id = ++next_id_;
    lib_->table().on_submit(instance_, id, &m);
    return id;
  }
  // Submits and waits for that submit's outcome.
  recording_host::outcome send(const message_spec& s,
                               std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const uint64_t id = submit(s);
    const bool arrived = wait_until([&] { return host_.outcomes_by_id().count(id) == 1; }, limit);
    if (!arrived) return {id, RELAY_SUBMIT_RETRY, "", "test: no outcome in time", {}};
    return host_.outcomes_by_id()[id];
  }
  // Calls on_webhook as relay's HTTP server does; header names lower-case.
  int webhook(std::string_view method, std::string_view path,
              const std::vector<std::pair<std::string, std::string>>& headers,
              std::string_view body, std::string_view query = {}) {
    if (lib_->table().on_webhook == nullptr) return 404;
    std::vector<relay_kv> kv;
    for (const auto& [k, v] : headers) kv.push_back({rs(k), rs(v)});
    relay_http_request r{rs(method), rs(path), rs(query), kv.data(), kv.size(), rs(body)};
    return lib_->table().on_webhook(instance_, &r);
  }

  recording_host& host() { return host_; }
  plugin_library& library() { return *lib_; }
  void* instance() const { return instance_; }

 private:
  std::shared_ptr<plugin_library> lib_;
  recording_host host_;
  void* instance_ = nullptr;
  uint64_t next_id_ = 0;
};

}  // namespace relay::test
