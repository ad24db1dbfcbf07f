#pragma once
// Prometheus text exposition format 0.0.4 for relayd's /metrics. A few dozen
// series rendered on demand do not need prometheus-cpp's registry and
// threads (docs/decisions/0010).

#include <span>
#include <string>
#include <utility>
#include <vector>

namespace relay {

struct metric_sample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

struct metric_family {
  std::string name, help, type;  // type: "counter" | "gauge"
  std::vector<metric_sample> samples;
};

std::string render_prometheus(std::span<const metric_family> families);

}  // namespace relay
