// Loads relay.yaml with yaml-cpp and validates every key.
//
// yaml-cpp reports problems by throwing, and so does this loader internally
// (config_error, carrying the node's position and key path): exceptions never
// leave this file. load_config/parse_config catch them at the boundary and
// turn each into one line, "FILE:LINE: KEY.PATH: what is wrong".
//
// yaml-cpp's Node::operator= rebinds shared node data in surprising ways, so
// nodes are only ever copy-constructed here, never assigned.

#include "daemon/config.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <string_view>

namespace relay {
namespace {

// Thrown inside the loader only; caught in parse_config.
struct config_error {
  YAML::Mark mark;
  std::string path;  // "kafka.brokers", "carriers[1].channels.fax"; empty for the whole file
  std::string what;
};

[[noreturn]] void fail(const YAML::Mark& mark, std::string path, std::string what) {
  throw config_error{mark, std::move(path), std::move(what)};
}

std::string join_key(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out = path;
  out += '.';
  out += key;
  return out;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

// A value and where it is: `mark` is the line an error about it should name.
struct value_ref {
  YAML::Node node;
  YAML::Mark mark;
  std::string path;
};

// For a map entry, errors about a scalar value name the value's line; errors
// about a null, map or list value name the key's line (yaml-cpp places a
// null value, and a block list or map, on the line after the key).
YAML::Mark entry_mark(const YAML::Node& key, const YAML::Node& value) {
  if (value.IsScalar() && !value.Mark().is_null()) return value.Mark();
  return key.Mark();
}

struct map_entry {
  std::string key;
  YAML::Node key_node;
  value_ref value;
};

// Settings and lists may nest, and YAML aliases can make a node contain
// itself (`a: &x [*x]`); every recursion below stops at this depth.
constexpr int kMaxDepth = 32;

[[noreturn]] void fail_too_deep(const YAML::Mark& mark, const std::string& path) {
  fail(mark, path,
       "nested more than " + std::to_string(kMaxDepth) +
           " levels deep (or an alias refers to itself)");
}

bool is_merge_key(const YAML::Node& key) {
  return key.IsScalar() && key.Tag() == "?" && key.Scalar() == "<<";
}

// The entries of a YAML map in document order. A null node (a section whose
// keys are all commented out) reads as an empty map. Rejects non-map nodes,
// non-scalar keys, duplicate keys and, when `known` is non-empty, unknown keys.
// Understands YAML merge keys (`<<: *anchor`, `<<: [*a, *b]`), which yaml-cpp
// 0.7 leaves to the application: keys written in the map win over merged
// ones, earlier merged maps over later ones; merged entries follow the
// written ones.
class map_view {
 public:
  map_view(const value_ref& where, std::initializer_list<std::string_view> known = {},
           int depth = 0)
      : mark_(where.mark), path_(where.path), known_(known) {
    add(where, true, depth);
  }

  const value_ref* find(std::string_view key) const {
    for (const map_entry& e : entries_) {
      if (e.key == key) return &e.value;
    }
    return nullptr;
  }
  const std::vector<map_entry>& entries() const { return entries_; }
  const YAML::Mark& mark() const { return mark_; }
  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const { return join_key(path_, key); }

 private:
  // `written`: the map itself (duplicates are errors), else a merged map
  // (keys already present are skipped).
  void add(const value_ref& where, bool written, int depth) {
    if (depth > kMaxDepth) fail_too_deep(where.mark, where.path);
    const YAML::Node& node = where.node;
    if (node.IsNull()) return;
    if (!node.IsMap()) fail(where.mark, where.path, "must be a map (key: value)");
    std::vector<value_ref> merges;
    std::map<std::string, int, std::less<>> first_line;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key_node(it->first);
      const YAML::Node value(it->second);
      if (!key_node.IsScalar()) fail(key_node.Mark(), path_, "keys must be plain names");
      std::string key = key_node.Scalar();
      std::string path = join_key(path_, key);
      if (is_merge_key(key_node)) {
        if (value.IsSequence()) {
          for (auto m = value.begin(); m != value.end(); ++m)
            merges.push_back(value_ref{*m, key_node.Mark(), path});
        } else {
          merges.push_back(value_ref{value, key_node.Mark(), path});
        }
        continue;
      }
      if (auto seen = first_line.find(key); seen != first_line.end()) {
        fail(key_node.Mark(), path,
             "duplicate key (first at line " + std::to_string(seen->second + 1) + ")");
      }
      first_line.emplace(key, key_node.Mark().line);
      if (!written && find(key) != nullptr) continue;
      check_known(key_node, key, path);
      entries_.push_back(map_entry{std::move(key), key_node,
                                   value_ref{value, entry_mark(key_node, value), std::move(path)}});
    }
    for (const value_ref& m : merges) {
      if (!m.node.IsMap()) fail(m.mark, m.path, "a merge key (<<) needs a map or a list of maps");
      add(m, false, depth + 1);
    }
  }

  void check_known(const YAML::Node& key_node, const std::string& key,
                   const std::string& path) const {
    if (known_.empty()) return;
    for (std::string_view k : known_) {
      if (k == key) return;
    }
    std::string expected;
    for (std::string_view k : known_) {
      if (!expected.empty()) expected += ", ";
      expected += k;
    }
    fail(key_node.Mark(), path, "unknown key (expected one of: " + expected + ")");
  }

  YAML::Mark mark_;
  std::string path_;
  std::vector<std::string_view> known_;  // views of string literals
  std::vector<map_entry> entries_;
};

std::vector<value_ref> list_items(const value_ref& v) {
  if (!v.node.IsSequence()) fail(v.mark, v.path, "must be a list");
  std::vector<value_ref> out;
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const YAML::Node item(*it);
    const YAML::Mark mark = item.IsNull() || item.Mark().is_null() ? v.mark : item.Mark();
    out.push_back(value_ref{item, mark, v.path + "[" + std::to_string(i) + "]"});
  }
  return out;
}

// ---- scalars ---------------------------------------------------------------

std::string as_string(const value_ref& v) {
  if (!v.node.IsScalar()) fail(v.mark, v.path, "must be a string");
  return v.node.Scalar();
}

std::string as_nonempty_string(const value_ref& v) {
  std::string s = as_string(v);
  if (s.empty()) fail(v.mark, v.path, "must not be empty");
  return s;
}

template <class T>
T as_positive(const value_ref& v, T max = std::numeric_limits<T>::max()) {
  const std::string what = "must be a positive integer";
  if (!v.node.IsScalar()) fail(v.mark, v.path, what);
  const std::string& s = v.node.Scalar();
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec == std::errc::invalid_argument || end != s.data() + s.size())
    fail(v.mark, v.path, what);
  if (ec == std::errc::result_out_of_range || n > static_cast<uint64_t>(max)) {
    fail(v.mark, v.path, what + " no greater than " + std::to_string(max));
  }
  if (n == 0) fail(v.mark, v.path, what);
  return static_cast<T>(n);
}

