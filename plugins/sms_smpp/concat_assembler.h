#pragma once
// Reassembles concatenated messages that users send (deliver_sm with a
// concatenation UDH). Parts are kept as octets and decoded together, so a
// UCS-2 surrogate pair split across parts still decodes. Bounded: at most
// max_pending incomplete messages, each kept at most max_age.
//
// @locality: the connector's I/O thread only.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sms_smpp {

class concat_assembler {
 public:
  using clock = std::chrono::steady_clock;

  concat_assembler(size_t max_pending, std::chrono::milliseconds max_age)
      : max_pending_(max_pending), max_age_(max_age) {}

  // Adds part `sequence` (1-based) of `total`; returns the whole message's
  // octets once every part is there. `key` identifies the message (sender,
  // recipient, reference).
  std::optional<std::string> add(const std::string& key, uint8_t total, uint8_t sequence,
                                 std::string octets, clock::time_point now);
  void evict_expired(clock::time_point now);
  size_t pending() const { return pending_.size(); }

 private:
  struct message {
    std::vector<std::optional<std::string>> parts;
    size_t have = 0;
    clock::time_point first_seen;
  };
  size_t max_pending_;
  std::chrono::milliseconds max_age_;
  std::map<std::string, message> pending_;
};

}  // namespace sms_smpp
