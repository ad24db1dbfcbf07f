#include "plugins/email_smtp/smtp_session.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "plugins/email_smtp/mime.h"

namespace relay::email_smtp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;

namespace {

std::string seconds_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

setup_result from_reply(const smtp_reply& r, std::string_view what) {
  // A 5xx is the server's permanent no; everything else may work later.
  return {false, r.permanent() ? RELAY_SUBMIT_FAILED : RELAY_SUBMIT_RETRY,
          std::string(what) + ": " + reply_detail(r, {})};
}

setup_result retry(std::string detail) { return {false, RELAY_SUBMIT_RETRY, std::move(detail)}; }
setup_result fail(std::string detail) { return {false, RELAY_SUBMIT_FAILED, std::move(detail)}; }

}  // namespace

smtp_session::smtp_session(asio::io_context& io, const smtp_config& cfg, asio::ssl::context& tls)
    : cfg_(cfg), stream_(io, tls), deadline_(io) {}

void smtp_session::arm(duration limit) {
  const uint64_t generation = ++deadline_generation_;
  timed_out_ = false;
  armed_for_ = limit;
  deadline_.expires_after(limit);
  deadline_.async_wait([weak = weak_from_this(), generation](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->deadline_generation_ != generation) return;
    self->timed_out_ = true;
    boost::system::error_code ignored;
    self->stream_.lowest_layer().close(ignored);
  });
}

void smtp_session::disarm() {
  ++deadline_generation_;  // a completion already queued is ignored
  deadline_.cancel();
}

void smtp_session::close() {
  disarm();
  boost::system::error_code ignored;
  stream_.lowest_layer().close(ignored);
}

std::string smtp_session::io_error(const boost::system::error_code& ec, std::string_view during) const {
  if (timed_out_) return "timed out after " + seconds_text(armed_for_) + " " + std::string(during);
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
    return "connection closed by the server " + std::string(during);
  return ec.message() + " " + std::string(during);
}

awaitable<std::string> smtp_session::write(std::string_view bytes, duration limit) {
  boost::system::error_code ec;
  arm(limit);
  if (tls_) {
    co_await asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()),
                               redirect_error(use_awaitable, ec));
  } else {
    co_await asio::async_write(stream_.next_layer(), asio::buffer(bytes.data(), bytes.size()),
                               redirect_error(use_awaitable, ec));
  }
  disarm();
  co_return ec ? io_error(ec, "while writing") : std::string();
}

awaitable<std::string> smtp_session::read_reply(smtp_reply& reply, duration limit) {
  for (;;) {
    switch (reader_.next(reply)) {
      case reply_reader::result::complete:
        co_return std::string();
      case reply_reader::result::malformed:
        co_return std::string("the server sent a line that is not an SMTP reply");
      case reply_reader::result::need_more:
        break;
    }
    scratch_.resize(16 * 1024);
    boost::system::error_code ec;
    size_t n = 0;
    arm(limit);
    if (tls_) {
      n = co_await stream_.async_read_some(asio::buffer(scratch_), redirect_error(use_awaitable, ec));
    } else {
      n = co_await stream_.next_layer().async_read_some(asio::buffer(scratch_),
                                                        redirect_error(use_awaitable, ec));
    }
    disarm();
    if (ec) co_return io_error(ec, "while waiting for a reply");
    reader_.feed(std::string_view(scratch_.data(), n));
  }
}

awaitable<std::string> smtp_session::ehlo(bool& fell_back, smtp_reply& reply) {
  fell_back = false;
  if (auto e = co_await write("EHLO " + cfg_.helo_name + "\r\n", cfg_.command_timeout); !e.empty())
    co_return e;
  if (auto e = co_await read_reply(reply, cfg_.command_timeout); !e.empty()) co_return e;
  if (reply.permanent()) {  // an old server: HELO, and no extensions
    fell_back = true;
    if (auto e = co_await write("HELO " + cfg_.helo_name + "\r\n", cfg_.command_timeout); !e.empty())
      co_return e;
    if (auto e = co_await read_reply(reply, cfg_.command_timeout); !e.empty()) co_return e;
    ext_ = ehlo_extensions{};
  } else if (reply.code == 250) {
    ext_ = ehlo_extensions::parse(reply);
  }
  co_return std::string();
}

