#include "daemon/http_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace relay {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

std::string lower_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool header_safe(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// The route part of a path for log lines: "/t/c/<token>" -> "/t/c", so
// tokens (which carry URLs) and webhook paths never reach the log in full.
std::string_view log_path(std::string_view path) {
  size_t slashes = 0;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '/' && ++slashes == 3) return path.substr(0, i);
  }
  return path.substr(0, std::min<size_t>(path.size(), 64));
}

constexpr std::chrono::milliseconds kMaxDrain{2000};
constexpr size_t kMaxDrainBytes = 1 << 20;

}  // namespace

std::string_view http_request::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

class http_session;

struct http_server::impl {
  http_handler handler;
  http_server_options options;
  net::io_context ioc;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::steady_timer accept_retry{acceptor.get_executor()};
  uint16_t port = 0;
  std::vector<std::thread> threads;

  std::mutex mu;  // guards stopping, stopped and sessions (any thread)
  bool stopping = false;
  bool stopped = false;
  std::unordered_map<http_session*, std::weak_ptr<http_session>> sessions;

  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
};

// One connection. Every member is used on the connection's strand only; the
// server reaches it only through post() (stop) and the registry (under mu).
class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(http_server::impl& server, tcp::socket&& socket)
      : server_(server), stream_(std::move(socket)) {}

  ~http_session() {
    std::lock_guard lock(server_.mu);
    server_.sessions.erase(this);
  }

  void start(bool busy) {
    net::dispatch(stream_.get_executor(), [self = shared_from_this(), busy] {
      if (busy) {
        self->reply_busy();
      } else {
        self->read_request();
      }
    });
  }

  // Any thread: closes the socket on the strand; pending operations end with
  // operation_aborted and the session goes away when the last one has run.
  void close_from_outside() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    stream_.expires_after(server_.options.idle_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    const auto& req = parser_->get();
    if (!parser_->is_done() && beast::iequals(req[http::field::expect], "100-continue")) {
      // Clients that wait for it (curl does, for bodies over 1 KiB) would stall.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->close();
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->on_read_error(ec);
                       self->on_request();
                     });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) return reply_error(413, "request body too large\n");
    if (ec == http::error::header_limit) return reply_error(431, "request headers too large\n");
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) return close();
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      return reply_error(400, "malformed request\n");
    }
    close();  // timeout, reset, aborted by stop(): nobody to answer
  }

  void on_request() {
    const auto& req = parser_->get();
    http_request request;
    request.method = sv(req.method_string());
    const std::string_view target = sv(req.target());
    const size_t q = target.find('?');
    request.path = target.substr(0, q);
    request.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
    request.headers.reserve(std::distance(req.begin(), req.end()));
    for (const auto& field : req) {
      request.headers.emplace_back(lower_copy(sv(field.name_string())),
                                   std::string(sv(field.value())));
    }
    request.body = req.body();

    http_response response;
    try {
      response = server_.handler(request);
    } catch (const std::exception& e) {
      spdlog::error("http: {} {}: handler failed: {}", request.method, log_path(request.path),
                    e.what());
      response = http_response{500, "text/plain; charset=utf-8", "internal error\n", {}};
    } catch (...) {
      spdlog::error("http: {} {}: handler failed with a non-standard exception", request.method,
                    log_path(request.path));
      response = http_response{500, "text/plain; charset=utf-8", "internal error\n", {}};
    }
    const bool head = req.method() == http::verb::head;
    send(std::move(response), req.version(), req.keep_alive(), head);
  }

  void send(http_response&& response, unsigned version, bool keep_alive, bool head) {
    if (response.status < 100 || response.status > 599) {
      spdlog::warn("http: handler answered status {}; sending 500", response.status);
      response = http_response{500, "text/plain; charset=utf-8", "internal error\n", {}};
    }
    res_ = {};
    res_.version(version);
    res_.result(static_cast<unsigned>(response.status));
    res_.set(http::field::server, "relay");
    if (!response.content_type.empty() && header_safe(response.content_type)) {
      res_.set(http::field::content_type, response.content_type);
    }
    for (const auto& [name, value] : response.headers) {
      if (name.empty() || !header_safe(name) || !header_safe(value)) {
        spdlog::warn("http: dropping a response header with a control character");
        continue;
      }
      res_.insert(name, value);
    }
    const int s = response.status;
    const bool no_body = (s >= 100 && s < 200) || s == 204 || s == 304;
    if (!no_body) res_.body() = std::move(response.body);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();  // Content-Length of the full body, HEAD included
    if (head) res_.body().clear();
    write_response();
  }

  void write_response() {
    stream_.expires_after(server_.options.idle_timeout);
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      if (!self->res_.keep_alive()) return self->linger();
      self->read_request();
    });
  }

  // A response to a request we could not read, then close.
  void reply_error(int status, std::string body) {
    send(http_response{status, "text/plain; charset=utf-8", std::move(body), {}}, 11,
         /*keep_alive=*/false, /*head=*/false);
  }

  void reply_busy() {
    res_ = {};
    res_.version(11);
    res_.result(http::status::service_unavailable);
    res_.set(http::field::server, "relay");
    res_.set(http::field::content_type, "text/plain; charset=utf-8");
    res_.set(http::field::retry_after, "1");
    res_.body() = "too many connections\n";
    res_.keep_alive(false);
    res_.prepare_payload();
    write_response();
  }

  // After the last response: send FIN, then read (and drop) what the client
  // still sends until it closes, so an unread request body does not turn our
  // close into a reset that destroys the response in flight. Bounded in time
  // and bytes.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(
        std::min<std::chrono::milliseconds>(server_.options.idle_timeout, kMaxDrain));
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(drain_buf_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxDrainBytes) return self->close();
                              self->drain();
                            });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  http_server::impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::array<char, 4096> drain_buf_{};
  size_t drained_ = 0;
};

