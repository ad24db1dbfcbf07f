#include "daemon/relay_service.h"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>

#include "daemon/engagement_settings.h"
#include "daemon/http_routes.h"
#include "daemon/tracking_secret.h"
#include "routing/job_store.h"

namespace relay {
namespace {

constexpr size_t kJobsPerTurn = 2000;
constexpr size_t kRegistryPerTurn = 5000;
constexpr size_t kFanoutBudget = 16384;

}  // namespace

relay_service::relay_service(config cfg, std::string exe_path, const clock* clk)
    : config_(std::move(cfg)),
      exe_path_(std::move(exe_path)),
      clock_(clk != nullptr ? *clk : system_clock_),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      timer_(io_) {}

relay_service::~relay_service() {
  if (!stopped_) finish_stop();
  if (completion_fd_ >= 0 && !completion_wake_) ::close(completion_fd_);
}

result<void> relay_service::start() {
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) return make_error(errc::io_error, config_.data_dir + ": cannot create data_dir: " + ec.message());

  store_options so;
  so.sync_writes = config_.sync_writes;
  so.send_retention = config_.send_retention;
  auto db = store::open(config_.data_dir + "/db", so);
  if (!db) return db.err();
  db_ = std::move(*db);

  if (config_.kafka.embedded()) {
    auto cluster = embedded_kafka::start(config_.kafka.topics, config_.kafka.embedded_partitions);
    if (!cluster) return cluster.err();
    embedded_ = std::move(*cluster);
    bootstrap_ = embedded_->bootstrap();
    if (auto r = write_bootstrap_file(config_, bootstrap_); !r) return r.err();
    std::printf("relayd: embedded Kafka cluster at %s (address in %s)\n", bootstrap_.c_str(),
                bootstrap_file(config_).c_str());
    std::fflush(stdout);
  } else {
    bootstrap_ = config_.kafka.brokers;
  }

  auto producer = kafka_producer::create(config_.kafka, bootstrap_);
  if (!producer) return producer.err();
  producer_ = std::move(*producer);
  events_ = std::make_unique<event_publisher>(*producer_, config_.kafka.topics.events, clock_);

  completion_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (completion_fd_ < 0) return make_error(errc::io_error, "eventfd failed");
  const int wake_fd = completion_fd_;
  std::atomic<bool>* pending = &wake_pending_;
  auto wake = [wake_fd, pending] {
    // Called from plug-in threads: one write per burst is enough.
    if (!pending->exchange(true)) {
      const uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
    }
  };

  plugins_ = std::make_unique<plugin_loader>(
      config_.plugins_dir.empty() ? default_plugins_dir(exe_path_) : config_.plugins_dir);
  engagement_ = std::make_unique<engagement>(*db_, engagement_settings_of(config_));
  if (auto r = engagement_->load(clock_.now()); !r) return make_error(r.err().code, "engagement: " + r.err().message);
  spdlog::info("engagement: {} user records, {} segments learned", engagement_->users().size(),
               engagement_->model().segment_count());
  delivery_ = std::make_unique<delivery_events>(*db_, *events_, *engagement_, clock_);
  fanout_ = std::make_unique<fanout>(*db_, config_, *events_, *delivery_, *engagement_, clock_);
  delivery_->on_first_open([this](const send_record& r) { fanout_->on_first_open(r); });
  connectors_.resize(config_.carriers.size() * kChannelCount);
  std::vector<connector*> attached(connectors_.size(), nullptr);
  std::random_device seed_source;
  for (size_t c = 0; c < config_.carriers.size(); ++c) {
    for (int ch = 0; ch < kChannelCount; ++ch) {
      const auto& settings = config_.carriers[c].channels[ch];
      if (!settings) continue;
      const std::string where = "carriers." + config_.carriers[c].id + ".channels." +
                                std::string(to_string(static_cast<channel>(ch)));
      auto library = plugins_->get(settings->plugin);
      if (!library) return make_error(library.err().code, where + ": " + library.err().message);
      auto conn = std::make_unique<connector>(
          config_.carriers[c].id, static_cast<channel>(ch), *library, *settings,
          config_.limits.connector_queue, config_.retry, clock_,
          (uint64_t{seed_source()} << 32) | seed_source(), *fanout_, wake);
      if (auto r = conn->start(); !r) return make_error(r.err().code, where + ": " + r.err().message);
      attached[c * kChannelCount + ch] = conn.get();
      connectors_[c * kChannelCount + ch] = std::move(conn);
    }
  }
  if (auto r = fanout_->attach(std::move(attached)); !r) return r.err();
  if (auto r = start_http(); !r) return r.err();