bool as_bool(const value_ref& v) {
  if (v.node.IsScalar()) {
    std::string s = v.node.Scalar();
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  fail(v.mark, v.path, "must be true or false");
}

double as_fraction(const value_ref& v) {
  const std::string what = "must be a number from 0 to 1";
  if (!v.node.IsScalar()) fail(v.mark, v.path, what);
  const std::string& s = v.node.Scalar();
  if (s.empty()) fail(v.mark, v.path, what);
  errno = 0;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(d) || d < 0.0 || d > 1.0) {
    fail(v.mark, v.path, what);
  }
  return d;
}

std::chrono::milliseconds as_duration(const value_ref& v) {
  const std::string what = "must be a duration such as 250ms, 30s, 10m, 2h or 1d";
  if (!v.node.IsScalar()) fail(v.mark, v.path, what);
  result<std::chrono::milliseconds> d = parse_duration(v.node.Scalar());
  if (!d)
    fail(v.mark, v.path, "invalid duration " + quoted(v.node.Scalar()) + ": " + d.err().message);
  return *d;
}

channel as_channel(const value_ref& v) {
  if (!v.node.IsScalar()) fail(v.mark, v.path, "must be a channel name (rcs, sms or email)");
  std::optional<channel> c = parse_channel(v.node.Scalar());
  if (!c)
    fail(v.mark, v.path,
         "unknown channel " + quoted(v.node.Scalar()) + " (expected rcs, sms or email)");
  return *c;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// [A-Za-z0-9._-]+: carrier ids end up in file paths, URLs (/hooks/{carrier}/...)
// and Kafka event fields, so they stay plain.
bool is_plain_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

// ---- settings flattening ---------------------------------------------------

void append_json_string(std::string_view s, std::string& out) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;  // UTF-8 passes through
        }
    }
  }
  out += '"';
}

// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

// A list (or anything inside one) as compact JSON. Plain (unquoted) scalars
// that read as JSON numbers or true/false/null stay bare; everything else,
// including any quoted scalar, becomes a JSON string.
void append_json(const YAML::Node& node, const YAML::Mark& mark, const std::string& path,
                 std::string& out, int depth) {
  if (depth > kMaxDepth) fail_too_deep(mark, path);
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out += "null";
      return;
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "?" && (is_json_number(s) || s == "true" || s == "false" || s == "null")) {
        out += s;
      } else {
        append_json_string(s, out);
      }
      return;
    }
    case YAML::NodeType::Sequence: {
      out += '[';
      bool first = true;
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!first) out += ',';
        first = false;
        const YAML::Node item(*it);
        append_json(item, item.Mark().is_null() ? mark : item.Mark(), path, out, depth + 1);
      }
      out += ']';
      return;
    }
    case YAML::NodeType::Map: {
      out += '{';
      bool first = true;
      for (auto it = node.begin(); it != node.end(); ++it) {
        const YAML::Node key(it->first);
        const YAML::Node value(it->second);
        if (!key.IsScalar()) fail(key.Mark(), path, "keys must be plain names");
        if (!first) out += ',';
        first = false;
        append_json_string(key.Scalar(), out);
        out += ':';
        append_json(value, entry_mark(key, value), path, out, depth + 1);
      }
      out += '}';
      return;
    }
  }
}

using settings_list = std::vector<std::pair<std::string, std::string>>;

// One entry of a channel map, flattened: nested maps become "a.b" keys,
// lists JSON text, scalars their text, a null value "".
void flatten_setting(const std::string& key, const value_ref& v, settings_list& out,
                     std::map<std::string, int, std::less<>>& seen, int depth) {
  if (depth > kMaxDepth) fail_too_deep(v.mark, v.path);
  if (v.node.IsMap()) {
    map_view nested(v, {}, depth);
    for (const map_entry& e : nested.entries())
      flatten_setting(key + "." + e.key, e.value, out, seen, depth + 1);
    return;
  }
  if (auto it = seen.find(key); it != seen.end()) {
    fail(v.mark, v.path,
         "setting " + quoted(key) + " is given twice (first at line " +
             std::to_string(it->second + 1) + ")");
  }
  seen.emplace(key, v.mark.line);
  std::string text;
  if (v.node.IsSequence()) {
    append_json(v.node, v.mark, v.path, text, depth);
  } else if (v.node.IsScalar()) {
    text = v.node.Scalar();
  }
  out.emplace_back(key, std::move(text));
}

// ---- sections --------------------------------------------------------------

std::string as_topic(const value_ref& v) {
  std::string s = as_nonempty_string(v);
  bool ok = s.size() <= 249 && s != "." && s != "..";
  for (char c : s) ok = ok && is_name_char(c);
  if (!ok)
    fail(v.mark, v.path, "must be a Kafka topic name ([A-Za-z0-9._-], at most 249 characters)");
  return s;
}

