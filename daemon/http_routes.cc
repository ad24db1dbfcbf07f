#include "daemon/http_routes.h"

#include <cctype>

#include <spdlog/spdlog.h>

#include <memory>
#include <utility>
#include <vector>

namespace relay {
namespace {

constexpr unsigned char kGif[] = {0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80,
                                  0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04,
                                  0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01,
                                  0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};
static_assert(sizeof(kGif) == 43);

constexpr const char* kNoStore = "no-store, max-age=0";

http_response text(int status, std::string body) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http_response not_found() { return text(404, "not found\n"); }

http_response method_not_allowed(std::string allow) {
  http_response r = text(405, "method not allowed\n");
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

bool is_get(std::string_view method) { return method == "GET" || method == "HEAD"; }

// Redirect only to what tracked_content signs: absolute http(s) URLs that
// cannot split the Location header.
bool redirectable(std::string_view url) {
  const auto starts = [&](std::string_view p) {
    if (url.size() < p.size()) return false;
    for (size_t i = 0; i < p.size(); ++i) {
      char c = url[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != p[i]) return false;
    }
    return true;
  };
  if (!starts("http://") && !starts("https://")) return false;
  for (char c : url) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

class routes {
 public:
  explicit routes(http_routes_config config) : c_(std::move(config)) {}

  http_response operator()(const http_request& req) const {
    const std::string_view path = req.path;
    if (path == "/healthz") return simple(req, [] { return text(200, "ok\n"); });
    if (path == "/readyz") return simple(req, [this] { return readyz(); });
    if (path == "/metrics") return simple(req, [this] { return metrics(); });
    if (path.starts_with("/hooks/")) return hook(req, path.substr(7));
    if (path.starts_with("/t/o/")) return tracking(req, tracking_kind::open, path.substr(5));
    if (path.starts_with("/t/c/")) return tracking(req, tracking_kind::click, path.substr(5));
    return not_found();
  }

 private:
  template <class F>
  http_response simple(const http_request& req, F&& answer) const {
    if (!is_get(req.method)) return method_not_allowed("GET, HEAD");
    return answer();
  }

  http_response readyz() const {
    if (!c_.ready || c_.ready()) return text(200, "ready\n");
    return text(503, c_.stopping && c_.stopping() ? "stopping\n" : "starting\n");
  }

  http_response metrics() const {
    http_response r = text(200, c_.metrics_text ? c_.metrics_text() : std::string());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }

  // rest: "{carrier}/{channel}" or "{carrier}/{channel}/more/path".
  http_response hook(const http_request& req, std::string_view rest) const {
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) return not_found();
    const std::string_view carrier = rest.substr(0, slash);
    std::string_view channel = rest.substr(slash + 1);
    channel = channel.substr(0, channel.find('/'));
    if (channel.empty() || !c_.find_connector) return not_found();
    connector* conn = c_.find_connector(carrier, channel);
    if (conn == nullptr) return not_found();
    if (req.method != "POST") return method_not_allowed("POST");

    std::vector<relay_kv> headers;
    headers.reserve(req.headers.size());
    for (const auto& [name, value] : req.headers) {  // names are lower-case already
      headers.push_back(relay_kv{{name.data(), name.size()}, {value.data(), value.size()}});
    }
    relay_http_request hr{};
    hr.method = {req.method.data(), req.method.size()};
    hr.path = {req.path.data(), req.path.size()};
    hr.query = {req.query.data(), req.query.size()};
    hr.headers = headers.data();
    hr.header_count = headers.size();
    hr.body = {req.body.data(), req.body.size()};
    const std::optional<int> status = conn->webhook(hr);
    if (!status) return not_found();  // the plug-in takes no webhooks
    int s = *status;
    if (s < 100 || s > 599) {
      spdlog::warn("{}: on_webhook returned {}; answering 500", conn->name(), s);
      s = 500;
    }
    spdlog::debug("{}: webhook answered {}", conn->name(), s);
    return text(s, "");
  }

  // The reader's location from the configured header: a short code of
  // letters, digits and '-' (e.g. "JP", "US-CA"); anything else is dropped.
  std::string_view location_of(const http_request& req) const {
    if (c_.location_header.empty()) return {};
    for (const auto& [name, value] : req.headers) {
      if (name != c_.location_header) continue;
      if (value.empty() || value.size() > 16) return {};
      for (char ch : value) {
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-') return {};
      }
      return value;
    }
    return {};
  }

  http_response tracking(const http_request& req, tracking_kind kind,
                         std::string_view token) const {
    if (c_.signer == nullptr) return not_found();
    if (!is_get(req.method)) return method_not_allowed("GET, HEAD");
    auto claim = c_.signer->verify(token);
    if (!claim || claim->kind != kind) {
      spdlog::debug("http: rejected a {} token", kind == tracking_kind::open ? "open" : "click");
      return not_found();
    }
    if (kind == tracking_kind::click && !redirectable(claim->url)) return not_found();
    if (req.method == "GET" && c_.on_tracking) c_.on_tracking(*claim, location_of(req));

    http_response r;
    r.headers.emplace_back("Cache-Control", kNoStore);
    if (kind == tracking_kind::open) {
      r.status = 200;
      r.content_type = "image/gif";
      r.body.assign(tracking_pixel_gif());
    } else {
      r.status = 302;
      r.body.clear();
      r.headers.emplace_back("Location", std::move(claim->url));
    }
    return r;
  }

  http_routes_config c_;
};

}  // namespace

std::string_view tracking_pixel_gif() {
  return {reinterpret_cast<const char*>(kGif), sizeof(kGif)};
}

http_handler make_http_routes(http_routes_config config) {
  // shared_ptr: std::function copies its target, the config is not cheap to copy.
  auto r = std::make_shared<const routes>(std::move(config));
  return [r](const http_request& req) { return (*r)(req); };
}

}  // namespace relay
