#include "routing/job.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <new>
#include <unordered_set>

#include "routing/duration.h"
#include "routing/targeting.h"
#include "routing/time_zones.h"
#include "routing/timestamp.h"

namespace relay {

std::string_view to_string(channel_mode m) {
  switch (m) {
    case channel_mode::specified:
      return "specified";
    case channel_mode::preferred:
      return "preferred";
    case channel_mode::best:
      return "best";
    case channel_mode::simultaneous:
      return "simultaneous";
    case channel_mode::fallback:
      return "fallback";
    case channel_mode::resend:
      return "resend";
  }
  return "?";
}

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr size_t kMaxIdBytes = 255;
// Attribute values and time-zone names are short; a bound keeps a hostile job
// from making us build long posting keys.
constexpr size_t kMaxAttributeValueBytes = 255;
constexpr size_t kMaxTzBytes = 64;

// ---- errors ------------------------------------------------------------
// Every message is "<field path>: <what is wrong>", one line, and never
// contains values from the job (ids, content, attribute values): it becomes a
// DLQ header and an event detail. The only outside text we ever echo is a
// short, sanitised token where the contract asks for it (unknown channel or
// mode names, unknown key names in paths).

error fail(std::string_view path, std::string_view what) {
  std::string m;
  m.reserve(path.size() + 2 + what.size());
  m.append(path).append(": ").append(what);
  return make_error(errc::invalid_argument, std::move(m));
}

// Printable ASCII except quote and backslash survives; everything else
// (control characters, newlines, non-ASCII) becomes '?', and long tokens are
// cut, so an echoed token can neither break the line nor smuggle data out.
std::string sanitize(std::string_view s) {
  constexpr size_t kMax = 32;
  std::string out;
  const size_t n = s.size() < kMax ? s.size() : kMax;
  out.reserve(n + 3);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? static_cast<char>(c) : '?');
  }
  if (s.size() > kMax) out.append("...");
  return out;
}

std::string indexed(std::string_view path, size_t i) {
  std::string p(path);
  p.push_back('[');
  p.append(std::to_string(i));
  p.push_back(']');
  return p;
}

std::string member(std::string_view path, std::string_view key) {
  std::string p(path);
  p.push_back('.');
  p.append(sanitize(key));
  return p;
}

// ---- small typed readers --------------------------------------------------

bool is_integer(const element& e) {
  return e.type() == element_type::INT64 || e.type() == element_type::UINT64;
}

// Reads an integer that fits int64 (JSON integers above INT64_MAX come back
// from simdjson as UINT64). Returns what is wrong, or nullptr.
const char* int64_problem(const element& e, int64_t& out) {
  if (e.type() == element_type::INT64 && e.get(out) == simdjson::SUCCESS) return nullptr;
  if (e.type() == element_type::UINT64) return "integer out of range";
  return "must be an integer";
}

result<int64_t> read_int64(const element& e, std::string_view path) {
  int64_t v = 0;
  if (const char* problem = int64_problem(e, v)) return fail(path, problem);
  return v;
}

// An id (job_id, company_id, service_id, bid_id, user ids): non-empty, at
// most 255 bytes, no control characters. '\0' is a control character; the
// registry keys rely on ids never containing it. Returns what is wrong, or
// nullptr.
const char* id_problem(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > kMaxIdBytes) return "longer than 255 bytes";
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return "contains a control character";
  }
  return nullptr;
}

result<std::string_view> read_id(const element& e, std::string_view path) {
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS) return fail(path, "must be a string");
  if (const char* problem = id_problem(s)) return fail(path, problem);
  return s;
}

result<std::string_view> read_string(const element& e, std::string_view path) {
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS) return fail(path, "must be a string");
  return s;
}

// ---- object walking ---------------------------------------------------------

struct slot {
  element value;
  bool present = false;  // the key exists and is not null
};

