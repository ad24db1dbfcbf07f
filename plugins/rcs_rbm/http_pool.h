#pragma once
// An HTTP/1.1 client for one API endpoint on Boost.Beast: a pool of up to N
// keep-alive connections (http or https), one request at a time on each (no
// pipelining), requests beyond N wait in FIFO order. A request that fails on
// a reused connection before any byte of the answer arrived (the server had
// closed the idle connection) is sent once more on a fresh connection; that
// is safe for the RBM API because every call is idempotent by its ids.
//
// Threads: everything runs on the io_context's one thread: construct, call
// request() and shutdown() there; handlers are called there.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plugins/rcs_rbm/rbm_config.h"

namespace relay::rcs_rbm {

struct http_result {
  int status = 0;  // 0: no HTTP answer (see error)
  std::string body;
  std::string error;  // connection error or timeout, for a detail
  bool timed_out = false;
};
using http_handler = std::function<void(http_result&&)>;

struct http_call {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;  // path and query, already percent-encoded
  std::string body;    // JSON; empty: no body
  std::string bearer;  // Authorization: Bearer <bearer>
  http_handler done;
};

class http_connection;

class http_pool {
 public:
  // `tls` (may be null for http) must outlive the pool.
  http_pool(boost::asio::io_context& io, endpoint api, size_t connections, millis timeout,
            boost::asio::ssl::context* tls);
  ~http_pool();
  http_pool(const http_pool&) = delete;
  http_pool& operator=(const http_pool&) = delete;

  void request(http_call&& call);
  // Fails every waiting call and closes every connection; the calls in
  // flight complete with an error. No request() after it.
  void shutdown();

  size_t connections_opened() const { return opened_; }
  size_t waiting() const { return waiting_.size(); }

 private:
  friend class http_connection;
  void idle(const std::shared_ptr<http_connection>& c);  // c finished a call
  void pump();

  boost::asio::io_context& io_;
  const endpoint api_;
  const std::string host_header_;
  const millis timeout_;
  boost::asio::ssl::context* tls_;
  std::vector<std::shared_ptr<http_connection>> all_;
  std::vector<std::shared_ptr<http_connection>> idle_;
  std::deque<http_call> waiting_;
  size_t opened_ = 0;
  bool stopped_ = false;
};

// Percent-encodes everything but RFC 3986 unreserved characters (and the
// characters in `keep`).
std::string url_encode(std::string_view s, std::string_view keep = {});

}  // namespace relay::rcs_rbm
