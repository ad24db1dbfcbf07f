// rcs_rbm_bench: how many agentMessages.create calls per second the rcs_rbm
// plug-in makes through its keep-alive pool, against wrk posting the same
// AgentMessage body to the same loopback server in the same run, rounds
// interleaved. Two peers in turn: tests/peers/rbm_server.js (the API as
// published, on Node; about one core at ~30k requests/s, so it caps both
// clients) and rbm_fast_server (bench/rcs_rbm, epoll, answers creates only),
// so the plug-in's own ceiling shows. --peer runs one given server instead.
//
// The plug-in is loaded from the build tree as relayd loads it and driven
// through its C table by one submitting thread that keeps at most --window
// messages in flight (relay's limits.connector_queue does the same); the
// rate counts from the first submit to the last ACCEPTED outcome.
//
// Prints both rates and the ratio; writes --results (JSON). Every process it
// starts (the peer, wrk) is stopped before it exits.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "daemon/plugin_host.h"
#include "plugins/rcs_rbm/agent_message.h"
#include "relay/plugin.h"

extern char** environ;

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

relay_str rs(const std::string& s) { return relay_str{s.data(), s.size()}; }

struct options {
  std::string build_dir = RELAY_BENCH_BUILD_DIR;
  std::string results;
  std::string peer_command;  // empty: node tests/peers/rbm_server.js --no-record
  size_t messages = 200'000;
  int rounds = 3;
  int connections = 8;
  size_t window = 2000;
  int wrk_seconds = 5;
  bool node_only = false;
};

