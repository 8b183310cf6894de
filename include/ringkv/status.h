// Errors as values: Status for set-up and I/O, Result<T> for operations that return data.
//
// Neither type throws. A default-constructed Status is OK; every other Status carries a code and a
// human-readable message that says what failed and why (it is meant to be shown to a user as is).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ringkv {

enum class Code {
  kOk = 0,
  kNotFound,         // the key (or server, or entry) does not exist
  kInvalidArgument,  // the caller passed something malformed: an empty id, weight 0, bad address
  kUnreachable,      // no connection could be made to the server
  kTimedOut,         // the server did not answer in time
  kRefused,          // the server answered with an error; the message is the server's text
  kIoError,          // a read or write failed after the connection was made
  kAlreadyExists,    // a duplicate id or name
  kFailedPrecondition,  // the operation is valid but not now (e.g. a migration is still moving data)
  kInternal,         // a bug: an invariant did not hold
};

// A short lowercase name of the code ("not found", "timed out", ...).
std::string_view code_name(Code code);

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status unreachable(std::string m) { return {Code::kUnreachable, std::move(m)}; }
  static Status timed_out(std::string m) { return {Code::kTimedOut, std::move(m)}; }
  static Status refused(std::string m) { return {Code::kRefused, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status already_exists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status failed_precondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<code name>: <message>", or "ok".
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <class T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.is_ok() && "a Result without a value needs an error Status");
  }

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }

  // REQUIRES: is_ok().
  T& value() & {
    assert(is_ok());
    return *value_;
  }
  const T& value() const& {
    assert(is_ok());
    return *value_;
  }
  T&& value() && {
    assert(is_ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace ringkv
