// rcs_rbm: relay's RCS Business Messaging carrier plug-in. Sends agent
// messages (text, standalone rich cards, suggested replies and actions) with
// phones.agentMessages.create, optionally checks phones.getCapabilities
// first, revokes messages not delivered in time with agentMessages.delete,
// and turns the RBM Pub/Sub webhooks (DELIVERED, READ, user messages) into
// relay events. See README.md and docs/decisions/0009-rcs-rbm-client.md.
//
// Threads:
//  - on_create / on_destroy: the host's start-up / shutdown thread.
//  - on_submit: one host dispatch thread; it builds the request body (CPU
//    only), posts the message to the I/O thread and returns.
//  - the I/O thread (one io_context per instance) owns the HTTP pool, the
//    capability cache, the token and the revoke schedule, and calls
//    callback_submit_done / callback_emit_event (revokes) / callback_log.
//  - on_webhook: relay's HTTP threads, concurrently; verifies and emits
//    events itself, and posts "delivered" to the I/O thread so a pending
//    revoke is dropped.

#include <sys/stat.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "plugins/common/abi_support.h"
#include "plugins/rcs_rbm/agent_message.h"
#include "plugins/rcs_rbm/capability_cache.h"
#include "plugins/rcs_rbm/http_pool.h"
#include "plugins/rcs_rbm/rbm_config.h"
#include "plugins/rcs_rbm/rbm_response.h"
#include "plugins/rcs_rbm/webhook.h"
#include "relay/plugin.h"

namespace {

using relay::plugin_abi::config_pairs;
using relay::plugin_abi::to_relay;
using relay::plugin_abi::view;
using relay::plugin_abi::write_error;

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace relay::rcs_rbm;
using steady = std::chrono::steady_clock;


bool is_e164(std::string_view s) {
  if (s.size() < 3 || s.size() > 16 || s[0] != '+') return false;
  for (size_t k = 1; k < s.size(); ++k) {
    if (s[k] < '0' || s[k] > '9') return false;
  }
  return true;
}

// A copy of one relay_message; owned by the instance from on_submit on.
struct job {
  uint64_t submit_id = 0;
  std::string message_id, msisdn, body;
};

// How many times a failed revoke is tried again (1 s, 2 s, 4 s later).
constexpr int kRevokeAttempts = 4;
// Ids of messages delivered before their revoke was armed (the webhook can
// overtake the API's answer), remembered so the revoke is not armed.
constexpr size_t kEarlyDeliveredMemory = 100'000;

class rbm_connector {
 public:
  rbm_connector(const relay_host* host, rbm_config cfg)
      : host_(host),
        cfg_(std::move(cfg)),
        work_(asio::make_work_guard(io_)),
        replays_(cfg_.replay_memory),
        capabilities_(cfg_.capability_ttl, kCapabilityCacheSize),
        revoke_timer_(io_),
        rng_(std::random_device{}()) {
    if (cfg_.api.tls) {
      tls_.emplace(asio::ssl::context::tls_client);
      tls_->set_default_verify_paths();
      if (!cfg_.tls_ca_file.empty()) tls_->load_verify_file(cfg_.tls_ca_file);
      tls_->set_verify_mode(asio::ssl::verify_peer);
    }
    if (!cfg_.auth_token_file.empty() && !reload_token(true))
      throw std::runtime_error("auth_token_file: cannot read a token from " + cfg_.auth_token_file);
    pool_ = std::make_unique<http_pool>(io_, cfg_.api, cfg_.connections, cfg_.request_timeout,
                                        tls_ ? &*tls_ : nullptr);
    thread_ = std::thread([this] { io_.run(); });
    log(RELAY_LOG_INFO,
        "rcs_rbm ready: " + std::string(cfg_.api.tls ? "https://" : "http://") + cfg_.api.host +
            ":" + cfg_.api.port + cfg_.api.base_path + ", " + std::to_string(cfg_.connections) +
            " connections" + (cfg_.capability_check ? ", capability check" : "") +
            (cfg_.revoke_after.count() > 0 ? ", revoke after " + duration_json(cfg_.revoke_after)
                                           : ""));
  }

