#include "routing/registry_record.h"

#include <simdjson.h>

#include <cstdint>

#include "routing/directory.h"

namespace relay {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr size_t kMaxIdBytes = 255;
constexpr size_t kMaxFieldBytes = 255;
constexpr size_t kMaxRecordBytes = 1u << 20;
constexpr int kMinBirthYear = 1900;
constexpr int kMaxBirthYear = 2100;

// One parser per thread: its buffers are reused from record to record, so
// steady-state parsing does not allocate. Owned by the calling thread.
simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

error field_error(std::string_view path, std::string_view problem) {
  std::string m;
  m.reserve(path.size() + 2 + problem.size());
  m.append(path).append(": ").append(problem);
  return make_error(errc::invalid_argument, std::move(m));
}

// Quotes a value in an error only when it looks like a mistyped name (an op,
// a channel, a carrier id): short, [A-Za-z0-9_-] with at least one letter.
// Phone numbers (digits, '+') and e-mail addresses ('@', '.') never qualify,
// so a value put in the wrong field is not echoed into logs.
std::string quoted_token(std::string_view s) {
  if (s.empty() || s.size() > 32) return {};
  bool letter = false;
  for (char c : s) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    letter |= alpha;
    if (!alpha && !(c >= '0' && c <= '9') && c != '_' && c != '-') return {};
  }
  if (!letter) return {};
  return " \"" + std::string(s) + "\"";
}

// Looks up `key`; absent and null both mean "not given".
bool lookup(const object& obj, std::string_view key, element& out) {
  if (obj.at_key(key).get(out) != simdjson::SUCCESS) return false;
  return out.type() != element_type::NULL_VALUE;
}

// A text field: must be a string of at most `max` bytes without NUL.
result<void> check_text(const element& e, std::string_view path, size_t max, bool allow_empty,
                        std::string_view& out) {
  if (e.get_string().get(out) != simdjson::SUCCESS) return field_error(path, "must be a string");
  if (!allow_empty && out.empty()) return field_error(path, "must not be empty");
  if (out.size() > max) {
    return field_error(path, "longer than " + std::to_string(max) + " bytes");
  }
  if (out.find('\0') != std::string_view::npos) return field_error(path, "contains a NUL byte");
  return {};
}

result<void> required_id(const object& obj, std::string_view key, std::string& out) {
  element e;
  if (!lookup(obj, key, e)) return field_error(key, "missing");
  std::string_view v;
  if (auto r = check_text(e, key, kMaxIdBytes, false, v); !r) return r;
  out.assign(v);
  return {};
}

result<void> optional_text(const object& obj, std::string_view key, std::string_view path,
                           size_t max, std::string& out) {
  element e;
  if (!lookup(obj, key, e)) return {};
  std::string_view v;
  if (auto r = check_text(e, path, max, true, v); !r) return r;
  out.assign(v);
  return {};
}

result<void> parse_profile(const element& e, profile& p) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    return field_error("profile", "must be an object");
  }
  struct text_field {
    std::string_view key;
    std::string_view path;
    std::string profile::*member;
  };
  static constexpr text_field kTextFields[] = {
      {"msisdn", "profile.msisdn", &profile::msisdn},
      {"email", "profile.email", &profile::email},
      {"gender", "profile.gender", &profile::gender},
      {"region", "profile.region", &profile::region},
      {"occupation", "profile.occupation", &profile::occupation},
      {"tz", "profile.tz", &profile::tz},
      {"locale", "profile.locale", &profile::locale},
  };
  for (const auto& f : kTextFields) {
    if (auto r = optional_text(obj, f.key, f.path, kMaxFieldBytes, p.*f.member); !r) return r;
  }
  element by;
  if (lookup(obj, "birth_year", by)) {
    int64_t year = 0;
    switch (by.type()) {
      case element_type::INT64:
        if (by.get_int64().get(year) != simdjson::SUCCESS) {
          return field_error("profile.birth_year", "must be an integer");
        }
        break;
      case element_type::UINT64:
        return field_error("profile.birth_year", "out of range 1900..2100");
      case element_type::DOUBLE:
        return field_error("profile.birth_year", "must be an integer");
      default:
        return field_error("profile.birth_year", "must be a number");
    }
    if (year < kMinBirthYear || year > kMaxBirthYear) {
      return field_error("profile.birth_year", "out of range 1900..2100");
    }
    p.birth_year = static_cast<int>(year);
  }
  return {};
}