// Picks the named members out of `obj`. JSON null counts as absent (many
// producers emit null for unset optional fields). A repeated known key is an
// error: simdjson would give us the first, other JSON readers (a plug-in, a
// downstream consumer) often the last, and the two must never disagree about
// who gets a message. Unknown keys are left for the caller to judge.
template <size_t N>
result<void> collect(const element& obj_element, const std::array<std::string_view, N>& names,
                     std::array<slot, N>& slots, std::string_view path) {
  simdjson::dom::object obj;
  if (obj_element.get(obj) != simdjson::SUCCESS) return fail(path, "must be an object");
  std::array<bool, N> seen{};
  for (simdjson::dom::key_value_pair kv : obj) {
    for (size_t i = 0; i < N; ++i) {
      // First byte before the full compare: most keys differ there, and this
      // loop runs for every member of every job.
      if (kv.key.size() != names[i].size() || kv.key.empty() || kv.key[0] != names[i][0] ||
          kv.key != names[i]) {
        continue;
      }
      if (seen[i]) {
        return fail(path.empty() ? std::string(names[i]) : member(path, names[i]), "duplicate key");
      }
      seen[i] = true;
      if (!kv.value.is_null()) {
        slots[i].value = kv.value;
        slots[i].present = true;
      }
      break;
    }
  }
  return {};
}

// ---- timestamps ---------------------------------------------------------------

constexpr std::string_view kTimestampHelp =
    "must be an RFC 3339 timestamp with offset (e.g. 2026-11-24T09:00:00+09:00)";

result<sys_time> read_timestamp(const element& e, std::string_view path) {
  auto s = read_string(e, path);
  if (!s) return s.err();
  auto t = parse_rfc3339(*s);
  if (!t) return fail(path, kTimestampHelp);
  return *t;
}

// "HH:MM", 00:00..23:59 -> minutes after midnight.
result<int> read_clock_time(const element& e, std::string_view path) {
  auto s = read_string(e, path);
  if (!s) return s.err();
  int h = 0, m = 0;
  if (s->size() != 5 || (*s)[2] != ':' || !read_fixed_digits(*s, 0, 2, h) || !read_fixed_digits(*s, 3, 2, m) ||
      h > 23 || m > 59) {
    return fail(path, "must be a time of day HH:MM (00:00 to 23:59)");
  }
  return h * 60 + m;
}

// A zone of the OS time zone database (routing/time_zones.h), so a job whose
// window no recipient could ever be in is rejected at the door rather than
// silently sent in UTC. Names longer than kMaxTzBytes are not looked up.
bool plausible_tz_name(std::string_view s) {
  return s.size() <= kMaxTzBytes && is_time_zone(s);
}

// ---- sections ---------------------------------------------------------------

result<void> parse_users(const element& e, const job_limits& limits, job& out) {
  simdjson::dom::array arr;
  if (e.get(arr) != simdjson::SUCCESS) return fail("to.users", "must be an array of user ids");
  // size() saturates at 0xFFFFFF; count by hand only in that (absurd) case.
  size_t n = arr.size();
  if (n == 0xFFFFFF) {
    n = 0;
    for ([[maybe_unused]] element ignored : arr) ++n;
  }
  if (n == 0) return fail("to.users", "must not be empty");
  if (n > limits.max_users) {
    return fail("to.users", std::to_string(n) + " users, limit " +
                                std::to_string(limits.max_users) + " (limits.max_users)");
  }
  out.users.reserve(n);
  // Short lists (the common case) de-duplicate by scanning; long ones by hash.
  constexpr size_t kLinearLimit = 32;
  std::unordered_set<std::string_view> seen;
  if (n > kLinearLimit) seen.reserve(n);
  size_t i = 0;
  for (element u : arr) {
    std::string_view id;
    if (u.get(id) != simdjson::SUCCESS) return fail(indexed("to.users", i), "must be a string");
    if (const char* problem = id_problem(id)) return fail(indexed("to.users", i), problem);
    bool duplicate = false;
    if (n > kLinearLimit) {
      duplicate = !seen.insert(id).second;
    } else {
      for (const std::string& prior : out.users) {
        if (prior == id) {
          duplicate = true;
          break;
        }
      }
    }
    if (!duplicate) out.users.emplace_back(id);
    ++i;
  }
  return {};
}

bool is_numeric_attribute(std::string_view field) {
  return field == "age" || field == "birth_year";
}