void read_topics(const value_ref& where, kafka_topics& t) {
  map_view m(where, {"jobs", "registry", "events", "dlq", "bids"});
  struct slot {
    std::string_view key;
    std::string* field;
  };
  const slot slots[] = {{"jobs", &t.jobs},
                        {"registry", &t.registry},
                        {"events", &t.events},
                        {"dlq", &t.dlq},
                        {"bids", &t.bids}};
  for (const slot& s : slots) {
    if (const value_ref* v = m.find(s.key)) *s.field = as_topic(*v);
  }
  // Relay reads jobs and registry and writes events, dlq and bids: two roles
  // sharing a topic would feed relay its own output.
  for (size_t i = 0; i < std::size(slots); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (*slots[i].field != *slots[j].field) continue;
      const value_ref* v = m.find(slots[i].key);
      if (v == nullptr) v = m.find(slots[j].key);
      const std::string path = v != nullptr ? v->path : m.path_of(slots[i].key);
      fail(v != nullptr ? v->mark : m.mark(), path,
           "topic " + quoted(*slots[i].field) + " is used for both " + std::string(slots[j].key) +
               " and " + std::string(slots[i].key));
    }
  }
}

void read_kafka(const value_ref& where, kafka_config& k) {
  map_view m(where, {"brokers", "group_id", "topics", "properties", "embedded_partitions"});
  if (const value_ref* v = m.find("brokers")) k.brokers = as_nonempty_string(*v);
  if (const value_ref* v = m.find("group_id")) k.group_id = as_nonempty_string(*v);
  if (const value_ref* v = m.find("topics")) read_topics(*v, k.topics);
  if (const value_ref* v = m.find("embedded_partitions"))
    k.embedded_partitions = as_positive<int>(*v, 1024);
  if (const value_ref* v = m.find("properties")) {
    // Any librdkafka property, passed on as text; librdkafka validates names
    // and values when relayd creates its clients.
    map_view props(*v);
    for (const map_entry& e : props.entries()) {
      if (e.key == "bootstrap.servers" || e.key == "metadata.broker.list") {
        fail(e.key_node.Mark(), e.value.path, "set kafka.brokers instead");
      }
      if (e.key == "group.id") fail(e.key_node.Mark(), e.value.path, "set kafka.group_id instead");
      if (!e.value.node.IsScalar()) {
        fail(e.value.mark, e.value.path, "must be a single value (a string, number or true/false)");
      }
      k.properties.emplace_back(e.key, e.value.node.Scalar());
    }
  }
}

void read_http(const value_ref& where, http_config& h) {
  map_view m(where, {"listen"});
  const value_ref* v = m.find("listen");
  if (v == nullptr) return;
  const std::string what = "must be host:port, e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080";
  std::string s = as_nonempty_string(*v);
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) fail(v->mark, v->path, what);
  std::string_view host(s.data(), colon);
  std::string_view port(s.data() + colon + 1, s.size() - colon - 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') fail(v->mark, v->path, what);
  } else if (host.find(':') != std::string_view::npos) {
    fail(v->mark, v->path, what + " (put an IPv6 address in brackets)");
  }
  unsigned n = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n > 65535) {
    fail(v->mark, v->path, "port " + quoted(port) + " must be a number from 0 to 65535");
  }
  h.listen = std::move(s);
}

connector_config read_connector(const value_ref& where) {
  if (!where.node.IsMap())
    fail(where.mark, where.path, "must be a map with at least `plugin: NAME`");
  map_view m(where);
  connector_config c;
  const value_ref* plugin = m.find("plugin");
  if (plugin == nullptr)
    fail(m.mark(), m.path_of("plugin"), "is required (the plug-in that serves this channel)");
  c.plugin = as_nonempty_string(*plugin);
  // The name becomes <plugins_dir>/<plugin>.so: no directories, no hidden files.
  if (!is_plain_name(c.plugin) || c.plugin.front() == '.') {
    fail(plugin->mark, plugin->path, "must be a plug-in name ([A-Za-z0-9._-], no path)");
  }
  std::map<std::string, int, std::less<>> seen;
  for (const map_entry& e : m.entries()) {
    if (e.key == "plugin") continue;
    flatten_setting(e.key, e.value, c.settings, seen, 0);
  }
  return c;
}

