#pragma once
// Errors on the data path are values: result<T> carries either a T or an
// error with a code and a message a user can act on.

#include <string>
#include <utility>
#include <variant>

namespace relay {

enum class errc {
  invalid_argument,  // malformed input from outside (job, record, config)
  not_found,
  already_exists,
  io_error,  // RocksDB, files, sockets
  corruption,
  unsupported,
  busy,  // retry later
};

struct error {
  errc code = errc::invalid_argument;
  std::string message;
};

inline error make_error(errc code, std::string message) { return error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : ok_(false), e_(std::move(e)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const error& err() const { return e_; }

 private:
  bool ok_ = true;
  error e_;
};

}  // namespace relay
