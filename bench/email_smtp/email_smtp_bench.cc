// email_smtp_bench: how many messages/s the email_smtp plug-in delivers to
// Postfix's smtp-sink on loopback (pipelining, a pool of connections), and
// how many Postfix's own smtp-source delivers to the same sink in the same
// run with the same number of sessions, messages and (at least) bytes.
// Prints both and the ratio; writes a JSON result. See bench/email_smtp/run.
//
// The plug-in is loaded and driven as relayd does: on_submit from one thread
// (never blocking), outcomes counted in callback_submit_done.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "daemon/plugin_host.h"
#include "plugins/email_smtp/mime.h"
#include "relay/plugin.h"

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;

relay_str rs(std::string_view s) { return relay_str{s.data(), s.size()}; }

struct options {
  size_t messages = 50'000;
  size_t text_bytes = 1'000;
  size_t connections = 4;
  int rounds = 3;
  std::string build_dir = RELAY_BENCH_BUILD_DIR;
  std::string results;
};

int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

bool can_connect(int port) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

pid_t spawn(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  const int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    std::fprintf(stderr, "cannot start %s: %s\n", argv[0].c_str(), std::strerror(rc));
    std::exit(1);
  }
  return pid;
}

double cpu_seconds(const rusage& r) {
  return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

// Outcomes reported by the plug-in, from its I/O thread.
struct counting_host {
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0, accepted = 0;
  std::string last_problem;
  relay_host table{};

  counting_host() {
    table.struct_size = sizeof(relay_host);
    table.abi_version = RELAY_PLUGIN_ABI_VERSION;
    table.host_ctx = this;
    table.callback_log = [](void*, relay_log_level level, relay_str m) {
      if (level >= RELAY_LOG_WARN) std::fprintf(stderr, "email_smtp: %.*s\n", int(m.size), m.data);
    };
    table.callback_submit_done = [](void* ctx, uint64_t, relay_submit_status st, relay_str,
                                    relay_str detail) {
      auto* h = static_cast<counting_host*>(ctx);
      std::lock_guard lock(h->mu);
      ++h->done;
      if (st == RELAY_SUBMIT_ACCEPTED) ++h->accepted;
      else h->last_problem.assign(detail.data, detail.size);
      h->cv.notify_all();
    };
    table.callback_emit_event = [](void*, const relay_event*) {};
  }
};

struct run_result {
  double seconds = 0;
  double cpu = 0;
  size_t accepted = 0;
};

run_result run_plugin(const relay_plugin& plugin, const options& o, int port,
                      const std::string& content) {
  counting_host host;
  const std::vector<std::pair<std::string, std::string>> cfg = {
      {"host", "127.0.0.1"},           {"port", std::to_string(port)},
      {"from", "news@acme.example"},   {"helo_name", "relay.bench"},
      {"starttls", "off"},             {"connections", std::to_string(o.connections)},
      {"max_messages_per_connection", "100000"}};
  std::vector<relay_kv> kv;
  for (const auto& [k, v] : cfg) kv.push_back({rs(k), rs(v)});
  char error[512] = {};
  void* instance = plugin.on_create(&host.table, kv.data(), kv.size(), error, sizeof error);
  if (instance == nullptr) {
    std::fprintf(stderr, "email_smtp: %s\n", error);
    std::exit(1);
  }
  std::vector<std::string> ids(o.messages), addresses(o.messages);
  for (size_t i = 0; i < o.messages; ++i) {
    char id[40];
    std::snprintf(id, sizeof id, "%032zx", i + 1);
    ids[i] = id;
    addresses[i] = "user" + std::to_string(i) + "@example.org";
  }
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const auto start = clock_type::now();
  for (size_t i = 0; i < o.messages; ++i) {
    relay_message m{};
    m.struct_size = sizeof m;
    m.attempt = 1;
    m.message_id = rs(ids[i]);
    m.job_id = rs("bench-job");
    m.company_id = rs("acme");
    m.user_id = rs(ids[i]);
    m.carrier_id = rs("bench");
    m.channel = rs("email");
    m.address = rs(addresses[i]);
    m.content_json = rs(content);
    plugin.on_submit(instance, i + 1, &m);
  }
  {
    std::unique_lock lock(host.mu);
    host.cv.wait_for(lock, std::chrono::minutes(5), [&] { return host.done == o.messages; });
  }
  const auto end = clock_type::now();
  getrusage(RUSAGE_SELF, &after);
  plugin.on_destroy(instance);
  if (host.accepted != o.messages)
    std::fprintf(stderr, "email_smtp: %zu of %zu accepted (last problem: %s)\n", host.accepted,
                 o.messages, host.last_problem.c_str());
  return {std::chrono::duration<double>(end - start).count(), cpu_seconds(after) - cpu_seconds(before),
          host.accepted};
}

run_result run_reference(const options& o, int port, size_t payload) {
  const auto start = clock_type::now();
  const pid_t pid = spawn({"/usr/sbin/smtp-source", "-s", std::to_string(o.connections), "-d",
                           "-m", std::to_string(o.messages), "-l", std::to_string(payload),
                           "-f", "news@acme.example", "-t", "user@example.org", "-M", "relay.bench",
                           "127.0.0.1:" + std::to_string(port)});
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  const auto end = clock_type::now();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::fprintf(stderr, "smtp-source failed\n");
  return {std::chrono::duration<double>(end - start).count(), cpu_seconds(usage),
          WIFEXITED(status) && WEXITSTATUS(status) == 0 ? o.messages : 0};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--messages") o.messages = std::stoul(next());
    else if (a == "--text-bytes") o.text_bytes = std::stoul(next());
    else if (a == "--connections") o.connections = std::stoul(next());
    else if (a == "--rounds") o.rounds = std::stoi(next());
    else if (a == "--build-dir") o.build_dir = next();
    else if (a == "--results") o.results = next();
    else {
      std::fprintf(stderr,
                   "usage: email_smtp_bench [--messages N] [--text-bytes N] [--connections N] "
                   "[--rounds N] [--build-dir DIR] [--results FILE]\n");
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);

  auto lib = relay::plugin_library::load(o.build_dir + "/plugins/email_smtp.so");
  if (!lib) {
    std::fprintf(stderr, "%s\n", lib.err().message.c_str());
    return 1;
  }
  const relay_plugin& plugin = (*lib)->table();

  // Content: plain text in lines of about 70 characters.
  std::string text;
  while (text.size() < o.text_bytes) text += "Weekly news from Acme: new offers, new shops and more. Read on.\n";
  text.resize(o.text_bytes);
  const json content_json = {{"subject", "Acme weekly news"}, {"text", text}};
  const std::string content = content_json.dump();
  // The exact size of what the plug-in sends, so the reference sends at least as much.
  relay::email_smtp::mail_content mc{text, "Acme weekly news", "", ""};
  relay::email_smtp::envelope_fields env;
  env.from = "news@acme.example";
  env.to = "user0@example.org";
  env.message_id = std::string(32, '0');
  env.message_id_domain = "acme.example";
  env.date = std::time(nullptr);
  const size_t message_bytes = relay::email_smtp::build_message(env, mc).size();

  const int port = free_port();
  const pid_t sink = spawn({"/usr/sbin/smtp-sink", "-u", "nobody", "127.0.0.1:" + std::to_string(port), "1024"});
  const auto deadline = clock_type::now() + std::chrono::seconds(10);
  while (!can_connect(port)) {
    if (clock_type::now() > deadline) {
      std::fprintf(stderr, "smtp-sink did not start listening\n");
      ::kill(sink, SIGTERM);
      return 1;
    }
    std::this_thread::yield();
  }

  std::vector<double> relay_rates, reference_rates, relay_cpu, reference_cpu;
  bool all_accepted = true;
  for (int r = 0; r < o.rounds; ++r) {
    const run_result a = run_plugin(plugin, o, port, content);
    const run_result b = run_reference(o, port, message_bytes);
    all_accepted = all_accepted && a.accepted == o.messages && b.accepted == o.messages;
    relay_rates.push_back(o.messages / a.seconds);
    reference_rates.push_back(o.messages / b.seconds);
    relay_cpu.push_back(a.cpu * 1e6 / o.messages);
    reference_cpu.push_back(b.cpu * 1e6 / o.messages);
    std::printf("round %d: email_smtp %8.0f msg/s (%.1f us CPU/msg)   smtp-source %8.0f msg/s (%.1f us CPU/msg)\n",
                r + 1, relay_rates.back(), relay_cpu.back(), reference_rates.back(), reference_cpu.back());
  }
  ::kill(sink, SIGTERM);
  ::waitpid(sink, nullptr, 0);

  const double relay_rate = median(relay_rates), reference_rate = median(reference_rates);
  std::printf("\nemail_smtp → smtp-sink: %.0f messages/s (median of %d rounds; %zu messages of %zu bytes, %zu connections, pipelining)\n",
              relay_rate, o.rounds, o.messages, message_bytes, o.connections);
  std::printf("smtp-source → smtp-sink: %.0f messages/s (same sink, %zu sessions, -d, payload %zu bytes)\n",
              reference_rate, o.connections, message_bytes);
  std::printf("ratio email_smtp / smtp-source: %.2f   goal >= 5000 msg/s: %s\n",
              relay_rate / reference_rate, relay_rate >= 5000 ? "met" : "NOT met");

  if (!o.results.empty()) {
    double load = 0;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      if (std::fscanf(f, "%lf", &load) != 1) load = 0;
      std::fclose(f);
    }
    char when[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    const json result = {
        {"schema", "relay-bench-email-smtp/1"},
        {"when", when},
        {"cores", std::thread::hardware_concurrency()},
        {"loadavg_1m_at_end", load},
        {"parameters",
         {{"messages", o.messages}, {"message_bytes", message_bytes}, {"text_bytes", o.text_bytes},
          {"connections", o.connections}, {"rounds", o.rounds}, {"sink", "/usr/sbin/smtp-sink"},
          {"reference", "/usr/sbin/smtp-source -s connections -d -m messages -l message_bytes"}}},
        {"email_smtp", {{"messages_per_second", relay_rate}, {"rounds", relay_rates},
                        {"cpu_us_per_message", relay_cpu}}},
        {"smtp_source", {{"messages_per_second", reference_rate}, {"rounds", reference_rates},
                         {"cpu_us_per_message", reference_cpu}}},
        {"ratio", relay_rate / reference_rate},
        {"goal_messages_per_second", 5000},
        {"all_accepted", all_accepted}};
    std::ofstream(o.results) << result.dump(2) << "\n";
  }
  return all_accepted ? 0 : 1;
}