// One value of an equals / any_of test -> its text as postings store it.
result<std::string> read_attribute_value(const element& v, bool numeric, std::string_view path) {
  std::string_view s;
  if (!numeric && v.get(s) == simdjson::SUCCESS) {
    if (s.empty()) return fail(path, "must not be empty");
    if (s.size() > kMaxAttributeValueBytes) return fail(path, "longer than 255 bytes");
    return std::string(s);
  }
  if (is_integer(v)) {
    auto i = read_int64(v, path);
    if (!i) return i.err();
    return std::to_string(*i);
  }
  return fail(path, numeric ? "must be an integer" : "must be a string or an integer");
}

result<void> parse_range(const element& v, std::string_view path, attribute_test& test) {
  static constexpr std::array<std::string_view, 4> kBounds = {"gte", "gt", "lte", "lt"};
  simdjson::dom::object obj;
  if (v.get(obj) != simdjson::SUCCESS) return fail(path, "must be an object");
  for (simdjson::dom::key_value_pair kv : obj) {
    bool known = false;
    for (const auto b : kBounds) known = known || kv.key == b;
    if (!known) return fail(member(path, kv.key), "unknown bound (expected gte, gt, lte or lt)");
  }
  std::array<slot, 4> s;
  if (auto ok = collect(v, kBounds, s, path); !ok) return ok.err();
  if (s[0].present && s[1].present) return fail(path, "give gte or gt, not both");
  if (s[2].present && s[3].present) return fail(path, "give lte or lt, not both");
  if (!s[0].present && !s[1].present && !s[2].present && !s[3].present) {
    return fail(path, "a range needs gte, gt, lte or lt");
  }
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (size_t b = 0; b < 4; ++b) {
    if (!s[b].present) continue;
    int64_t bound = 0;
    if (const char* problem = int64_problem(s[b].value, bound))
      return fail(member(path, kBounds[b]), problem);
    switch (b) {
      case 0:
        test.min_inclusive = bound;
        break;
      case 1:
        if (bound == kMax) return fail(path, "empty range (lower bound above upper bound)");
        test.min_inclusive = bound + 1;
        break;
      case 2:
        test.max_inclusive = bound;
        break;
      case 3:
        if (bound == kMin) return fail(path, "empty range (lower bound above upper bound)");
        test.max_inclusive = bound - 1;
        break;
    }
  }
  if (test.min_inclusive && test.max_inclusive && *test.min_inclusive > *test.max_inclusive) {
    return fail(path, "empty range (lower bound above upper bound)");
  }
  return {};
}

result<void> parse_where(const element& e, job& out) {
  simdjson::dom::object obj;
  if (e.get(obj) != simdjson::SUCCESS)
    return fail("to.where", "must be an object of attribute tests");
  if (obj.size() == 0) return fail("to.where", "must not be empty");
  for (simdjson::dom::key_value_pair kv : obj) {
    const std::string path = member("to.where", kv.key);
    if (!is_targetable_attribute(kv.key)) {
      return fail(path,
                  "not a targetable attribute (expected gender, region, occupation, birth_year, "
                  "locale or age)");
    }
    for (const attribute_test& prior : out.where) {
      if (prior.field == kv.key) return fail(path, "duplicate key");
    }
    const bool numeric = is_numeric_attribute(kv.key);
    attribute_test test;
    test.field = std::string(kv.key);
    const element& v = kv.value;
    switch (v.type()) {
      case element_type::STRING:
      case element_type::INT64:
      case element_type::UINT64: {
        auto text = read_attribute_value(v, numeric, path);
        if (!text) return text.err();
        test.form = attribute_test::kind::equals;
        test.values.push_back(std::move(*text));
        break;
      }
      case element_type::ARRAY: {
        simdjson::dom::array arr;
        if (v.get(arr) != simdjson::SUCCESS) return fail(path, "must be an array");
        size_t i = 0;
        for (element item : arr) {
          auto text = read_attribute_value(item, numeric, indexed(path, i));
          if (!text) return text.err();
          test.values.push_back(std::move(*text));
          ++i;
        }
        if (test.values.empty()) return fail(path, "must not be an empty array");
        test.form = attribute_test::kind::any_of;
        break;
      }
      case element_type::OBJECT: {
        if (!numeric) return fail(path, "a range applies only to age or birth_year");
        test.form = attribute_test::kind::range;
        if (auto ok = parse_range(v, path, test); !ok) return ok.err();
        break;
      }
      default:
        return fail(path, numeric ? "must be an integer, an array of integers or a range object"
                                  : "must be a string, an integer or an array of them");
    }
    out.where.push_back(std::move(test));
  }
  return {};
}

