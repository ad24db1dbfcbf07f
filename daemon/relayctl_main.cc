// relayctl: talks to a running relay through Kafka and reads its state.
//
//   relayctl [--config FILE] [--brokers LIST] send JOB.json|- [--wait] [--timeout 60s]
//   relayctl [--config FILE] registry import FILE.jsonl|- [--wait] [--offline]
//   relayctl [--config FILE] registry get USER
//   relayctl [--config FILE] stats [--json]
//   relayctl [--config FILE] stats --by DIMS [--company C] [--carrier K] [--channel CH]
//                                   [--since DUR|DATE] [--until DUR|DATE] [--json]
//   relayctl [--config FILE] user USER_ID [--json]
//   relayctl [--config FILE] explain JOB_ID USER_ID [--json]
//   relayctl [--config FILE] job JOB_ID
//
// Writes go through Kafka (jobs to relay.jobs, registry records to
// relay.registry) so they reach every relayd instance; reads open relayd's
// RocksDB as a secondary, which works while relayd runs.

#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/kafka.h"
#include "daemon/relayctl_commands.h"
#include "daemon/registry_intake.h"
#include "routing/counters.h"
#include "routing/outbox.h"
#include "routing/duration.h"
#include "routing/job.h"
#include "routing/job_store.h"
#include "routing/registry.h"
#include "routing/registry_record.h"
#include "routing/store.h"

namespace {

using relay::result;
using relay::ctl::fail;
using relay::ctl::open_secondary;
using steady = std::chrono::steady_clock;

struct options {
  std::string config_path = "config/demo.yaml";
  std::string brokers;  // overrides the config
  bool wait = false;
  bool offline = false;
  bool json = false;
  std::chrono::milliseconds timeout{60000};
  relay::ctl::stats_options stats;  // stats --by and its filters
  bool engagement_stats = false;    // any of them given
  std::vector<std::string> args;
};

int usage() {
  std::fprintf(stderr,
               "usage: relayctl [--config FILE] [--brokers LIST] COMMAND\n"
               "  send JOB.json|- [--wait] [--timeout 60s]   produce jobs (one JSON object, or JSON lines)\n"
               "  registry import FILE.jsonl|- [--wait]      produce registry records to relay.registry\n"
               "  registry import FILE.jsonl --offline       write them straight into data_dir (relayd stopped)\n"
               "  registry get USER                          one user's profile, carriers and registrations\n"
               "  stats [--json]                             sends, deliveries, opens (open rate) and rejections by company, carrier, channel\n"
               "  stats --by DIMS [--company C] [--carrier K] [--channel CH] [--since 7d|DATE] [--until 1d|DATE] [--json]\n"
               "                                             engagement counts grouped by DIMS (comma-separated: company, carrier,\n"
               "                                             channel, gender, age_band, region, occupation, hour, weekday, location, day)\n"
               "  user USER_ID [--json]                      one user's sends, opens, recent open rate, caps and quiet period\n"
               "  explain JOB_ID USER_ID [--json]            which channel a job chose for a user, when and why; pending fallbacks\n"
               "  job JOB_ID                                 one job's state and progress\n");
  return 2;
}

result<std::string> read_input(const std::string& path) {
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return relay::make_error(relay::errc::not_found, path + ": cannot open");
    text << in.rdbuf();
  }
  return text.str();
}

// Splits input into JSON documents: one object (possibly over many lines) or JSON lines.
std::vector<std::pair<size_t, std::string_view>> split_documents(std::string_view text) {
  std::vector<std::pair<size_t, std::string_view>> docs;
  simdjson::dom::parser parser;
  simdjson::dom::element whole;
  if (parser.parse(text.data(), text.size()).get(whole) == simdjson::SUCCESS) {
    docs.emplace_back(1, text);
    return docs;
  }
  size_t line = 0;
  while (!text.empty()) {
    ++line;
    const size_t nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ' || l.back() == '\t')) l.remove_suffix(1);
    if (l.find_first_not_of(" \t") == std::string_view::npos) continue;
    docs.emplace_back(line, l);
  }
  return docs;
}

std::string string_field(std::string_view json, const char* name) {
  static simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view s;
  if (parser.parse(json.data(), json.size()).get(doc) == simdjson::SUCCESS &&
      doc[name].get(s) == simdjson::SUCCESS) {
    return std::string(s);
  }
  return {};
}

result<std::string> bootstrap_for(relay::config& cfg, const options& opt) {
  if (!opt.brokers.empty()) return opt.brokers;
  return relay::resolve_bootstrap(cfg);
}

