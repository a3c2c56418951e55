// Per-API-key usage ledger in SQLite: one row per finished request (tokens, cost, outcome), summed per
// key by `frugal usage`.
//
// record() only appends to an in-memory queue; a background writer thread inserts queued rows in
// batched transactions, so the HTTP thread never waits for the disk. The destructor writes everything
// still queued, then joins the writer. flush() waits until every record made before it is written.
//
// Thread-safety: record(), flush(), summarize() and stats() are safe from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "server/sqlite_db.h"

namespace frugal {

struct UsageRecord {
  std::string key_name;          // ApiKey::name; "" (stored as "-") when the server has no keys
  double time_s = 0;             // Unix seconds when the request finished
  std::string route;             // e.g. "/v1/chat/completions"
  int64_t status = 200;          // HTTP status sent
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;     // prompt tokens from the prefix cache
  int64_t completion_tokens = 0;
  double cost_usd = 0;
  std::string finish_reason;     // "stop", "length", "cancelled", "error", ...
  bool cache_hit = false;        // answered from the response cache
};

struct UsageSummary {
  std::string key_name;
  int64_t requests = 0;
  int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  int64_t cache_hits = 0;
  double cost_usd = 0;
  double first_s = 0, last_s = 0;  // time range of the key's records in the interval
};

class UsageLedger {
 public:
  struct Options {
    bool read_only = false;       // for `frugal usage`: existing file only, no writer thread
    size_t max_queue = 100000;    // records beyond this are dropped (counted in stats().dropped)
  };
  struct Stats {
    int64_t recorded = 0, written = 0;
    int64_t dropped = 0;  // refused by record() because the queue was full
    int64_t errors = 0;   // records lost to failed writes
  };

  // path: a file (created with its schema unless read_only) or ":memory:". Errors name the path.
  static StatusOr<std::unique_ptr<UsageLedger>> open(const std::string& path, const Options& options);
  static StatusOr<std::unique_ptr<UsageLedger>> open(const std::string& path) { return open(path, Options{}); }
  ~UsageLedger();  // writes what is queued, joins the writer
  UsageLedger(const UsageLedger&) = delete;
  UsageLedger& operator=(const UsageLedger&) = delete;

  // Queues a row; never blocks on the database. FRUGAL_CHECK: not read_only.
  void record(UsageRecord r);
  // Waits until every record() before this call is written; returns the first write error since the
  // previous flush() (written rows stay written; a failed batch is lost and counted in errors).
  Status flush();
  // Per key, records with since_s <= time_s < until_s, ordered by key name. Flushes first.
  StatusOr<std::vector<UsageSummary>> summarize(double since_s, double until_s);
  Stats stats() const;

 private:
  UsageLedger(std::unique_ptr<SqliteDb> db, Options options);
  Status init_schema();
  void writer_loop();
  Status write_batch(const std::vector<UsageRecord>& batch);  // db_mu_ held
  void wait_written(std::unique_lock<std::mutex>& lock);     // mu_ held: until the queue seen now is written

  Options options_;
  std::mutex db_mu_;  // guards db_
  std::unique_ptr<SqliteDb> db_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;       // writer waits for work / stop
  std::condition_variable done_cv_;  // flush() waits for written_seq_
  std::deque<UsageRecord> queue_;
  uint64_t queued_seq_ = 0, written_seq_ = 0;  // records accepted / handled by the writer
  Status pending_error_;
  Stats stats_;
  bool stop_ = false;
  std::thread writer_;
};

// `--since`/`--until` values: a duration back from now ("90s", "15m", "24h", "7d", "2w"), a UTC date
// "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]" (optionally ending in 'Z'), or Unix seconds ("@1700000000").
// Returns Unix seconds. Errors name `option` and the text.
StatusOr<double> parse_time_spec(const std::string& option, std::string_view text, double now_unix_s);

}  // namespace frugal
