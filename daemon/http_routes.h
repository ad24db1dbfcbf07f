#pragma once
// relay's URL space (DESIGN §10) as an http_handler:
//   GET  /healthz                      200 "ok"
//   GET  /readyz                       200 "ready" | 503 "starting" / "stopping"
//   GET  /metrics                      Prometheus text 0.0.4
//   POST /hooks/{carrier}/{channel}[/...]  the connector's plug-in on_webhook; its status
//   GET  /t/o/{token}                  open pixel (1x1 GIF), counts a verified open
//   GET  /t/c/{token}                  302 to the signed URL, counts a verified click
// HEAD is answered like GET (the server drops the body) but counts nothing:
// link scanners probe with HEAD, a person's mail client and browser use GET.
//
// Threads: the handler runs on the HTTP server's threads, concurrently; every
// callback in the config must be thread-safe. It captures the config by
// value; whatever the callbacks and connectors refer to must outlive the
// http_server (stop() joins the threads that call them).

#include <functional>
#include <string>
#include <string_view>

#include "daemon/connector.h"
#include "daemon/http_server.h"
#include "routing/tracking_token.h"

namespace relay {

struct http_routes_config {
  // /hooks/{carrier}/{channel}: the connector, or null. Thread-safe (the set is fixed after start).
  std::function<connector*(std::string_view carrier, std::string_view channel)> find_connector;
  const tracking_signer* signer = nullptr;  // null: /t/* answer 404
  // `location`: the value of `location_header` (sanitized; empty when absent).
  std::function<void(const tracking_claim&, std::string_view location)>
      on_tracking;                            // thread-safe; relayd posts it to its core thread
  std::string location_header;                // lower-case; empty: none
  std::function<std::string()> metrics_text;  // thread-safe; the /metrics body
  std::function<bool()> ready;                // /readyz
  // Optional: true once shutdown has begun, so /readyz says "stopping"
  // rather than "starting" when ready() is false.
  std::function<bool()> stopping;
};

http_handler make_http_routes(http_routes_config config);

// The transparent 1x1 GIF /t/o/ answers with (43 bytes).
std::string_view tracking_pixel_gif();

}  // namespace relay
