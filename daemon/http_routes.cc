#include "daemon/http_routes.h"

#include <memory>
#include <vector>

namespace relay {
namespace {

// The smallest transparent GIF (1x1, 43 bytes).
constexpr unsigned char kPixel[] = {0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00,
                                    0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02,
                                    0x44, 0x01, 0x00, 0x3b};

http_response text(int status, std::string body) { return {status, "text/plain; charset=utf-8", std::move(body), {}}; }

relay_str to_relay(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

http_handler make_http_routes(http_routes_config config) {
  auto cfg = std::make_shared<const http_routes_config>(std::move(config));
  return [cfg](const http_request& r) -> http_response {
    const std::string_view path = r.path;
    if (path == "/healthz") return text(200, "ok\n");
    if (path == "/readyz") {
      return cfg->ready && cfg->ready() ? text(200, "ready\n") : text(503, "not ready\n");
    }
    if (path == "/metrics") {
      http_response out = text(200, cfg->metrics_text ? cfg->metrics_text() : "");
      out.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return out;
    }
    if (path.starts_with("/hooks/")) {
      const std::string_view rest = path.substr(7);
      const size_t slash = rest.find('/');
      if (slash == std::string_view::npos || rest.find('/', slash + 1) != std::string_view::npos) {
        return text(404, "no such webhook\n");
      }
      connector* c = cfg->find_connector ? cfg->find_connector(rest.substr(0, slash), rest.substr(slash + 1)) : nullptr;
      if (c == nullptr) return text(404, "no such webhook\n");
      if (r.method != "POST") {
        http_response out = text(405, "POST only\n");
        out.headers.emplace_back("Allow", "POST");
        return out;
      }
      std::vector<relay_kv> headers;
      headers.reserve(r.headers.size());
      for (const auto& [k, v] : r.headers) headers.push_back({to_relay(k), to_relay(v)});
      const relay_http_request req{to_relay(r.method), to_relay(r.path), to_relay(r.query),
                                   headers.data(),     headers.size(),   to_relay(r.body)};
      const auto status = c->webhook(req);
      if (!status) return text(404, "no such webhook\n");
      return text(*status, "");
    }
    const bool open = path.starts_with("/t/o/");
    if (open || path.starts_with("/t/c/")) {
      if (cfg->signer == nullptr || r.method != "GET") return text(404, "not found\n");
      auto claim = cfg->signer->verify(path.substr(5));
      if (!claim || (claim->kind == tracking_kind::open) != open) return text(404, "not found\n");
      if (cfg->on_tracking) cfg->on_tracking(*claim);
      http_response out;
      out.headers.emplace_back("Cache-Control", "no-store, max-age=0");
      if (open) {
        out.content_type = "image/gif";
        out.body.assign(reinterpret_cast<const char*>(kPixel), sizeof kPixel);
      } else {
        out.status = 302;
        out.headers.emplace_back("Location", claim->url);
      }
      return out;
    }
    return text(404, "not found\n");
  };
}

}  // namespace relay
