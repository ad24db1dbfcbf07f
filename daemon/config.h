#pragma once
// relay.yaml: the keys DESIGN §5 fixes plus relay's own tuning keys.
// Loading validates everything; an error names the file, the line, the key
// and what is wrong, e.g. "relay.yaml:7: kafka.brokers: must be a string".
// Unknown keys are errors too (a typo must not silently fall back to a default).

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "routing/channel.h"
#include "routing/duration.h"
#include "routing/job.h"
#include "routing/result.h"

namespace relay {

struct kafka_topics {
  std::string jobs = "relay.jobs";
  std::string registry = "relay.registry";
  std::string events = "relay.events";
  std::string dlq = "relay.jobs.dlq";
  std::string bids = "relay.bids";
};

struct kafka_config {
  std::string brokers = "embedded";  // "embedded" or a bootstrap list "h1:9092,h2:9092"
  std::string group_id = "relay";
  kafka_topics topics;
  std::vector<std::pair<std::string, std::string>> properties;  // passed to librdkafka as given
  int embedded_partitions = 4;                                  // partitions per topic on the embedded cluster
  bool embedded() const { return brokers == "embedded"; }
};

struct http_config {
  std::string listen = "127.0.0.1:8080";  // port 0: any free port (written to <data_dir>/http.address)
};

// Open and click tracking (relay's /t/o and /t/c URLs in messages).
struct tracking_config {
  // Where recipients reach relay's HTTP server, e.g. https://t.acme.example.
  // Empty: http://<the address relayd listens on>.
  std::string base_url;
  // HMAC key of the tracking tokens. Empty here: the environment variable
  // RELAY_TRACKING_SECRET, else a random key kept in <data_dir>/tracking.secret.
  std::string secret;
  // A request header that tells where the reader is (a CDN's or proxy's
  // country header such as cf-ipcountry); its value becomes the open's
  // location in the counts. Empty: opens have no location. Lower-case.
  std::string location_header;
};

// One (carrier, channel) connector: a plug-in instance and its settings.
struct connector_config {
  std::string plugin;  // plug-in name: <plugins_dir>/<plugin>.so
  // Every other key of the channel's map, flattened ("a.b" for nested maps,
  // JSON text for lists), passed to the plug-in's on_create as given.
  std::vector<std::pair<std::string, std::string>> settings;
};

struct carrier_config {
  std::string id;
  std::optional<connector_config> channels[kChannelCount];  // indexed by channel
};

enum class multi_carrier : uint8_t { primary, all };

struct retry_policy {
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30000};
  int max_attempts = 8;  // including the first submit
  double jitter = 0.2;   // +-20 % of each backoff
};

struct limits_config {
  job_limits job;                          // limits.max_job_bytes, max_content_bytes, max_users_per_job
  size_t connector_queue = 20000;          // in-flight messages per connector
  size_t pending_jobs_per_partition = 2000;  // accepted, not yet fanned out; above: pause the partition
  size_t fanout_chunk = 1024;              // recipients per durable fan-out checkpoint
  // A chunk that waited this long for a connector's room sends that
  // connector's recipients to its outbox instead (a slow or down carrier).
  std::chrono::milliseconds outbox_after{1000};
};

// `engagement:` — counting, channel choice, quiet periods and throttling (DESIGN §6).
struct throttle_caps {
  uint32_t daily = 0;   // messages per user and local day; 0: no cap
  uint32_t weekly = 0;  // per local ISO week
};
struct engagement_config {
  std::vector<std::string> segment{"gender", "age_band"};  // what `best` compares users by
  double prior_weight = 20;                                // sends' worth of the overall rate in each estimate
  std::chrono::milliseconds lookback{std::chrono::hours(24 * 30)};  // what `best` learns from at start-up
  std::chrono::milliseconds hourly_buckets_for{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds daily_buckets_for{std::chrono::hours(24 * 90)};
  std::chrono::milliseconds quiet_before{std::chrono::minutes(30)};  // around an exclusive send
  std::chrono::milliseconds quiet_after{std::chrono::hours(2)};
  throttle_caps caps;                                                // all companies together
  std::vector<std::pair<std::string, throttle_caps>> company_caps;   // per company
  double low_open_rate = 0;       // below it a user's daily cap shrinks (0: off)
  uint32_t floor_daily = 1;       // ... but never below this
  uint32_t low_rate_daily = 3;    // the cap low-rate users start from when no daily cap is set
  double min_recent_sends = 10;   // recent sends before a user's open rate is trusted
  std::chrono::milliseconds recent_half_life{std::chrono::hours(24 * 14)};
};

struct config {
  std::string source_path;  // the file it was loaded from
  std::string data_dir = "var";
  kafka_config kafka;
  http_config http;
  tracking_config tracking;
  std::string plugins_dir;  // empty: beside relayd (build tree) or ../lib/relay/plugins
  std::vector<carrier_config> carriers;
  multi_carrier carriers_multi = multi_carrier::primary;  // `carriers_multi: primary | all`
  std::vector<channel> default_order{channel::rcs, channel::sms, channel::email};
  retry_policy retry;
  limits_config limits;
  engagement_config engagement;
  std::chrono::milliseconds drain_timeout{10000};  // shutdown.drain_timeout
  bool sync_writes = false;                         // storage.sync
  std::chrono::milliseconds send_retention{std::chrono::hours(24 * 30)};  // storage.send_retention
  std::string log_level = "info";                   // log.level
};

// Loads and validates a config file. Relative data_dir and plugins_dir stay
// as written (relative to the working directory, like every daemon).
result<config> load_config(const std::string& path);

// Same, from text (tests); `name` stands in for the file name in errors.
result<config> parse_config(const std::string& yaml_text, const std::string& name);

}  // namespace relay
