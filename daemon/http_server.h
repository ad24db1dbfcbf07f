#pragma once
// A small HTTP/1.1 server (Boost.Beast) for /metrics, /healthz, /readyz,
// carrier webhooks and tracking links (DESIGN §10, decision 0010).
//
// Threads: `threads` io_context threads of its own. The handler runs on one of
// them, possibly concurrently with itself; it may block briefly (a plug-in's
// on_webhook), which holds up only that connection.
//
// Lifetime: stop() (and the destructor) closes the listener and every
// connection, then joins the threads; when it returns the handler is not
// running and will never be called again, so the handler may capture
// references to objects that outlive stop(). Never call stop() from inside the
// handler (it would join its own thread).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/result.h"

namespace relay {

// Views into the connection's buffers: valid only during the handler call.
struct http_request {
  std::string_view method, path, query;  // path without the query, query without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string_view body;
  std::string_view header(std::string_view lower_name) const;  // "" when absent
};

struct http_response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra headers (Location, Cache-Control, ...).
  std::vector<std::pair<std::string, std::string>> headers;
};

// Runs on an HTTP thread, possibly concurrently. A HEAD request reaches it
// with method "HEAD"; the server sends the response's headers (and its
// Content-Length) without the body. An exception becomes a 500 (logged).
using http_handler = std::function<http_response(const http_request&)>;

struct http_server_options {
  size_t threads = 2;
  size_t max_body_bytes = 1 << 20;  // larger requests get 413
  // Bounds each read of a whole request (headers and body, or the idle wait
  // for the next one on a keep-alive connection) and each response write.
  std::chrono::milliseconds idle_timeout{30000};
  size_t max_connections = 4096;        // beyond it a new connection gets 503 and is closed
  size_t max_header_bytes = 16 * 1024;  // larger headers get 431
};

class http_server {
 public:
  // Binds "host:port" (port 0 = any free port), starts `threads` threads.
  // Error names the address and the OS reason.
  static result<std::unique_ptr<http_server>> start(std::string_view listen, http_handler handler,
                                                    http_server_options options = {});
  uint16_t port() const;
  // Closes the acceptor and connections, joins the threads; idempotent;
  // called by the destructor.
  void stop();
  ~http_server();

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  size_t connections_for_test() const;  // open connections right now

  struct impl;

 private:
  explicit http_server(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace relay
