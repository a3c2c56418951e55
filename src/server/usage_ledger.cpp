#include "server/usage_ledger.h"

#include <charconv>
#include <cmath>

namespace frugal {

namespace {

constexpr const char* kSchemaTag = "frugal-usage-ledger-1";
constexpr const char* kCreateSql = R"sql(
CREATE TABLE usage(
  id INTEGER PRIMARY KEY,
  time REAL NOT NULL,
  key TEXT NOT NULL,
  route TEXT NOT NULL,
  status INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,
  finish_reason TEXT NOT NULL,
  cache_hit INTEGER NOT NULL);
CREATE INDEX usage_time ON usage(time);
)sql";

constexpr size_t kMaxBatch = 1024;

}  // namespace

UsageLedger::UsageLedger(std::unique_ptr<SqliteDb> db, Options options)
    : options_(options), db_(std::move(db)) {}

StatusOr<std::unique_ptr<UsageLedger>> UsageLedger::open(const std::string& path, const Options& options) {
  SqliteDb::Options db_options;
  db_options.read_only = options.read_only;
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db, SqliteDb::open(path, db_options));
  FRUGAL_RETURN_IF_ERROR(db->ensure_schema(kSchemaTag, kCreateSql, /*create=*/!options.read_only));
  std::unique_ptr<UsageLedger> l(new UsageLedger(std::move(db), options));
  if (!options.read_only) l->writer_ = std::thread([p = l.get()] { p->writer_loop(); });
  return l;
}

UsageLedger::~UsageLedger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void UsageLedger::record(UsageRecord r) {
  FRUGAL_CHECK_MSG(!options_.read_only, "UsageLedger::record on a read-only ledger");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= options_.max_queue) {
      stats_.dropped += 1;
      return;
    }
    queue_.push_back(std::move(r));
    queued_seq_ += 1;
    stats_.recorded += 1;
  }
  cv_.notify_one();
}

void UsageLedger::writer_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stop_ and nothing left
    std::vector<UsageRecord> batch;
    while (!queue_.empty() && batch.size() < kMaxBatch) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    Status s;
    {
      std::lock_guard<std::mutex> db_lock(db_mu_);
      s = write_batch(batch);
    }
    lock.lock();
    written_seq_ += batch.size();
    if (s.ok()) {
      stats_.written += (int64_t)batch.size();
    } else {
      stats_.errors += (int64_t)batch.size();
      if (pending_error_.ok()) pending_error_ = s;
    }
    done_cv_.notify_all();
  }
}

Status UsageLedger::write_batch(const std::vector<UsageRecord>& batch) {
  return db_->transaction([&]() -> Status {
    FRUGAL_ASSIGN_OR_RETURN(
        SqliteStmt * ins,
        db_->cached("INSERT INTO usage(time, key, route, status, prompt_tokens, cached_tokens, completion_tokens, "
                    "cost_usd, finish_reason, cache_hit) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    for (const UsageRecord& r : batch) {
      ins->reset();
      ins->bind(1, r.time_s).bind(2, std::string_view(r.key_name.empty() ? "-" : r.key_name));
      ins->bind(3, std::string_view(r.route)).bind(4, r.status);
      ins->bind(5, r.prompt_tokens).bind(6, r.cached_tokens).bind(7, r.completion_tokens);
      ins->bind(8, r.cost_usd).bind(9, std::string_view(r.finish_reason)).bind(10, (int64_t)(r.cache_hit ? 1 : 0));
      FRUGAL_RETURN_IF_ERROR(ins->run());
    }
    return Status::Ok();
  });
}

void UsageLedger::wait_written(std::unique_lock<std::mutex>& lock) {
  const uint64_t target = queued_seq_;
  done_cv_.wait(lock, [&] { return written_seq_ >= target; });
}

Status UsageLedger::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  wait_written(lock);
  Status s = pending_error_;
  pending_error_ = Status::Ok();
  return s;
}