result<void> parse_to(const element& e, const job_limits& limits, job& out) {
  // Unlike the top level, unknown keys here are rejected: an older relay
  // that ignored a newer way of choosing recipients could send to the wrong
  // people.
  simdjson::dom::object obj;
  if (e.get(obj) != simdjson::SUCCESS) return fail("to", "must be an object");
  for (simdjson::dom::key_value_pair kv : obj) {
    if (kv.key != "users" && kv.key != "all" && kv.key != "where") {
      return fail(member("to", kv.key), "unknown target (expected users, all or where)");
    }
  }
  static constexpr std::array<std::string_view, 3> kNames = {"users", "all", "where"};
  std::array<slot, 3> s;
  if (auto ok = collect(e, kNames, s, "to"); !ok) return ok.err();
  const int given = int(s[0].present) + int(s[1].present) + int(s[2].present);
  if (given == 0) return fail("to", "needs one of users, all or where");
  if (given > 1) return fail("to", "give only one of users, all or where");
  if (s[0].present) {
    out.target = target_kind::users;
    return parse_users(s[0].value, limits, out);
  }
  if (s[1].present) {
    bool all = false;
    if (s[1].value.get(all) != simdjson::SUCCESS) return fail("to.all", "must be true");
    if (!all) return fail("to.all", "must be true");
    out.target = target_kind::all;
    return {};
  }
  out.target = target_kind::where;
  return parse_where(s[2].value, out);
}

// Where parse_content puts what it reads: the job's own content, or its
// on_open follow-up's.
struct content_fields {
  std::string_view path;  // "content" or "on_open.content", for errors
  std::string* json;
  std::string* text;
  std::string* subject;
  std::string* html;
  std::string* link;
};

result<void> parse_content(const element& e, const job_limits& limits, const content_fields& out) {
  const std::string path(out.path);
  if (e.type() != element_type::OBJECT) return fail(path, "must be an object");
  // Other members (rich cards, suggestions, ...) travel to the plug-ins in
  // content_json untouched.
  static constexpr std::array<std::string_view, 4> kNames = {"text", "subject", "html", "link"};
  std::array<slot, 4> s;
  if (auto ok = collect(e, kNames, s, path); !ok) return ok.err();
  std::string* targets[4] = {out.text, out.subject, out.html, out.link};
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (!s[i].present) continue;
    auto v = read_string(s[i].value, path + "." + std::string(kNames[i]));
    if (!v) return v.err();
    targets[i]->assign(*v);
  }
  if (out.text->empty() && out.html->empty()) return fail(path, "needs a non-empty text or html");
  // The link becomes a tracked redirect and a button in RCS cards: only web
  // URLs, never javascript:, data: and the like.
  if (!out.link->empty() && !out.link->starts_with("https://") && !out.link->starts_with("http://")) {
    return fail(path + ".link", "must be an http or https URL");
  }
  *out.json = simdjson::to_string(e);
  if (out.json->size() > limits.max_content_bytes) {
    return make_error(errc::invalid_argument,
                      path + " is " + std::to_string(out.json->size()) + " bytes, limit " +
                          std::to_string(limits.max_content_bytes) + " (limits.max_content_bytes)");
  }
  return {};
}

