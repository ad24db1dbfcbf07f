// email_smtp: relay's SMTP carrier plug-in. Builds a MIME message from the
// job's content (plugins/email_smtp/mime.h) and hands it to an SMTP server
// over a pool of connections (plugins/email_smtp/smtp_session.h).
//
// Threads:
//  - on_create / on_destroy: the host's start-up / shutdown thread.
//  - on_submit: one host dispatch thread; it copies the message and posts it
//    to the I/O thread (never blocks, never does I/O).
//  - the I/O thread (one io_context per instance) owns the queue, the pool
//    and every session, and calls the host back (callback_submit_done,
//    callback_log).
//
// Outcomes: 2xx after the body ACCEPTED (carrier_ref: the server's reply);
// 4xx, a dropped or timed-out connection RETRY; 5xx FAILED with the reply
// text, addresses masked. A retry carries the same Message-ID
// (<message_id@message_id_domain>), so a receiver that has the first copy
// can drop the second.

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "plugins/common/abi_support.h"
#include "plugins/email_smtp/content.h"
#include "plugins/email_smtp/mime.h"
#include "plugins/email_smtp/smtp_config.h"
#include "plugins/email_smtp/smtp_session.h"
#include "relay/plugin.h"

namespace {

using relay::plugin_abi::config_pairs;
using relay::plugin_abi::to_relay;
using relay::plugin_abi::view;
using relay::plugin_abi::write_error;

namespace asio = boost::asio;
using namespace relay::email_smtp;


// A copy of one relay_message; owned by the instance from on_submit on.
struct job {
  uint64_t submit_id = 0;
  std::string message_id, address, content_json;
  bool moved_off_stale_connection = false;
};

class smtp_client;

// One pooled connection: its session and its state in the pool. Owned by
// smtp_client::pool_ and by its coroutine; I/O thread only.
struct pooled_connection {
  explicit pooled_connection(asio::io_context& io) : wake(io) {}
  std::shared_ptr<smtp_session> session;
  asio::steady_timer wake;  // an idle connection waits on it; cancelled to hand over work
  bool ready = false;       // set up; taking messages
  bool idle = false;        // waiting on `wake`
  bool woken = false;       // `wake` cancelled for it already
  std::optional<job> current;  // the message it is delivering
};

class smtp_client {
 public:
  smtp_client(const relay_host* host, smtp_config cfg)
      : host_(host), cfg_(std::move(cfg)), tls_(asio::ssl::context::tls_client), work_(io_.get_executor()) {}

  ~smtp_client() { stop(); }

  // Start-up thread. "" or a one-line reason.
  std::string start() {
    boost::system::error_code ec;
    SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
    if (cfg_.tls_verify) {
      if (!cfg_.tls_ca_file.empty()) {
        tls_.load_verify_file(cfg_.tls_ca_file, ec);
        if (ec) return "tls_ca_file: cannot load \"" + cfg_.tls_ca_file + "\": " + ec.message();
      } else {
        tls_.set_default_verify_paths(ec);
        if (ec) return "tls_verify: cannot load the system's trust store: " + ec.message();
      }
    }
    thread_ = std::thread([this] { io_.run(); });
    return "";
  }

  // Host dispatch thread: copy and hand over to the I/O thread.
  void submit(uint64_t submit_id, const relay_message& m) {
    job j;
    j.submit_id = submit_id;
    j.message_id.assign(view(m.message_id));
    j.address.assign(view(m.address));
    j.content_json.assign(view(m.content_json));
    asio::post(io_, [this, j = std::move(j)]() mutable {
      queue_.push_back(std::move(j));
      dispatch();
    });
  }

