// sms_smpp_bench --port P --count N [--window W] [--mode plugin|raw]
//
// plugin: loads build/plugins/sms_smpp.so through relay's loader, drives it
//   through the C ABI as relayd does (at most --inflight submits without an
//   outcome, like limits.connector_queue) and times first submit → last
//   outcome.
// raw: a bare pipelined SMPP client (sms_smpp's codec, blocking sockets, one
//   writer and one reader thread, window W) — the SMSC's own ceiling.
// Prints one JSON object.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/plugin_host.h"
#include "plugins/sms_smpp/smpp_pdu.h"
#include "relay/plugin.h"

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
  int port = 0;
  long count = 20000;
  int window = 64;
  long inflight = 10000;
  std::string mode = "plugin";
  std::string system_id = "relay", password = "secret";
};

struct counters {
  std::mutex mu;
  std::condition_variable cv;
  long outcomes = 0, accepted = 0;
  std::string last_detail;
  clock_type::time_point last_at;
};

void log_cb(void*, relay_log_level level, relay_str m) {
  if (level >= RELAY_LOG_WARN) std::fprintf(stderr, "sms_smpp: %.*s\n", (int)m.size, m.data);
}
void done_cb(void* ctx, uint64_t, relay_submit_status st, relay_str, relay_str detail) {
  auto* c = static_cast<counters*>(ctx);
  {
    std::lock_guard lock(c->mu);
    ++c->outcomes;
    if (st == RELAY_SUBMIT_ACCEPTED) {
      ++c->accepted;
    } else {
      c->last_detail.assign(detail.data, detail.size);
    }
    c->last_at = clock_type::now();
  }
  c->cv.notify_all();
}
void event_cb(void*, const relay_event*) {}

int run_plugin(const options& o) {
  auto lib =
      relay::plugin_library::load(std::string(RELAY_BENCH_BUILD_DIR) + "/plugins/sms_smpp.so");
  if (!lib) {
    std::fprintf(stderr, "%s\n", lib.err().message.c_str());
    return 1;
  }
  counters c;
  relay_host host{};
  host.struct_size = sizeof host;
  host.abi_version = RELAY_PLUGIN_ABI_VERSION;
  host.host_ctx = &c;
  host.callback_log = log_cb;
  host.callback_submit_done = done_cb;
  host.callback_emit_event = event_cb;
  const std::string port = std::to_string(o.port), window = std::to_string(o.window);
  const std::pair<const char*, std::string> cfg[] = {
      {"host", "127.0.0.1"},        {"port", port},          {"system_id", o.system_id},
      {"password", o.password},     {"window", window},      {"source_addr", "ACME"},
      {"registered_delivery", "0"}, {"queue_timeout", "5m"}, {"response_timeout", "1m"}};
  std::vector<relay_kv> kv;
  for (auto& [k, v] : cfg) kv.push_back({{k, std::strlen(k)}, {v.data(), v.size()}});
  char error[256] = {};
  void* inst = (*lib)->table().on_create(&host, kv.data(), kv.size(), error, sizeof error);
  if (inst == nullptr) {
    std::fprintf(stderr, "on_create: %s\n", error);
    return 1;
  }
  // Warm-up: one message, so the bind is up before the clock starts.
  const std::string content = R"({"text":"relay benchmark message"})";
  const std::string address = "+819012345678";
  auto submit = [&](uint64_t id) {
    const std::string mid = "bench-" + std::to_string(id);
    relay_message m{};
    m.struct_size = sizeof m;
    m.attempt = 1;
    m.message_id = {mid.data(), mid.size()};
    m.channel = {"sms", 3};
    m.address = {address.data(), address.size()};
    m.content_json = {content.data(), content.size()};
    (*lib)->table().on_submit(inst, id, &m);
  };
  submit(0);
  {
    std::unique_lock lock(c.mu);
    c.cv.wait_for(lock, std::chrono::seconds(30), [&] { return c.outcomes >= 1; });
    if (c.accepted != 1) {
      std::fprintf(stderr, "warm-up not accepted: %s\n", c.last_detail.c_str());
      return 1;
    }
    c.outcomes = c.accepted = 0;
  }
  const auto start = clock_type::now();
  for (long i = 1; i <= o.count; ++i) {
    {
      std::unique_lock lock(c.mu);
      c.cv.wait(lock, [&] { return (i - 1) - c.outcomes < o.inflight; });
    }
    submit(static_cast<uint64_t>(i));
  }
  {
    std::unique_lock lock(c.mu);
    c.cv.wait_for(lock, std::chrono::minutes(5), [&] { return c.outcomes >= o.count; });
  }
  const double secs = std::chrono::duration<double>(c.last_at - start).count();
  (*lib)->table().on_destroy(inst);
  std::printf(
      "{\"mode\":\"plugin\",\"count\":%ld,\"accepted\":%ld,\"window\":%d,\"seconds\":%.3f,"
      "\"rate\":%.1f}\n",
      o.count, c.accepted, o.window, secs, c.accepted / secs);
  return c.accepted == o.count ? 0 : 2;
}

