#pragma once
// Prometheus text exposition format 0.0.4 for /metrics.
//
// relay renders its few families itself rather than linking prometheus-cpp
// (decision 0010): the numbers live in the core thread's state and are
// snapshotted into these structs, so a registry of its own would duplicate them.

#include <span>
#include <string>
#include <utility>
#include <vector>

namespace relay {

struct metric_sample {
  std::vector<std::pair<std::string, std::string>> labels;  // (name, value), rendered in this order
  double value = 0;
};

struct metric_family {
  std::string name, help, type;  // type: "counter" | "gauge"
  std::vector<metric_sample> samples;
};

// One "# HELP" (when help is non-empty) and one "# TYPE" line per family,
// then one line per sample. Label values escape backslash, double quote and
// newline; help escapes backslash and newline. Integral values print
// without exponent or fraction; NaN and infinities as NaN, +Inf, -Inf; other
// values in shortest round-trip form.
std::string render_prometheus(std::span<const metric_family> families);

}  // namespace relay
