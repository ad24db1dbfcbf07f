#pragma once
// The TPS limit: a token bucket refilled continuously at `rate` tokens per
// second, holding at most `burst` tokens (so a pause is not followed by a
// burst above the limit). Time is passed in, so tests control it.
//
// @locality: the connector's I/O thread only.

#include <algorithm>
#include <chrono>

namespace sms_smpp {

class token_bucket {
 public:
  using clock = std::chrono::steady_clock;

  // rate 0 = unlimited.
  explicit token_bucket(double rate)
      : rate_(rate), burst_(std::max(1.0, rate / 20.0)), tokens_(burst_) {}

  bool unlimited() const { return rate_ <= 0; }

  // Takes one token if there is one.
  bool take(clock::time_point now) {
    if (unlimited()) return true;
    refill(now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }
  // When the next token will be there.
  clock::time_point next_token(clock::time_point now) {
    refill(now);
    if (unlimited() || tokens_ >= 1.0) return now;
    const double wait_s = (1.0 - tokens_) / rate_;
    return now + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(wait_s));
  }

 private:
  void refill(clock::time_point now) {
    if (last_ != clock::time_point{}) {
      const double dt = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(burst_, tokens_ + dt * rate_);
    }
    last_ = now;
  }

  double rate_;
  double burst_;
  double tokens_;
  clock::time_point last_{};
};

}  // namespace sms_smpp
