// file_sink: relay's simplest carrier. Appends each message as one JSON line
// to <dir>/<channel>.jsonl and can simulate delivery receipts, opens, slow
// carriers and transient/permanent failures. The demo and the tests use it.
//
// Built like a third-party plug-in: it depends on relay/plugin.h, the C++
// standard library and POSIX, nothing of relay's. See docs/plugins.md.
//
// Threads:
//  - on_create / on_destroy: the host's start-up / shutdown thread.
//  - on_submit: one host dispatch thread; it copies the message into the
//    queue and returns (it never does I/O).
//  - the writer thread (one per instance) drains the queue in batches, writes
//    one write() per channel file per batch and calls the host back
//    (callback_submit_done, callback_emit_event, callback_log).
//
// Effectively-once: a message flagged RELAY_MESSAGE_MAY_BE_DUPLICATE is
// looked up by message_id in its channel file (the ids are loaded lazily on
// the first such message, then kept up to date) and reported ACCEPTED with
// detail "duplicate" instead of being written again. Instances of this
// process writing the same file share one state for it; two processes
// writing one file are not supported.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/common/abi_support.h"
#include "plugins/common/json_text.h"
#include "plugins/common/utf8.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "relay/plugin.h"

namespace {

using relay::plugin_abi::to_relay;
using relay::plugin_abi::view;
using relay::plugin_abi::write_error;

using steady = std::chrono::steady_clock;


// ---------------------------------------------------------------------------
// Deterministic draws: the same message (and attempt) always gets the same
// fate, so tests and demos are reproducible.

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from (message_id, purpose, attempt).
double draw(std::string_view message_id, uint64_t purpose, uint64_t attempt) {
  const uint64_t h = mix64(fnv1a(message_id) ^ mix64(purpose * 0x9e3779b97f4a7c15ull + attempt));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

enum : uint64_t { kDrawPermanent = 1, kDrawTransient = 2, kDrawEngagement = 3 };

// ---------------------------------------------------------------------------
// JSON (RFC 8259), written by hand to stay dependency-free.

using relay::plugin_text::utf8_sequence;

using relay::plugin_text::append_json_escaped;
using relay::plugin_text::append_json_quoted;

// Validates that `s` is exactly one JSON object (surrounding whitespace
// allowed). On failure, error_at is the byte offset of the problem.
class json_checker {
 public:
  explicit json_checker(std::string_view s) : s_(s) {}

  bool object_text(size_t& error_at) {
    ws();
    const bool ok = peek('{') && value() && (ws(), i_ == s_.size());
    error_at = i_;
    return ok;
  }

 private:
  static constexpr int kMaxDepth = 64;

  bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  bool digits() {
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool number() {
    if (peek('-')) ++i_;
    if (peek('0')) {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (peek('.')) {
      ++i_;
      if (!digits()) return false;
    }
    if (peek('e') || peek('E')) {
      ++i_;
      if (peek('+') || peek('-')) ++i_;
      if (!digits()) return false;
    }
    return true;
  }
  bool string() {
    if (!peek('"')) return false;
    ++i_;
    while (i_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        ++i_;
        if (i_ >= s_.size()) return false;
        const char e = s_[i_];
        if (e == 'u') {
          for (int k = 1; k <= 4; ++k) {
            if (i_ + k >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_ + k])))
              return false;
          }
          i_ += 5;
        } else if (std::strchr("\"\\/bfnrt", e) != nullptr && e != '\0') {
          ++i_;
        } else {
          return false;
        }
        continue;
      }
      const size_t n = utf8_sequence(s_, i_);
      if (n == 0) return false;
      i_ += n;
    }
    return false;
  }
  bool members(char close, bool keyed) {
    if (++depth_ > kMaxDepth) return false;
    ++i_;  // the opening bracket
    ws();
    if (peek(close)) {
      ++i_;
      --depth_;
      return true;
    }
    for (;;) {
      ws();
      if (keyed) {
        if (!string()) return false;
        ws();
        if (!peek(':')) return false;
        ++i_;
      }
      if (!value()) return false;
      ws();
      if (peek(',')) {
        ++i_;
        continue;
      }
      if (peek(close)) {
        ++i_;
        --depth_;
        return true;
      }
      return false;
    }
  }
  bool value() {
    ws();
    if (i_ >= s_.size()) return false;
    switch (s_[i_]) {
      case '{':
        return members('}', true);
      case '[':
        return members(']', false);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
};

// Appends valid JSON without the whitespace between tokens, so content
// pretty-printed by a host cannot break the one-object-per-line framing.
void append_compact(std::string& out, std::string_view json) {
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      out += c;
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
      out += c;
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out += c;
    }
  }
}