StatusOr<std::vector<UsageSummary>> UsageLedger::summarize(double since_s, double until_s) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    wait_written(lock);
  }
  std::lock_guard<std::mutex> db_lock(db_mu_);
  FRUGAL_ASSIGN_OR_RETURN(
      SqliteStmt * q,
      db_->cached("SELECT key, count(*), sum(prompt_tokens), sum(cached_tokens), sum(completion_tokens), "
                  "sum(cache_hit), sum(cost_usd), min(time), max(time) FROM usage WHERE time >= ? AND time < ? "
                  "GROUP BY key ORDER BY key"));
  q->bind(1, since_s).bind(2, until_s);
  std::vector<UsageSummary> out;
  for (;;) {
    FRUGAL_ASSIGN_OR_RETURN(bool row, q->step());
    if (!row) break;
    UsageSummary u;
    u.key_name = q->column_text(0);
    u.requests = q->column_int(1);
    u.prompt_tokens = q->column_int(2);
    u.cached_tokens = q->column_int(3);
    u.completion_tokens = q->column_int(4);
    u.cache_hits = q->column_int(5);
    u.cost_usd = q->column_double(6);
    u.first_s = q->column_double(7);
    u.last_s = q->column_double(8);
    out.push_back(std::move(u));
  }
  q->reset();
  return out;
}

UsageLedger::Stats UsageLedger::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil algorithm,
// written from its published description).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Reads exactly n digits at *p.
bool digits(std::string_view s, size_t* p, size_t n, int64_t* out) {
  if (*p + n > s.size()) return false;
  int64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[*p + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return true;
}

bool parse_date(std::string_view s, double* out) {
  size_t p = 0;
  int64_t y, mo, d, h = 0, mi = 0, se = 0;
  if (!digits(s, &p, 4, &y) || p >= s.size() || s[p++] != '-' || !digits(s, &p, 2, &mo) || p >= s.size() ||
      s[p++] != '-' || !digits(s, &p, 2, &d)) {
    return false;
  }
  if (p < s.size() && (s[p] == 'T' || s[p] == ' ')) {
    ++p;
    if (!digits(s, &p, 2, &h) || p >= s.size() || s[p++] != ':' || !digits(s, &p, 2, &mi)) return false;
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!digits(s, &p, 2, &se)) return false;
    }
  }
  if (p < s.size() && s[p] == 'Z') ++p;
  if (p != s.size()) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1) return false;
  if (d > kDays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0)) return false;
  if (h > 23 || mi > 59 || se > 59) return false;
  *out = (double)(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se);
  return true;
}

}  // namespace

StatusOr<double> parse_time_spec(const std::string& option, std::string_view text, double now_unix_s) {
  const auto bad = [&] {
    return invalid_argument(option + ": '" + std::string(text) +
                            "' is not a time (expected a duration like 24h, 7d, 30m, a UTC date like 2025-01-31 "
                            "or 2025-01-31T12:00, 'now' or @UNIX_SECONDS)");
  };
  if (text == "now") return now_unix_s;
  if (text.empty()) return bad();
  if (text[0] == '@') {
    double v = 0;
    auto [p, ec] = std::from_chars(text.data() + 1, text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || !std::isfinite(v)) return bad();
    return v;
  }
  double when = 0;
  if (parse_date(text, &when)) return when;
  const char unit = text.back();
  double scale = 0;
  switch (unit) {
    case 's': scale = 1; break;
    case 'm': scale = 60; break;
    case 'h': scale = 3600; break;
    case 'd': scale = 86400; break;
    case 'w': scale = 7 * 86400; break;
    default: return bad();
  }
  double n = 0;
  const char* end = text.data() + text.size() - 1;
  auto [p, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc() || p != end || !std::isfinite(n) || n < 0 || text.size() < 2) return bad();
  return now_unix_s - n * scale;
}

}  // namespace frugal
