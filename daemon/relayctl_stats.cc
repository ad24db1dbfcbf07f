// relayctl stats --by, and what relayctl's engagement commands share.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "daemon/event_json.h"
#include "daemon/relayctl_commands.h"
#include "routing/duration.h"
#include "routing/engagement_cube.h"
#include "routing/timestamp.h"

namespace relay::ctl {
namespace {

std::string valid_dimensions() {
  std::string out;
  for (int i = 0;; ++i) {
    const std::string_view name = to_string(static_cast<engagement_dimension>(i));
    if (name == "?") break;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string count_text(uint64_t v) { return std::to_string(v); }

}  // namespace

// ---- shared ---------------------------------------------------------------------

int fail(std::string_view message) {
  std::fprintf(stderr, "relayctl: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

int bad_argument(std::string_view message) {
  fail(message);
  return 2;
}

result<std::unique_ptr<store>> open_secondary(const config& cfg) {
  // The secondary's own directory (RocksDB's info log) is this process's
  // alone: removed at exit, after every store opened here is closed.
  struct scratch_dir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("relayctl-" + std::to_string(::getpid()));
    ~scratch_dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const scratch_dir scratch;
  store_options so;
  so.secondary = true;
  so.secondary_dir = scratch.path.string();
  auto db = store::open(cfg.data_dir + "/db", so);
  if (!db) {
    return make_error(db.err().code, db.err().message + " (is data_dir " + cfg.data_dir +
                                         " right, and has relayd run there?)");
  }
  return db;
}

result<sys_time> parse_time_argument(std::string_view text, sys_time now) {
  if (auto d = parse_duration(text)) return now - *d;
  if (auto t = parse_rfc3339(text, timestamp_form::lenient)) return *t;
  return make_error(errc::invalid_argument,
                    "expected a duration back from now (7d, 12h, 30m), a date (2026-11-23) or an "
                    "RFC 3339 time (2026-11-23T09:00:00+09:00)");
}

std::string describe_time(sys_time t, sys_time now) {
  std::string out;
  append_rfc3339(out, to_unix_ms(t));
  int64_t s = (to_unix_ms(t) - to_unix_ms(now)) / 1000;
  if (s == 0) return out + " (now)";
  const bool future = s > 0;
  s = std::abs(s);
  std::string span;
  if (s >= 86400) {
    span = std::to_string(s / 86400) + "d " + std::to_string(s % 86400 / 3600) + "h";
  } else if (s >= 3600) {
    span = std::to_string(s / 3600) + "h " + std::to_string(s % 3600 / 60) + "m";
  } else if (s >= 60) {
    span = std::to_string(s / 60) + "m " + std::to_string(s % 60) + "s";
  } else {
    span = std::to_string(s) + "s";
  }
  return out + (future ? " (in " + span + ")" : " (" + span + " ago)");
}

std::string open_rate_text(uint64_t opened, uint64_t sent) {
  if (sent == 0) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f%% (%llu/%llu)", 100.0 * double(opened) / double(sent),
                static_cast<unsigned long long>(opened), static_cast<unsigned long long>(sent));
  return buf;
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, size_t text_columns) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  }
  const auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < width.size(); ++c) {
      const std::string& v = c < row.size() ? row[c] : std::string();
      if (c > 0) line += "  ";
      const std::string pad(width[c] - v.size(), ' ');
      line += c < text_columns ? v + pad : pad + v;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

// ---- stats --by ----------------------------------------------------------------

int stats_by(const config& cfg, const stats_options& o, sys_time now) {
  engagement_query q;
  if (!o.by.empty()) {
    std::string_view rest = o.by;
    while (true) {
      const size_t comma = rest.find(',');
      std::string_view name = rest.substr(0, comma);
      while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
      while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
      const auto d = parse_engagement_dimension(name);
      if (!d) {
        return bad_argument("--by: unknown dimension \"" + std::string(name) +
                            "\" (valid: " + valid_dimensions() + ")");
      }
      if (std::find(q.group_by.begin(), q.group_by.end(), *d) != q.group_by.end()) {
        return bad_argument("--by: " + std::string(name) + " given twice");
      }
      q.group_by.push_back(*d);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  q.company = o.company;
  q.carrier = o.carrier;
  if (!o.channel.empty()) {
    const auto ch = parse_channel(o.channel);
    if (!ch)
      return bad_argument("--channel: unknown channel \"" + o.channel +
                          "\" (expected rcs, sms or email)");
    q.ch = *ch;
  }
  if (!o.since.empty()) {
    auto t = parse_time_argument(o.since, now);
    if (!t) return bad_argument("--since: " + t.err().message);
    q.since = *t;
  }
  if (!o.until.empty()) {
    auto t = parse_time_argument(o.until, now);
    if (!t) return bad_argument("--until: " + t.err().message);
    q.until = *t;
  }
  if (q.since >= q.until) return bad_argument("--since is not before --until");

  auto db = open_secondary(cfg);
  if (!db) return fail(db.err().message);
  auto rows = query_engagement(**db, q);
  if (!rows) {
    return rows.err().code == errc::invalid_argument ? bad_argument(rows.err().message)
                                                     : fail(rows.err().message);
  }

  if (o.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const engagement_row& r : *rows) {
      nlohmann::ordered_json j;
      for (size_t i = 0; i < q.group_by.size(); ++i) {
        const std::string name(to_string(q.group_by[i]));
        if (r.key[i].empty()) {
          j[name] = nullptr;  // unknown (the user gave no such attribute, no time zone)
        } else {
          j[name] = r.key[i];
        }
      }
      for (int c = 0; c < kEngagementCounts; ++c) {
        const auto what = static_cast<engagement_count>(c);
        j[std::string(to_string(what))] = r.counts[what];
      }
      if (const auto rate = r.counts.open_rate()) {
        j["open_rate"] = *rate;
      } else {
        j["open_rate"] = nullptr;
      }
      out.push_back(std::move(j));
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }

  // The label column of the total line: the first dimension, or its own.
  const size_t dims = std::max<size_t>(q.group_by.size(), 1);
  std::vector<std::string> header;
  for (engagement_dimension d : q.group_by) header.emplace_back(to_string(d));
  if (q.group_by.empty()) header.emplace_back("");
  for (const char* h : {"sent", "delivered", "opened", "clicked", "failed", "open rate"})
    header.emplace_back(h);
  const auto cells = [&](std::vector<std::string> row, const engagement_counts& c) {
    for (engagement_count what :
         {engagement_count::sent, engagement_count::delivered, engagement_count::opened,
          engagement_count::clicked, engagement_count::failed}) {
      row.push_back(count_text(c[what]));
    }
    row.push_back(open_rate_text(c[engagement_count::opened], c[engagement_count::sent]));
    return row;
  };
  std::vector<std::vector<std::string>> table;
  engagement_counts total;
  for (const engagement_row& r : *rows) {
    total += r.counts;
    if (q.group_by.empty()) continue;  // the one row is the total
    std::vector<std::string> key;
    for (const std::string& k : r.key) key.push_back(k.empty() ? "?" : k);
    table.push_back(cells(std::move(key), r.counts));
  }
  std::vector<std::string> label(dims);
  label[0] = "total";
  table.push_back(cells(std::move(label), total));
  print_table(header, table, dims);
  return 0;
}

}  // namespace relay::ctl
