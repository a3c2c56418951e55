// A thin RAII layer over the SQLite C API for the response cache and the usage ledger: one connection,
// prepared statements, errors as Status naming the database file. Not thread-safe: each owner guards
// its SqliteDb with its own mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace frugal {

// Wall-clock time in Unix seconds (what the databases store, so entries survive restarts).
double unix_seconds();

class SqliteStmt;

class SqliteDb {
 public:
  struct Options {
    bool read_only = false;     // open an existing file read-only (never creates it)
    bool wal = true;            // journal_mode=WAL for file databases (ignored for ":memory:")
    int busy_timeout_ms = 5000;
  };
  // path: a file name or ":memory:". Errors name the path and what SQLite said.
  static StatusOr<std::unique_ptr<SqliteDb>> open(const std::string& path, const Options& options);
  static StatusOr<std::unique_ptr<SqliteDb>> open(const std::string& path) { return open(path, Options{}); }
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements without results (schema, pragmas, BEGIN/COMMIT).
  Status exec(std::string_view sql);
  // Compiles one statement. Errors carry SQLite's message and the SQL's first words.
  StatusOr<SqliteStmt> prepare(std::string_view sql);
  // A statement compiled once and kept for the connection's lifetime, reset and unbound on each call.
  // The pointer stays valid until the SqliteDb is destroyed.
  StatusOr<SqliteStmt*> cached(const std::string& sql);

  // Makes sure the database holds the schema `tag` (kept in a table frugal_meta): an empty database
  // gets create_sql run and the tag stored; a database with another tag, or with tables but no tag,
  // is an error naming the path (kCorrupt) -- so a cache file is never used as a ledger. With
  // create = false an empty database is an error too (read-only users).
  Status ensure_schema(const std::string& tag, std::string_view create_sql, bool create = true);
  // Runs fn inside BEGIN IMMEDIATE ... COMMIT; rolls back when fn (or COMMIT) fails.
  Status transaction(const std::function<Status()>& fn);

  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }
  // "PATH: <what>: <sqlite message>" for the connection's last error.
  Status error(const std::string& what, int rc) const;

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_ = nullptr;
  std::string path_;
  std::map<std::string, std::unique_ptr<SqliteStmt>> cached_;  // destroyed before db_ is closed
};

// A prepared statement, movable. Bind indexes start at 1, column indexes at 0 (SQLite's convention).
class SqliteStmt {
 public:
  SqliteStmt() = default;
  SqliteStmt(SqliteDb* db, sqlite3_stmt* s) : db_(db), stmt_(s) {}
  SqliteStmt(SqliteStmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  SqliteStmt& operator=(SqliteStmt&& o) noexcept;
  ~SqliteStmt();

  SqliteStmt& bind(int i, int64_t v);
  SqliteStmt& bind(int i, double v);
  SqliteStmt& bind(int i, std::string_view text);  // copied (SQLITE_TRANSIENT)
  SqliteStmt& bind_blob(int i, std::string_view bytes);
  SqliteStmt& bind_null(int i);

  // Steps once: true with a row, false when done. Errors name the database.
  StatusOr<bool> step();
  // Steps to the end (statements without rows), then resets.
  Status run();
  // Resets for reuse and clears bindings.
  void reset();

  int64_t column_int(int i) const;
  double column_double(int i) const;
  std::string column_text(int i) const;  // text or blob bytes; "" for NULL
  bool column_is_null(int i) const;

 private:
  SqliteDb* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace frugal
