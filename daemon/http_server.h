#pragma once
// relay's HTTP/1.1 server (Boost.Beast): /metrics, /healthz, /readyz,
// carrier webhooks and tracking URLs (see http_routes.h). Its own threads run
// an io_context; the handler runs on them, possibly concurrently, and must
// be thread-safe. Keep-alive, a body limit (413), an idle timeout and a
// connection cap protect relay from slow or abusive clients.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/result.h"

namespace relay {

// Borrowed by the handler for the duration of the call.
struct http_request {
  std::string_view method, path, query;                      // path without the query; query without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string_view body;
  std::string_view header(std::string_view lower_name) const;  // "" when absent
};

struct http_response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Location, Cache-Control, ...)
};

using http_handler = std::function<http_response(const http_request&)>;

struct http_server_options {
  size_t threads = 2;
  size_t max_body_bytes = 1 << 20;
  std::chrono::milliseconds idle_timeout{30000};
  size_t max_connections = 4096;
};

class http_server {
 public:
  // Binds "host:port" (port 0: a free port) and starts serving. The error
  // names the address and the system's reason.
  static result<std::unique_ptr<http_server>> start(std::string_view listen, http_handler handler,
                                                    http_server_options options = {});
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  uint16_t port() const;
  // Closes the listener and every connection and joins the threads; after it
  // returns the handler is never called again. Idempotent.
  void stop();

  struct impl;  // defined in http_server.cc (its connections reach it)

 private:
  explicit http_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace relay