awaitable<setup_result> smtp_session::setup() {
  // Resolve and connect within connect_timeout.
  boost::system::error_code ec;
  tcp::resolver resolver(stream_.get_executor());
  arm(cfg_.connect_timeout);
  auto endpoints = co_await resolver.async_resolve(cfg_.host, std::to_string(cfg_.port),
                                                   redirect_error(use_awaitable, ec));
  if (ec) {
    disarm();
    co_return retry("cannot resolve " + cfg_.host + ": " + ec.message());
  }
  co_await asio::async_connect(stream_.next_layer(), endpoints, redirect_error(use_awaitable, ec));
  disarm();
  if (ec) co_return retry(io_error(ec, "connecting to " + cfg_.host + ":" + std::to_string(cfg_.port)));
  stream_.next_layer().set_option(tcp::no_delay(true), ec);

  smtp_reply reply;
  if (auto e = co_await read_reply(reply, cfg_.connect_timeout); !e.empty())
    co_return retry(e + " (greeting)");
  if (reply.code != 220) co_return from_reply(reply, "greeting");

  bool helo = false;
  if (auto e = co_await ehlo(helo, reply); !e.empty()) co_return retry(e + " (EHLO)");
  if (!reply.positive()) co_return from_reply(reply, helo ? "HELO" : "EHLO");

  if (cfg_.starttls != starttls_mode::off && ext_.starttls) {
    setup_result tls = co_await start_tls();
    if (!tls.ok) co_return tls;
  } else if (cfg_.starttls == starttls_mode::required) {
    co_return fail("STARTTLS is required (starttls: required) but the server did not offer it");
  }
  if (!cfg_.username.empty()) {
    setup_result auth = co_await authenticate();
    if (!auth.ok) co_return auth;
  }
  co_return setup_result{true, RELAY_SUBMIT_ACCEPTED, {}};
}

awaitable<setup_result> smtp_session::start_tls() {
  smtp_reply reply;
  if (auto e = co_await write("STARTTLS\r\n", cfg_.command_timeout); !e.empty()) co_return retry(e);
  if (auto e = co_await read_reply(reply, cfg_.command_timeout); !e.empty()) co_return retry(e);
  if (reply.code != 220) co_return from_reply(reply, "STARTTLS");
  // Anything the server sent after its 220 arrived before encryption: an
  // injection attempt (CVE-2011-0411 style). Refuse it.
  if (!reader_.empty()) co_return fail("STARTTLS: the server sent plain-text data after its 220");

  SSL* ssl = stream_.native_handle();
  boost::system::error_code ec;
  asio::ip::make_address(cfg_.host, ec);
  if (ec) SSL_set_tlsext_host_name(ssl, cfg_.host.c_str());  // SNI for names, not addresses
  if (cfg_.tls_verify) {
    stream_.set_verify_mode(asio::ssl::verify_peer);
    stream_.set_verify_callback(asio::ssl::host_name_verification(cfg_.host));
  } else {
    stream_.set_verify_mode(asio::ssl::verify_none);
  }
  ec.clear();
  arm(cfg_.connect_timeout);
  co_await stream_.async_handshake(asio::ssl::stream_base::client, redirect_error(use_awaitable, ec));
  disarm();
  if (ec) {
    const long verify = SSL_get_verify_result(ssl);
    if (cfg_.tls_verify && verify != X509_V_OK) {
      co_return fail(std::string("TLS certificate verification failed: ") +
                     X509_verify_cert_error_string(verify));
    }
    if (ec.category() == asio::error::get_ssl_category() && !timed_out_)
      co_return fail("TLS handshake failed: " + ec.message());
    co_return retry(io_error(ec, "during the TLS handshake"));
  }
  tls_ = true;
  bool helo = false;
  if (auto e = co_await ehlo(helo, reply); !e.empty()) co_return retry(e + " (EHLO after STARTTLS)");
  if (!reply.positive()) co_return from_reply(reply, "EHLO after STARTTLS");
  co_return setup_result{true, RELAY_SUBMIT_ACCEPTED, {}};
}

awaitable<setup_result> smtp_session::authenticate() {
  if (!tls_ && !cfg_.allow_plain_auth) {
    co_return fail(
        "refusing AUTH over an unencrypted connection (the server did not offer STARTTLS; "
        "allow_plain_auth: true permits it)");
  }
  smtp_reply reply;
  const auto exchange = [&](std::string line) -> awaitable<std::string> {
    if (auto e = co_await write(line + "\r\n", cfg_.command_timeout); !e.empty()) co_return e;
    co_return co_await read_reply(reply, cfg_.command_timeout);
  };
  if (ext_.auth_plain) {
    std::string token;
    token += '\0';
    token += cfg_.username;
    token += '\0';
    token += cfg_.password;
    if (auto e = co_await exchange("AUTH PLAIN " + base64(token)); !e.empty()) co_return retry(e);
  } else if (ext_.auth_login) {
    if (auto e = co_await exchange("AUTH LOGIN"); !e.empty()) co_return retry(e);
    if (reply.code == 334) {
      if (auto e = co_await exchange(base64(cfg_.username)); !e.empty()) co_return retry(e);
      if (reply.code == 334) {
        if (auto e = co_await exchange(base64(cfg_.password)); !e.empty()) co_return retry(e);
      }
    }
  } else {
    co_return fail("the server offers neither AUTH PLAIN nor AUTH LOGIN");
  }
  if (reply.code != 235) co_return from_reply(reply, "AUTH");
  co_return setup_result{true, RELAY_SUBMIT_ACCEPTED, {}};
}

