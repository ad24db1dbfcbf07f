#pragma once
// One SMTP connection (RFC 5321) on Asio: connect, greeting, EHLO (HELO
// fallback), STARTTLS (RFC 3207) with certificate verification and a second
// EHLO, AUTH PLAIN or LOGIN (RFC 4954), then one mail transaction per
// deliver() — MAIL/RCPT/DATA in one write when the server offers PIPELINING
// (RFC 2920) — and QUIT.
//
// Threads: every member runs on the owning instance's one I/O thread (the
// io_context's); the session is owned by a shared_ptr held by its coroutine.
// Errors are values: a setup_result or a delivery, never an exception.

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "plugins/email_smtp/smtp_config.h"
#include "plugins/email_smtp/smtp_reply.h"
#include "relay/plugin.h"

namespace relay::email_smtp {

// The outcome of connection set-up. ok: ready for deliver(). Otherwise
// status says whether messages waiting for this connection should be retried
// (network trouble, 4xx) or failed (5xx, TLS/AUTH policy mismatch).
struct setup_result {
  bool ok = false;
  relay_submit_status status = RELAY_SUBMIT_RETRY;
  std::string detail;
};

// One message ready for the wire.
struct prepared_message {
  std::string recipient;  // the RCPT TO mailbox
  std::string data;       // dot-stuffed, ending with ".\r\n"
  size_t size = 0;        // octets before dot-stuffing (for SIZE=)
};

// The outcome of one transaction.
struct delivery {
  relay_submit_status status = RELAY_SUBMIT_RETRY;
  std::string text;             // carrier_ref for ACCEPTED, detail otherwise
  bool connection_ok = true;    // false: close this connection
  bool body_sent = false;       // the server may have the message
};

class smtp_session : public std::enable_shared_from_this<smtp_session> {
 public:
  // `tls` is the instance's client context (used only after STARTTLS).
  smtp_session(boost::asio::io_context& io, const smtp_config& cfg, boost::asio::ssl::context& tls);

  boost::asio::awaitable<setup_result> setup();
  // `reset_first`: send RSET before MAIL (every message after the first).
  boost::asio::awaitable<delivery> deliver(const prepared_message& m, bool reset_first);
  boost::asio::awaitable<void> quit();
  // Closes the socket; any pending operation completes with an error.
  void close();

  bool tls_active() const { return tls_; }
  const ehlo_extensions& extensions() const { return ext_; }

 private:
  using duration = std::chrono::milliseconds;

  // "" on success, else what went wrong ("timed out ...", "connection closed ...").
  boost::asio::awaitable<std::string> write(std::string_view bytes, duration limit);
  boost::asio::awaitable<std::string> read_reply(smtp_reply& reply, duration limit);
  boost::asio::awaitable<std::string> ehlo(bool& fell_back_to_helo, smtp_reply& reply);
  boost::asio::awaitable<setup_result> start_tls();
  boost::asio::awaitable<setup_result> authenticate();
  // Arms the deadline: when it passes, the socket is closed.
  void arm(duration limit);
  void disarm();
  std::string io_error(const boost::system::error_code& ec, std::string_view during) const;

  const smtp_config& cfg_;  // owned by the instance, which outlives its sessions
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
  boost::asio::steady_timer deadline_;
  uint64_t deadline_generation_ = 0;
  bool timed_out_ = false;
  duration armed_for_{0};
  bool tls_ = false;
  reply_reader reader_;
  ehlo_extensions ext_;
  std::string scratch_;  // read buffer
};

}  // namespace relay::email_smtp
