// frugal usage: per-API-key totals from the usage ledger that `frugal serve --usage-db FILE` writes.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_common.h"
#include "server/sqlite_db.h"
#include "server/usage_ledger.h"

namespace frugal::cli {

namespace {

struct UsageOptions {
  std::string db;
  std::string since;
  std::string until = "now";
  bool json = false;
};

std::string utc_time(double unix_s) {
  if (unix_s <= 0) return "-";
  const time_t t = (time_t)unix_s;
  struct tm tm_utc;
  gmtime_r(&t, &tm_utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return buf;
}

UsageSummary total_of(const std::vector<UsageSummary>& rows) {
  UsageSummary t;
  t.key_name = "total";
  for (const UsageSummary& u : rows) {
    t.requests += u.requests;
    t.prompt_tokens += u.prompt_tokens;
    t.cached_tokens += u.cached_tokens;
    t.completion_tokens += u.completion_tokens;
    t.cache_hits += u.cache_hits;
    t.cost_usd += u.cost_usd;
    t.first_s = t.first_s == 0 ? u.first_s : std::min(t.first_s, u.first_s);
    t.last_s = std::max(t.last_s, u.last_s);
  }
  return t;
}

nlohmann::json to_json(const UsageSummary& u) {
  return {{"key", u.key_name},
          {"requests", u.requests},
          {"prompt_tokens", u.prompt_tokens},
          {"cached_tokens", u.cached_tokens},
          {"completion_tokens", u.completion_tokens},
          {"cache_hits", u.cache_hits},
          {"cost_usd", u.cost_usd},
          {"first", utc_time(u.first_s)},
          {"last", utc_time(u.last_s)}};
}

void print_table(const std::vector<UsageSummary>& rows, double since, double until) {
  std::printf("usage from %s to %s (UTC)\n", since > 0 ? utc_time(since).c_str() : "the start",
              utc_time(until).c_str());
  size_t w = 5;
  for (const UsageSummary& u : rows) w = std::max(w, u.key_name.size());
  const char* kHeader = "%-*s %10s %14s %14s %17s %12s\n";
  const char* kRow = "%-*s %10lld %14lld %14lld %17lld %12.6f\n";
  std::printf(kHeader, (int)w, "key", "requests", "prompt_tokens", "cached_tokens", "completion_tokens", "cost_usd");
  auto row = [&](const UsageSummary& u) {
    std::printf(kRow, (int)w, u.key_name.c_str(), (long long)u.requests, (long long)u.prompt_tokens,
                (long long)u.cached_tokens, (long long)u.completion_tokens, u.cost_usd);
  };
  for (const UsageSummary& u : rows) row(u);
  if (rows.size() != 1) row(total_of(rows));
}

Status run(const UsageOptions& o) {
  const double now = unix_seconds();
  double since = 0;
  if (!o.since.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(since, parse_time_spec("--since", o.since, now));
  }
  FRUGAL_ASSIGN_OR_RETURN(double until, parse_time_spec("--until", o.until, now));
  // A record written at exactly `now` must be included.
  if (o.until == "now") until += 1;
  if (until <= since) return invalid_argument("--until must be later than --since");
  UsageLedger::Options lo;
  lo.read_only = true;
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<UsageLedger> ledger, UsageLedger::open(o.db, lo));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<UsageSummary> rows, ledger->summarize(since, until));
  if (o.json) {
    nlohmann::json keys = nlohmann::json::array();
    for (const UsageSummary& u : rows) keys.push_back(to_json(u));
    nlohmann::json out = {{"since", since > 0 ? utc_time(since) : std::string()},
                          {"until", utc_time(until)},
                          {"keys", keys},
                          {"total", to_json(total_of(rows))}};
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    print_table(rows, since, until);
  }
  return Status::Ok();
}

}  // namespace

Command add_usage_command(CLI::App& root) {
  auto o = std::make_shared<UsageOptions>();
  CLI::App* app = root.add_subcommand("usage", "Print per-API-key usage (requests, tokens, cost) from a server's usage ledger");
  app->add_option("--db", o->db, "usage ledger file (SQLite) written by `frugal serve`")->required();
  app->add_option("--since", o->since,
                  "start: a duration back from now (90s, 15m, 24h, 7d, 2w), a UTC date (2025-01-31 or "
                  "2025-01-31T12:00) or @UNIX_SECONDS (default: everything)");
  app->add_option("--until", o->until, "end (exclusive), same forms as --since")->capture_default_str();
  app->add_flag("--json", o->json, "print JSON instead of a table");
  return Command{app, [o] { return run(*o); }};
}

}  // namespace frugal::cli