// ---------------------------------------------------------------------------
// Configuration.

struct sink_config {
  std::string dir;
  double delivered_rate = 0;
  double opened_rate = 0;
  double transient_failure_rate = 0;
  double permanent_failure_rate = 0;
  std::chrono::milliseconds latency{0};
  bool fsync = false;
};

constexpr std::string_view kKnownKeys =
    "dir, delivered_rate, opened_rate, transient_failure_rate, permanent_failure_rate, latency_ms, "
    "fsync";

bool parse_rate(std::string_view text, double& out) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || std::isnan(v) || v < 0 || v > 1)
    return false;
  out = v;
  return true;
}

bool parse_bool(std::string_view text, bool& out) {
  if (text == "true" || text == "yes" || text == "on" || text == "1") {
    out = true;
    return true;
  }
  if (text == "false" || text == "no" || text == "off" || text == "0") {
    out = false;
    return true;
  }
  return false;
}

// Returns "" or a one-line reason that names the key.
std::string parse_config(const relay_kv* kv, size_t count, sink_config& cfg) {
  std::vector<std::string_view> seen;
  for (size_t i = 0; i < count; ++i) {
    const std::string_view key = view(kv[i].key);
    const std::string_view value = view(kv[i].value);
    const std::string k(key);
    const auto bad = [&](const char* expected) {
      return k + ": " + expected + " (got \"" + std::string(value) + "\")";
    };
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) return k + ": given twice";
    seen.push_back(key);
    if (key == "dir") {
      if (value.empty()) return "dir: must not be empty";
      cfg.dir.assign(value);
    } else if (key == "delivered_rate") {
      if (!parse_rate(value, cfg.delivered_rate)) return bad("must be a number from 0 to 1");
    } else if (key == "opened_rate") {
      if (!parse_rate(value, cfg.opened_rate)) return bad("must be a number from 0 to 1");
    } else if (key == "transient_failure_rate") {
      if (!parse_rate(value, cfg.transient_failure_rate))
        return bad("must be a number from 0 to 1");
    } else if (key == "permanent_failure_rate") {
      if (!parse_rate(value, cfg.permanent_failure_rate))
        return bad("must be a number from 0 to 1");
    } else if (key == "latency_ms") {
      uint64_t ms = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
      if (ec != std::errc() || end != value.data() + value.size() || value.empty() ||
          ms > 3'600'000) {
        return bad("must be a whole number of milliseconds from 0 to 3600000");
      }
      cfg.latency = std::chrono::milliseconds(ms);
    } else if (key == "fsync") {
      if (!parse_bool(value, cfg.fsync)) return bad("must be true or false");
    } else {
      return k + ": unknown key (file_sink knows " + std::string(kKnownKeys) + ")";
    }
  }
  if (cfg.dir.empty()) return "dir: required (the directory to write <channel>.jsonl files to)";
  return "";
}

// ---------------------------------------------------------------------------
// One <dir>/<channel>.jsonl file, shared by every instance of this process
// that writes it. All fields are guarded by mu (held by writer threads).

struct channel_file {
  std::mutex mu;
  std::string path;
  std::string name;  // "sms.jsonl", used in carrier_ref
  int fd = -1;
  uint64_t lines = 0;          // lines in the file, a torn last line included
  bool needs_newline = false;  // the file does not end with '\n' (a torn write)
  bool ids_loaded = false;
  // message_id (as escaped in the file) -> line number.
  std::unordered_map<std::string, uint64_t> ids;

  ~channel_file() {
    if (fd >= 0) ::close(fd);
  }
};

std::shared_ptr<channel_file> acquire_file(const std::string& path, const std::string& name) {
  static std::mutex registry_mu;
  static std::map<std::string, std::weak_ptr<channel_file>> registry;
  std::lock_guard lock(registry_mu);
  for (auto it = registry.begin(); it != registry.end();) {  // forget files nobody writes any more
    it = it->second.expired() ? registry.erase(it) : std::next(it);
  }
  if (auto existing = registry[path].lock()) return existing;
  auto file = std::make_shared<channel_file>();
  file->path = path;
  file->name = name;
  registry[path] = file;
  return file;
}