  intake_ = std::make_unique<job_intake>(*db_, config_, *producer_, *events_, *fanout_, clock_);
  if (auto r = intake_->start(); !r) return r.err();
  fanout_->on_job_handed([this](const active_job& j) { intake_->job_handed(j.partition); });

  // The registry replica first: jobs must see the users registered before them.
  registry_ = std::make_unique<registry_intake>(*db_, config_, clock_);
  if (auto r = registry_->start(bootstrap_); !r) return r.err();
  if (!registry_->catch_up(std::chrono::seconds(60))) {
    spdlog::warn("registry: not caught up with {} after 60 s; continuing while it catches up",
                 config_.kafka.topics.registry);
  }

  // Unfinished jobs from before a stop or crash resume first.
  auto active = load_active_jobs(*db_);
  if (!active) return active.err();
  size_t resumed_chunks = 0;
  for (stored_job& s : *active) {
    auto spec = parse_job(s.record.json, config_.limits.job);
    if (!spec) {
      spdlog::error("job {}: stored job no longer parses ({}); leaving it", s.job_id, spec.err().message);
      continue;
    }
    auto job = std::make_unique<active_job>();
    job->job_id = s.job_id;
    job->spec = std::move(*spec);
    job->seq = s.record.seq;
    job->accepted_at = sys_time(std::chrono::milliseconds(s.record.accepted_at_ms));
    job->partition = -1;  // its Kafka offset was stored when it was accepted
    job->target = roaring::Roaring::readSafe(s.target.data(), s.target.size());
    job->progress = s.progress;
    for (const chunk_range& r : s.open_chunks) job->resume_chunks.push_back(r);
    resumed_chunks += s.open_chunks.size();
    fanout_->add_job(std::move(job));
  }
  if (!active->empty()) {
    spdlog::info("resuming {} unfinished jobs ({} chunks possibly in flight when relayd stopped)",
                 active->size(), resumed_chunks);
  }

  auto jobs = kafka_consumer::subscribe(config_.kafka, bootstrap_, config_.kafka.topics.jobs, this);
  if (!jobs) return jobs.err();
  jobs_ = std::move(*jobs);

  completion_wake_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, completion_fd_);
  jobs_wake_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, ::dup(jobs_->wake_fd()));
  registry_wake_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, ::dup(registry_->wake_fd()));

  wait_for_signal();
  if (const char* w = std::getenv("WATCHDOG_USEC")) watchdog_usec_ = std::strtoull(w, nullptr, 10);
  next_stats_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  next_watchdog_ = std::chrono::steady_clock::now();
  spdlog::info("relayd ready: {} carriers, {} connectors, jobs from {}, registry from {}",
               config_.carriers.size(), std::count_if(connectors_.begin(), connectors_.end(),
                                                      [](const auto& c) { return c != nullptr; }),
               config_.kafka.topics.jobs, config_.kafka.topics.registry);
  ready_ = true;
  sd_notify(0, "READY=1");
  return {};
}

