#include "daemon/tracking_secret.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace relay {

result<std::string> load_tracking_secret(const config& cfg) {
  if (!cfg.tracking.secret.empty()) return cfg.tracking.secret;
  if (const char* env = std::getenv("RELAY_TRACKING_SECRET"); env != nullptr && *env != '\0') {
    std::string s(env);
    if (s.size() < 16) {
      return make_error(errc::invalid_argument, "RELAY_TRACKING_SECRET: must be at least 16 characters");
    }
    return s;
  }
  const std::string path = (std::filesystem::path(cfg.data_dir) / "tracking.secret").string();
  if (std::ifstream in(path); in) {
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (s.size() < 16) return make_error(errc::corruption, path + ": shorter than 16 characters");
    return s;
  }
  unsigned char raw[32];
  if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    return make_error(errc::io_error, "tracking secret: getrandom failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char b : raw) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(errc::io_error, path + ": cannot create");
  const std::string line = s + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return make_error(errc::io_error, path + ": cannot write");
  return s;
}

}  // namespace relay
