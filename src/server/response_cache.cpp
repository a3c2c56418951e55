#include "server/response_cache.h"

#include "server/sha256.h"

namespace frugal {

namespace {

constexpr const char* kSchemaTag = "frugal-response-cache-1";
constexpr const char* kCreateSql = R"sql(
CREATE TABLE responses(
  key TEXT PRIMARY KEY,
  created REAL NOT NULL,
  last_used REAL NOT NULL,
  bytes INTEGER NOT NULL,
  text BLOB NOT NULL,
  finish_reason TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  logprobs BLOB NOT NULL,
  payload BLOB NOT NULL);
CREATE INDEX responses_last_used ON responses(last_used);
CREATE INDEX responses_created ON responses(created);
)sql";

}  // namespace

int64_t CachedResponse::size_bytes(std::string_view key) const {
  return (int64_t)(key.size() + text.size() + finish_reason.size() + logprobs_json.size() + payload_json.size()) + 64;
}

std::string cache_key(std::initializer_list<std::string_view> parts) {
  Sha256 h;
  for (std::string_view p : parts) {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = (uint8_t)((uint64_t)p.size() >> (8 * i));
    h.update(len, 8);
    h.update(p);
  }
  return to_hex(h.digest());
}

ResponseCache::ResponseCache(std::unique_ptr<SqliteDb> db, Options options)
    : db_(std::move(db)), options_(options) {}

ResponseCache::~ResponseCache() = default;

StatusOr<std::unique_ptr<ResponseCache>> ResponseCache::open(const std::string& path, const Options& options) {
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db, SqliteDb::open(path));
  FRUGAL_RETURN_IF_ERROR(db->ensure_schema(kSchemaTag, kCreateSql));
  std::unique_ptr<ResponseCache> c(new ResponseCache(std::move(db), options));
  FRUGAL_ASSIGN_OR_RETURN(SqliteStmt q, c->db_->prepare("SELECT count(*), coalesce(sum(bytes), 0) FROM responses"));
  FRUGAL_ASSIGN_OR_RETURN(bool row, q.step());
  if (row) {
    c->stats_.entries = q.column_int(0);
    c->stats_.bytes = q.column_int(1);
  }
  // The bounds may be smaller than when the file was written.
  std::lock_guard<std::mutex> lock(c->mu_);
  FRUGAL_RETURN_IF_ERROR(c->db_->transaction([&] { return c->evict(unix_seconds()); }));
  return c;
}

Status ResponseCache::delete_key(const std::string& key, int64_t bytes) {
  FRUGAL_ASSIGN_OR_RETURN(SqliteStmt * del, db_->cached("DELETE FROM responses WHERE key = ?"));
  del->bind(1, std::string_view(key));
  FRUGAL_RETURN_IF_ERROR(del->run());
  stats_.entries -= 1;
  stats_.bytes -= bytes;
  return Status::Ok();
}

std::optional<CachedResponse> ResponseCache::get(const std::string& key, double now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  auto fail = [&](const Status&) -> std::optional<CachedResponse> {
    stats_.errors += 1;
    stats_.misses += 1;
    return std::nullopt;
  };
  StatusOr<SqliteStmt*> q = db_->cached(
      "SELECT created, bytes, text, finish_reason, prompt_tokens, completion_tokens, logprobs, payload "
      "FROM responses WHERE key = ?");
  if (!q.ok()) return fail(q.status());
  SqliteStmt& s = **q;
  s.bind(1, std::string_view(key));
  StatusOr<bool> row = s.step();
  if (!row.ok()) return fail(row.status());
  if (!*row) {
    stats_.misses += 1;
    return std::nullopt;
  }
  CachedResponse r;
  r.created_s = s.column_double(0);
  const int64_t bytes = s.column_int(1);
  if (options_.ttl_s > 0 && now_s - r.created_s >= options_.ttl_s) {
    s.reset();
    Status d = delete_key(key, bytes);
    if (!d.ok()) return fail(d);
    stats_.expirations += 1;
    stats_.misses += 1;
    return std::nullopt;
  }
  r.text = s.column_text(2);
  r.finish_reason = s.column_text(3);
  r.prompt_tokens = s.column_int(4);
  r.completion_tokens = s.column_int(5);
  r.logprobs_json = s.column_text(6);
  r.payload_json = s.column_text(7);
  s.reset();
  StatusOr<SqliteStmt*> touch = db_->cached("UPDATE responses SET last_used = ? WHERE key = ?");
  if (!touch.ok()) return fail(touch.status());
  (*touch)->bind(1, now_s).bind(2, std::string_view(key));
  Status t = (*touch)->run();
  if (!t.ok()) return fail(t);
  stats_.hits += 1;
  return r;
}