// A child process whose stdout's first line may be read; killed on destruction.
class child {
 public:
  explicit child(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    std::vector<std::string> copy = argv;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    const int rc = posix_spawnp(&pid_, copy[0].c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    fd_ = out[0];
    if (rc != 0) throw std::runtime_error("cannot start " + copy[0]);
  }
  ~child() {
    if (fd_ >= 0) ::close(fd_);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  // Everything written to stdout until `limit` or EOF (first_line: until '\n').
  std::string read(std::chrono::seconds limit, bool first_line) {
    std::string text;
    const auto deadline = steady::now() + limit;
    while (steady::now() < deadline) {
      if (first_line && text.find('\n') != std::string::npos) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    return text;
  }
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
};

// The host side: counts outcomes; the submitter waits on it when the window is full.
struct bench_host {
  relay_host table{};
  std::atomic<size_t> done{0}, accepted{0};
  std::atomic<bool> waiting{false};
  std::mutex mu;
  std::condition_variable cv;
  std::string first_error;

  bench_host() {
    table.struct_size = sizeof(relay_host);
    table.abi_version = RELAY_PLUGIN_ABI_VERSION;
    table.host_ctx = this;
    table.callback_log = [](void*, relay_log_level level, relay_str m) {
      if (level >= RELAY_LOG_WARN)
        std::fprintf(stderr, "rcs_rbm: %.*s\n", static_cast<int>(m.size), m.data);
    };
    table.callback_submit_done = [](void* ctx, uint64_t, relay_submit_status st, relay_str,
                                    relay_str detail) {
      auto* h = static_cast<bench_host*>(ctx);
      if (st == RELAY_SUBMIT_ACCEPTED) {
        h->accepted.fetch_add(1, std::memory_order_relaxed);
      } else {
        std::lock_guard lock(h->mu);
        if (h->first_error.empty()) h->first_error.assign(detail.data, detail.size);
      }
      h->done.fetch_add(1, std::memory_order_release);
      if (h->waiting.load(std::memory_order_acquire)) {
        std::lock_guard lock(h->mu);
        h->cv.notify_one();
      }
    };
    table.callback_emit_event = [](void*, const relay_event*) {};
  }
  // Blocks until done >= target.
  void wait_done(size_t target) {
    if (done.load(std::memory_order_acquire) >= target) return;
    std::unique_lock lock(mu);
    waiting.store(true, std::memory_order_release);
    cv.wait(lock, [&] { return done.load(std::memory_order_acquire) >= target; });
    waiting.store(false, std::memory_order_release);
  }
};

const char* kContent =
    R"({"text":"Hello from relay","rcs":{"suggestions":[{"reply":"Yes","postback":"yes"}]}})";

double run_plugin(const relay::plugin_library& lib, const options& o, int port, int round) {
  bench_host host;
  std::vector<std::pair<std::string, std::string>> cfg = {
      {"endpoint", "http://127.0.0.1:" + std::to_string(port)},
      {"agent_id", "acme-agent"},
      {"auth_token", "test-token"},
      {"connections", std::to_string(o.connections)}};
  std::vector<relay_kv> kv;
  for (auto& [k, v] : cfg) kv.push_back({rs(k), rs(v)});
  char error[512] = {};
  void* instance = lib.table().on_create(&host.table, kv.data(), kv.size(), error, sizeof error);
  if (instance == nullptr) throw std::runtime_error(std::string("on_create: ") + error);

  const std::string content = kContent, address = "+819012345678", job = "bench-job",
                    company = "acme", user = "u", carrier = "carrier-a", channel = "rcs";
  std::string id;
  relay_message m{};
  m.struct_size = sizeof m;
  m.attempt = 1;
  m.job_id = rs(job);
  m.company_id = rs(company);
  m.user_id = rs(user);
  m.carrier_id = rs(carrier);
  m.channel = rs(channel);
  m.address = rs(address);
  m.content_json = rs(content);
  const std::string prefix = "p" + std::to_string(::getpid()) + "-r" + std::to_string(round) + "-";

  const auto start = steady::now();
  for (size_t k = 0; k < o.messages; ++k) {
    // Window full: wait until a quarter of it is free, then refill in one
    // burst (a wake-up per message would measure futexes, not the plug-in).
    if (k >= o.window && host.done.load(std::memory_order_acquire) < k - o.window + 1)
      host.wait_done(k - o.window + 1 + o.window / 4);
    id = prefix + std::to_string(k);
    m.message_id = rs(id);
    lib.table().on_submit(instance, k + 1, &m);
  }
  host.wait_done(o.messages);
  const double seconds = std::chrono::duration<double>(steady::now() - start).count();
  lib.table().on_destroy(instance);
  if (host.accepted.load() != o.messages) {
    throw std::runtime_error("only " + std::to_string(host.accepted.load()) + " of " +
                             std::to_string(o.messages) +
                             " accepted; first error: " + host.first_error);
  }
  return static_cast<double>(o.messages) / seconds;
}

double run_wrk(const options& o, int port, const std::string& lua, int round) {
  child wrk({"wrk", "-t1", "-c" + std::to_string(o.connections),
             "-d" + std::to_string(o.wrk_seconds) + "s", "-s", lua,
             "http://127.0.0.1:" + std::to_string(port), "--",
             "w" + std::to_string(::getpid()) + "-r" + std::to_string(round) + "-"});
  const std::string out = wrk.read(std::chrono::seconds(o.wrk_seconds + 30), false);
  wrk.wait();
  const size_t at = out.find("Requests/sec:");
  if (at == std::string::npos) throw std::runtime_error("wrk printed no rate:\n" + out);
  if (out.find("Non-2xx") != std::string::npos) throw std::runtime_error("wrk saw errors:\n" + out);
  return std::atof(out.c_str() + at + 13);
}

// wrk's request generator: the plug-in's exact body, a fresh messageId each time.
std::string write_lua(const std::string& dir) {
  const auto built = relay::rcs_rbm::build_agent_message(kContent, std::chrono::milliseconds(0));
  std::string body_literal;
  for (char c : built.body) {
    if (c == '\\' || c == '\'') body_literal += '\\';
    body_literal += c;
  }
  const std::string path = dir + "/rcs_rbm_wrk.lua";
  std::ofstream f(path);
  f << "local n = 0\n"
       "local prefix = 'w-'\n"
       "init = function(args) prefix = args[1] end  -- unique per run: ids must not repeat\n"
       "local body = '"
    << body_literal
    << "'\n"
       "local headers = {['Authorization'] = 'Bearer test-token', ['User-Agent'] = "
       "'relay-rcs_rbm/1.0',\n"
       "                 ['Content-Type'] = 'application/json; charset=utf-8'}\n"
       "request = function()\n"
       "  n = n + 1\n"
       "  return wrk.format('POST', '/v1/phones/+819012345678/agentMessages?messageId=' .. prefix "
       ".. n ..\n"
       "                    '&agentId=acme-agent', headers, body)\n"
       "end\n";
  return path;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int main_impl(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--build-dir")
      o.build_dir = next();
    else if (a == "--results")
      o.results = next();
    else if (a == "--peer")
      o.peer_command = next();
    else if (a == "--messages")
      o.messages = std::stoul(next());
    else if (a == "--rounds")
      o.rounds = std::stoi(next());
    else if (a == "--connections")
      o.connections = std::stoi(next());
    else if (a == "--window")
      o.window = std::stoul(next());
    else if (a == "--wrk-seconds")
      o.wrk_seconds = std::stoi(next());
    else if (a == "--node-only")
      o.node_only = true;
    else if (a == "--help") {
      std::puts(
          "rcs_rbm_bench [--messages N] [--rounds R] [--connections C] [--window W] [--wrk-seconds "
          "S]\n"
          "              [--node-only | --peer 'command printing its port first'] [--results FILE] "
          "[--build-dir DIR]");
      return 0;
    } else {
      throw std::runtime_error("unknown option " + a);
    }
  }
  auto lib = relay::plugin_library::load(o.build_dir + "/plugins/rcs_rbm.so");
  if (!lib) throw std::runtime_error(lib.err().message);

  char tmpl[] = "/tmp/rcs_rbm_bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string lua = write_lua(dir);

  struct peer_spec {
    std::string name;
    std::vector<std::string> argv;
  };
  std::vector<peer_spec> peers;
  if (!o.peer_command.empty()) {
    peers.push_back({o.peer_command, {"/bin/sh", "-c", "exec " + o.peer_command}});
  } else {
    peers.push_back({"node tests/peers/rbm_server.js --no-record",
                     {"node", std::string(RELAY_BENCH_SOURCE_DIR) + "/tests/peers/rbm_server.js",
                      "--no-record"}});
    if (!o.node_only)
      peers.push_back({"rbm_fast_server (bench/rcs_rbm, C++ epoll)", {RELAY_BENCH_FAST_SERVER}});
  }

  json results = {{"benchmark", "rcs_rbm"},
                  {"messages_per_round", o.messages},
                  {"rounds", o.rounds},
                  {"connections", o.connections},
                  {"window", o.window},
                  {"wrk", "wrk -t1 -c" + std::to_string(o.connections) + " -d" +
                              std::to_string(o.wrk_seconds) + "s"},
                  {"goal_requests_per_s", 20000},
                  {"cores", std::thread::hardware_concurrency()},
                  {"at", static_cast<int64_t>(std::time(nullptr))},
                  {"loadavg_at_start",
                   [] {  // the machine is shared: other work moves every figure
                     std::ifstream f("/proc/loadavg");
                     double one = 0;
                     f >> one;
                     return one;
                   }()},
                  {"peers", json::array()}};
  for (const auto& spec : peers) {
    child peer(spec.argv);
    const int port = std::atoi(peer.read(std::chrono::seconds(15), true).c_str());
    if (port <= 0) throw std::runtime_error(spec.name + " printed no port");
    std::vector<double> plugin_rates, wrk_rates;
    options warm = o;  // warm-up: the peer's JIT, page faults
    warm.messages = std::min<size_t>(o.messages, 20000);
    run_plugin(**lib, warm, port, -1);
    for (int r = 0; r < o.rounds; ++r) {
      wrk_rates.push_back(run_wrk(o, port, lua, r));
      plugin_rates.push_back(run_plugin(**lib, o, port, r));
      std::fprintf(stderr, "%s round %d: rcs_rbm %.0f req/s, wrk %.0f req/s\n", spec.name.c_str(),
                   r + 1, plugin_rates.back(), wrk_rates.back());
    }
    const double plugin = median(plugin_rates), reference = median(wrk_rates);
    std::printf("peer: %s\n", spec.name.c_str());
    std::printf(
        "  rcs_rbm  %10.0f requests/s  (median of %d rounds of %zu messages, %d connections, "
        "window %zu)\n",
        plugin, o.rounds, o.messages, o.connections, o.window);
    std::printf("  wrk      %10.0f requests/s  (-t1 -c%d, %d s rounds, same body, same server)\n",
                reference, o.connections, o.wrk_seconds);
    std::printf("  ratio    %10.2f  (rcs_rbm / wrk); goal >= 20000 requests/s: %s\n",
                plugin / reference, plugin >= 20000 ? "met" : "NOT met");
    results["peers"].push_back({{"peer", spec.name},
                                {"rcs_rbm_requests_per_s", plugin},
                                {"wrk_requests_per_s", reference},
                                {"ratio", plugin / reference},
                                {"goal_met", plugin >= 20000},
                                {"rcs_rbm_rounds", plugin_rates},
                                {"wrk_rounds", wrk_rates}});
  }
  std::remove(lua.c_str());
  ::rmdir(dir.c_str());
  if (!o.results.empty()) std::ofstream(o.results) << results.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rcs_rbm_bench: %s\n", e.what());
    return 1;
  }
}
