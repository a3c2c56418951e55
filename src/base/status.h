// Status / StatusOr: errors a user, a file or a request can cause. Programmer errors use FRUGAL_CHECK.
// A message names the thing and the problem, e.g.
//   "model.gguf: tensor blk.3.attn_q.weight: data [0x1000, 0x9000) past end of file (size 0x8000)".
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "base/check.h"

namespace frugal {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input from a user or a request
  kNotFound,         // a file, key or tensor that is not there
  kCorrupt,          // a file that violates its format
  kUnsupported,      // valid but not implemented (unknown arch, tensor type...)
  kIo,               // the OS said no
  kOutOfRange,       // sizes past a limit (context, memory)
  kUnavailable,      // temporarily refused (queue full, draining): retry later
  kCancelled,        // stopped on request (client gone, cancel())
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Same code, message prefixed with "context: ".
  Status with_context(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); }
inline Status not_found(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status corrupt(std::string m) { return Status(StatusCode::kCorrupt, std::move(m)); }
inline Status unsupported(std::string m) { return Status(StatusCode::kUnsupported, std::move(m)); }
inline Status io_error(std::string m) { return Status(StatusCode::kIo, std::move(m)); }
inline Status out_of_range(std::string m) { return Status(StatusCode::kOutOfRange, std::move(m)); }
inline Status unavailable(std::string m) { return Status(StatusCode::kUnavailable, std::move(m)); }
inline Status cancelled(std::string m) { return Status(StatusCode::kCancelled, std::move(m)); }

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) { FRUGAL_CHECK(!status_.ok()); }  // NOLINT
  StatusOr(T value) : value_(std::move(value)) {}                                        // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { FRUGAL_CHECK_MSG(ok(), status_.message().c_str()); return *value_; }
  const T& value() const& { FRUGAL_CHECK_MSG(ok(), status_.message().c_str()); return *value_; }
  T&& value() && { FRUGAL_CHECK_MSG(ok(), status_.message().c_str()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace frugal

#define FRUGAL_CONCAT_INNER(a, b) a##b
#define FRUGAL_CONCAT(a, b) FRUGAL_CONCAT_INNER(a, b)

#define FRUGAL_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::frugal::Status frugal_status_ = (expr);        \
    if (!frugal_status_.ok()) return frugal_status_; \
  } while (0)

#define FRUGAL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

// FRUGAL_ASSIGN_OR_RETURN(auto x, f()); declares x or returns f()'s error.
#define FRUGAL_ASSIGN_OR_RETURN(lhs, expr) \
  FRUGAL_ASSIGN_OR_RETURN_IMPL(FRUGAL_CONCAT(frugal_statusor_, __LINE__), lhs, expr)