carrier_config read_carrier(const value_ref& where, std::map<std::string, int, std::less<>>& ids) {
  if (!where.node.IsMap()) fail(where.mark, where.path, "must be a map with `id` and `channels`");
  map_view m(where, {"id", "channels"});
  carrier_config c;
  const value_ref* id = m.find("id");
  if (id == nullptr) fail(m.mark(), m.path_of("id"), "is required");
  c.id = as_nonempty_string(*id);
  if (!is_plain_name(c.id))
    fail(id->mark, id->path, "must use only letters, digits, '.', '_' and '-'");
  if (auto it = ids.find(c.id); it != ids.end()) {
    fail(id->mark, id->path,
         "duplicate carrier id " + quoted(c.id) + " (first at line " +
             std::to_string(it->second + 1) + ")");
  }
  ids.emplace(c.id, id->mark.line);

  const value_ref* channels = m.find("channels");
  if (channels == nullptr)
    fail(m.mark(), m.path_of("channels"), "is required (at least one of rcs, sms, email)");
  if (!channels->node.IsMap())
    fail(channels->mark, channels->path, "must be a map of channel name to connector");
  map_view cm(*channels);
  for (const map_entry& e : cm.entries()) {
    std::optional<channel> ch = parse_channel(e.key);
    if (!ch) fail(e.key_node.Mark(), e.value.path, "unknown channel (expected rcs, sms or email)");
    c.channels[static_cast<int>(*ch)] = read_connector(e.value);
  }
  if (cm.entries().empty())
    fail(channels->mark, channels->path, "must name at least one channel (rcs, sms or email)");
  return c;
}

void read_carriers(const value_ref& where, std::vector<carrier_config>& out) {
  if (where.node.IsNull()) return;  // reported below as "at least one carrier"
  std::map<std::string, int, std::less<>> ids;
  for (const value_ref& item : list_items(where)) out.push_back(read_carrier(item, ids));
}

void read_default_order(const value_ref& where, std::vector<channel>& out) {
  std::vector<value_ref> items = list_items(where);
  if (items.empty()) fail(where.mark, where.path, "must name at least one channel");
  std::vector<channel> order;
  for (const value_ref& item : items) {
    channel c = as_channel(item);
    for (channel seen : order) {
      if (seen == c)
        fail(item.mark, item.path, "channel " + quoted(to_string(c)) + " is listed twice");
    }
    order.push_back(c);
  }
  out = std::move(order);
}

void read_retry(const value_ref& where, retry_policy& r) {
  map_view m(where, {"initial_backoff", "max_backoff", "max_attempts", "jitter"});
  const value_ref* initial = m.find("initial_backoff");
  const value_ref* max = m.find("max_backoff");
  if (initial != nullptr) {
    r.initial_backoff = as_duration(*initial);
    if (r.initial_backoff.count() == 0)
      fail(initial->mark, initial->path, "must be greater than 0");
  }
  if (max != nullptr) r.max_backoff = as_duration(*max);
  if (const value_ref* v = m.find("max_attempts")) r.max_attempts = as_positive<int>(*v);
  if (const value_ref* v = m.find("jitter")) r.jitter = as_fraction(*v);
  if (r.max_backoff < r.initial_backoff) {
    const value_ref* at = max != nullptr ? max : initial;
    fail(at->mark, m.path_of("max_backoff"), "must not be shorter than retry.initial_backoff");
  }
}

void read_limits(const value_ref& where, limits_config& l) {
  map_view m(where, {"max_job_bytes", "max_content_bytes", "max_users_per_job", "connector_queue",
                     "pending_jobs_per_partition", "fanout_chunk", "outbox_after"});
  if (const value_ref* v = m.find("max_job_bytes")) l.job.max_job_bytes = as_positive<size_t>(*v);
  if (const value_ref* v = m.find("max_content_bytes"))
    l.job.max_content_bytes = as_positive<size_t>(*v);
  if (const value_ref* v = m.find("max_users_per_job")) l.job.max_users = as_positive<size_t>(*v);
  if (const value_ref* v = m.find("connector_queue")) l.connector_queue = as_positive<size_t>(*v);
  if (const value_ref* v = m.find("pending_jobs_per_partition"))
    l.pending_jobs_per_partition = as_positive<size_t>(*v);
  if (const value_ref* v = m.find("fanout_chunk")) l.fanout_chunk = as_positive<size_t>(*v);
  if (const value_ref* v = m.find("outbox_after")) l.outbox_after = as_duration(*v);
}

