#pragma once
// relay's URL space (DESIGN §10) on top of http_server:
//   GET  /healthz                  200 while the process runs
//   GET  /readyz                   200 once started and until stopping, else 503
//   GET  /metrics                  Prometheus text
//   POST /hooks/{carrier}/{channel} the carrier plug-in's on_webhook decides the status
//   GET  /t/o/{token}              open pixel: records an open, answers a 1x1 GIF
//   GET  /t/c/{token}              click: records a click, redirects to the signed URL
// A forged token is answered 404 and records nothing; relay never redirects
// to a URL it did not sign.

#include <functional>
#include <string>
#include <string_view>

#include "daemon/connector.h"
#include "daemon/http_server.h"
#include "routing/tracking_token.h"

namespace relay {

struct http_routes_config {
  // The connector of /hooks/{carrier}/{channel}, or null. Thread-safe (fixed after start).
  std::function<connector*(std::string_view carrier, std::string_view channel)> find_connector;
  const tracking_signer* signer = nullptr;                 // null: /t/* answer 404
  std::function<void(const tracking_claim&)> on_tracking;  // thread-safe
  std::function<std::string()> metrics_text;               // thread-safe
  std::function<bool()> ready;
};

http_handler make_http_routes(http_routes_config config);

}  // namespace relay
