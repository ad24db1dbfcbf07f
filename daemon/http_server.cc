#include "daemon/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace relay {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string_view http_request::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

namespace {

class session;

}  // namespace

struct http_server::impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  http_handler handler;
  http_server_options options;
  std::vector<std::thread> threads;
  std::atomic<size_t> connections{0};
  std::mutex mu;
  std::set<std::shared_ptr<session>> sessions;  // open connections, closed by stop()
  bool stopped = false;

  void accept();
};

namespace {

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, http_server::impl& server) : stream_(std::move(socket)), server_(server) {}

  void run() { read(); }
  // Only once the server's threads are joined (nothing else touches the socket).
  void close_now() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(server_.options.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::bad_descriptor) {
      return finish();
    }
    if (ec == bhttp::error::body_limit) {
      linger_ = true;  // the client is still sending: read it away after the answer
      return reply_error(413, "request body too large\n");
    }
    if (ec) return reply_error(400, "malformed request\n");
    handle(parser_->release());
  }

  void handle(bhttp::request<bhttp::string_body> req) {
    http_request r;
    const std::string target(req.target());
    const size_t q = target.find('?');
    const std::string method(req.method_string());
    r.method = method;
    r.path = std::string_view(target).substr(0, q);
    if (q != std::string::npos) r.query = std::string_view(target).substr(q + 1);
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    r.body = req.body();
    const bool head = req.method() == bhttp::verb::head;
    if (head) r.method = "GET";
    http_response out;
    try {
      out = server_.handler(r);
    } catch (const std::exception& e) {
      spdlog::error("http: handler failed on {} {}: {}", std::string(req.method_string()),
                    std::string(r.path), e.what());
      out = {500, "text/plain; charset=utf-8", "internal error\n", {}};
    }
    write(std::move(out), req.version(), req.keep_alive(), head);
  }

  void reply_error(int status, std::string body) {
    write({status, "text/plain; charset=utf-8", std::move(body), {}}, 11, false, false);
  }

  void write(http_response out, unsigned version, bool keep_alive, bool head) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(out.status),
                                                                       version);
    res->set(bhttp::field::server, "relayd");
    res->set(bhttp::field::content_type, out.content_type);
    for (const auto& [k, v] : out.headers) res->set(k, v);
    res->keep_alive(keep_alive);
    const size_t length = out.body.size();
    if (!head) res->body() = std::move(out.body);
    res->prepare_payload();
    if (head) res->content_length(length);
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
      if (!ec && self->linger_) return self->drain();
      if (ec || !keep_alive) return self->finish();
      self->read();
    });
  }

  // Lingering close: closing with unread input would reset the connection
  // and could destroy the answer before the client reads it.
  void drain() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->finish();
      self->drain();
    });
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
    std::lock_guard lock(server_.mu);
    server_.sessions.erase(shared_from_this());
    --server_.connections;
  }

  beast::tcp_stream stream_;
  http_server::impl& server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool finished_ = false;
  bool linger_ = false;
  char scratch_[16384];
};

}  // namespace

void http_server::impl::accept() {
  acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (connections.load() >= options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);  // over the cap: refuse rather than queue
      } else {
        auto s = std::make_shared<session>(std::move(socket), *this);
        {
          std::lock_guard lock(mu);
          if (stopped) return;
          sessions.insert(s);
        }
        ++connections;
        s->run();
      }
    }
    accept();
  });
}

http_server::http_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

http_server::~http_server() { stop(); }

result<std::unique_ptr<http_server>> http_server::start(std::string_view listen, http_handler handler,
                                                        http_server_options options) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    return make_error(errc::invalid_argument, std::string(listen) + ": expected host:port");
  }
  std::string host(listen.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port(listen.substr(colon + 1));
  auto p = std::make_unique<impl>();
  p->handler = std::move(handler);
  p->options = options;
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error(errc::invalid_argument, std::string(listen) + ": not an IP address: " + ec.message());
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(std::stoi(port)));
  p->acceptor.open(endpoint.protocol(), ec);
  if (!ec) p->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) p->acceptor.bind(endpoint, ec);
  if (!ec) p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(errc::io_error, std::string(listen) + ": cannot listen: " + ec.message());
  p->accept();
  for (size_t i = 0; i < std::max<size_t>(1, options.threads); ++i) {
    p->threads.emplace_back([io = &p->io] { io->run(); });
  }
  return std::unique_ptr<http_server>(new http_server(std::move(p)));
}

uint16_t http_server::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void http_server::stop() {
  if (!impl_) return;
  std::set<std::shared_ptr<session>> open;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
    open = impl_->sessions;
  }
  impl_->io.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  // No thread runs handlers any more: close what is open, so clients see the
  // connection end now rather than when the io_context is destroyed.
  beast::error_code ec;
  impl_->acceptor.close(ec);
  for (const auto& s : open) s->close_now();
  std::lock_guard lock(impl_->mu);
  impl_->sessions.clear();
}

}  // namespace relay