void read_tracking(const value_ref& where, tracking_config& t) {
  map_view m(where, {"base_url", "secret", "location_header"});
  if (const value_ref* v = m.find("location_header")) {
    std::string h = as_nonempty_string(*v);
    for (char& c : h) {
      const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      if (!ok) fail(v->mark, v->path, "must be an HTTP header name such as cf-ipcountry");
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    t.location_header = std::move(h);
  }
  if (const value_ref* v = m.find("base_url")) {
    std::string s = as_nonempty_string(*v);
    if (!s.starts_with("http://") && !s.starts_with("https://")) {
      fail(v->mark, v->path, "must be an http:// or https:// URL");
    }
    while (s.ends_with('/')) s.pop_back();
    t.base_url = std::move(s);
  }
  if (const value_ref* v = m.find("secret")) {
    std::string s = as_nonempty_string(*v);
    if (s.size() < 16) fail(v->mark, v->path, "must be at least 16 characters");
    t.secret = std::move(s);
  }
}

throttle_caps read_caps(const value_ref& where) {
  map_view m(where, {"daily", "weekly"});
  throttle_caps caps;
  if (const value_ref* v = m.find("daily")) caps.daily = as_positive<uint32_t>(*v);
  if (const value_ref* v = m.find("weekly")) caps.weekly = as_positive<uint32_t>(*v);
  return caps;
}

double as_non_negative_number(const value_ref& v) {
  const std::string what = "must be a number of 0 or more";
  if (!v.node.IsScalar() || v.node.Scalar().empty()) fail(v.mark, v.path, what);
  const std::string& s = v.node.Scalar();
  errno = 0;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(d) || d < 0.0) fail(v.mark, v.path, what);
  return d;
}

void read_engagement(const value_ref& where, engagement_config& e) {
  map_view m(where, {"segment", "prior_weight", "lookback", "hourly_buckets_for", "daily_buckets_for",
                     "quiet_period", "throttle"});
  if (const value_ref* v = m.find("segment")) {
    e.segment.clear();
    for (const value_ref& item : list_items(*v)) {
      std::string a = as_string(item);
      if (a != "gender" && a != "age_band" && a != "region" && a != "occupation") {
        fail(item.mark, item.path, "unknown attribute " + quoted(a) + " (expected gender, age_band, region or occupation)");
      }
      if (std::find(e.segment.begin(), e.segment.end(), a) != e.segment.end()) {
        fail(item.mark, item.path, "duplicate attribute " + quoted(a));
      }
      e.segment.push_back(std::move(a));
    }
  }
  if (const value_ref* v = m.find("prior_weight")) e.prior_weight = as_non_negative_number(*v);
  if (const value_ref* v = m.find("lookback")) e.lookback = as_duration(*v);
  if (const value_ref* v = m.find("hourly_buckets_for")) e.hourly_buckets_for = as_duration(*v);
  if (const value_ref* v = m.find("daily_buckets_for")) e.daily_buckets_for = as_duration(*v);
  if (e.daily_buckets_for < e.hourly_buckets_for) {
    fail(m.mark(), m.path_of("daily_buckets_for"), "must not be shorter than engagement.hourly_buckets_for");
  }
  if (const value_ref* v = m.find("quiet_period")) {
    map_view q(*v, {"before", "after"});
    if (const value_ref* d = q.find("before")) e.quiet_before = as_duration(*d);
    if (const value_ref* d = q.find("after")) e.quiet_after = as_duration(*d);
  }
  if (const value_ref* v = m.find("throttle")) {
    map_view t(*v, {"daily", "weekly", "companies", "low_open_rate", "floor_daily", "low_rate_daily",
                    "min_recent_sends", "recent_half_life"});
    if (const value_ref* d = t.find("daily")) e.caps.daily = as_positive<uint32_t>(*d);
    if (const value_ref* d = t.find("weekly")) e.caps.weekly = as_positive<uint32_t>(*d);
    if (const value_ref* d = t.find("low_open_rate")) e.low_open_rate = as_fraction(*d);
    if (const value_ref* d = t.find("floor_daily")) e.floor_daily = as_positive<uint32_t>(*d);
    if (const value_ref* d = t.find("low_rate_daily")) e.low_rate_daily = as_positive<uint32_t>(*d);
    if (const value_ref* d = t.find("min_recent_sends")) e.min_recent_sends = as_non_negative_number(*d);
    if (const value_ref* d = t.find("recent_half_life")) {
      e.recent_half_life = as_duration(*d);
      if (e.recent_half_life.count() == 0) fail(d->mark, d->path, "must be greater than 0");
    }
    if (const value_ref* c = t.find("companies")) {
      if (!c->node.IsMap()) fail(c->mark, c->path, "must be a map of company id to {daily, weekly}");
      for (auto it = c->node.begin(); it != c->node.end(); ++it) {
        const std::string company = it->first.Scalar();
        const YAML::Node value(it->second);
        const YAML::Mark mark = value.Mark().is_null() ? c->mark : value.Mark();
        e.company_caps.emplace_back(company, read_caps(value_ref{value, mark, c->path + "." + company}));
      }
    }
  }
}

