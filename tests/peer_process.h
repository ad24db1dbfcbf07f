#pragma once
// A test peer (SMSC, SMTP server, RBM server, ...) run as a child process (found on PATH) on
// loopback. The peer binds 127.0.0.1 port 0 and prints its port as the first
// line of its stdout; further stdout lines can be read with a deadline and
// commands sent on its stdin. The destructor stops it (SIGTERM, then SIGKILL)
// and reaps it, so a failing test never leaves a peer behind.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace relay::test {

class peer_process {
 public:
  explicit peer_process(std::vector<std::string> argv,
                        std::chrono::milliseconds startup = std::chrono::seconds(15)) {
    int out[2], in[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
      error_ = "pipe failed";
      return;
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    const int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(in[0]);
    out_ = out[0];
    in_ = in[1];
    if (rc != 0) {
      pid_ = -1;
      error_ = "cannot start " + argv[0];
      return;
    }
    const auto line = read_line(startup);
    if (!line) {
      error_ = argv[0] + " printed no port within the start-up time";
      return;
    }
    try {
      port_ = std::stoi(*line);
    } catch (...) {
      error_ = argv[0] + " printed '" + *line + "' instead of its port";
    }
  }
  ~peer_process() { stop(); }
  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;

  bool ok() const { return port_ > 0; }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }

  // The next stdout line, or nullopt when none arrives by the deadline (or EOF).
  std::optional<std::string> read_line(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || out_ < 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  // Sends one command line to the peer's stdin.
  bool write_line(const std::string& line) {
    const std::string data = line + "\n";
    return in_ >= 0 && ::write(in_, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  }

  void stop() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() >= deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        pollfd none{-1, 0, 0};
        ::poll(&none, 0, 10);  // the child's exit, checked every 10 ms
      }
      pid_ = -1;
    }
    if (out_ >= 0) ::close(out_);
    out_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
  int port_ = 0;
  std::string buffer_;
  std::string error_;
};

}  // namespace relay::test