  // Shutdown thread: report what is queued and in flight as RETRY, close
  // every connection, wait for the I/O thread to finish.
  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      stopping_ = true;
      while (!queue_.empty()) {
        done(queue_.front().submit_id, RELAY_SUBMIT_RETRY, {}, "email_smtp stopped before sending");
        queue_.pop_front();
      }
      // Each connection's coroutine reports its current message and ends.
      for (auto& c : pool_) {
        c->session->close();
        c->wake.cancel();
      }
      work_.reset();
    });
    thread_.join();
  }

  void done(uint64_t submit_id, relay_submit_status status, std::string_view ref,
            std::string_view detail) {
    host_->callback_submit_done(host_->host_ctx, submit_id, status, to_relay(ref), to_relay(detail));
  }

  void log(relay_log_level level, const std::string& text) {
    host_->callback_log(host_->host_ctx, level, to_relay(text));
  }

 private:
  // I/O thread. Hands queued messages to idle connections and opens new ones
  // (up to `connections`) when more are waiting than can be served soon.
  void dispatch() {
    if (stopping_) return;
    size_t waiting = queue_.size();
    size_t connecting = 0;
    for (auto& c : pool_) {
      if (!c->ready) ++connecting;
      if (c->ready && c->idle && !c->woken && waiting > 0) {
        c->woken = true;
        c->wake.cancel();
        --waiting;
      }
    }
    waiting = waiting > connecting ? waiting - connecting : 0;
    while (waiting > 0 && pool_.size() < cfg_.connections) {
      auto c = std::make_shared<pooled_connection>(io_);
      c->session = std::make_shared<smtp_session>(io_, cfg_, tls_);
      pool_.push_back(c);
      asio::co_spawn(io_, run(c), asio::detached);
      --waiting;
    }
  }

  // One connection's life: set up, deliver until idle too long, the message
  // limit, an error or stop.
  asio::awaitable<void> run(std::shared_ptr<pooled_connection> c) {
    const setup_result setup = co_await c->session->setup();
    if (!setup.ok) {
      log(setup.status == RELAY_SUBMIT_FAILED ? RELAY_LOG_ERROR : RELAY_LOG_WARN,
          "SMTP connection to " + cfg_.host + ":" + std::to_string(cfg_.port) +
              " failed: " + setup.detail);
      c->session->close();
      remove(c);
      // With no other connection left to serve them, the waiting messages get
      // this connection's verdict; otherwise the others take them.
      if (pool_.empty()) {
        while (!queue_.empty()) {
          done(queue_.front().submit_id, setup.status, {}, setup.detail);
          queue_.pop_front();
        }
      }
      co_return;
    }
    log(RELAY_LOG_DEBUG, std::string("SMTP connection ready") +
                             (c->session->tls_active() ? " (TLS)" : "") +
                             (c->session->extensions().pipelining ? " (PIPELINING)" : ""));
    c->ready = true;
    size_t sent = 0;
    bool usable = true;
    while (usable && !stopping_) {
      if (queue_.empty()) {
        c->idle = true;
        c->woken = false;
        c->wake.expires_after(cfg_.idle_timeout);
        boost::system::error_code ec;
        co_await c->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        c->idle = false;
        if (stopping_) break;
        if (!ec && queue_.empty()) {  // idle_timeout passed with nothing to do
          co_await c->session->quit();
          break;
        }
        continue;
      }
      c->current = std::move(queue_.front());
      queue_.pop_front();
      job& j = *c->current;

      prepared_message m;
      std::string why;
      if (!prepare(j, m, why)) {
        done(j.submit_id, RELAY_SUBMIT_FAILED, {}, why);
        c->current.reset();
        continue;
      }
      const delivery d = co_await c->session->deliver(m, sent > 0);
      usable = d.connection_ok;
      if (stopping_ && !d.connection_ok) {
        done(j.submit_id, RELAY_SUBMIT_RETRY, {}, "email_smtp stopped while sending");
      } else if (!d.connection_ok && !d.body_sent && sent > 0 && d.status == RELAY_SUBMIT_RETRY &&
                 !j.moved_off_stale_connection) {
        // A reused connection the server had already closed: nothing of this
        // message reached it, so it goes first on a fresh connection.
        j.moved_off_stale_connection = true;
        queue_.push_front(std::move(j));
      } else {
        if (d.status != RELAY_SUBMIT_ACCEPTED) log(RELAY_LOG_DEBUG, "submit failed: " + d.text);
        done(j.submit_id, d.status, d.status == RELAY_SUBMIT_ACCEPTED ? d.text : std::string(),
             d.status == RELAY_SUBMIT_ACCEPTED ? std::string() : d.text);
      }
      c->current.reset();
      ++sent;
      if (usable && sent >= cfg_.max_messages_per_connection) {
        co_await c->session->quit();
        usable = false;
      }
    }
    c->session->close();
    remove(c);
    dispatch();  // someone else takes what is left
  }

  void remove(const std::shared_ptr<pooled_connection>& c) {
    std::erase(pool_, c);
  }

  // Builds the wire form of a message; false and a reason for content or an
  // address that can never be sent.
  bool prepare(const job& j, prepared_message& m, std::string& why) const {
    if (!valid_mailbox(j.address)) {
      why = "the address is not a mailbox relay can send to";
      return false;
    }
    mail_content content;
    if (std::string e = parse_content(j.content_json, content); !e.empty()) {
      why = e;
      return false;
    }
    if (content.text.empty() && content.html.empty()) {
      why = "content has neither text nor html";
      return false;
    }
    envelope_fields env;
    env.from = cfg_.from;
    env.from_name = cfg_.from_name;
    env.to = j.address;
    env.reply_to = cfg_.reply_to;
    env.message_id = j.message_id;
    env.message_id_domain = cfg_.message_id_domain;
    env.list_unsubscribe = cfg_.list_unsubscribe;
    env.date = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    const std::string message = build_message(env, content);
    m.recipient = j.address;
    m.size = message.size();
    m.data.reserve(message.size() + 64);
    append_dot_stuffed(m.data, message);
    return true;
  }

  const relay_host* host_;  // owned by the host; valid until on_destroy returns
  const smtp_config cfg_;
  asio::io_context io_;
  asio::ssl::context tls_;  // shared by the sessions (OpenSSL contexts are thread-safe to share)
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;

  // I/O thread only.
  std::deque<job> queue_;
  std::vector<std::shared_ptr<pooled_connection>> pool_;
  bool stopping_ = false;
};

