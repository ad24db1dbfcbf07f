#pragma once
// tests/peers/smtp_server.py (aiosmtpd) as a child process on 127.0.0.1:<port>,
// storing what it receives in its own directory; stopped by the destructor.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/peer_process.h"
#include "tests/test_support.h"

namespace relay::test {

class smtp_peer {
 public:
  using json = nlohmann::json;

  explicit smtp_peer(std::vector<std::string> options = {}) : process_(argv(dir_.path(), std::move(options))) {
    if (!process_.ok()) throw std::runtime_error("SMTP peer: " + process_.error());
  }

  std::string port() const { return std::to_string(process_.port()); }
  json stats() const {
    const std::string text = read_file(dir_ / "stats.json");
    return text.empty() ? json::object() : json::parse(text);
  }
  int stat(const char* name) const { return stats().value(name, 0); }
  // The stored messages in arrival order.
  std::vector<json> messages() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
      const std::string n = e.path().filename().string();
      if (n.starts_with("msg-") && n.ends_with(".json")) names.push_back(n);
    }
    std::sort(names.begin(), names.end());
    std::vector<json> out;
    for (const auto& n : names) out.push_back(json::parse(read_file(dir_ / n)));
    return out;
  }
  std::string raw(const json& message) const {
    char name[32];
    std::snprintf(name, sizeof name, "msg-%05d.eml", message["seq"].get<int>());
    return read_file(dir_ / name);
  }
  bool wait_for_messages(size_t n) const {
    return wait_until([&] { return static_cast<size_t>(stat("messages")) >= n; });
  }

 private:
  static std::vector<std::string> argv(const std::string& dir, std::vector<std::string> options) {
    std::vector<std::string> a = {"/usr/bin/python3", std::string(RELAY_SOURCE_DIR) + "/tests/peers/smtp_server.py",
                                  "--dir", dir};
    a.insert(a.end(), options.begin(), options.end());
    return a;
  }

  temp_dir dir_;  // before process_: the peer writes into it
  peer_process process_;
};

}  // namespace relay::test
