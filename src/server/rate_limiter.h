// Per-key rate limits: requests per minute, tokens per minute (sliding 60 s windows) and requests in
// flight. Deterministic: every call takes the current time (any monotonic clock, in seconds) from the
// caller; nothing sleeps or reads a clock.
//
// Usage per request:  d = admit(key, estimate, now);  if (!d.allowed) -> 429, Retry-After: ceil(d.retry_after_s)
//                     ... run the request ...;        finish(key, d.ticket, actual_tokens, now)   (exactly once)
//
// Token accounting: admit() charges `estimated_tokens` at admission time (clamped to the key's tpm, so
// a request larger than the whole budget waits for an empty window and then takes all of it); finish()
// replaces that charge by `actual_tokens` at finish time (if the estimate is still in the window it is
// removed). A request is admitted when, in the last 60 s, requests < rpm, charged tokens + estimate <=
// tpm, and in-flight < max_concurrent.
//
// Thread-safety: all methods are safe from any thread (one mutex; each call is O(entries in window)).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "server/auth.h"

namespace frugal {

class RateLimiter {
 public:
  static constexpr double kWindowS = 60.0;

  struct Decision {
    bool allowed = true;
    // When refused: seconds until this request would be admitted if nothing else changed (the time
    // until enough requests/tokens leave the window); at least 1 s when refused for concurrency.
    double retry_after_s = 0;
    std::string reason;  // when refused, e.g. "rate limit: 10 requests per minute for key 'alice'"
    uint64_t ticket = 0; // when allowed: pass to finish()
  };

  // On allow: counts the request, charges the estimate and takes a concurrency slot. Keys with no
  // limits are always allowed (and still need finish(), which is then a no-op).
  Decision admit(const ApiKey& key, int64_t estimated_tokens, double now_s);
  // Releases the slot of an admitted request and corrects its token charge. Ticket 0 (a key without
  // limits) is a no-op; any other ticket must be open for this key (else FRUGAL_CHECK fails).
  void finish(const ApiKey& key, uint64_t ticket, int64_t actual_tokens, double now_s);

  // For tests and metrics: requests in flight for the key name.
  int64_t in_flight(const std::string& key_name) const;
  // Tokens charged in the window ending at now_s.
  int64_t tokens_in_window(const std::string& key_name, double now_s) const;

 private:
  struct Charge {
    double t;
    int64_t tokens;
    uint64_t ticket;  // 0 once finished (the charge is then the actual count)
  };
  struct KeyState {
    std::deque<double> requests;  // admission times, ascending
    std::deque<Charge> tokens;    // charge times, ascending
    std::set<uint64_t> open;      // admitted, not finished (size() = requests in flight)
  };
  static void prune(KeyState& s, double now_s);

  mutable std::mutex mu_;
  std::map<std::string, KeyState, std::less<>> keys_;
  uint64_t next_ticket_ = 1;
};

}  // namespace frugal