int cmd_send(relay::config& cfg, const options& opt) {
  if (opt.args.size() != 2) return usage();
  auto text = read_input(opt.args[1]);
  if (!text) return fail(text.err().message);
  auto bootstrap = bootstrap_for(cfg, opt);
  if (!bootstrap) return fail(bootstrap.err().message);
  auto producer = relay::kafka_producer::create(cfg.kafka, *bootstrap);
  if (!producer) return fail(producer.err().message);

  std::vector<std::string> job_ids;
  size_t sent = 0;
  for (auto [line, doc] : split_documents(*text)) {
    // Invalid jobs are still sent: relay dead-letters them with the reason,
    // which is what a company's own producer would see. Say so here too.
    std::string company;
    if (auto parsed = relay::parse_job(doc, cfg.limits.job); !parsed) {
      std::fprintf(stderr, "relayctl: line %zu: relay will reject this job: %s\n", line,
                   parsed.err().message.c_str());
      company = string_field(doc, "company_id");  // still keyed by company when it has one
    } else {
      job_ids.push_back(parsed->job_id);
      company = parsed->company_id;
    }
    if (auto r = (*producer)->produce(cfg.kafka.topics.jobs, company, doc); !r) {
      return fail(r.err().message);
    }
    ++sent;
  }
  if (auto r = (*producer)->flush(std::chrono::seconds(30)); !r) return fail(r.err().message);
  if ((*producer)->failed() > 0) return fail(std::to_string((*producer)->failed()) + " jobs not delivered to Kafka");
  std::printf("sent %zu job%s to %s\n", sent, sent == 1 ? "" : "s", cfg.kafka.topics.jobs.c_str());
  if (!opt.wait || job_ids.empty()) return 0;

  auto db = open_secondary(cfg);
  if (!db) return fail(db.err().message);
  const auto deadline = steady::now() + opt.timeout;
  for (const auto& id : job_ids) {
    for (;;) {
      (void)(*db)->catch_up();
      auto j = relay::load_job(**db, id);
      if (j && j->record.state == relay::job_state::done) {
        std::printf("job %s done: %llu recipients, %llu sent, %llu failed, %llu no route, %llu not registered\n",
                    id.c_str(), (unsigned long long)j->progress.total, (unsigned long long)j->progress.sent,
                    (unsigned long long)j->progress.failed, (unsigned long long)j->progress.no_route,
                    (unsigned long long)j->progress.not_registered);
        break;
      }
      if (steady::now() > deadline) return fail("timed out waiting for job " + id);
      usleep(50000);  // polling another process's database; nothing to wait on
    }
  }
  return 0;
}

