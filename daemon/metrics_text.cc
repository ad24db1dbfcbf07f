#include "daemon/metrics_text.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

namespace relay {
namespace {

void append_escaped(std::string& out, std::string_view text, bool quotes) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::trunc(v)) {
    // Integral: never "1e+06". Exact for counters up to 2^53.
    fmt::format_to(std::back_inserter(out), "{:.0f}", v == 0 ? 0.0 : v);
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

}  // namespace

std::string render_prometheus(std::span<const metric_family> families) {
  std::string out;
  for (const metric_family& f : families) {
    if (!f.help.empty()) {
      out += "# HELP ";
      out += f.name;
      out += ' ';
      append_escaped(out, f.help, false);
      out += '\n';
    }
    out += "# TYPE ";
    out += f.name;
    out += ' ';
    out += f.type.empty() ? "untyped" : f.type;
    out += '\n';
    for (const metric_sample& s : f.samples) {
      out += f.name;
      if (!s.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < s.labels.size(); ++i) {
          if (i > 0) out += ',';
          out += s.labels[i].first;
          out += "=\"";
          append_escaped(out, s.labels[i].second, true);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      append_value(out, s.value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace relay