config read_config(const YAML::Node& root, const std::string& name) {
  config cfg;
  cfg.source_path = name;
  // An empty file is an empty map (and then fails for want of carriers).
  YAML::Mark top_mark = root.Mark().is_null() ? YAML::Mark() : root.Mark();
  if (!root.IsNull() && !root.IsMap())
    fail(top_mark, "", "the file must be a YAML map of settings (key: value)");
  map_view m(value_ref{root, top_mark, ""},
             {"data_dir", "kafka", "http", "tracking", "plugins_dir", "carriers", "carriers_multi",
              "default_order", "retry", "limits", "engagement", "shutdown", "storage", "log"});

  if (const value_ref* v = m.find("data_dir")) cfg.data_dir = as_nonempty_string(*v);
  if (const value_ref* v = m.find("kafka")) read_kafka(*v, cfg.kafka);
  if (const value_ref* v = m.find("http")) read_http(*v, cfg.http);
  if (const value_ref* v = m.find("tracking")) read_tracking(*v, cfg.tracking);
  if (const value_ref* v = m.find("plugins_dir"))
    cfg.plugins_dir = v->node.IsNull() ? "" : as_string(*v);
  const value_ref* carriers = m.find("carriers");
  if (carriers != nullptr) read_carriers(*carriers, cfg.carriers);
  if (cfg.carriers.empty()) {
    fail(carriers != nullptr ? carriers->mark : m.mark(), "carriers",
         "at least one carrier is required");
  }
  if (const value_ref* v = m.find("carriers_multi")) {
    std::string s = v->node.IsScalar() ? v->node.Scalar() : "";
    if (s == "primary") {
      cfg.carriers_multi = multi_carrier::primary;
    } else if (s == "all") {
      cfg.carriers_multi = multi_carrier::all;
    } else {
      fail(v->mark, v->path, "must be primary or all");
    }
  }
  if (const value_ref* v = m.find("default_order")) read_default_order(*v, cfg.default_order);
  if (const value_ref* v = m.find("retry")) read_retry(*v, cfg.retry);
  if (const value_ref* v = m.find("limits")) read_limits(*v, cfg.limits);
  if (const value_ref* v = m.find("engagement")) read_engagement(*v, cfg.engagement);
  if (const value_ref* v = m.find("shutdown")) {
    map_view s(*v, {"drain_timeout"});
    if (const value_ref* d = s.find("drain_timeout")) cfg.drain_timeout = as_duration(*d);
  }
  if (const value_ref* v = m.find("storage")) {
    map_view s(*v, {"sync", "send_retention"});
    if (const value_ref* b = s.find("sync")) cfg.sync_writes = as_bool(*b);
    if (const value_ref* r = s.find("send_retention")) cfg.send_retention = as_duration(*r);
  }
  if (const value_ref* v = m.find("log")) {
    map_view s(*v, {"level"});
    if (const value_ref* l = s.find("level")) {
      std::string level = l->node.IsScalar() ? l->node.Scalar() : "";
      if (level != "trace" && level != "debug" && level != "info" && level != "warn" &&
          level != "error") {
        fail(l->mark, l->path, "must be one of trace, debug, info, warn, error");
      }
      cfg.log_level = std::move(level);
    }
  }
  return cfg;
}

