// Exact-match cache of whole responses, persisted in SQLite (survives restarts): "the cheapest token
// is the one not generated". The caller (the HTTP layer) decides what is cacheable (deterministic
// requests, no Cache-Control: no-cache) and builds the key with cache_key().
//
// Bounds: an entry expires ttl_s after it was stored (expired entries are misses and are deleted);
// beyond max_entries or max_bytes the least recently used entries (by last get/put) are evicted.
// Times are Unix seconds (unix_seconds() from sqlite_db.h), passed in by the caller so tests are
// deterministic.
//
// Thread-safety: all methods are safe from any thread (one mutex around one SQLite connection). A put
// is one short transaction; the file uses WAL journaling.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "server/sqlite_db.h"

namespace frugal {

// What is needed to replay a response. The cache stores the fields as given; payload_json is free for
// anything else the HTTP layer wants back (e.g. several choices for n > 1) and may be empty.
struct CachedResponse {
  std::string text;
  std::string finish_reason;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::string logprobs_json;  // "" when the request had no logprobs
  std::string payload_json;
  double created_s = 0;       // set by put() (its now_s); returned by get()

  // Bytes counted against max_bytes: key + every string field + a fixed 64-byte overhead.
  int64_t size_bytes(std::string_view key) const;
};

// Hex SHA-256 over the parts, each length-prefixed (so ("ab","c") and ("a","bc") differ). Callers pass
// e.g. {model_id, adapter, normalized_request_json, sampling_params}.
std::string cache_key(std::initializer_list<std::string_view> parts);

class ResponseCache {
 public:
  struct Options {
    double ttl_s = 3600;                  // <= 0: entries never expire
    int64_t max_entries = 10000;          // <= 0: no bound
    int64_t max_bytes = 256ll << 20;      // <= 0: no bound
  };
  struct Stats {
    int64_t hits = 0, misses = 0;         // since open
    int64_t entries = 0, bytes = 0;       // now (persisted entries included)
    int64_t evictions = 0, expirations = 0, errors = 0;  // since open
  };

  // path: a file (created with its schema if missing) or ":memory:". Errors name the path: a directory
  // that does not exist or is not writable, a file that is not a SQLite database or has another schema.
  static StatusOr<std::unique_ptr<ResponseCache>> open(const std::string& path, const Options& options);
  ~ResponseCache();

  // A hit refreshes the entry's last use. Database errors count in stats().errors and read as misses.
  std::optional<CachedResponse> get(const std::string& key, double now_s);
  // Inserts or replaces, then evicts expired and least recently used entries beyond the bounds. An
  // entry larger than max_bytes on its own is not stored (returns Ok). Errors name the database.
  Status put(const std::string& key, const CachedResponse& value, double now_s);
  // Deletes every entry.
  Status clear();

  Stats stats() const;
  const Options& options() const { return options_; }

 private:
  ResponseCache(std::unique_ptr<SqliteDb> db, Options options);
  Status init_schema();
  Status evict(double now_s);  // mu_ held
  Status delete_key(const std::string& key, int64_t bytes);  // mu_ held

  mutable std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;
  Options options_;
  Stats stats_;
};

}  // namespace frugal
