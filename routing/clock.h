#pragma once
// Time comes from an injected clock so tests control it.

#include <chrono>
#include <cstdint>

namespace relay {

using sys_time = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

class clock {
 public:
  virtual ~clock() = default;
  virtual sys_time now() const = 0;
};

class system_clock final : public clock {
 public:
  sys_time now() const override {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  }
};

// A clock that only moves when told to.
class manual_clock final : public clock {
 public:
  explicit manual_clock(sys_time start) : now_(start) {}
  sys_time now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }
  void set(sys_time t) { now_ = t; }

 private:
  sys_time now_;
};

inline int64_t to_unix_ms(sys_time t) { return t.time_since_epoch().count(); }

}  // namespace relay