// "on_open": {"content": {...}, "after": "10m", "within": "7d"}
result<void> parse_on_open(const element& e, const job_limits& limits, job& out) {
  if (e.type() != element_type::OBJECT) return fail("on_open", "must be an object");
  static constexpr std::array<std::string_view, 3> kNames = {"content", "after", "within"};
  std::array<slot, 3> s;
  if (auto ok = collect(e, kNames, s, "on_open"); !ok) return ok.err();
  follow_up f;
  if (!s[0].present) return fail("on_open.content", "missing");
  if (auto ok = parse_content(s[0].value, limits,
                              {"on_open.content", &f.content_json, &f.text, &f.subject, &f.html, &f.link});
      !ok) {
    return ok.err();
  }
  static constexpr std::array<std::string_view, 2> kPaths = {"on_open.after", "on_open.within"};
  std::chrono::seconds* durations[2] = {&f.after, &f.within};
  for (size_t i = 0; i < 2; ++i) {
    if (!s[i + 1].present) continue;
    auto text = read_string(s[i + 1].value, kPaths[i]);
    if (!text) return text.err();
    auto d = parse_duration(*text);
    if (!d) return fail(kPaths[i], d.err().message);
    if (d->count() % 1000 != 0) return fail(kPaths[i], "must be whole seconds");
    *durations[i] = std::chrono::duration_cast<std::chrono::seconds>(*d);
  }
  if (f.within.count() == 0) return fail("on_open.within", "must be at least 1s");
  out.on_open = std::move(f);
  return {};
}

std::optional<channel_mode> parse_mode(std::string_view s) {
  if (s == "specified") return channel_mode::specified;
  if (s == "preferred") return channel_mode::preferred;
  if (s == "best") return channel_mode::best;
  if (s == "simultaneous") return channel_mode::simultaneous;
  if (s == "fallback") return channel_mode::fallback;
  if (s == "resend") return channel_mode::resend;
  return std::nullopt;
}

result<void> parse_channels(const slot& channels, job& out) {
  std::array<slot, 4> s;
  if (channels.present) {
    if (channels.value.type() != element_type::OBJECT) return fail("channels", "must be an object");
    static constexpr std::array<std::string_view, 4> kNames = {"mode", "order", "fallback_after",
                                                               "max_resends"};
    if (auto ok = collect(channels.value, kNames, s, "channels"); !ok) return ok.err();
  }

  if (s[0].present) {
    auto m = read_string(s[0].value, "channels.mode");
    if (!m) return m.err();
    auto mode = parse_mode(*m);
    if (!mode) {
      return fail("channels.mode",
                  "unknown mode \"" + sanitize(*m) +
                      "\" (expected specified, preferred, best, simultaneous, fallback "
                      "or resend)");
    }
    out.mode = *mode;
  }

  if (s[1].present) {
    simdjson::dom::array arr;
    if (s[1].value.get(arr) != simdjson::SUCCESS)
      return fail("channels.order", "must be an array of channels");
    uint8_t used = 0;
    size_t i = 0;
    for (element item : arr) {
      std::string_view name;
      if (item.get(name) != simdjson::SUCCESS)
        return fail(indexed("channels.order", i), "must be a string");
      auto ch = parse_channel(name);
      if (!ch) {
        return fail(indexed("channels.order", i),
                    "unknown channel \"" + sanitize(name) + "\" (expected rcs, sms or email)");
      }
      if (used & channel_bit(*ch)) {
        return fail(indexed("channels.order", i),
                    "duplicate channel \"" + std::string(to_string(*ch)) + "\"");
      }
      used |= channel_bit(*ch);
      out.order.push_back(*ch);
      ++i;
    }
    if (out.order.empty()) return fail("channels.order", "must not be empty");
  }  // absent: empty, and the relay's configured default_order applies

  const bool needs_delay = out.mode == channel_mode::fallback || out.mode == channel_mode::resend;
  if (s[2].present) {
    auto text = read_string(s[2].value, "channels.fallback_after");
    if (!text) return text.err();
    auto d = parse_duration(*text);
    if (!d) return fail("channels.fallback_after", d.err().message);
    // Timers work in whole seconds; silently rounding 1500ms would change
    // what the company asked for.
    if (d->count() % 1000 != 0) return fail("channels.fallback_after", "must be whole seconds");
    if (d->count() == 0) return fail("channels.fallback_after", "must be at least 1s");
    out.fallback_after = std::chrono::duration_cast<std::chrono::seconds>(*d);
  } else if (needs_delay) {
    return fail("channels.fallback_after",
                "required when channels.mode is " + std::string(to_string(out.mode)));
  }
  if (s[3].present) {
    int64_t n = 0;
    if (s[3].value.get(n) != simdjson::SUCCESS || n < 1 || n > 10)
      return fail("channels.max_resends", "must be a whole number from 1 to 10");
    if (out.mode != channel_mode::resend) return fail("channels.max_resends", "applies only to mode resend");
    out.max_resends = static_cast<int>(n);
  }
  return {};
}