std::string errno_text(int err) { return std::strerror(err); }

// Reads the whole file at `path` in chunks, calling fn(line, number) for
// every line (without its '\n'), a last line without '\n' included. Sets
// `lines` to the number of '\n'-terminated lines and `torn` when a last line
// without '\n' exists.
template <class Fn>
bool scan_lines(const std::string& path, uint64_t& lines, bool& torn, std::string& error, Fn&& fn) {
  lines = 0;
  torn = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    error = "open " + path + ": " + errno_text(errno);
    return false;
  }
  std::string pending;
  std::vector<char> buf(1 << 16);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      error = "read " + path + ": " + errno_text(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    std::string_view chunk(buf.data(), static_cast<size_t>(n));
    for (size_t nl; (nl = chunk.find('\n')) != std::string_view::npos;) {
      ++lines;
      if (pending.empty()) {
        fn(chunk.substr(0, nl), lines);
      } else {
        pending.append(chunk.substr(0, nl));
        fn(std::string_view(pending), lines);
        pending.clear();
      }
      chunk.remove_prefix(nl + 1);
    }
    pending.append(chunk);
  }
  ::close(fd);
  torn = !pending.empty();
  if (torn) fn(std::string_view(pending), lines + 1);
  return true;
}

// Opens the file for appending and learns its line count and whether its last
// line is torn (a crash in the middle of a write). file.mu held.
bool open_file(channel_file& file, std::string& error) {
  if (file.fd >= 0) return true;
  uint64_t lines = 0;
  bool torn = false;
  if (!scan_lines(file.path, lines, torn, error, [](std::string_view, uint64_t) {})) return false;
  const int fd = ::open(file.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "open " + file.path + ": " + errno_text(errno);
    return false;
  }
  file.fd = fd;
  file.lines = lines + (torn ? 1 : 0);
  file.needs_newline = torn;
  return true;
}

constexpr std::string_view kIdPrefix = "{\"message_id\":\"";

// Loads the ids of the valid lines. A torn line is not valid JSON and is
// ignored; a last line that lacks only its '\n' (the crash came between the
// object and the newline) is a complete record and counts, so the message is
// not written again. file.mu held.
bool load_ids(channel_file& file, std::string& error) {
  if (file.ids_loaded) return true;
  uint64_t lines = 0;
  bool torn = false;
  file.ids.clear();
  const bool ok =
      scan_lines(file.path, lines, torn, error, [&](std::string_view line, uint64_t number) {
        if (line.substr(0, kIdPrefix.size()) != kIdPrefix) return;
        size_t error_at = 0;
        if (!json_checker(line).object_text(error_at)) return;
        // The id runs to the first unescaped quote.
        size_t end = kIdPrefix.size();
        while (end < line.size() && line[end] != '"') end += line[end] == '\\' ? 2 : 1;
        if (end >= line.size()) return;
        file.ids.emplace(std::string(line.substr(kIdPrefix.size(), end - kIdPrefix.size())),
                         number);
      });
  if (ok) file.ids_loaded = true;
  return ok;
}

// ---------------------------------------------------------------------------
// The instance.

// A copy of one relay_message; owned by the sink from on_submit on.
struct queued_message {
  uint64_t submit_id = 0;
  uint32_t flags = 0;
  uint32_t attempt = 0;
  steady::time_point due;  // not reported before this (latency_ms)
  std::string message_id, job_id, company_id, user_id, carrier_id, channel, address, content_json;
};

// What the writer reports for one message of a batch.
struct report {
  relay_submit_status status = RELAY_SUBMIT_ACCEPTED;
  std::string carrier_ref;
  std::string detail;
  bool emit_events = false;
};

bool valid_channel_name(std::string_view c) {
  return !c.empty() && c.size() <= 32 && std::all_of(c.begin(), c.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
  });
}

class sink {
 public:
  sink(const relay_host* host, sink_config cfg) : host_(host), cfg_(std::move(cfg)) {}

  ~sink() { shutdown(); }

  // Start-up thread.
  void start() {
    writer_ = std::thread([this] { run(); });
  }