  ~rbm_connector() { stop(); }

  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      stopping_ = true;
      revoke_timer_.cancel();
      for (const auto& t : revoke_retries_) t->cancel();
      pool_->shutdown();  // calls in flight complete with an error: reported RETRY
      work_.reset();
    });
    thread_.join();
  }

  // Dispatch thread. CPU only: the body is built here, I/O is posted.
  void submit(uint64_t submit_id, const relay_message& m) {
    job j;
    j.submit_id = submit_id;
    j.message_id = std::string(view(m.message_id));
    j.msisdn = std::string(view(m.address));
    if (j.message_id.empty())
      return done(submit_id, RELAY_SUBMIT_FAILED, {}, "message has no message_id");
    if (!is_e164(j.msisdn))
      return done(submit_id, RELAY_SUBMIT_FAILED, {}, "address is not an E.164 phone number");
    built_message built = build_agent_message(view(m.content_json), cfg_.ttl);
    if (!built.error.empty()) return done(submit_id, RELAY_SUBMIT_FAILED, {}, built.error);
    j.body = std::move(built.body);
    // One post per batch, not per message: under load the I/O thread finds
    // many messages per wake-up (fewer eventfd writes and context switches).
    bool post_drain = false;
    {
      std::lock_guard lock(inbox_mu_);
      inbox_.push_back(std::move(j));
      post_drain = !drain_posted_;
      drain_posted_ = true;
    }
    if (post_drain) asio::post(io_, [this] { drain_inbox(); });
  }

  void submit_failed(uint64_t submit_id) {
    done(submit_id, RELAY_SUBMIT_RETRY, {}, "rcs_rbm could not queue the message");
  }

  // HTTP threads.
  int webhook(const relay_http_request& r) {
    if (view(r.method) != "POST") return 405;
    std::string_view signature;
    for (size_t k = 0; k < r.header_count; ++k) {
      if (view(r.headers[k].key) == "x-goog-signature") signature = view(r.headers[k].value);
    }
    webhook_result w = process_webhook(cfg_.webhook_secret, signature, view(r.body), replays_);
    if (w.http_status != 200) {
      log(RELAY_LOG_DEBUG, "webhook refused (" + std::to_string(w.http_status) + "): " + w.error);
      return w.http_status;
    }
    const webhook_event& e = w.event;
    relay_event ev{};
    ev.struct_size = sizeof(relay_event);
    ev.at_unix_ms = e.at_unix_ms;
    switch (e.type) {
      case webhook_event::kind::delivered:
      case webhook_event::kind::read:
        ev.type =
            e.type == webhook_event::kind::delivered ? RELAY_EVENT_DELIVERED : RELAY_EVENT_OPENED;
        ev.message_id = to_relay(e.message_id);
        ev.carrier_ref = to_relay(e.message_id);
        host_->callback_emit_event(host_->host_ctx, &ev);
        if (cfg_.revoke_after.count() > 0) {
          asio::post(io_, [this, id = e.message_id]() mutable { delivered(std::move(id)); });
        }
        return 200;
      case webhook_event::kind::user_message: {
        const std::string to = e.agent_id.empty() ? cfg_.agent_id : e.agent_id;
        const std::string detail = e.postback.empty() ? "" : "postbackData=" + e.postback;
        ev.type = RELAY_EVENT_INBOUND;
        ev.carrier_ref = to_relay(e.message_id);
        ev.from = to_relay(e.phone);
        ev.to = to_relay(to);
        ev.text = to_relay(e.text);
        ev.detail = to_relay(detail);
        host_->callback_emit_event(host_->host_ctx, &ev);
        return 200;
      }
      case webhook_event::kind::typing:
      case webhook_event::kind::ignored:
        return 200;
    }
    return 200;
  }

 private:
  // ---- I/O thread from here on -------------------------------------------

  void drain_inbox() {
    std::vector<job> batch;
    {
      std::lock_guard lock(inbox_mu_);
      batch.swap(inbox_);
      drain_posted_ = false;
    }
    for (auto& j : batch) start(std::move(j));
  }

  void start(job&& j) {
    if (stopping_) return done(j.submit_id, RELAY_SUBMIT_RETRY, {}, "rcs_rbm is shutting down");
    if (!cfg_.capability_check) return send(std::move(j));
    if (auto known = capabilities_.find(j.msisdn, steady::now()); known.has_value()) {
      if (*known) return send(std::move(j));
      return done(j.submit_id, RELAY_SUBMIT_FAILED, {},
                  "not_rcs_capable (RBM capabilities: NOT_FOUND)");
    }
    check_capability(std::move(j));
  }

  std::string phone_path(const std::string& msisdn) const {
    return cfg_.api.base_path + "/v1/phones/" + url_encode(msisdn, "+");
  }

  void check_capability(job&& j) {
    http_call call;
    call.method = http::verb::get;
    call.target = phone_path(j.msisdn) + "/capabilities?requestId=" + uuid() +
                  "&agentId=" + url_encode(cfg_.agent_id);
    if (!bearer(call.bearer))
      return done(j.submit_id, RELAY_SUBMIT_RETRY, {}, "no auth token available");
    call.done = [this, j = std::move(j)](http_result&& r) mutable {
      if (r.status == 200) {
        capabilities_.put(j.msisdn, true, steady::now());
        return send(std::move(j));
      }
      if (r.status == 0) return done(j.submit_id, RELAY_SUBMIT_RETRY, {}, connection_detail(r));
      const api_error e = parse_api_error(r.status, r.body, j.msisdn);
      if (r.status == 404) {
        capabilities_.put(j.msisdn, false, steady::now());
        return done(j.submit_id, RELAY_SUBMIT_FAILED, {},
                    "not_rcs_capable (" + error_detail(e) + ")");
      }
      if (r.status == 401) token_rejected();
      const bool transient = is_transient_status(r.status) || r.status == 401;
      done(j.submit_id, transient ? RELAY_SUBMIT_RETRY : RELAY_SUBMIT_FAILED, {},
           "capability check: " + error_detail(e));
    };
    pool_->request(std::move(call));
  }

  void send(job&& j) {
    http_call call;
    call.method = http::verb::post;
    call.target = phone_path(j.msisdn) + "/agentMessages?messageId=" + url_encode(j.message_id) +
                  "&agentId=" + url_encode(cfg_.agent_id);
    call.body = std::move(j.body);
    if (!bearer(call.bearer))
      return done(j.submit_id, RELAY_SUBMIT_RETRY, {}, "no auth token available");
    call.done = [this, submit_id = j.submit_id, id = std::move(j.message_id),
                 msisdn = std::move(j.msisdn)](http_result&& r) mutable {
      if (r.status == 0) return done(submit_id, RELAY_SUBMIT_RETRY, {}, connection_detail(r));
      if (r.status == 401) token_rejected();
      send_outcome o = classify_send(r.status, r.body, msisdn, id);
      if (o.status == RELAY_SUBMIT_ACCEPTED && cfg_.revoke_after.count() > 0 && !stopping_)
        arm_revoke(id, msisdn);
      done(submit_id, o.status, o.carrier_ref, o.detail);
    };
    pool_->request(std::move(call));
  }

  static std::string connection_detail(const http_result& r) {
    return r.timed_out ? "RBM request timed out: " + r.error : "RBM connection error: " + r.error;
  }

  // ---- revoke ---------------------------------------------------------------

  void arm_revoke(const std::string& id, const std::string& msisdn) {
    if (early_delivered_.erase(id) != 0) return;
    if (!pending_revokes_.emplace(id, msisdn).second) return;
    revoke_queue_.push_back({steady::now() + cfg_.revoke_after, id});
    if (revoke_queue_.size() == 1) schedule_revoke_timer();
  }

  void schedule_revoke_timer() {
    revoke_timer_.expires_at(revoke_queue_.front().first);
    revoke_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      const auto now = steady::now();
      while (!revoke_queue_.empty() && revoke_queue_.front().first <= now) {
        std::string id = std::move(revoke_queue_.front().second);
        revoke_queue_.pop_front();
        auto it = pending_revokes_.find(id);
        if (it == pending_revokes_.end()) continue;  // delivered meanwhile
        std::string msisdn = std::move(it->second);
        pending_revokes_.erase(it);
        revoke(std::move(id), std::move(msisdn), 1);
      }
      if (!revoke_queue_.empty()) schedule_revoke_timer();
    });
  }

  void delivered(std::string id) {
    if (pending_revokes_.erase(id) != 0) return;
    if (early_delivered_.insert(id).second) {
      early_order_.push_back(std::move(id));
      if (early_order_.size() > kEarlyDeliveredMemory) {
        early_delivered_.erase(early_order_.front());
        early_order_.pop_front();
      }
    }
  }

  void revoke(std::string id, std::string msisdn, int attempt) {
    if (stopping_) return;
    http_call call;
    call.method = http::verb::delete_;
    call.target = phone_path(msisdn) + "/agentMessages/" + url_encode(id) +
                  "?agentId=" + url_encode(cfg_.agent_id);
    if (!bearer(call.bearer)) return;
    call.done = [this, id, msisdn, attempt](http_result&& r) mutable {
      if (r.status >= 200 && r.status <= 299) {
        const std::string detail =
            "revoked: not delivered within " + duration_json(cfg_.revoke_after);
        relay_event ev{};
        ev.struct_size = sizeof(relay_event);
        ev.type = RELAY_EVENT_FAILED;
        ev.message_id = to_relay(id);
        ev.carrier_ref = to_relay(id);
        ev.reason = to_relay("expired");
        ev.detail = to_relay(detail);
        host_->callback_emit_event(host_->host_ctx, &ev);
        return;
      }
      if (r.status == 404) return;  // delivered already: nothing to revoke
      if (r.status == 401) token_rejected();
      const bool transient = r.status == 0 || r.status == 401 || is_transient_status(r.status);
      const std::string why = r.status == 0
                                  ? connection_detail(r)
                                  : error_detail(parse_api_error(r.status, r.body, msisdn));
      if (!transient || attempt >= kRevokeAttempts || stopping_) {
        log(RELAY_LOG_WARN, "revoke of message " + id + " abandoned: " + why);
        return;
      }
      auto timer =
          std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1 << (attempt - 1)));
      revoke_retries_.insert(timer);  // stop() cancels it
      timer->async_wait([this, timer, id = std::move(id), msisdn = std::move(msisdn),
                         attempt](boost::system::error_code ec) mutable {
        revoke_retries_.erase(timer);
        if (!ec && !stopping_) revoke(std::move(id), std::move(msisdn), attempt + 1);
      });
    };
    pool_->request(std::move(call));
  }

  // ---- auth -----------------------------------------------------------------

  // The bearer token for the next call; re-reads auth_token_file when it
  // changed (a token refresher rewrites it). False when there is none.
  bool bearer(std::string& out) {
    if (!cfg_.auth_token.empty()) {
      out = cfg_.auth_token;
      return true;
    }
    reload_token(false);
    out = token_;
    return !out.empty();
  }

  bool reload_token(bool force) {
    struct stat st {};
    if (::stat(cfg_.auth_token_file.c_str(), &st) != 0) return !token_.empty();
    const auto stamp =
        std::make_tuple(st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (!force && stamp == token_stamp_) return !token_.empty();
    std::ifstream in(cfg_.auth_token_file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    std::string t = text.str();
    while (!t.empty() &&
           (t.back() == '\n' || t.back() == '\r' || t.back() == ' ' || t.back() == '\t'))
      t.pop_back();
    size_t start = 0;
    while (start < t.size() && (t[start] == ' ' || t[start] == '\t')) ++start;
    t.erase(0, start);
    if (t.empty() || t.find_first_of("\r\n") != std::string::npos) {
      log(RELAY_LOG_WARN, "auth_token_file holds no single-line token; keeping the previous one");
      return !token_.empty();
    }
    token_stamp_ = stamp;
    token_ = std::move(t);
    return true;
  }

  void token_rejected() {
    log(RELAY_LOG_WARN, "RBM answered 401 UNAUTHENTICATED: the bearer token is invalid or expired");
    if (!cfg_.auth_token_file.empty()) reload_token(true);
  }

  std::string uuid() {
    const uint64_t a = rng_(), b = rng_();
    char s[37];
    std::snprintf(s, sizeof s, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                  static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                  static_cast<unsigned long long>(b & 0xffffffffffffull));
    return s;
  }

  // ---- host callbacks (any thread) -----------------------------------------

  void done(uint64_t submit_id, relay_submit_status status, std::string_view ref,
            std::string_view detail) {
    host_->callback_submit_done(host_->host_ctx, submit_id, status, to_relay(ref),
                                to_relay(detail));
  }
  void log(relay_log_level level, const std::string& line) {
    host_->callback_log(host_->host_ctx, level, to_relay(line));
  }

  const relay_host* host_;
  const rbm_config cfg_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::optional<asio::ssl::context> tls_;
  std::unique_ptr<http_pool> pool_;
  replay_memory replays_;  // HTTP threads; locks itself
  std::mutex inbox_mu_;    // dispatch thread -> I/O thread hand-over
  std::vector<job> inbox_;
  bool drain_posted_ = false;
  // I/O thread only:
  capability_cache capabilities_;
  std::unordered_map<std::string, std::string> pending_revokes_;         // message_id -> msisdn
  std::deque<std::pair<steady::time_point, std::string>> revoke_queue_;  // deadline order
  asio::steady_timer revoke_timer_;
  std::unordered_set<std::shared_ptr<asio::steady_timer>>
      revoke_retries_;  // revokes waiting to retry
  std::unordered_set<std::string> early_delivered_;
  std::deque<std::string> early_order_;
  std::string token_;
  std::tuple<ino_t, off_t, time_t, long> token_stamp_{};
  std::mt19937_64 rng_;
  bool stopping_ = false;
  std::thread thread_;
};


void* on_create(const relay_host* host, const relay_kv* config, size_t config_count, char* error,
                size_t error_size) {
  try {
    if (host == nullptr || host->struct_size < sizeof(relay_host)) {
      write_error(error, error_size, "rcs_rbm: the host's table is too old");
      return nullptr;
    }
    const auto kv = config_pairs(config, config_count);
    rbm_config cfg;
    if (std::string why = parse_config(kv, cfg); !why.empty()) {
      write_error(error, error_size, why);
      return nullptr;
    }
    // OWNERSHIP: the host holds the instance until on_destroy.
    return std::make_unique<rbm_connector>(host, std::move(cfg)).release();
  } catch (const std::exception& e) {
    write_error(error, error_size, std::string("rcs_rbm: ") + e.what());
  } catch (...) {
    write_error(error, error_size, "rcs_rbm: unexpected error");
  }
  return nullptr;
}

void on_destroy(void* instance) {
  try {
    std::unique_ptr<rbm_connector>(static_cast<rbm_connector*>(instance)).reset();
  } catch (...) {
  }
}

void on_submit(void* instance, uint64_t submit_id, const relay_message* message) {
  auto* c = static_cast<rbm_connector*>(instance);
  try {
    c->submit(submit_id, *message);
  } catch (...) {
    // Nothing was posted when submit() threw (the post is its last step).
    c->submit_failed(submit_id);
  }
}

int on_webhook(void* instance, const relay_http_request* request) {
  try {
    return static_cast<rbm_connector*>(instance)->webhook(*request);
  } catch (...) {
    return 500;
  }
}

const relay_plugin kTable = {
    RELAY_PLUGIN_ABI_VERSION,
    sizeof(relay_plugin),
    "rcs_rbm",
    "1.0.0",
    &on_create,
    &on_destroy,
    &on_submit,
    &on_webhook,
};

}  // namespace

extern "C" RELAY_PLUGIN_EXPORT const relay_plugin* relay_plugin_entry(void) { return &kTable; }
