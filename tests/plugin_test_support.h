#pragma once
// Helpers for tests that talk to plug-ins through the C ABI.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>

#include "relay/plugin.h"

namespace relay::test {

inline relay_str rs(std::string_view s) { return relay_str{s.data(), s.size()}; }
inline std::string str(relay_str s) {
  return s.data != nullptr ? std::string(s.data, s.size) : std::string();
}

// The core thread's wake-up, as relayd's event loop provides it to a
// connector: callable from any thread; the test thread waits on it.
class wake_signal {
 public:
  void operator()() {
    {
      std::lock_guard lock(mu_);
      woken_ = true;
    }
    cv_.notify_one();
  }
  // Waits for a wake-up or until `until`; clears it.
  void wait(std::chrono::steady_clock::time_point until) {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, until, [&] { return woken_; });
    woken_ = false;
  }
  void wait(std::chrono::milliseconds at_most) { wait(std::chrono::steady_clock::now() + at_most); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

}  // namespace relay::test