void http_server::impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

// On the acceptor's strand.
void http_server::impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    // EMFILE and friends: try again shortly rather than spinning.
    spdlog::warn("http: accept failed: {}", ec.message());
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](beast::error_code ec) {
      if (!ec && acceptor.is_open()) accept();
    });
    return;
  }
  std::shared_ptr<http_session> session;
  bool busy = false;
  {
    std::lock_guard lock(mu);
    if (stopping) return;  // the socket closes as it goes out of scope
    busy = sessions.size() >= options.max_connections;
    session = std::make_shared<http_session>(*this, std::move(socket));
    sessions.emplace(session.get(), session);
  }
  if (busy)
    spdlog::warn("http: {} connections open; refusing one with 503", options.max_connections);
  session->start(busy);
  accept();
}

http_server::http_server(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

http_server::~http_server() { stop(); }

uint16_t http_server::port() const { return impl_->port; }

size_t http_server::connections_for_test() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sessions.size();
}

result<std::unique_ptr<http_server>> http_server::start(std::string_view listen,
                                                        http_handler handler,
                                                        http_server_options options) {
  auto fail = [&](std::string_view what, const beast::error_code& ec) {
    return make_error(errc::io_error, "http listen " + std::string(listen) + ": " +
                                          std::string(what) + ec.message());
  };
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    return make_error(errc::invalid_argument,
                      "http listen " + std::string(listen) + ": expected host:port");
  }
  std::string host(listen.substr(0, colon));
  const std::string_view port_text = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  unsigned port = 0;
  const auto [end, perr] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || perr != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return make_error(errc::invalid_argument,
                      "http listen " + std::string(listen) + ": port must be a number 0-65535");
  }
  if (options.threads == 0) options.threads = 1;
  if (options.max_connections == 0) options.max_connections = 1;

  auto s = std::make_unique<impl>();
  s->handler = std::move(handler);
  s->options = options;

  beast::error_code ec;
  tcp::endpoint endpoint;
  const auto address = net::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, static_cast<uint16_t>(port));
  } else {
    tcp::resolver resolver(s->ioc);
    auto results = resolver.resolve(host, std::string(port_text), ec);
    if (ec || results.empty()) return fail("cannot resolve host: ", ec);
    endpoint = results.begin()->endpoint();
  }
  s->acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("", ec);
  s->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("", ec);
  s->acceptor.bind(endpoint, ec);
  if (ec) return fail("", ec);
  s->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("", ec);
  s->port = s->acceptor.local_endpoint(ec).port();

  impl& state = *s;
  net::dispatch(state.acceptor.get_executor(), [&state] { state.accept(); });
  for (size_t i = 0; i < options.threads; ++i) {
    state.threads.emplace_back([&state] {
      for (;;) {
        try {
          state.ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: unexpected exception on an HTTP thread: {}", e.what());
        }
      }
    });
  }
  return std::unique_ptr<http_server>(new http_server(std::move(s)));
}

void http_server::stop() {
  impl& s = *impl_;
  std::vector<std::shared_ptr<http_session>> live;
  {
    std::lock_guard lock(s.mu);
    if (s.stopped) return;
    s.stopped = true;
    s.stopping = true;
    for (auto& [ptr, weak] : s.sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  net::post(s.acceptor.get_executor(), [&s] {
    beast::error_code ignored;
    s.acceptor.close(ignored);
    s.accept_retry.cancel();
  });
  for (auto& session : live) session->close_from_outside();
  live.clear();  // the sessions end on their strands once their operations are aborted
  // With the acceptor and every connection closed the io_context runs out of
  // work: run() returns on every thread once the last handler has finished.
  for (auto& t : s.threads) {
    if (t.joinable()) t.join();
  }
  s.threads.clear();
}

}  // namespace relay