awaitable<delivery> smtp_session::deliver(const prepared_message& m, bool reset_first) {
  delivery out;
  const auto lost = [&](const std::string& e) {
    out.status = RELAY_SUBMIT_RETRY;
    out.connection_ok = false;
    out.text = out.body_sent
                   ? e + " after the message body was sent (the retry carries the same Message-ID)"
                   : e;
    return out;
  };
  const auto answered = [&](const smtp_reply& r) {
    out.status = r.permanent() ? RELAY_SUBMIT_FAILED : RELAY_SUBMIT_RETRY;
    out.text = reply_detail(r, m.recipient);
    if (r.code == 421) out.connection_ok = false;  // the server is closing the connection
    return out;
  };

  std::string mail = "MAIL FROM:<" + cfg_.from + ">";
  if (ext_.size_limit != 0) mail += " SIZE=" + std::to_string(m.size);
  mail += "\r\n";
  const std::string rcpt = "RCPT TO:<" + m.recipient + ">\r\n";
  smtp_reply rset_reply, mail_reply, rcpt_reply, data_reply;

  if (ext_.pipelining) {
    // RFC 2920: RSET, MAIL, RCPT and DATA in one write, then the replies in order.
    std::string group = reset_first ? "RSET\r\n" : "";
    group += mail;
    group += rcpt;
    group += "DATA\r\n";
    if (auto e = co_await write(group, cfg_.command_timeout); !e.empty()) co_return lost(e);
    if (reset_first) {
      if (auto e = co_await read_reply(rset_reply, cfg_.command_timeout); !e.empty()) co_return lost(e);
    }
    if (auto e = co_await read_reply(mail_reply, cfg_.command_timeout); !e.empty()) co_return lost(e);
    if (auto e = co_await read_reply(rcpt_reply, cfg_.command_timeout); !e.empty()) co_return lost(e);
    if (auto e = co_await read_reply(data_reply, cfg_.command_timeout); !e.empty()) co_return lost(e);
  } else {
    const auto command = [&](const std::string& line, smtp_reply& r) -> awaitable<std::string> {
      if (auto e = co_await write(line, cfg_.command_timeout); !e.empty()) co_return e;
      co_return co_await read_reply(r, cfg_.command_timeout);
    };
    if (reset_first) {
      if (auto e = co_await command("RSET\r\n", rset_reply); !e.empty()) co_return lost(e);
    }
    if (!reset_first || rset_reply.positive()) {
      if (auto e = co_await command(mail, mail_reply); !e.empty()) co_return lost(e);
      if (mail_reply.positive()) {
        if (auto e = co_await command(rcpt, rcpt_reply); !e.empty()) co_return lost(e);
        if (rcpt_reply.positive()) {
          if (auto e = co_await command("DATA\r\n", data_reply); !e.empty()) co_return lost(e);
        }
      }
    }
  }

  if (reset_first && !rset_reply.positive()) {
    // A server that refuses RSET is in a state we cannot reason about.
    answered(rset_reply);
    out.status = RELAY_SUBMIT_RETRY;
    out.connection_ok = false;
    co_return out;
  }
  const smtp_reply* refused = !mail_reply.positive()   ? &mail_reply
                              : !rcpt_reply.positive() ? &rcpt_reply
                              : nullptr;
  if (refused != nullptr) {
    if (data_reply.code == 354) {
      // A pipelining server that accepted DATA anyway: end the empty body.
      if (auto e = co_await write(".\r\n", cfg_.command_timeout); !e.empty()) co_return lost(e);
      smtp_reply ignored;
      if (auto e = co_await read_reply(ignored, cfg_.command_timeout); !e.empty()) co_return lost(e);
    }
    co_return answered(*refused);
  }
  if (data_reply.code != 354) co_return answered(data_reply);

  out.body_sent = true;
  if (auto e = co_await write(m.data, cfg_.command_timeout); !e.empty()) co_return lost(e);
  smtp_reply final_reply;
  if (auto e = co_await read_reply(final_reply, cfg_.command_timeout); !e.empty()) co_return lost(e);
  if (final_reply.code / 100 != 2) co_return answered(final_reply);
  out.status = RELAY_SUBMIT_ACCEPTED;
  out.text = reply_detail(final_reply, m.recipient);
  co_return out;
}

awaitable<void> smtp_session::quit() {
  if (auto e = co_await write("QUIT\r\n", cfg_.command_timeout); e.empty()) {
    smtp_reply reply;
    co_await read_reply(reply, std::min<duration>(cfg_.command_timeout, std::chrono::seconds(2)));
  }
  // No TLS close_notify round trip: the server closes after its 221 anyway.
  close();
}

}  // namespace relay::email_smtp