result<void> relay_service::start_http() {
  auto secret = load_tracking_secret(config_);
  if (!secret) return make_error(secret.err().code, "tracking: " + secret.err().message);
  signer_ = std::make_unique<tracking_signer>(std::move(*secret));

  http_routes_config routes;
  routes.find_connector = [this](std::string_view carrier, std::string_view ch) -> connector* {
    const auto c = parse_channel(ch);
    if (!c) return nullptr;
    for (size_t i = 0; i < config_.carriers.size(); ++i) {
      if (config_.carriers[i].id == carrier) return connectors_[i * kChannelCount + static_cast<int>(*c)].get();
    }
    return nullptr;
  };
  routes.signer = signer_.get();
  routes.location_header = config_.tracking.location_header;
  routes.on_tracking = [this](const tracking_claim& claim, std::string_view location) {
    // HTTP thread: hand it to the core thread.
    const relay_event_type type = claim.kind == tracking_kind::open ? RELAY_EVENT_OPENED : RELAY_EVENT_CLICKED;
    boost::asio::post(io_, [this, type, id = claim.id, where = std::string(location)] {
      if (stopped_) return;
      delivery_->add_tracking(type, view(id), where);
      schedule_pump();
    });
  };
  routes.metrics_text = [this] { return metrics_text_from_http_thread(); };
  routes.ready = [this] { return ready_.load(); };
  auto server = http_server::start(config_.http.listen, make_http_routes(std::move(routes)));
  if (!server) return make_error(server.err().code, "http.listen: " + server.err().message);
  http_ = std::move(*server);

  // The address actually bound (port 0 picks one), for tools and tests.
  const std::string host = config_.http.listen.substr(0, config_.http.listen.rfind(':'));
  const std::string address = host + ":" + std::to_string(http_->port());
  {
    std::ofstream out(std::filesystem::path(config_.data_dir) / "http.address", std::ios::trunc);
    out << address << "\n";
  }
  std::string base = config_.tracking.base_url;
  if (base.empty()) base = "http://" + (host == "0.0.0.0" || host == "[::]" ? std::string("127.0.0.1") : host) +
                           ":" + std::to_string(http_->port());
  fanout_->set_tracking(signer_.get(), base);
  spdlog::info("http: listening on {}; tracking links point at {}", address, base);
  return {};
}

std::string relay_service::metrics_text_from_http_thread() {
  // The figures live on the core thread: ask it, and wait a bounded time.
  auto done = std::make_shared<std::promise<std::string>>();
  auto answer = done->get_future();
  boost::asio::post(io_, [this, done] {
    if (stopped_) {
      done->set_value("");
      return;
    }
    const auto families = metrics();
    done->set_value(render_prometheus(families));
  });
  if (answer.wait_for(std::chrono::seconds(2)) != std::future_status::ready) return "# relayd core thread busy\n";
  return answer.get();
}

void relay_service::wait_for_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      // Reloading carriers and fee tables comes with a later release; until
      // then a reload must not stop the service.
      spdlog::warn("SIGHUP: configuration reload is not supported yet; still running on {}",
                   config_.source_path);
      wait_for_signal();
      return;
    }
    request_stop();
  });
}

int relay_service::run() {
  schedule_pump();
  io_.run();
  if (!stopped_) finish_stop();
  return 0;
}

void relay_service::request_stop() {
  boost::asio::post(io_, [this] {
    if (!stopping_) begin_stop();
  });
}

void relay_service::on_assigned(std::span<const int32_t> partitions) {
  for (int32_t p : partitions) {
    if (p < 0) continue;
    if (paused_.size() <= static_cast<size_t>(p)) paused_.resize(p + 1, false);
    paused_[p] = false;
    assigned_.push_back(p);
  }
  spdlog::info("{}: assigned {} partitions", config_.kafka.topics.jobs, partitions.size());
  consuming_.store(true);
}

void relay_service::on_revoked(std::span<const int32_t> partitions) {
  // Accepted jobs are already durable here and their offsets stored, so
  // nothing has to be handed back; only the pause bookkeeping goes.
  for (int32_t p : partitions) {
    if (p >= 0 && static_cast<size_t>(p) < paused_.size()) paused_[p] = false;
    std::erase(assigned_, p);
  }
  spdlog::info("{}: revoked {} partitions", config_.kafka.topics.jobs, partitions.size());
}

void relay_service::schedule_pump() {
  if (pump_posted_) return;
  pump_posted_ = true;
  boost::asio::post(io_, [this] {
    pump_posted_ = false;
    pump();
  });
}

