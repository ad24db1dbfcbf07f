// rbm_fast_server: a minimal single-threaded epoll HTTP/1.1 server for the
// rcs_rbm benchmark, so that the peer is not what is being measured. It
// answers agentMessages.create like the API does on success (200 with the
// message's name and sendTime) for every POST .../agentMessages?messageId=..,
// keeps connections alive, and does nothing else: no auth check, no body
// validation, no duplicate detection (tests/peers/rbm_server.js does those).
//
//   rbm_fast_server [--port N]     prints the port on its first stdout line

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

namespace {

struct connection {
  std::string in, out;
  bool want_out = false;  // registered for EPOLLOUT
};

// Handles every complete request in c.in; appends the answers to c.out.
// Returns false on a request it cannot parse.
bool serve(connection& c) {
  size_t consumed = 0;
  for (;;) {
    const std::string_view rest(c.in.data() + consumed, c.in.size() - consumed);
    const size_t head_end = rest.find("\r\n\r\n");
    if (head_end == std::string_view::npos) break;
    const std::string_view head = rest.substr(0, head_end);
    size_t length = 0;
    for (size_t at = head.find("\r\n"); at != std::string_view::npos;
         at = head.find("\r\n", at + 2)) {
      const std::string_view line = head.substr(at + 2, head.find("\r\n", at + 2) - at - 2);
      if (line.size() > 15 && strncasecmp(line.data(), "content-length:", 15) == 0)
        length = std::strtoul(std::string(line.substr(15)).c_str(), nullptr, 10);
    }
    if (rest.size() < head_end + 4 + length) break;
    // "POST /v1/phones/{msisdn}/agentMessages?messageId=ID&agentId=A HTTP/1.1"
    const size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return false;
    const std::string_view target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    const size_t q = target.find('?');
    const std::string_view path = target.substr(0, q);
    std::string_view id;
    if (q != std::string_view::npos) {
      const std::string_view query = target.substr(q + 1);
      const size_t at = query.find("messageId=");
      if (at != std::string_view::npos) {
        id = query.substr(at + 10);
        id = id.substr(0, id.find('&'));
      }
    }
    std::string body;
    if (path.size() > 4 && id.size() > 0) {
      body = "{\"name\":\"" + std::string(path.substr(4)) + "/" + std::string(id) +
             "\",\"sendTime\":\"2026-01-01T00:00:00.000000Z\"}";
    } else {
      body = "{}";
    }
    c.out +=
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    consumed += head_end + 4 + length;
  }
  c.in.erase(0, consumed);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[++i]);
  }
  std::signal(SIGPIPE, SIG_IGN);
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 512) != 0) {
    std::perror("rbm_fast_server: bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("%d\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  std::unordered_map<int, connection> conns;
  epoll_event events[256];
  char buf[65536];
  for (;;) {
    const int n = ::epoll_wait(ep, events, 256, -1);
    for (int k = 0; k < n; ++k) {
      const int fd = events[k].data.fd;
      if (fd == listener) {
        for (;;) {
          const int c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          conns[c];
        }
        continue;
      }
      connection& c = conns[fd];
      bool close_it = false;
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r <= 0) {
          close_it = true;
        } else {
          c.in.append(buf, static_cast<size_t>(r));
          close_it = !serve(c);
        }
      }
      if (!close_it && !c.out.empty()) {
        const ssize_t w = ::write(fd, c.out.data(), c.out.size());
        if (w > 0) c.out.erase(0, static_cast<size_t>(w));
      }
      if (!close_it && c.want_out != !c.out.empty()) {  // re-register only on change
        c.want_out = !c.out.empty();
        epoll_event cev{};
        cev.events = EPOLLIN | (c.want_out ? static_cast<uint32_t>(EPOLLOUT) : 0u);
        cev.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
      }
      if (close_it) {
        ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        conns.erase(fd);
      }
    }
  }
}
