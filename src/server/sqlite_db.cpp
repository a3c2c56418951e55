#include "server/sqlite_db.h"

#include <chrono>

namespace frugal {

double unix_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

namespace {

std::string first_words(std::string_view sql) {
  std::string s(sql.substr(0, 40));
  for (char& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return sql.size() > 40 ? s + "..." : s;
}

}  // namespace

StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::open(const std::string& path, const Options& options) {
  sqlite3* db = nullptr;
  const int flags = options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    if (rc == SQLITE_CANTOPEN) {
      return io_error(path + ": cannot open database (" + msg +
                      (options.read_only ? "; does the file exist?)" : "; is the directory there and writable?)"));
    }
    return io_error(path + ": cannot open database: " + msg);
  }
  std::unique_ptr<SqliteDb> out(new SqliteDb(db, path));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  // Touch the schema so that a file that is not a database fails here, with a clear message.
  Status s = out->exec("SELECT count(*) FROM sqlite_master;");
  if (!s.ok()) return Status(StatusCode::kCorrupt, path + ": not a usable SQLite database: " + s.message());
  if (options.wal && !options.read_only && path != ":memory:" && !path.empty()) {
    FRUGAL_RETURN_IF_ERROR(out->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  }
  return out;
}

SqliteDb::~SqliteDb() {
  cached_.clear();
  sqlite3_close(db_);
}

Status SqliteDb::error(const std::string& what, int rc) const {
  const int base = rc & 0xff;
  StatusCode code = StatusCode::kIo;
  if (base == SQLITE_CORRUPT || base == SQLITE_NOTADB) code = StatusCode::kCorrupt;
  if (base == SQLITE_ERROR) code = StatusCode::kInternal;  // SQL error: a schema mismatch or a bug
  if (base == SQLITE_BUSY || base == SQLITE_LOCKED) code = StatusCode::kUnavailable;
  return Status(code, path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

Status SqliteDb::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    Status st = error(first_words(sql), rc);
    if (err != nullptr) {
      st = Status(st.code(), path_ + ": " + first_words(sql) + ": " + err);
      sqlite3_free(err);
    }
    return st;
  }
  return Status::Ok();
}

StatusOr<SqliteStmt> SqliteDb::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.data(), (int)sql.size(), &stmt, nullptr);
  if (rc != SQLITE_OK) return error("prepare '" + first_words(sql) + "'", rc);
  return SqliteStmt(this, stmt);
}

SqliteStmt& SqliteStmt::operator=(SqliteStmt&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(stmt_);
    db_ = o.db_;
    stmt_ = o.stmt_;
    o.stmt_ = nullptr;
  }
  return *this;
}

SqliteStmt::~SqliteStmt() { sqlite3_finalize(stmt_); }

SqliteStmt& SqliteStmt::bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
SqliteStmt& SqliteStmt::bind(int i, double v) {
  sqlite3_bind_double(stmt_, i, v);
  return *this;
}
SqliteStmt& SqliteStmt::bind(int i, std::string_view text) {
  sqlite3_bind_text64(stmt_, i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}
SqliteStmt& SqliteStmt::bind_blob(int i, std::string_view bytes) {
  // A zero-length blob with a null pointer would bind NULL: give SQLite a valid pointer.
  static const char kEmpty = 0;
  sqlite3_bind_blob64(stmt_, i, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  return *this;
}
SqliteStmt& SqliteStmt::bind_null(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

StatusOr<bool> SqliteStmt::step() {
  FRUGAL_CHECK(stmt_ != nullptr);
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = db_->error(std::string("step '") + first_words(sqlite3_sql(stmt_)) + "'", rc);
  sqlite3_reset(stmt_);
  return s;
}

Status SqliteStmt::run() {
  for (;;) {
    StatusOr<bool> r = step();
    if (!r.ok()) {
      reset();
      return r.status();
    }
    if (!*r) break;
  }
  reset();
  return Status::Ok();
}

void SqliteStmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t SqliteStmt::column_int(int i) const { return sqlite3_column_int64(stmt_, i); }
double SqliteStmt::column_double(int i) const { return sqlite3_column_double(stmt_, i); }
std::string SqliteStmt::column_text(int i) const {
  const void* p = sqlite3_column_blob(stmt_, i);
  const int n = sqlite3_column_bytes(stmt_, i);
  if (p == nullptr || n <= 0) return std::string();
  return std::string(static_cast<const char*>(p), (size_t)n);
}
bool SqliteStmt::column_is_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

}  // namespace frugal

namespace frugal {

StatusOr<SqliteStmt*> SqliteDb::cached(const std::string& sql) {
  auto it = cached_.find(sql);
  if (it == cached_.end()) {
    FRUGAL_ASSIGN_OR_RETURN(SqliteStmt st, prepare(sql));
    it = cached_.emplace(sql, std::make_unique<SqliteStmt>(std::move(st))).first;
  }
  it->second->reset();
  return it->second.get();
}

Status SqliteDb::ensure_schema(const std::string& tag, std::string_view create_sql, bool create) {
  FRUGAL_ASSIGN_OR_RETURN(SqliteStmt tables, prepare("SELECT name FROM sqlite_master WHERE type='table'"));
  bool has_meta = false;
  int n_tables = 0;
  for (;;) {
    FRUGAL_ASSIGN_OR_RETURN(bool row, tables.step());
    if (!row) break;
    ++n_tables;
    if (tables.column_text(0) == "frugal_meta") has_meta = true;
  }
  if (!has_meta) {
    if (n_tables > 0) return corrupt(path_ + ": database has tables but is not a frugal database (expected " + tag + ")");
    if (!create) return not_found(path_ + ": empty database (no " + tag + " schema)");
    return transaction([&]() -> Status {
      FRUGAL_RETURN_IF_ERROR(exec("CREATE TABLE frugal_meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"));
      FRUGAL_RETURN_IF_ERROR(exec(create_sql));
      FRUGAL_ASSIGN_OR_RETURN(SqliteStmt ins, prepare("INSERT INTO frugal_meta(k, v) VALUES('schema', ?)"));
      ins.bind(1, std::string_view(tag));
      return ins.run();
    });
  }
  FRUGAL_ASSIGN_OR_RETURN(SqliteStmt q, prepare("SELECT v FROM frugal_meta WHERE k='schema'"));
  FRUGAL_ASSIGN_OR_RETURN(bool row, q.step());
  const std::string have = row ? q.column_text(0) : std::string("(none)");
  if (have != tag) return corrupt(path_ + ": database holds schema '" + have + "', expected '" + tag + "'");
  return Status::Ok();
}

Status SqliteDb::transaction(const std::function<Status()>& fn) {
  FRUGAL_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE;"));
  Status s = fn();
  if (s.ok()) s = exec("COMMIT;");
  if (!s.ok()) (void)exec("ROLLBACK;");
  return s;
}

}  // namespace frugal
