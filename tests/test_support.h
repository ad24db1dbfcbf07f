#pragma once
// Small helpers shared by the tests: bounded waits on conditions (never bare
// sleeps), temporary directories, and compiling C plug-ins at test time.

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace relay::test {

// Waits until pred() holds or `timeout` passes; returns pred()'s last value.
// Spins with yields first (most conditions hold within microseconds), then
// re-checks every millisecond on a condition variable nobody signals, which
// bounds the wait by the predicate rather than by a guessed duration.
inline bool wait_until(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::mutex mu;
  std::condition_variable cv;
  for (int spins = 0;; ++spins) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    if (spins < 200) {
      std::this_thread::yield();
    } else {
      std::unique_lock lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(1));
    }
  }
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/relay-test-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// The lines of a text file, without their '\n'; a last line without '\n' is
// included.
inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs a shell command; returns its exit status and puts its combined
// output in `output`.
inline int run_command(const std::string& command, std::string& output,
                       const std::string& scratch_dir) {
  const std::string log = scratch_dir + "/command.log";
  const int rc = std::system((command + " >" + shell_quote(log) + " 2>&1").c_str());
  output = read_file(log);
  return rc;
}

// A C compiler, as a carrier would use to build its plug-in.
inline bool have_cc() { return std::system("command -v cc >/dev/null 2>&1") == 0; }

// Compiles C `source` into <dir>/<name>.so against the relay/plugin.h found
// in `include_dir`. Returns "" on success, else the compiler's output.
inline std::string compile_c_plugin(const std::string& dir, const std::string& name,
                                    const std::string& source, const std::string& include_dir) {
  const std::string c_path = dir + "/" + name + ".c";
  const std::string so_path = dir + "/" + name + ".so";
  write_file(c_path, source);
  std::string output;
  const int rc = run_command("cc -std=c99 -Wall -Wextra -Werror -shared -fPIC -pthread -I" +
                                 shell_quote(include_dir) + " -o " + shell_quote(so_path) + " " +
                                 shell_quote(c_path),
                             output, dir);
  if (rc != 0) return output.empty() ? "cc failed" : output;
  return "";
}

}  // namespace relay::test