  // Host dispatch thread. Never blocks beyond a short critical section.
  void submit(uint64_t submit_id, const relay_message& m) {
    std::unique_lock lock(mu_);
    if (stopping_) {
      lock.unlock();
      done(submit_id, RELAY_SUBMIT_RETRY, {}, "file_sink is stopping");
      return;
    }
    const bool was_empty = queue_.empty();
    queued_message& q = queue_.emplace_back();
    q.submit_id = submit_id;
    q.flags = m.flags;
    q.attempt = m.attempt;
    q.due = steady::now() + cfg_.latency;
    q.message_id.assign(view(m.message_id));
    q.job_id.assign(view(m.job_id));
    q.company_id.assign(view(m.company_id));
    q.user_id.assign(view(m.user_id));
    q.carrier_id.assign(view(m.carrier_id));
    q.channel.assign(view(m.channel));
    q.address.assign(view(m.address));
    q.content_json.assign(view(m.content_json));
    lock.unlock();
    if (was_empty) cv_.notify_one();
  }

  // Shutdown thread: stop accepting, write and report what is queued, join.
  void shutdown() {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && !writer_.joinable()) return;
      stopping_ = true;
    }
    cv_.notify_one();
    if (writer_.joinable()) writer_.join();
  }

  void log(relay_log_level level, const std::string& text) const {
    host_->callback_log(host_->host_ctx, level, to_relay(text));
  }

  // Any thread that may report for this instance.
  void done(uint64_t submit_id, relay_submit_status status, std::string_view ref,
            std::string_view detail) {
    host_->callback_submit_done(host_->host_ctx, submit_id, status, to_relay(ref),
                                to_relay(detail));
  }

 private:
  // Writer thread.
  void run() {
    std::vector<queued_message> batch;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        for (;;) {
          if (stopping_) break;
          if (queue_.empty()) {
            cv_.wait(lock);
            continue;
          }
          const auto due = queue_.front().due;  // dues only grow along the queue
          if (due <= steady::now()) break;
          cv_.wait_until(lock, due);
        }
        if (stopping_ && queue_.empty()) return;
        // On shutdown everything goes out now, latency or not.
        const auto now = steady::now();
        auto end = queue_.begin();
        while (end != queue_.end() && (stopping_ || end->due <= now)) ++end;
        batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
        queue_.erase(queue_.begin(), end);
      }
      process(batch);
      batch.clear();
    }
  }

  void process(std::vector<queued_message>& batch) {
    reports_.clear();
    reports_.resize(batch.size());
    // Per channel: the indexes of the messages to write, in batch order.
    std::map<std::string_view, std::vector<size_t>> by_channel;
    for (size_t i = 0; i < batch.size(); ++i) {
      const queued_message& m = batch[i];
      report& r = reports_[i];
      size_t error_at = 0;
      const std::string_view content =
          m.content_json.empty() ? std::string_view("{}") : m.content_json;
      if (!valid_channel_name(m.channel)) {
        r.status = RELAY_SUBMIT_FAILED;
        r.detail = "invalid channel name (expected lower-case letters, digits, _ or -)";
      } else if (!json_checker(content).object_text(error_at)) {
        r.status = RELAY_SUBMIT_FAILED;
        r.detail =
            "content_json is not a JSON object (error at byte " + std::to_string(error_at) + ")";
      } else if (draw(m.message_id, kDrawPermanent, m.attempt) < cfg_.permanent_failure_rate) {
        r.status = RELAY_SUBMIT_FAILED;
        r.detail = "simulated permanent failure";
      } else if (draw(m.message_id, kDrawTransient, m.attempt) < cfg_.transient_failure_rate) {
        r.status = RELAY_SUBMIT_RETRY;
        r.detail = "simulated transient failure";
      } else {
        by_channel[m.channel].push_back(i);
      }
    }
    for (auto& [channel, indexes] : by_channel) write_channel(std::string(channel), batch, indexes);

    for (size_t i = 0; i < batch.size(); ++i) {
      done(batch[i].submit_id, reports_[i].status, reports_[i].carrier_ref, reports_[i].detail);
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (reports_[i].emit_events) emit_events(batch[i], reports_[i].carrier_ref);
    }
  }

  void write_channel(const std::string& channel, const std::vector<queued_message>& batch,
                     const std::vector<size_t>& indexes) {
    auto& slot = files_[channel];
    if (!slot) slot = acquire_file(cfg_.dir + "/" + channel + ".jsonl", channel + ".jsonl");
    channel_file& file = *slot;
    std::lock_guard lock(file.mu);

    const auto fail_all = [&](const std::string& why) {
      log(RELAY_LOG_WARN,
          why + "; " + std::to_string(indexes.size()) + " message(s) will be retried");
      for (size_t i : indexes) {
        reports_[i].status = RELAY_SUBMIT_RETRY;
        reports_[i].detail = why;
      }
    };
    std::string error;
    if (!open_file(file, error)) return fail_all(error);
    const bool any_flagged = std::any_of(indexes.begin(), indexes.end(), [&](size_t i) {
      return (batch[i].flags & RELAY_MESSAGE_MAY_BE_DUPLICATE) != 0;
    });
    if (any_flagged && !load_ids(file, error)) return fail_all(error);

    buffer_.clear();
    if (file.needs_newline) buffer_ += '\n';  // start after a torn line
    struct pending_line {
      size_t index;
      size_t end;  // offset in buffer_ just after its '\n'
      uint64_t line;
      std::string id_key;
      bool inserted_id;  // added to file.ids for this line (taken out again if the write fails)
    };
    std::vector<pending_line> lines;
    lines.reserve(indexes.size());
    uint64_t next_line = file.lines + 1;
    std::string id_key;
    for (size_t i : indexes) {
      const queued_message& m = batch[i];
      id_key.clear();
      append_json_escaped(id_key, m.message_id);
      bool inserted_id = false;
      if (file.ids_loaded) {
        auto it = file.ids.find(id_key);
        if (it == file.ids.end()) {
          // Also catches a repeat within this batch: the id goes in now and
          // comes out again if its write fails.
          file.ids.emplace(id_key, next_line);
          inserted_id = true;
        } else if ((m.flags & RELAY_MESSAGE_MAY_BE_DUPLICATE) != 0) {
          reports_[i].status = RELAY_SUBMIT_ACCEPTED;
          reports_[i].carrier_ref = file.name + ":" + std::to_string(it->second);
          reports_[i].detail = "duplicate";
          continue;
        }
      }
      buffer_ += "{\"message_id\":\"";
      buffer_ += id_key;
      buffer_ += "\",\"job_id\":";
      append_json_quoted(buffer_, m.job_id);
      buffer_ += ",\"company_id\":";
      append_json_quoted(buffer_, m.company_id);
      buffer_ += ",\"user_id\":";
      append_json_quoted(buffer_, m.user_id);
      buffer_ += ",\"carrier_id\":";
      append_json_quoted(buffer_, m.carrier_id);
      buffer_ += ",\"channel\":";
      append_json_quoted(buffer_, m.channel);
      buffer_ += ",\"address\":";
      append_json_quoted(buffer_, m.address);
      buffer_ += ",\"content\":";
      append_compact(buffer_, m.content_json.empty() ? std::string_view("{}") : m.content_json);
      buffer_ += ",\"attempt\":";
      buffer_ += std::to_string(m.attempt);
      buffer_ += "}\n";
      lines.push_back(pending_line{i, buffer_.size(), next_line++, id_key, inserted_id});
    }
    if (lines.empty()) return;  // all duplicates

    // One write() for the whole batch; more only if the kernel writes short.
    size_t written = 0;
    int write_errno = 0;
    while (written < buffer_.size()) {
      const ssize_t n = ::write(file.fd, buffer_.data() + written, buffer_.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        write_errno = errno;
        break;
      }
      written += static_cast<size_t>(n);
    }
    int fsync_errno = 0;
    if (cfg_.fsync && written > 0 && ::fsync(file.fd) != 0) fsync_errno = errno;

    if (written > 0) file.needs_newline = buffer_[written - 1] != '\n';
    uint64_t complete = 0;
    for (const pending_line& l : lines) {
      report& r = reports_[l.index];
      const bool in_file = l.end <= written;
      if (in_file) {
        ++complete;
      } else if (l.inserted_id) {
        file.ids.erase(l.id_key);
      }
      if (in_file && fsync_errno == 0) {
        r.status = RELAY_SUBMIT_ACCEPTED;
        r.carrier_ref = file.name + ":" + std::to_string(l.line);
        r.emit_events = true;
      } else {
        // Not durable: let the host retry. A line that is in the file but not
        // synced stays in the id set, so a flagged resubmit is not written twice.
        r.status = RELAY_SUBMIT_RETRY;
        r.detail = (in_file ? "fsync " : "write ") + file.name + ": " +
                   errno_text(in_file ? fsync_errno : write_errno);
      }
    }
    // A partial line left by a failed write counts as a line: later writes
    // start after it and the id set ignores it.
    file.lines += complete + (file.needs_newline ? 1 : 0);
    if (write_errno != 0 || fsync_errno != 0) {
      log(RELAY_LOG_WARN, std::string(write_errno != 0 ? "write " : "fsync ") + file.name + ": " +
                              errno_text(write_errno != 0 ? write_errno : fsync_errno) +
                              "; messages not durably written will be retried");
    }
  }

  void emit_events(const queued_message& m, const std::string& carrier_ref) {
    const double u = draw(m.message_id, kDrawEngagement, 0);
    relay_event e{};
    e.struct_size = sizeof(relay_event);
    e.message_id = to_relay(m.message_id);
    e.carrier_ref = to_relay(carrier_ref);
    // One draw for both: with opened_rate <= delivered_rate every opened
    // message was also delivered.
    if (u < cfg_.delivered_rate) {
      e.type = RELAY_EVENT_DELIVERED;
      host_->callback_emit_event(host_->host_ctx, &e);
    }
    if (u < cfg_.opened_rate) {
      e.type = RELAY_EVENT_OPENED;
      host_->callback_emit_event(host_->host_ctx, &e);
    }
  }

  const relay_host* host_;  // owned by the host; valid until on_destroy returns
  const sink_config cfg_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<queued_message> queue_;  // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  std::thread writer_;

  // Writer thread only.
  std::map<std::string, std::shared_ptr<channel_file>> files_;
  std::vector<report> reports_;
  std::string buffer_;
};