int cmd_registry_import(relay::config& cfg, const options& opt) {
  if (opt.args.size() != 3) return usage();
  const std::string& path = opt.args[2];
  if (opt.offline) {
    std::error_code ec;
    std::filesystem::create_directories(cfg.data_dir, ec);
    if (ec) return fail(cfg.data_dir + ": cannot create data_dir: " + ec.message());
    relay::store_options so;
    auto db = relay::store::open(cfg.data_dir + "/db", so);
    if (!db) return fail(db.err().message + " (is relayd running? --offline needs it stopped)");
    relay::system_clock clk;
    const auto started = steady::now();
    auto report = relay::import_jsonl(
        **db, clk, path,
        [](size_t line, const relay::error& e, void*) {
          std::fprintf(stderr, "relayctl: %s line %zu: %s (skipped)\n", "import", line, e.message.c_str());
        },
        nullptr);
    if (!report) return fail(report.err().message);
    const double secs = std::chrono::duration<double>(steady::now() - started).count();
    std::printf("imported %zu records (%zu rejected) into %s in %.1f s\n", report->applied,
                report->rejected, cfg.data_dir.c_str(), secs);
    return report->rejected == 0 ? 0 : 1;
  }

  auto bootstrap = bootstrap_for(cfg, opt);
  if (!bootstrap) return fail(bootstrap.err().message);
  auto producer = relay::kafka_producer::create(cfg.kafka, *bootstrap);
  if (!producer) return fail(producer.err().message);
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return fail(path + ": cannot open");
    in = &file;
  }
  const auto started = steady::now();
  std::string line;
  size_t number = 0, produced = 0, rejected = 0;
  while (std::getline(*in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto record = relay::parse_registry_record(line);
    if (!record) {
      ++rejected;
      std::fprintf(stderr, "relayctl: %s line %zu: %s (skipped)\n", path.c_str(), number,
                   record.err().message.c_str());
      continue;
    }
    if (auto r = (*producer)->produce(cfg.kafka.topics.registry, record->user_id, line); !r) {
      return fail(r.err().message);
    }
    ++produced;
  }
  if (auto r = (*producer)->flush(std::chrono::seconds(120)); !r) return fail(r.err().message);
  const double secs = std::chrono::duration<double>(steady::now() - started).count();
  std::printf("produced %zu registry records to %s in %.1f s (%zu rejected)\n", produced,
              cfg.kafka.topics.registry.c_str(), secs, rejected);
  if (cfg.kafka.embedded() && produced > 50000) {
    std::fprintf(stderr,
                 "relayctl: note: the embedded cluster keeps only about 5 MiB per partition; records\n"
                 "  relayd has not read before that are lost. For bulk loads stop relayd and use --offline.\n");
  }
  if (!opt.wait) return rejected == 0 ? 0 : 1;

  // Wait until relayd's replica has applied everything up to the end of the topic.
  auto consumer = relay::kafka_consumer::assign_all(cfg.kafka, *bootstrap, cfg.kafka.topics.registry, {},
                                                    std::chrono::seconds(10));
  if (!consumer) return fail(consumer.err().message);
  const int partitions = (*consumer)->partition_count(cfg.kafka.topics.registry, std::chrono::seconds(10));
  std::vector<int64_t> ends(std::max(partitions, 0));
  for (int p = 0; p < partitions; ++p) {
    auto hw = (*consumer)->high_watermark(p, std::chrono::seconds(10));
    if (!hw) return fail(hw.err().message);
    ends[p] = *hw;
  }
  (*consumer)->close();
  auto db = open_secondary(cfg);
  if (!db) return fail(db.err().message);
  const auto deadline = steady::now() + opt.timeout;
  for (;;) {
    (void)(*db)->catch_up();
    bool done = true;
    for (int p = 0; p < partitions && done; ++p) {
      std::string v;
      if (ends[p] == 0) continue;
      if (!(*db)->get(relay::cf::meta, relay::registry_offset_key(p), &v) || v.size() != 8 ||
          static_cast<int64_t>(relay::get_be64(v.data())) < ends[p]) {
        done = false;
      }
    }
    if (done) break;
    if (steady::now() > deadline) return fail("timed out waiting for relayd to apply the registry");
    usleep(50000);  // polling another process's database; nothing to wait on
  }
  std::printf("relayd applied the registry in %.1f s\n",
              std::chrono::duration<double>(steady::now() - started).count());
  return rejected == 0 ? 0 : 1;
}