void relay_service::arm(boost::asio::posix::stream_descriptor& d, bool& armed, int which) {
  if (armed) return;
  armed = true;
  d.async_wait(boost::asio::posix::stream_descriptor::wait_read,
               [this, &armed, which](const boost::system::error_code& ec) {
                 armed = false;
                 if (ec) return;
                 if (which == 0) {
                   uint64_t n;  // pump() clears wake_pending_ before it polls
                   [[maybe_unused]] auto r = ::read(completion_fd_, &n, sizeof n);
                 } else if (which == 1) {
                   jobs_->clear_wake();
                 } else {
                   registry_->clear_wake();
                 }
                 schedule_pump();
               });
}

void relay_service::arm_waits() {
  if (stopped_) return;
  arm(*completion_wake_, completion_armed_, 0);
  if (!stopping_) {
    arm(*jobs_wake_, jobs_armed_, 1);
    arm(*registry_wake_, registry_armed_, 2);
  }
}

void relay_service::pump() {
  if (stopped_) return;
  bool more = false;
  std::optional<sys_time> next_retry;

  // Outcomes and events from plug-ins; due retries.
  wake_pending_.store(false);
  for (auto& c : connectors_) {
    if (!c) continue;
    if (auto due = c->poll(); due && (!next_retry || *due < *next_retry)) next_retry = due;
  }

  if (!stopping_) {
    if (registry_->step(kRegistryPerTurn, std::chrono::milliseconds(0)) == kRegistryPerTurn) more = true;

    // Never take more in one turn than a partition may have pending, so a
    // paused partition's backlog stays within its limit.
    const size_t max_jobs = std::min(kJobsPerTurn, config_.limits.pending_jobs_per_partition);
    batch_.clear();
    const size_t n = jobs_->consume(batch_, max_jobs, std::chrono::milliseconds(0));
    if (n > 0) {
      intake_->process(batch_, [this](int32_t p, int64_t next) { jobs_->store_offset(p, next); });
      batch_.clear();
      if (n == max_jobs) more = true;
    }

    if (fanout_->step(kFanoutBudget) > 0 && fanout_->has_startable_work()) more = true;
    apply_back_pressure();
  }
  if (auto r = fanout_->flush(); !r) {
    spdlog::critical("recording outcomes failed: {}", r.err().message);
    std::abort();
  }
  // After the fan-out's batch: receipts find the send records written with it.
  if (auto r = delivery_->process(); !r) {
    spdlog::critical("recording delivery events failed: {}", r.err().message);
    std::abort();
  }
  producer_->poll();

  const auto now = std::chrono::steady_clock::now();
  if (now >= next_stats_) {
    roll_up_counts();
    log_stats();
    next_stats_ = now + std::chrono::seconds(10);
  }
  if (watchdog_usec_ > 0 && now >= next_watchdog_) {
    sd_notify(0, "WATCHDOG=1");
    next_watchdog_ = now + std::chrono::microseconds(watchdog_usec_ / 2);
  }

  if (stopping_) {
    size_t in_flight = 0;
    for (auto& c : connectors_) in_flight += c ? c->in_flight() : 0;
    if (in_flight == 0 || now >= drain_deadline_) {
      if (in_flight > 0) {
        spdlog::warn("drain timeout: {} messages still in flight; they resume after restart", in_flight);
      }
      finish_stop();
      return;
    }
  }

  if (more) {
    schedule_pump();
    return;
  }
  arm_waits();
  // A timer covers retries, periodic work and the drain deadline.
  auto wait = std::chrono::milliseconds(stopping_ ? 20 : 200);
  if (next_retry) {
    auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*next_retry - clock_.now());
    wait = std::clamp(until, std::chrono::milliseconds(1), wait);
  }
  timer_.expires_after(wait);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) schedule_pump();
  });
}

void relay_service::apply_back_pressure() {
  for (int32_t p : assigned_) {
    if (p < 0) continue;
    if (paused_.size() <= static_cast<size_t>(p)) paused_.resize(p + 1, false);
    const size_t pending = intake_->pending(p);
    const size_t limit = config_.limits.pending_jobs_per_partition;
    if (!paused_[p] && pending >= limit) {
      jobs_->pause(p);
      paused_[p] = true;
      spdlog::info("{} partition {} paused: {} jobs wait for carrier capacity",
                   config_.kafka.topics.jobs, p, pending);
    } else if (paused_[p] && pending <= limit / 2) {
      jobs_->resume(p);
      paused_[p] = false;
      spdlog::info("{} partition {} resumed", config_.kafka.topics.jobs, p);
    }
  }
}

