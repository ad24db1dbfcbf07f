#include "daemon/metrics_text.h"

#include <cmath>
#include <cstdio>

namespace relay {
namespace {

void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
}

void append_value(std::string& out, double v) {
  char buf[64];
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (std::isnan(v)) {
    std::snprintf(buf, sizeof buf, "NaN");
  } else if (std::isinf(v)) {
    std::snprintf(buf, sizeof buf, v > 0 ? "+Inf" : "-Inf");
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  out += buf;
}

}  // namespace

std::string render_prometheus(std::span<const metric_family> families) {
  std::string out;
  for (const metric_family& f : families) {
    out += "# HELP " + f.name + " ";
    append_escaped(out, f.help, false);
    out += "\n# TYPE " + f.name + " " + f.type + "\n";
    for (const metric_sample& s : f.samples) {
      out += f.name;
      if (!s.labels.empty()) {
        out.push_back('{');
        for (size_t i = 0; i < s.labels.size(); ++i) {
          if (i > 0) out.push_back(',');
          out += s.labels[i].first + "=\"";
          append_escaped(out, s.labels[i].second, true);
          out.push_back('"');
        }
        out.push_back('}');
      }
      out.push_back(' ');
      append_value(out, s.value);
      out.push_back('\n');
    }
  }
  return out;
}

}  // namespace relay
