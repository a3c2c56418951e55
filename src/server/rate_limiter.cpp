#include "server/rate_limiter.h"

#include <algorithm>

namespace frugal {

void RateLimiter::prune(KeyState& s, double now_s) {
  // The window is (now - 60, now]: an event at t counts until now reaches t + 60.
  const double cutoff = now_s - kWindowS;
  while (!s.requests.empty() && s.requests.front() <= cutoff) s.requests.pop_front();
  while (!s.tokens.empty() && s.tokens.front().t <= cutoff) s.tokens.pop_front();
}

namespace {

void add_reason(std::string* reasons, const std::string& r) {
  if (!reasons->empty()) *reasons += "; ";
  *reasons += r;
}

}  // namespace

RateLimiter::Decision RateLimiter::admit(const ApiKey& key, int64_t estimated_tokens, double now_s) {
  Decision d;
  const KeyLimits& lim = key.limits;
  if (lim.unlimited()) return d;
  std::lock_guard<std::mutex> lock(mu_);
  KeyState& s = keys_[key.name];
  prune(s, now_s);
  int64_t est = std::max<int64_t>(estimated_tokens, 0);
  if (lim.tokens_per_minute > 0) est = std::min(est, lim.tokens_per_minute);

  double retry = 0;
  std::string reasons;
  const std::string who = " for key '" + key.name + "'";
  if (lim.max_concurrent > 0 && (int64_t)s.open.size() >= lim.max_concurrent) {
    retry = std::max(retry, 1.0);
    add_reason(&reasons, "too many concurrent requests: limit " + std::to_string(lim.max_concurrent) + who);
  }
  if (lim.requests_per_minute > 0 && (int64_t)s.requests.size() >= lim.requests_per_minute) {
    // The count drops below the limit when the (size - rpm)-th oldest request leaves the window.
    const double t = s.requests[s.requests.size() - (size_t)lim.requests_per_minute];
    retry = std::max(retry, t + kWindowS - now_s);
    add_reason(&reasons, "rate limit: " + std::to_string(lim.requests_per_minute) + " requests per minute" + who);
  }
  if (lim.tokens_per_minute > 0) {
    int64_t sum = 0;
    for (const Charge& c : s.tokens) sum += c.tokens;
    if (sum + est > lim.tokens_per_minute) {
      double t = now_s;
      for (const Charge& c : s.tokens) {
        sum -= c.tokens;
        t = c.t;
        if (sum + est <= lim.tokens_per_minute) break;
      }
      retry = std::max(retry, t + kWindowS - now_s);
      add_reason(&reasons, "rate limit: " + std::to_string(lim.tokens_per_minute) + " tokens per minute" + who +
                               " (this request needs about " + std::to_string(est) + ")");
    }
  }
  if (!reasons.empty()) {
    d.allowed = false;
    d.retry_after_s = retry;
    d.reason = std::move(reasons);
    return d;
  }
  d.ticket = next_ticket_++;
  const double t_req = s.requests.empty() ? now_s : std::max(now_s, s.requests.back());
  s.requests.push_back(t_req);
  if (lim.tokens_per_minute > 0) {
    const double t_tok = s.tokens.empty() ? now_s : std::max(now_s, s.tokens.back().t);
    s.tokens.push_back(Charge{t_tok, est, d.ticket});
  }
  s.open.insert(d.ticket);
  return d;
}

void RateLimiter::finish(const ApiKey& key, uint64_t ticket, int64_t actual_tokens, double now_s) {
  if (ticket == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(key.name);
  FRUGAL_CHECK_MSG(it != keys_.end(), "RateLimiter::finish: no admitted request for this key");
  KeyState& s = it->second;
  FRUGAL_CHECK_MSG(s.open.erase(ticket) == 1, "RateLimiter::finish: ticket not open");
  prune(s, now_s);
  if (key.limits.tokens_per_minute > 0) {
    for (auto c = s.tokens.begin(); c != s.tokens.end(); ++c) {
      if (c->ticket == ticket) {
        s.tokens.erase(c);
        break;
      }
    }
    const double t = s.tokens.empty() ? now_s : std::max(now_s, s.tokens.back().t);
    s.tokens.push_back(Charge{t, std::max<int64_t>(actual_tokens, 0), 0});
  }
}

int64_t RateLimiter::in_flight(const std::string& key_name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(key_name);
  return it == keys_.end() ? 0 : (int64_t)it->second.open.size();
}

int64_t RateLimiter::tokens_in_window(const std::string& key_name, double now_s) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(key_name);
  if (it == keys_.end()) return 0;
  int64_t sum = 0;
  for (const Charge& c : it->second.tokens) {
    if (c.t > now_s - kWindowS) sum += c.tokens;
  }
  return sum;
}

}  // namespace frugal