result<void> parse_schedule(const element& e, job& out) {
  if (e.type() != element_type::OBJECT) return fail("schedule", "must be an object");
  static constexpr std::array<std::string_view, 3> kNames = {"not_before", "expires", "window"};
  std::array<slot, 3> s;
  if (auto ok = collect(e, kNames, s, "schedule"); !ok) return ok.err();
  if (s[0].present) {
    auto t = read_timestamp(s[0].value, "schedule.not_before");
    if (!t) return t.err();
    out.schedule.not_before = *t;
  }
  if (s[1].present) {
    auto t = read_timestamp(s[1].value, "schedule.expires");
    if (!t) return t.err();
    out.schedule.expires = *t;
  }
  if (out.schedule.not_before && out.schedule.expires &&
      *out.schedule.expires <= *out.schedule.not_before) {
    return fail("schedule.expires", "must be after schedule.not_before");
  }
  if (s[2].present) {
    if (s[2].value.type() != element_type::OBJECT)
      return fail("schedule.window", "must be an object");
    static constexpr std::array<std::string_view, 3> kWindow = {"start", "end", "tz"};
    std::array<slot, 3> w;
    if (auto ok = collect(s[2].value, kWindow, w, "schedule.window"); !ok) return ok.err();
    if (!w[0].present) return fail("schedule.window.start", "missing");
    if (!w[1].present) return fail("schedule.window.end", "missing");
    send_window win;
    auto start = read_clock_time(w[0].value, "schedule.window.start");
    if (!start) return start.err();
    auto end = read_clock_time(w[1].value, "schedule.window.end");
    if (!end) return end.err();
    if (*start == *end) return fail("schedule.window", "start and end must differ");
    win.start_minute = *start;
    win.end_minute = *end;
    if (w[2].present) {
      auto tz = read_string(w[2].value, "schedule.window.tz");
      if (!tz) return tz.err();
      if (!plausible_tz_name(*tz))
        return fail("schedule.window.tz", "not a time zone name (e.g. Asia/Tokyo)");
      win.tz.assign(*tz);
    }
    out.schedule.window = std::move(win);
  }
  return {};
}

result<int64_t> read_price_micros(const element& e) {
  constexpr std::string_view kPath = "max_price";
  // INT64_MAX micros is about 9.2e12 currency units.
  constexpr int64_t kMaxUnits = std::numeric_limits<int64_t>::max() / 1000000;
  switch (e.type()) {
    case element_type::INT64: {
      int64_t v = 0;
      if (e.get(v) != simdjson::SUCCESS) return fail(kPath, "must be a number");
      if (v < 0) return fail(kPath, "must not be negative");
      if (v > kMaxUnits) return fail(kPath, "too large");
      return v * 1000000;
    }
    case element_type::UINT64:
      return fail(kPath, "too large");
    case element_type::DOUBLE: {
      double v = 0;
      if (e.get(v) != simdjson::SUCCESS) return fail(kPath, "must be a number");
      if (!std::isfinite(v)) return fail(kPath, "must be a finite number");
      if (v < 0) return fail(kPath, "must not be negative");
      if (v > static_cast<double>(kMaxUnits)) return fail(kPath, "too large");
      // llround: 0.1 * 1e6 is 100000.00000000001, which must stay 100000.
      return static_cast<int64_t>(std::llround(v * 1e6));
    }
    default:
      return fail(kPath, "must be a number");
  }
}

enum top : size_t {
  k_job_id,
  k_company_id,
  k_service_id,
  k_to,
  k_content,
  k_channels,
  k_schedule,
  k_priority,
  k_bid_id,
  k_max_price,
  k_on_open,
  k_count
};
constexpr std::array<std::string_view, k_count> kTopNames = {
    "job_id",   "company_id", "service_id", "to",     "content",
    "channels", "schedule",   "priority",   "bid_id", "max_price", "on_open"};