Status ResponseCache::evict(double now_s) {
  if (options_.ttl_s > 0) {
    FRUGAL_ASSIGN_OR_RETURN(
        SqliteStmt * q, db_->cached("SELECT count(*), coalesce(sum(bytes), 0) FROM responses WHERE created <= ?"));
    q->bind(1, now_s - options_.ttl_s);
    FRUGAL_ASSIGN_OR_RETURN(bool row, q->step());
    const int64_t n = row ? q->column_int(0) : 0, bytes = row ? q->column_int(1) : 0;
    q->reset();
    if (n > 0) {
      FRUGAL_ASSIGN_OR_RETURN(SqliteStmt * del, db_->cached("DELETE FROM responses WHERE created <= ?"));
      del->bind(1, now_s - options_.ttl_s);
      FRUGAL_RETURN_IF_ERROR(del->run());
      stats_.entries -= n;
      stats_.bytes -= bytes;
      stats_.expirations += n;
    }
  }
  auto over = [&] {
    return (options_.max_entries > 0 && stats_.entries > options_.max_entries) ||
           (options_.max_bytes > 0 && stats_.bytes > options_.max_bytes);
  };
  while (over()) {
    FRUGAL_ASSIGN_OR_RETURN(SqliteStmt * q,
                            db_->cached("SELECT key, bytes FROM responses ORDER BY last_used, rowid LIMIT 1"));
    FRUGAL_ASSIGN_OR_RETURN(bool row, q->step());
    if (!row) break;
    const std::string key = q->column_text(0);
    const int64_t bytes = q->column_int(1);
    q->reset();
    FRUGAL_RETURN_IF_ERROR(delete_key(key, bytes));
    stats_.evictions += 1;
  }
  return Status::Ok();
}

Status ResponseCache::put(const std::string& key, const CachedResponse& value, double now_s) {
  const int64_t size = value.size_bytes(key);
  if (options_.max_bytes > 0 && size > options_.max_bytes) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  const Stats before = stats_;
  Status s = db_->transaction([&]() -> Status {
    FRUGAL_ASSIGN_OR_RETURN(SqliteStmt * old, db_->cached("SELECT bytes FROM responses WHERE key = ?"));
    old->bind(1, std::string_view(key));
    FRUGAL_ASSIGN_OR_RETURN(bool had, old->step());
    const int64_t old_bytes = had ? old->column_int(0) : 0;
    old->reset();
    FRUGAL_ASSIGN_OR_RETURN(
        SqliteStmt * ins,
        db_->cached("INSERT OR REPLACE INTO responses(key, created, last_used, bytes, text, finish_reason, "
                    "prompt_tokens, completion_tokens, logprobs, payload) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    ins->bind(1, std::string_view(key)).bind(2, now_s).bind(3, now_s).bind(4, size);
    ins->bind_blob(5, value.text).bind(6, std::string_view(value.finish_reason));
    ins->bind(7, value.prompt_tokens).bind(8, value.completion_tokens);
    ins->bind_blob(9, value.logprobs_json).bind_blob(10, value.payload_json);
    FRUGAL_RETURN_IF_ERROR(ins->run());
    stats_.entries += had ? 0 : 1;
    stats_.bytes += size - old_bytes;
    return evict(now_s);
  });
  if (!s.ok()) {
    // Rolled back: the counts go back too; errors keep counting.
    const int64_t errors = stats_.errors + 1;
    stats_ = before;
    stats_.errors = errors;
  }
  return s;
}

Status ResponseCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  FRUGAL_RETURN_IF_ERROR(db_->exec("DELETE FROM responses;"));
  stats_.entries = 0;
  stats_.bytes = 0;
  return Status::Ok();
}

ResponseCache::Stats ResponseCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace frugal
