#pragma once
// A small JSON (RFC 8259) value with a strict parser and a writer, enough for
// the RBM API bodies, Pub/Sub pushes and relay's content_json. Objects keep
// their members in order (the request bodies we write read like the API's
// examples). Plug-ins depend on nothing of relay's, hence our own.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relay::rcs_rbm {

class json {
 public:
  enum class kind { null, boolean, number, string, array, object };
  using member = std::pair<std::string, json>;

  json() = default;
  static json boolean(bool b);
  static json number(double d);
  static json string(std::string s);
  static json array();
  static json object();

  kind type() const { return kind_; }
  bool is_null() const { return kind_ == kind::null; }
  bool is_bool() const { return kind_ == kind::boolean; }
  bool is_number() const { return kind_ == kind::number; }
  bool is_string() const { return kind_ == kind::string; }
  bool is_array() const { return kind_ == kind::array; }
  bool is_object() const { return kind_ == kind::object; }

  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  const std::string& as_string() const { return string_; }
  const std::vector<json>& items() const { return items_; }
  const std::vector<member>& members() const { return members_; }

  // Object access: the member's value or nullptr.
  const json* find(std::string_view key) const;
  // The member's string value, or "" when absent or not a string.
  std::string get_string(std::string_view key) const;

  // Builders (object / array only); return *this for chaining.
  json& set(std::string key, json value);
  json& push(json value);
  size_t size() const { return kind_ == kind::array ? items_.size() : members_.size(); }

  std::string dump() const;
  void dump_to(std::string& out) const;

 private:
  kind kind_ = kind::null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<json> items_;
  std::vector<member> members_;
};

// Parses exactly one JSON value (surrounding whitespace allowed). On failure
// returns false and sets `error` to a one-line reason with the byte offset.
bool parse_json(std::string_view text, json& out, std::string& error);

// Appends `s` as a JSON string (quoted, escaped; invalid UTF-8 becomes U+FFFD).
void append_json_string(std::string& out, std::string_view s);

}  // namespace relay::rcs_rbm
