#include "plugins/rcs_rbm/http_pool.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <optional>

namespace relay::rcs_rbm {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string url_encode(std::string_view s, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' ||
        keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// One keep-alive connection. Owned by http_pool::all_ and by its pending
// handlers; I/O thread only.
class http_connection : public std::enable_shared_from_this<http_connection> {
 public:
  explicit http_connection(http_pool& pool) : pool_(pool), resolver_(pool.io_) {}

  void start(http_call&& call) {
    call_ = std::move(call);
    retried_ = false;
    send();
  }

  void close() {
    connected_ = false;
    beast::error_code ignored;
    if (tls_) beast::get_lowest_layer(*tls_).socket().close(ignored);
    if (plain_) plain_->socket().close(ignored);
    resolver_.cancel();
  }

 private:
  beast::tcp_stream& lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

  void send() {
    req_ = {};
    req_.method(call_.method);
    req_.target(call_.target);
    req_.version(11);
    req_.set(http::field::host, pool_.host_header_);
    req_.set(http::field::user_agent, "relay-rcs_rbm/1.0");
    if (!call_.bearer.empty()) req_.set(http::field::authorization, "Bearer " + call_.bearer);
    if (!call_.body.empty() || call_.method == http::verb::post) {
      req_.set(http::field::content_type, "application/json; charset=utf-8");
      req_.body() = call_.body;
    }
    req_.keep_alive(true);
    req_.prepare_payload();
    deadline_ = std::chrono::steady_clock::now() + pool_.timeout_;
    reused_ = connected_;
    if (connected_) {
      lowest().expires_at(deadline_);
      write();
    } else {
      connect();
    }
  }

  void connect() {
    if (pool_.tls_ != nullptr) {
      tls_.emplace(pool_.io_, *pool_.tls_);
      plain_.reset();
      SSL_set_tlsext_host_name(tls_->native_handle(), pool_.api_.host.c_str());
      tls_->set_verify_callback(asio::ssl::host_name_verification(pool_.api_.host));
    } else {
      plain_.emplace(pool_.io_);
    }
    lowest().expires_at(deadline_);
    resolver_.async_resolve(
        pool_.api_.host, pool_.api_.port,
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
          if (ec) return self->finish_error(ec, "resolve");
          self->lowest().async_connect(r, [self](beast::error_code ec, const tcp::endpoint&) {
            if (ec) return self->finish_error(ec, "connect");
            ++self->pool_.opened_;
            self->lowest().socket().set_option(tcp::no_delay(true));
            if (!self->tls_) {
              self->connected_ = true;
              return self->write();
            }
            self->tls_->async_handshake(asio::ssl::stream_base::client,
                                        [self](beast::error_code ec) {
                                          if (ec) return self->finish_error(ec, "TLS handshake");
                                          self->connected_ = true;
                                          self->write();
                                        });
          });
        });
  }

  void write() {
    const auto on_write = [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->finish_error(ec, "write");
      self->read();
    };
    if (tls_) {
      http::async_write(*tls_, req_, on_write);
    } else {
      http::async_write(*plain_, req_, on_write);
    }
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(1 << 20);
    const auto on_read = [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->finish_error(ec, "read");
      self->finish_ok();
    };
    if (tls_) {
      http::async_read(*tls_, buffer_, *parser_, on_read);
    } else {
      http::async_read(*plain_, buffer_, *parser_, on_read);
    }
  }

  void finish_ok() {
    auto& res = parser_->get();
    http_result r;
    r.status = static_cast<int>(res.result_int());
    r.body = std::move(res.body());
    if (!res.keep_alive()) close();
    lowest().expires_never();
    complete(std::move(r));
  }

  void finish_error(beast::error_code ec, const char* step) {
    const bool nothing_received = !parser_ || !parser_->got_some();
    const bool stale = reused_ && !retried_ && nothing_received && ec != beast::error::timeout &&
                       ec != asio::error::operation_aborted;
    close();
    buffer_.clear();
    if (stale && !pool_.stopped_) {  // the server closed an idle connection: try a fresh one
      retried_ = true;
      parser_.reset();
      send();
      return;
    }
    http_result r;
    if (ec == beast::error::timeout) {
      r.timed_out = true;
      r.error = "no answer within " + duration_json(pool_.timeout_);
    } else {
      r.error = std::string(step) + ": " + ec.message();
    }
    complete(std::move(r));
  }

  void complete(http_result&& r) {
    parser_.reset();
    http_handler done = std::move(call_.done);
    call_ = {};
    auto self = shared_from_this();
    pool_.idle(self);
    if (done) done(std::move(r));
    pool_.pump();
  }

  http_pool& pool_;
  tcp::resolver resolver_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  http_call call_;
  std::chrono::steady_clock::time_point deadline_;
  bool connected_ = false;
  bool reused_ = false;
  bool retried_ = false;
};

http_pool::http_pool(asio::io_context& io, endpoint api, size_t connections, millis timeout,
                     asio::ssl::context* tls)
    : io_(io),
      api_(std::move(api)),
      host_header_(api_.port == (api_.tls ? "443" : "80") ? api_.host
                                                          : api_.host + ":" + api_.port),
      timeout_(timeout),
      tls_(api_.tls ? tls : nullptr) {
  for (size_t k = 0; k < connections; ++k) {
    all_.push_back(std::make_shared<http_connection>(*this));
    idle_.push_back(all_.back());
  }
}

http_pool::~http_pool() { shutdown(); }

void http_pool::request(http_call&& call) {
  if (stopped_) {
    http_result r;
    r.error = "shutting down";
    if (call.done) call.done(std::move(r));
    return;
  }
  if (!idle_.empty() && waiting_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    c->start(std::move(call));
    return;
  }
  waiting_.push_back(std::move(call));
  pump();
}

void http_pool::idle(const std::shared_ptr<http_connection>& c) {
  if (!stopped_) idle_.push_back(c);
}

void http_pool::pump() {
  while (!stopped_ && !idle_.empty() && !waiting_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    http_call call = std::move(waiting_.front());
    waiting_.pop_front();
    c->start(std::move(call));
  }
}

void http_pool::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  std::deque<http_call> waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& call : waiting) {
    http_result r;
    r.error = "shutting down";
    if (call.done) call.done(std::move(r));
  }
  for (auto& c : all_) c->close();
  idle_.clear();
}

}  // namespace relay::rcs_rbm