result<void> parse_carrier(const element& e, const std::string& path, carrier_link& c) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) return field_error(path, "must be an object");

  element id;
  const std::string id_path = path + ".carrier_id";
  if (!lookup(obj, "carrier_id", id)) return field_error(id_path, "missing");
  std::string_view idv;
  if (auto r = check_text(id, id_path, kMaxIdBytes, false, idv); !r) return r;
  c.carrier_id.assign(idv);

  element primary;
  if (lookup(obj, "primary", primary)) {
    if (primary.get_bool().get(c.primary) != simdjson::SUCCESS) {
      return field_error(path + ".primary", "must be true or false");
    }
  }

  element channels;
  if (lookup(obj, "channels", channels)) {
    simdjson::dom::array arr;
    if (channels.get_array().get(arr) != simdjson::SUCCESS) {
      return field_error(path + ".channels", "must be an array of channel names");
    }
    c.channels = 0;
    size_t i = 0;
    for (element ch : arr) {
      const std::string ch_path = path + ".channels[" + std::to_string(i++) + "]";
      std::string_view name;
      if (ch.get_string().get(name) != simdjson::SUCCESS) {
        return field_error(ch_path, "must be a string");
      }
      auto parsed = parse_channel(name);
      if (!parsed) return field_error(ch_path, "unknown channel" + quoted_token(name));
      c.channels |= channel_bit(*parsed);
    }
    if (c.channels == 0) return field_error(path + ".channels", "must not be empty");
  }

  element addresses;
  if (lookup(obj, "addresses", addresses)) {
    object amap;
    if (addresses.get_object().get(amap) != simdjson::SUCCESS) {
      return field_error(path + ".addresses", "must be an object");
    }
    for (auto kv : amap) {
      auto parsed = parse_channel(kv.key);
      if (!parsed) {
        return field_error(path + ".addresses", "unknown channel" + quoted_token(kv.key));
      }
      const std::string a_path = path + ".addresses." + std::string(to_string(*parsed));
      std::string_view addr;
      if (auto r = check_text(kv.value, a_path, kMaxFieldBytes, false, addr); !r) return r;
      c.address[static_cast<int>(*parsed)].assign(addr);
    }
  }
  return {};
}

result<void> parse_carriers(const element& e, std::vector<carrier_link>& out) {
  simdjson::dom::array arr;
  if (e.get_array().get(arr) != simdjson::SUCCESS) {
    return field_error("carriers", "must be an array");
  }
  if (arr.size() > static_cast<size_t>(kMaxCarriersPerUser)) {
    return field_error("carriers", "more than " + std::to_string(kMaxCarriersPerUser) +
                                       " carriers (" + std::to_string(arr.size()) + ")");
  }
  out.reserve(arr.size());
  size_t i = 0;
  bool have_primary = false;
  for (element ce : arr) {
    const std::string path = "carriers[" + std::to_string(i++) + "]";
    carrier_link c;
    if (auto r = parse_carrier(ce, path, c); !r) return r;
    for (const auto& prev : out) {
      if (prev.carrier_id == c.carrier_id) {
        return field_error(path + ".carrier_id", "duplicate" + quoted_token(c.carrier_id));
      }
    }
    if (c.primary) {
      if (have_primary) return field_error(path + ".primary", "more than one primary carrier");
      have_primary = true;
    }
    out.push_back(std::move(c));
  }
  if (!have_primary && !out.empty()) out.front().primary = true;
  return {};
}

}  // namespace

result<registry_record> parse_registry_record(std::string_view json) {
  if (json.size() > kMaxRecordBytes) {
    return field_error("record", "larger than " + std::to_string(kMaxRecordBytes) + " bytes");
  }
  element root;
  if (auto err = thread_parser().parse(json.data(), json.size()).get(root);
      err != simdjson::SUCCESS) {
    // simdjson's messages describe the syntax error without echoing input.
    return field_error("record",
                       std::string("invalid JSON (") + simdjson::error_message(err) + ")");
  }
  object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    return field_error("record", "must be a JSON object");
  }

  registry_record rec;
  element op;
  if (!lookup(obj, "op", op)) return field_error("op", "missing");
  std::string_view opv;
  if (op.get_string().get(opv) != simdjson::SUCCESS) return field_error("op", "must be a string");
  if (opv == "upsert_user") {
    rec.kind = registry_record::op::upsert_user;
  } else if (opv == "register") {
    rec.kind = registry_record::op::register_user;
  } else if (opv == "unregister") {
    rec.kind = registry_record::op::unregister_user;
  } else if (opv == "delete_user") {
    rec.kind = registry_record::op::delete_user;
  } else {
    return field_error("op", "unknown" + quoted_token(opv));
  }

  if (auto r = required_id(obj, "user_id", rec.user_id); !r) return r.err();

  switch (rec.kind) {
    case registry_record::op::upsert_user: {
      element p;
      if (!lookup(obj, "profile", p)) return field_error("profile", "missing");
      if (auto r = parse_profile(p, rec.user_profile); !r) return r.err();
      element carriers;
      if (lookup(obj, "carriers", carriers)) {
        std::vector<carrier_link> links;
        if (auto r = parse_carriers(carriers, links); !r) return r.err();
        rec.carriers = std::move(links);
      }
      break;
    }
    case registry_record::op::register_user:
    case registry_record::op::unregister_user: {
      if (auto r = required_id(obj, "company_id", rec.company_id); !r) return r.err();
      element svc;
      if (lookup(obj, "service_id", svc)) {
        std::string_view v;
        if (auto r = check_text(svc, "service_id", kMaxIdBytes, true, v); !r) return r.err();
        rec.service_id.assign(v);
      }
      if (rec.kind == registry_record::op::register_user) {
        if (auto r = optional_text(obj, "source", "source", kMaxFieldBytes, rec.source); !r) {
          return r.err();
        }
      }
      break;
    }
    case registry_record::op::delete_user:
      break;
  }
  return rec;
}

}  // namespace relay