bool write_all(int fd, const std::string& s) {
  size_t at = 0;
  while (at < s.size()) {
    const ssize_t n = ::write(fd, s.data() + at, s.size() - at);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

int run_raw(const options& o) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("connect");
    return 1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string out;
  sms_smpp::bind_transceiver b;
  b.system_id = o.system_id;
  b.password = o.password;
  sms_smpp::encode_bind_transceiver(out, 1, b);
  write_all(fd, out);

  std::mutex mu;
  std::condition_variable cv;
  long answered = 0, accepted = 0;
  bool bound = false, failed = false;
  clock_type::time_point last_at;
  std::thread reader([&] {
    std::string buf;
    char chunk[65536];
    for (;;) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) break;
      buf.append(chunk, static_cast<size_t>(n));
      size_t at = 0;
      long got = 0, ok = 0;
      bool bind_ok = false, bind_bad = false;
      while (buf.size() - at >= 16) {
        const uint32_t len = *sms_smpp::peek_length(std::string_view(buf).substr(at));
        if (buf.size() - at < len) break;
        const auto h = sms_smpp::decode_header(std::string_view(buf).substr(at, len));
        if (h->id == sms_smpp::kBindTransceiverResp) (h->status == 0 ? bind_ok : bind_bad) = true;
        if (h->id == sms_smpp::kSubmitSmResp) {
          ++got;
          ok += h->status == 0;
        }
        at += len;
      }
      buf.erase(0, at);
      {
        std::lock_guard lock(mu);
        answered += got;
        accepted += ok;
        bound = bound || bind_ok;
        failed = failed || bind_bad;
        last_at = clock_type::now();
      }
      cv.notify_all();
      if (answered >= o.count) break;
    }
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return bound || failed; });
    if (failed) {
      std::fprintf(stderr, "bind refused\n");
      return 1;
    }
  }
  sms_smpp::short_message_pdu sm;
  sm.source_addr_ton = 5;
  sm.source_addr = "ACME";
  sm.dest_addr_ton = sm.dest_addr_npi = 1;
  sm.destination_addr = "819012345678";
  sm.short_message = "relay benchmark message";
  const std::string body = sms_smpp::encode_short_message_body(sm);
  const auto start = clock_type::now();
  long sent = 0;
  while (sent < o.count) {
    long room;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return sent - answered < o.window; });
      room = std::min<long>(o.window - (sent - answered), o.count - sent);
    }
    out.clear();
    for (long k = 0; k < room; ++k)
      sms_smpp::append_with_header(out, sms_smpp::kSubmitSm, 0, static_cast<uint32_t>(2 + sent++),
                                   body);
    if (!write_all(fd, out)) break;
  }
  reader.join();
  const double secs = std::chrono::duration<double>(last_at - start).count();
  ::close(fd);
  std::printf(
      "{\"mode\":\"raw\",\"count\":%ld,\"accepted\":%ld,\"window\":%d,\"seconds\":%.3f,"
      "\"rate\":%.1f}\n",
      o.count, accepted, o.window, secs, accepted / secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--port")
      o.port = std::stoi(v);
    else if (k == "--count")
      o.count = std::stol(v);
    else if (k == "--window")
      o.window = std::stoi(v);
    else if (k == "--inflight")
      o.inflight = std::stol(v);
    else if (k == "--mode")
      o.mode = v;
    else if (k == "--system-id")
      o.system_id = v;
    else if (k == "--password")
      o.password = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 64;
    }
  }
  if (o.port == 0) {
    std::fprintf(stderr,
                 "usage: sms_smpp_bench --port P [--count N] [--window W] [--mode plugin|raw]\n");
    return 64;
  }
  return o.mode == "raw" ? run_raw(o) : run_plugin(o);
}