// Counts the documents of a stream without building them. YAML::LoadAll is
// not used: yaml-cpp 0.7 answers a stray ',' or similar at document level
// with an endless series of empty documents that never consume it, and
// LoadAll collects them until memory runs out.
class document_probe final : public YAML::EventHandler {
 public:
  struct document {
    YAML::Mark start;
    bool empty = true;  // nothing but a null
  };
  std::vector<document> documents;

  void OnDocumentStart(const YAML::Mark& mark) override { documents.push_back(document{mark}); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { content(); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    content();
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    content();
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    content();
  }
  void OnMapEnd() override {}

 private:
  void content() {
    if (!documents.empty()) documents.back().empty = false;
  }
};

// Throws config_error unless the text holds at most one document with
// content (a trailing `---` with nothing after it is harmless).
void check_single_document(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  document_probe probe;
  // Three are enough to tell one document, several, and a parser that is
  // stuck (a new document starting where the previous one did).
  for (int i = 0; i < 3 && parser.HandleNextDocument(probe); ++i) {
  }
  const auto& docs = probe.documents;
  for (size_t i = 1; i < docs.size(); ++i) {
    if (docs[i].start.pos == docs[i - 1].start.pos) {
      const auto pos = static_cast<size_t>(docs[i].start.pos);
      std::string what = "YAML syntax error: unexpected ";
      what +=
          pos < text.size() ? quoted(std::string_view(&text[pos], 1)) : std::string("end of file");
      fail(docs[i].start, "", std::move(what));
    }
    if (!docs[i].empty) fail(docs[i].start, "", "only one YAML document is allowed");
  }
}

// "FILE:LINE: " (LINE 1-based), or "FILE: " when yaml-cpp gave no position.
std::string where_prefix(const std::string& name, const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return name + ": ";
  return name + ":" + std::to_string(mark.line + 1) + ": ";
}

}  // namespace

result<config> parse_config(const std::string& yaml_text, const std::string& name) {
  try {
    const YAML::Node root =
        YAML::Load(yaml_text);  // the first document; throws on syntax errors in it
    check_single_document(yaml_text);
    return read_config(root, name);
  } catch (const config_error& e) {
    std::string line = where_prefix(name, e.mark);
    if (!e.path.empty()) line += e.path + ": ";
    line += e.what;
    return make_error(errc::invalid_argument, std::move(line));
  } catch (const YAML::DeepRecursion& e) {
    return make_error(errc::invalid_argument,
                      where_prefix(name, e.mark) + "YAML syntax error: nested too deeply");
  } catch (const YAML::Exception& e) {
    // Syntax errors (and any other yaml-cpp failure): e.msg is without
    // yaml-cpp's own "error at line N, column M" prefix. Errors noticed at the
    // end of the input (an unclosed [ or {) name the file's last line, not
    // the empty one after its final newline.
    YAML::Mark mark = e.mark;
    if (!mark.is_null()) {
      int last_line = static_cast<int>(std::count(yaml_text.begin(), yaml_text.end(), '\n'));
      if (!yaml_text.empty() && yaml_text.back() == '\n') --last_line;
      mark.line = std::max(0, std::min(mark.line, last_line));
    }
    return make_error(errc::invalid_argument,
                      where_prefix(name, mark) + "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    return make_error(errc::invalid_argument, name + ": cannot load: " + e.what());
  } catch (...) {
    return make_error(errc::invalid_argument, name + ": cannot load: unknown error");
  }
}

result<config> load_config(const std::string& path) {
  std::string text;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return make_error(errc::io_error, path + ": cannot read file: " + std::strerror(errno));
  char buf[16384];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const int read_errno = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (read_errno != 0)
    return make_error(errc::io_error, path + ": cannot read file: " + std::strerror(read_errno));
  return parse_config(text, path);
}

}  // namespace relay