// ---------------------------------------------------------------------------
// The C ABI. Nothing may throw out of these.


void* fs_on_create(const relay_host* host, const relay_kv* config, size_t config_count, char* error,
                   size_t error_size) {
  try {
    if (host == nullptr || host->struct_size < sizeof(relay_host) ||
        host->callback_submit_done == nullptr || host->callback_log == nullptr ||
        host->callback_emit_event == nullptr) {
      write_error(error, error_size, "file_sink: the host's relay_host table is incomplete");
      return nullptr;
    }
    sink_config cfg;
    if (std::string why = parse_config(config, config_count, cfg); !why.empty()) {
      write_error(error, error_size, why);
      return nullptr;
    }
    std::error_code ec;
    std::filesystem::create_directories(cfg.dir, ec);
    if (ec) {
      write_error(error, error_size, "dir: cannot create \"" + cfg.dir + "\": " + ec.message());
      return nullptr;
    }
    if (!std::filesystem::is_directory(cfg.dir, ec)) {
      write_error(error, error_size, "dir: \"" + cfg.dir + "\" is not a directory");
      return nullptr;
    }
    if (::access(cfg.dir.c_str(), W_OK) != 0) {
      write_error(error, error_size,
                  "dir: \"" + cfg.dir + "\" is not writable: " + errno_text(errno));
      return nullptr;
    }
    // One spelling per directory, so instances share the state of a file.
    if (auto canonical = std::filesystem::weakly_canonical(cfg.dir, ec); !ec)
      cfg.dir = canonical.string();
    auto s = std::make_unique<sink>(host, std::move(cfg));
    s->start();
    return s.release();
  } catch (const std::exception& e) {
    write_error(error, error_size, std::string("file_sink: ") + e.what());
  } catch (...) {
    write_error(error, error_size, "file_sink: unexpected error");
  }
  return nullptr;
}

void fs_on_destroy(void* instance) {
  try {
    delete static_cast<sink*>(instance);
  } catch (...) {
  }
}

void fs_on_submit(void* instance, uint64_t submit_id, const relay_message* message) {
  auto* s = static_cast<sink*>(instance);
  try {
    s->submit(submit_id, *message);
  } catch (...) {
    // Out of memory copying the message: report it rather than lose it.
    s->done(submit_id, RELAY_SUBMIT_RETRY, {}, "file_sink could not queue the message");
  }
}

const relay_plugin kTable = {
    RELAY_PLUGIN_ABI_VERSION,
    sizeof(relay_plugin),
    "file_sink",
    "1.0.0",
    &fs_on_create,
    &fs_on_destroy,
    &fs_on_submit,
    nullptr,  // no webhooks: events are simulated
};

}  // namespace

extern "C" RELAY_PLUGIN_EXPORT const relay_plugin* relay_plugin_entry(void) { return &kTable; }
