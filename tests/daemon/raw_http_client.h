#pragma once
// A raw HTTP/1.1 client over a POSIX socket for relay's HTTP tests: the test
// writes exact bytes and parses what comes back with Beast's parser.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <optional>
#include <string>
#include <string_view>

namespace relay::test {

namespace http = boost::beast::http;
using response = http::response<http::string_body>;

// A raw HTTP/1.1 client over a POSIX socket: the test writes exact bytes and
// parses what comes back. Reads give up after 10 s (SO_RCVTIMEO), so a
// broken server fails the test instead of hanging it.
class raw_client {
 public:
  explicit raw_client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~raw_client() { ::close(fd_); }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One response; nullopt on close, timeout or garbage.
  std::optional<response> read(bool head = false) {
    http::response_parser<http::string_body> p;
    p.eager(true);
    p.body_limit(64 << 20);
    if (head) p.skip(true);
    for (;;) {
      if (!buffer_.empty()) {
        boost::beast::error_code ec;
        const size_t n = p.put(boost::asio::buffer(buffer_.data(), buffer_.size()), ec);
        buffer_.erase(0, n);
        if (p.is_done()) return p.release();
        if (ec && ec != http::error::need_more) return std::nullopt;
        if (n > 0) continue;
      }
      if (!fill()) return std::nullopt;
    }
  }

  std::optional<response> request(std::string_view method, std::string_view target,
                                  std::string_view body = {}, std::string_view extra_headers = {}) {
    std::string req = std::string(method) + " " + std::string(target) +
                      " HTTP/1.1\r\nHost: relay.test\r\n" + std::string(extra_headers);
    if (!body.empty() || method == "POST") {
      req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    req += "\r\n";
    req += body;
    if (!send(req)) return std::nullopt;
    return read(method == "HEAD");
  }

  // True when the server closed the connection (EOF or reset) with nothing
  // more to read; false if data arrived or the read timed out.
  bool closed_by_server() {
    if (!buffer_.empty()) return false;
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  std::string& pending() { return buffer_; }

 private:
  bool fill() {
    char tmp[16384];
    const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buffer_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

inline std::string field(const response& r, std::string_view name) {
  auto it = r.find(boost::beast::string_view(name.data(), name.size()));
  return it == r.end() ? std::string() : std::string(it->value());
}

}  // namespace relay::test
