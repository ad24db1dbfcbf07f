#pragma once
// One (carrier, channel) connector: a plug-in instance behind a bounded
// in-flight window, with retries of transient failures.
//
// Threads: submit(), poll() and stop() run on relay's core thread only. The
// plug-in reports outcomes and events from any thread; they are queued under
// a mutex and `wake` is called (from the plug-in's thread) so the core thread
// calls poll(), which hands them to the listener on the core thread.
//
// Back-pressure: at most `capacity` messages are in flight (submitted and not
// yet finally accepted/failed, retries included). The fan-out checks full()
// before submitting and stops feeding (and pausing Kafka) while it is full.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/config.h"
#include "daemon/plugin_host.h"
#include "relay/plugin.h"
#include "routing/channel.h"
#include "routing/clock.h"
#include "routing/message_id.h"
#include "routing/result.h"

namespace relay {

// The job-level part of a message, shared by all its recipients. Owned by the
// fan-out; must outlive every outcome of its messages.
struct job_context {
  std::string job_id;
  std::string company_id;
  std::string service_id;
  std::string content_json;
};

struct outbound_message {
  const job_context* job = nullptr;
  message_id id{};
  std::string_view user_id;  // copied by submit()
  std::string_view address;  // copied by submit()
  std::string_view content_json;  // this message's own content (tracked links); empty: the job's. Copied by submit()
  uint64_t token = 0;        // the caller's id for this message, returned in its outcome
  uint32_t flags = 0;        // RELAY_MESSAGE_* (MAY_BE_DUPLICATE on resumed work)
};

// The final outcome of one submitted message (after any retries).
struct connector_outcome {
  uint64_t token = 0;
  relay_submit_status status = RELAY_SUBMIT_ACCEPTED;  // ACCEPTED or FAILED (RETRY never reaches the listener)
  uint32_t attempts = 0;
  std::string_view carrier_ref;
  std::string_view detail;
};

// An event a plug-in reported (delivered, opened, clicked, failed, inbound).
struct plugin_event {
  relay_event_type type = RELAY_EVENT_DELIVERED;
  std::string message_id, carrier_ref, reason, detail, from, to, text;
  std::string location;  // OPENED / CLICKED: where, when the plug-in knows (relay_event.location)
  int64_t at_unix_ms = 0;
};

class connector;

class connector_listener {
 public:
  virtual ~connector_listener() = default;
  virtual void on_outcome(connector& c, const connector_outcome& outcome) = 0;  // core thread
  virtual void on_event(connector& c, const plugin_event& event) = 0;          // core thread
};

struct connector_stats {
  uint64_t submitted = 0;  // on_submit calls, retries included
  uint64_t accepted = 0;
  uint64_t retried = 0;
  uint64_t failed = 0;
};

class connector {
 public:
  connector(std::string carrier_id, channel ch, std::shared_ptr<plugin_library> library,
            connector_config config, size_t capacity, retry_policy retry, const clock& clk,
            uint64_t random_seed, connector_listener& listener, std::function<void()> wake);
  ~connector();
  connector(const connector&) = delete;
  connector& operator=(const connector&) = delete;

  // Creates the plug-in instance (on_create). The error names the connector
  // and carries the plug-in's reason, e.g. "carrier-a/sms (sms_smpp): port: must be a number".
  result<void> start();

  const std::string& carrier_id() const;
  channel chan() const;
  const std::string& name() const;  // "carrier-a/sms"
  size_t in_flight() const;
  size_t capacity() const;
  bool full() const { return in_flight() >= capacity(); }
  connector_stats stats() const;

  // Submits one message; precondition: !full(). The outcome arrives through
  // the listener from a later poll() (never from inside submit()).
  void submit(const outbound_message& message);

  // Delivers queued outcomes and events to the listener and resubmits retries
  // that are due. Returns when the next retry is due, if any is waiting.
  std::optional<sys_time> poll();

  // Stops submitting, waits up to `timeout` for in-flight messages (polling),
  // then destroys the plug-in instance. Messages still in flight are left to
  // the fan-out's checkpoint, which resubmits them after a restart.
  void stop(std::chrono::milliseconds timeout);

  // The plug-in's on_webhook, when it has one (HTTP threads).
  std::optional<int> webhook(const relay_http_request& request);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace relay