int cmd_registry_get(relay::config& cfg, const options& opt) {
  if (opt.args.size() != 3) return usage();
  auto db = open_secondary(cfg);
  if (!db) return fail(db.err().message);
  auto user = relay::get_user(**db, opt.args[2]);
  if (!user) return fail(user.err().code == relay::errc::not_found ? "user " + opt.args[2] + " not found"
                                                                   : user.err().message);
  nlohmann::ordered_json out;
  out["user_id"] = user->user_id;
  out["ordinal"] = user->ordinal;
  const auto& p = user->user_profile;
  nlohmann::ordered_json prof = nlohmann::ordered_json::object();
  for (auto [k, v] : {std::pair{"msisdn", &p.msisdn}, {"email", &p.email}, {"gender", &p.gender},
                      {"region", &p.region}, {"occupation", &p.occupation}, {"tz", &p.tz},
                      {"locale", &p.locale}}) {
    if (!v->empty()) prof[k] = *v;
  }
  if (p.birth_year) prof["birth_year"] = *p.birth_year;
  out["profile"] = prof;
  out["carriers"] = nlohmann::ordered_json::array();
  for (const auto& c : user->carriers) {
    nlohmann::ordered_json cj{{"carrier_id", c.carrier_id}, {"primary", c.primary}};
    nlohmann::ordered_json chans = nlohmann::ordered_json::array();
    for (int ch = 0; ch < relay::kChannelCount; ++ch) {
      if (c.channels & relay::channel_bit(static_cast<relay::channel>(ch))) {
        chans.push_back(std::string(relay::to_string(static_cast<relay::channel>(ch))));
      }
    }
    cj["channels"] = chans;
    out["carriers"].push_back(cj);
  }
  out["registrations"] = nlohmann::ordered_json::array();
  for (const auto& r : user->registrations) {
    out["registrations"].push_back({{"company_id", r.company_id}, {"service_id", r.service_id}});
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

int cmd_stats(relay::config& cfg, const options& opt) {
  auto db = open_secondary(cfg);
  if (!db) return fail(db.err().message);
  auto rows = relay::read_counters(**db);
  if (!rows) return fail(rows.err().message);

  using relay::counter_kind;
  struct send_row { uint64_t sent = 0, failed = 0, delivered = 0, opened = 0, clicked = 0; };
  std::map<std::tuple<std::string, std::string, std::string>, send_row> sends;  // company, carrier, channel
  std::map<std::pair<std::string, std::string>, uint64_t> rejected;  // company, reason
  std::map<std::string, std::pair<uint64_t, uint64_t>> jobs;          // company -> accepted, duplicate
  std::map<std::string, uint64_t> dlq, registry;
  for (const auto& r : *rows) {
    const auto key = std::make_tuple(r.company, r.carrier, r.channel);
    switch (r.kind) {
      case counter_kind::sent: sends[key].sent += r.value; break;
      case counter_kind::failed: sends[key].failed += r.value; break;
      case counter_kind::delivered: sends[key].delivered += r.value; break;
      case counter_kind::opened: sends[key].opened += r.value; break;
      case counter_kind::clicked: sends[key].clicked += r.value; break;
      case counter_kind::rejected: rejected[{r.company, r.reason}] += r.value; break;
      case counter_kind::accepted: jobs[r.company].first += r.value; break;
      case counter_kind::duplicate: jobs[r.company].second += r.value; break;
      case counter_kind::dlq: dlq[r.reason] += r.value; break;
      case counter_kind::registry_applied: registry["applied"] += r.value; break;
      case counter_kind::registry_rejected: registry["rejected"] += r.value; break;
    }
  }
  auto outboxes = relay::scan_outboxes(**db);
  if (!outboxes) return fail(outboxes.err().message);
  // Open rate = opens / sends, shown with the counts behind it.
  auto open_rate = [](const send_row& v) { return v.sent == 0 ? 0.0 : double(v.opened) / double(v.sent); };
  if (opt.json) {
    nlohmann::ordered_json out;
    out["sends"] = nlohmann::ordered_json::array();
    for (const auto& [k, v] : sends) {
      out["sends"].push_back({{"company_id", std::get<0>(k)}, {"carrier_id", std::get<1>(k)},
                              {"channel", std::get<2>(k)}, {"sent", v.sent}, {"failed", v.failed},
                              {"delivered", v.delivered}, {"opened", v.opened}, {"clicked", v.clicked},
                              {"open_rate", open_rate(v)}});
    }
    out["outboxes"] = nlohmann::ordered_json::array();
    for (const auto& o : *outboxes) {
      out["outboxes"].push_back({{"carrier_id", o.carrier_id}, {"channel", relay::to_string(o.ch)},
                                 {"waiting", o.entries}});
    }
    out["rejected"] = nlohmann::ordered_json::array();
    for (const auto& [k, v] : rejected) {
      out["rejected"].push_back({{"company_id", k.first}, {"reason", k.second}, {"count", v}});
    }
    out["jobs"] = nlohmann::ordered_json::array();
    for (const auto& [k, v] : jobs) {
      out["jobs"].push_back({{"company_id", k}, {"accepted", v.first}, {"duplicate", v.second}});
    }
    out["dead_lettered"] = dlq;
    out["registry"] = registry;
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-12s %-12s %-8s %10s %10s %10s %10s %10s %9s\n", "company", "carrier", "channel", "sent",
              "failed", "delivered", "opened", "clicked", "open rate");
  send_row total;
  auto print_row = [&](const std::string& company, const std::string& carrier, const std::string& ch,
                       const send_row& v) {
    std::printf("%-12s %-12s %-8s %10llu %10llu %10llu %10llu %10llu %8.1f%%\n", company.c_str(), carrier.c_str(),
                ch.c_str(), (unsigned long long)v.sent, (unsigned long long)v.failed,
                (unsigned long long)v.delivered, (unsigned long long)v.opened, (unsigned long long)v.clicked,
                100.0 * open_rate(v));
  };
  for (const auto& [k, v] : sends) {
    print_row(std::get<0>(k), std::get<1>(k), std::get<2>(k), v);
    total.sent += v.sent;
    total.failed += v.failed;
    total.delivered += v.delivered;
    total.opened += v.opened;
    total.clicked += v.clicked;
  }
  print_row("total", "", "", total);
  for (const auto& o : *outboxes) {
    std::printf("waiting in the outbox of %s/%s: %llu\n", o.carrier_id.c_str(),
                std::string(relay::to_string(o.ch)).c_str(), (unsigned long long)o.entries);
  }
  std::printf("\n%-12s %-16s %10s\n", "company", "rejected", "count");
  for (const auto& [k, v] : rejected) {
    std::printf("%-12s %-16s %10llu\n", k.first.c_str(), k.second.c_str(), (unsigned long long)v);
  }
  std::printf("\n%-12s %10s %10s\n", "company", "jobs", "duplicate");
  for (const auto& [k, v] : jobs) {
    std::printf("%-12s %10llu %10llu\n", k.c_str(), (unsigned long long)v.first, (unsigned long long)v.second);
  }
  for (const auto& [reason, n] : dlq) {
    std::printf("dead-lettered (%s): %llu\n", reason.c_str(), (unsigned long long)n);
  }
  if (!registry.empty()) {
    std::printf("registry records applied: %llu, rejected: %llu\n", (unsigned long long)registry["applied"],
                (unsigned long long)registry["rejected"]);
  }
  return 0;
}

int cmd_job(relay::config& cfg, const options& opt) {
  if (opt.args.size() != 2) return usage();
  auto db = open_secondary(cfg);
  if (!db) return fail(db.err().message);
  auto j = relay::load_job(**db, opt.args[1]);
  if (!j) return fail(j.err().code == relay::errc::not_found ? "job " + opt.args[1] + " not found" : j.err().message);
  nlohmann::ordered_json out{
      {"job_id", j->job_id},
      {"state", j->record.state == relay::job_state::done ? "done" : "in progress"},
      {"recipients", j->progress.total},
      {"sent", j->progress.sent},
      {"failed", j->progress.failed},
      {"no_route", j->progress.no_route},
      {"not_registered", j->progress.not_registered},
      {"chunks_in_flight", j->open_chunks.size()}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      opt.config_path = argv[++i];
    } else if (a == "--brokers" && i + 1 < argc) {
      opt.brokers = argv[++i];
    } else if (a == "--timeout" && i + 1 < argc) {
      auto d = relay::parse_duration(argv[++i]);
      if (!d) return fail(std::string("--timeout: ") + d.err().message);
      opt.timeout = *d;
    } else if (a == "--wait") {
      opt.wait = true;
    } else if (a == "--offline") {
      opt.offline = true;
    } else if (a == "--json") {
      opt.json = true;
      opt.stats.json = true;
    } else if (a == "--by" || a == "--company" || a == "--carrier" || a == "--channel" || a == "--since" ||
               a == "--until") {
      if (i + 1 >= argc) return relay::ctl::bad_argument(a + ": needs a value");
      std::string& field = a == "--by"        ? opt.stats.by
                           : a == "--company" ? opt.stats.company
                           : a == "--carrier" ? opt.stats.carrier
                           : a == "--channel" ? opt.stats.channel
                           : a == "--since"   ? opt.stats.since
                                              : opt.stats.until;
      field = argv[++i];
      if (field.empty()) return relay::ctl::bad_argument(a + ": empty");
      opt.engagement_stats = true;
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a.size() > 1 && a[0] == '-' && a != "-") {
      return fail("unknown option " + a);
    } else {
      opt.args.push_back(a);
    }
  }
  if (opt.args.empty()) return usage();
  spdlog::set_level(spdlog::level::warn);
  auto cfg = relay::load_config(opt.config_path);
  if (!cfg) return fail(cfg.err().message);

  const std::string& verb = opt.args[0];
  if (opt.engagement_stats && verb != "stats") {
    return relay::ctl::bad_argument(verb + ": --by, --company, --carrier, --channel, --since and --until are options of stats");
  }
  if (verb == "send") return cmd_send(*cfg, opt);
  if (verb == "registry" && opt.args.size() >= 2 && opt.args[1] == "import") return cmd_registry_import(*cfg, opt);
  if (verb == "registry" && opt.args.size() >= 2 && opt.args[1] == "get") return cmd_registry_get(*cfg, opt);
  const relay::sys_time now = relay::system_clock().now();
  if (verb == "stats" && opt.engagement_stats) {
    if (opt.args.size() != 1) return usage();
    return relay::ctl::stats_by(*cfg, opt.stats, now);
  }
  if (verb == "stats") return cmd_stats(*cfg, opt);
  if (verb == "user") {
    if (opt.args.size() != 2) return usage();
    return relay::ctl::user(*cfg, opt.args[1], opt.json, now);
  }
  if (verb == "explain") {
    if (opt.args.size() != 3) return usage();
    return relay::ctl::explain(*cfg, opt.args[1], opt.args[2], opt.json, now);
  }
  if (verb == "job") return cmd_job(*cfg, opt);
  return usage();
}