result<job> parse_document(const element& root, const job_limits& limits) {
  if (root.type() != element_type::OBJECT)
    return make_error(errc::invalid_argument, "job must be a JSON object");
  // Unknown top-level members are ignored so that newer producers can add
  // fields without older relays rejecting their jobs.
  std::array<slot, k_count> s;
  if (auto ok = collect(root, kTopNames, s, ""); !ok) return ok.err();

  job j;
  // Fields are checked in a fixed order so one bad job always yields the
  // same reason.
  if (!s[k_job_id].present) return fail("job_id", "missing");
  auto job_id = read_id(s[k_job_id].value, "job_id");
  if (!job_id) return job_id.err();
  j.job_id.assign(*job_id);

  if (!s[k_company_id].present) return fail("company_id", "missing");
  auto company_id = read_id(s[k_company_id].value, "company_id");
  if (!company_id) return company_id.err();
  j.company_id.assign(*company_id);

  if (s[k_service_id].present) {
    // "" means "any service", the same as leaving it out.
    auto service = read_string(s[k_service_id].value, "service_id");
    if (!service) return service.err();
    if (!service->empty()) {
      if (const char* problem = id_problem(*service)) return fail("service_id", problem);
      j.service_id.assign(*service);
    }
  }

  if (!s[k_to].present) return fail("to", "missing");
  if (auto ok = parse_to(s[k_to].value, limits, j); !ok) return ok.err();

  if (!s[k_content].present) return fail("content", "missing");
  if (auto ok = parse_content(s[k_content].value, limits,
                              {"content", &j.content_json, &j.text, &j.subject, &j.html, &j.link});
      !ok) {
    return ok.err();
  }

  if (auto ok = parse_channels(s[k_channels], j); !ok) return ok.err();

  if (s[k_schedule].present) {
    if (auto ok = parse_schedule(s[k_schedule].value, j); !ok) return ok.err();
  }

  if (s[k_priority].present) {
    auto p = read_string(s[k_priority].value, "priority");
    if (!p) return p.err();
    if (*p != "normal" && *p != "exclusive")
      return fail("priority", "unknown priority (expected normal or exclusive)");
    j.priority.assign(*p);
  }

  if (s[k_bid_id].present) {
    auto bid = read_id(s[k_bid_id].value, "bid_id");
    if (!bid) return bid.err();
    j.bid_id.assign(*bid);
  }

  if (s[k_max_price].present) {
    auto micros = read_price_micros(s[k_max_price].value);
    if (!micros) return micros.err();
    j.max_price_micros = *micros;
  }

  if (s[k_on_open].present) {
    if (auto ok = parse_on_open(s[k_on_open].value, limits, j); !ok) return ok.err();
  }
  return j;
}

}  // namespace

result<job> parse_job(std::string_view bytes, const job_limits& limits) {
  if (bytes.size() > limits.max_job_bytes) {
    return make_error(errc::invalid_argument,
                      "job is " + std::to_string(bytes.size()) + " bytes, limit " +
                          std::to_string(limits.max_job_bytes) + " (limits.max_job_bytes)");
  }
  // One parser per thread, reused: it keeps its buffers (sized to the largest
  // job seen, bounded by max_job_bytes), so steady-state parsing allocates
  // only for the job's own strings. The document it returns lives in the
  // parser and is only valid until the next parse on this thread; nothing
  // below keeps a view into it past this call.
  thread_local simdjson::dom::parser parser;
  try {
    element root;
    // The Kafka payload has no padding, so let simdjson copy it into its own
    // padded buffer (reused across calls).
    const auto ec = parser.parse(bytes.data(), bytes.size(), /*realloc_if_needed=*/true).get(root);
    if (ec != simdjson::SUCCESS) {
      std::string m = "invalid JSON: ";
      m += simdjson::error_message(ec);
      for (char& c : m) {
        if (c == '\n' || c == '\r') c = ' ';
      }
      return make_error(errc::invalid_argument, std::move(m));
    }
    return parse_document(root, limits);
  } catch (const std::bad_alloc&) {
    // Errors are values on the data path; a job too big for memory is a
    // transient condition of this process, not a reason to crash it.
    return make_error(errc::busy, "job: out of memory while parsing");
  }
}

}  // namespace relay
