#pragma once
// One sms_smpp connector instance: a single SMPP 3.4 transceiver bind to one
// SMSC, driven by one Asio I/O thread.
//
// Threads:
//  - submit(): the host's dispatch thread; copies the message into `incoming_`
//    under a mutex and wakes the I/O thread. Never does I/O, never blocks
//    beyond that short critical section.
//  - shutdown(): the host's shutdown thread; asks the I/O thread to drain and
//    unbind, then joins it. No callback follows its return.
//  - everything else (socket, timers, window, receipts, every host callback)
//    runs on the I/O thread.

// <utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange without it.
#include <utility>
// clang-format off (keep the order above)
#include <boost/asio.hpp>
// clang-format on

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "plugins/sms_smpp/concat_assembler.h"
#include "plugins/sms_smpp/receipt_memory.h"
#include "plugins/sms_smpp/smpp_config.h"
#include "plugins/sms_smpp/smpp_pdu.h"
#include "plugins/sms_smpp/token_bucket.h"
#include "relay/plugin.h"

namespace sms_smpp {

class connector {
 public:
  connector(const relay_host* host, smpp_config cfg);
  ~connector();
  connector(const connector&) = delete;
  connector& operator=(const connector&) = delete;

  void start();
  void submit(uint64_t submit_id, const relay_message& m);
  void shutdown();

  void done(uint64_t submit_id, relay_submit_status status, std::string_view ref,
            std::string_view detail);

 private:
  using clock = std::chrono::steady_clock;
  using tcp = boost::asio::ip::tcp;

  // A message as on_submit handed it over (copied; owned by the connector).
  struct incoming_message {
    uint64_t submit_id = 0;
    uint32_t flags = 0;
    std::string message_id, address, content_json;
    clock::time_point at;
  };
  // A message being sent: its parts as prepared submit_sm bodies.
  struct job {
    uint64_t submit_id = 0;
    std::string message_id;
    std::vector<std::string> bodies;
    size_t next_part = 0;  // parts handed to the socket so far
    size_t accepted = 0;   // parts the SMSC accepted
    clock::time_point queued_at;
    std::shared_ptr<receipt_group> group;
  };
  struct outstanding_pdu {
    uint64_t job_key;
    uint32_t part;
    clock::time_point deadline;
  };
  enum class link_state { disconnected, connecting, binding, bound, unbinding };

  // I/O thread.
  void drain_incoming();
  void prepare(incoming_message&& m);
  void pump();
  void arm_pump(clock::time_point at);
  void sweep();
  void arm_sweep();
  void connect();
  void on_connected(uint64_t gen);
  void start_read(uint64_t gen);
  void on_bytes(uint64_t gen);
  void handle_pdu(std::string_view bytes);
  void on_submit_resp(uint32_t sequence, uint32_t status, std::string message_id);
  void on_deliver_sm(const short_message_pdu& sm);
  void on_receipt(const short_message_pdu& sm);
  void on_user_message(const short_message_pdu& sm);
  void flush();
  void drop(const std::string& why);
  void complete(uint64_t job_key, relay_submit_status status, std::string_view ref,
                std::string_view detail);
  void emit(const relay_event& e);
  void emit_group_event(receipt_group& g, bool failed, const std::string& reason,
                        const std::string& detail, const std::string& carrier_ref);
  void begin_shutdown();
  void send_unbind();
  void finish_shutdown();
  uint32_t next_sequence();
  std::chrono::milliseconds next_backoff();
  void log(relay_log_level level, const std::string& text) const;

  const relay_host* host_;  // owned by the host; valid until on_destroy returns
  const smpp_config cfg_;

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;

  // Shared between the host's threads and the I/O thread.
  std::mutex mu_;
  std::deque<incoming_message> incoming_;  // guarded by mu_
  bool drain_posted_ = false;              // guarded by mu_
  bool closing_ = false;                   // guarded by mu_: shutdown() was called

  // I/O thread only from here on.
  tcp::resolver resolver_;
  std::unique_ptr<tcp::socket> socket_;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer pump_timer_;
  clock::time_point pump_armed_for_{};
  link_state state_ = link_state::disconnected;
  uint64_t gen_ = 0;  // connection generation; handlers of an old connection do nothing
  std::string rbuf_;
  std::vector<char> chunk_;
  std::string wbuf_pending_, wbuf_inflight_;
  bool writing_ = false;

  uint32_t sequence_ = 0;
  uint32_t bind_sequence_ = 0;
  clock::time_point connect_deadline_{};
  clock::time_point reconnect_at_{};
  unsigned reconnect_attempts_ = 0;
  std::string last_error_ = "not connected yet";
  std::mt19937_64 rng_;

  std::unordered_map<uint64_t, job> jobs_;  // by job key
  std::deque<uint64_t> queue_;              // job keys with parts not yet sent, FIFO
  uint64_t next_job_key_ = 0;
  std::unordered_map<uint32_t, outstanding_pdu> outstanding_;  // by sequence number
  size_t max_outstanding_seen_ = 0;
  token_bucket bucket_;
  clock::time_point paused_until_{};
  uint8_t concat_reference_ = 0;

  bool enquire_outstanding_ = false;
  uint32_t enquire_sequence_ = 0;
  clock::time_point enquire_deadline_{};
  clock::time_point next_enquire_{};

  receipt_memory receipts_;
  concat_assembler inbound_parts_;

  bool stopping_ = false;
  bool finished_ = false;  // finish_shutdown ran
  clock::time_point drain_deadline_{};
  clock::time_point unbind_deadline_{};
  uint32_t unbind_sequence_ = 0;
};

}  // namespace sms_smpp
