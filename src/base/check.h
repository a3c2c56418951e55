// Checks for programmer errors: abort with file:line. Never for errors a user or a file can cause.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace frugal::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const char* cond, const char* msg) {
  std::fprintf(stderr, "%s:%d: check failed: %s%s%s\n", file, line, cond, msg ? ": " : "", msg ? msg : "");
  std::abort();
}
}  // namespace frugal::detail

#define FRUGAL_CHECK(cond) \
  ((cond) ? (void)0 : ::frugal::detail::check_failed(__FILE__, __LINE__, #cond, nullptr))
#define FRUGAL_CHECK_MSG(cond, msg) \
  ((cond) ? (void)0 : ::frugal::detail::check_failed(__FILE__, __LINE__, #cond, (msg)))