// ---------------------------------------------------------------------------
// The C ABI. Nothing may throw out of these.


void* on_create(const relay_host* host, const relay_kv* config, size_t config_count, char* error,
                size_t error_size) {
  try {
    if (host == nullptr || host->struct_size < sizeof(relay_host) ||
        host->callback_submit_done == nullptr || host->callback_log == nullptr) {
      write_error(error, error_size, "email_smtp: the host's relay_host table is incomplete");
      return nullptr;
    }
    const auto kv = config_pairs(config, config_count);
    smtp_config cfg;
    if (std::string why = parse_config(kv, cfg); !why.empty()) {
      write_error(error, error_size, why);
      return nullptr;
    }
    auto client = std::make_unique<smtp_client>(host, std::move(cfg));
    if (std::string why = client->start(); !why.empty()) {
      write_error(error, error_size, why);
      return nullptr;
    }
    return client.release();
  } catch (const std::exception& e) {
    write_error(error, error_size, std::string("email_smtp: ") + e.what());
  } catch (...) {
    write_error(error, error_size, "email_smtp: unexpected error");
  }
  return nullptr;
}

void on_destroy(void* instance) {
  try {
    delete static_cast<smtp_client*>(instance);
  } catch (...) {
  }
}

void on_submit(void* instance, uint64_t submit_id, const relay_message* message) {
  auto* c = static_cast<smtp_client*>(instance);
  try {
    c->submit(submit_id, *message);
  } catch (...) {
    c->done(submit_id, RELAY_SUBMIT_RETRY, {}, "email_smtp could not queue the message");
  }
}

const relay_plugin kTable = {
    RELAY_PLUGIN_ABI_VERSION,
    sizeof(relay_plugin),
    "email_smtp",
    "1.0.0",
    &on_create,
    &on_destroy,
    &on_submit,
    nullptr,  // no webhooks: opens and clicks come through relay's own /t/ URLs
};

}  // namespace

extern "C" RELAY_PLUGIN_EXPORT const relay_plugin* relay_plugin_entry(void) { return &kTable; }