void relay_service::begin_stop() {
  stopping_ = true;
  ready_ = false;
  sd_notify(0, "STOPPING=1");
  size_t in_flight = 0;
  for (auto& c : connectors_) in_flight += c ? c->in_flight() : 0;
  spdlog::info("stopping: no new jobs; draining {} in-flight messages (up to {} ms)", in_flight,
               config_.drain_timeout.count());
  drain_deadline_ = std::chrono::steady_clock::now() + config_.drain_timeout;
  if (jobs_wake_) jobs_wake_->cancel();
  if (registry_wake_) registry_wake_->cancel();
  schedule_pump();
}

void relay_service::finish_stop() {
  if (stopped_) return;
  stopped_ = true;
  // The HTTP threads call into connectors and post to the core: first to go.
  if (http_) http_->stop();
  if (fanout_) (void)fanout_->flush();
  if (jobs_) {
    if (auto r = jobs_->commit(); !r) spdlog::warn("committing offsets at stop: {}", r.err().message);
    jobs_->close();
  }
  if (registry_) registry_->close();
  for (auto& c : connectors_) {
    if (c) c->stop(std::chrono::milliseconds(0));
  }
  if (fanout_) (void)fanout_->flush();  // outcomes reported while the plug-ins stopped
  if (delivery_) (void)delivery_->process();
  if (producer_) {
    if (auto r = producer_->flush(std::chrono::seconds(5)); !r) {
      spdlog::warn("events not delivered at stop: {}", r.err().message);
    }
  }
  log_stats();
  // Everything that reads the store goes before it closes.
  intake_.reset();
  fanout_.reset();
  delivery_.reset();
  if (db_) db_->close();
  timer_.cancel();
  signals_.cancel();
  if (completion_wake_) completion_wake_->cancel();
  io_.stop();
  spdlog::info("relayd stopped");
}

void relay_service::roll_up_counts() {
  // A few thousand rows per call keep the core thread's turn short; the
  // batch is written at once, with nothing in between (engagement_cube.h).
  rocksdb::WriteBatch batch;
  auto r = engagement_->roll_up(clock_.now(), 5000, batch);
  if (!r) {
    spdlog::error("engagement: rolling up old counts failed: {}", r.err().message);
    return;
  }
  if (batch.Count() > 0) {
    if (auto w = db_->write(batch); !w) spdlog::error("engagement: writing the roll-up failed: {}", w.err().message);
  }
}

void relay_service::log_stats() {
  if (!intake_ || !fanout_) return;  // after the stop
  const auto& in = intake_->stats();
  const auto& out = fanout_->stats();
  spdlog::info(
      "jobs received={} accepted={} duplicate={} dead-lettered={} finished={} active={} | "
      "recipients sent={} failed={} no_route={} queued={} | carrier events counted={} repeated={} "
      "unmatched={} | registry applied={} rejected={} | events={} dropped={}",
      in.received, in.accepted, in.duplicates, in.dead_lettered, out.jobs_finished, fanout_->active_jobs(),
      out.recipients_sent, out.recipients_failed, out.recipients_no_route, out.recipients_queued,
      delivery_ ? delivery_->stats().counted : 0, delivery_ ? delivery_->stats().repeated : 0,
      delivery_ ? delivery_->stats().unmatched : 0,
      registry_ ? registry_->applied() : 0, registry_ ? registry_->rejected() : 0,
      events_ ? events_->published() : 0, events_ ? events_->dropped() : 0);
  for (size_t k = 0; k < connectors_.size(); ++k) {
    const auto& o = fanout_->outboxes()[k];
    if (o.depth > 0) {
      spdlog::info("{}: {} recipients wait in its outbox ({} of them in flight)", connectors_[k]->name(), o.depth,
                   o.in_flight);
    }
  }
}

}  // namespace relay
