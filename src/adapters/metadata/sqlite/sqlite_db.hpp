// A thin RAII layer over the sqlite3 C API for the SQLite adapters only: owned connections,
// a Session (sql_session.hpp) that runs statements prepared once per connection, transactions
// that roll back on any failure, and sqlite errors turned into kInternal errors that name no
// file. Nothing here leaves the adapters.
// Not thread-safe: a connection and its session are used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "adapters/metadata/sql_session.hpp"
#include "domain/error.hpp"

namespace dlipkg::sqlite {

struct ConnectionCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;

// kInternal "metadata store failure: <what sqlite says>"; retryable when the database was
// busy or locked. `db` may be null (then the message comes from `rc` alone).
std::unexpected<Error> Failure(sqlite3* db, int rc);

// Opens `file` with `flags` (SQLITE_OPEN_*), extended result codes on.
Result<Connection> Open(const std::string& file, int flags);

// Runs SQL text (one or more statements) whose rows, if any, are not wanted.
Result<void> Exec(sqlite3* db, std::string_view sql);

// Runs statements on one connection, which it owns. Each distinct SQL text is prepared on its
// first use and kept: the store's statements are a small fixed set. `on_row` handlers must not
// run statements on the same session.
class Session final : public sql::Session {
 public:
  explicit Session(Connection db) : db_(std::move(db)) {}
  sqlite3* db() const { return db_.get(); }

  Result<std::int64_t> Execute(std::string_view sql, std::span<const sql::Value> values,
                               const sql::RowHandler& on_row) override;

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  using Statement = std::unique_ptr<sqlite3_stmt, Finalizer>;

  Result<sqlite3_stmt*> Prepared(std::string_view sql);

  Connection db_;  // declared first: outlives the statements
  std::unordered_map<std::string, Statement> statements_;
};

// Rolls back the open transaction of `db`, if any, when it goes out of scope: covers a body
// that failed, threw, or a COMMIT that did not happen (sqlite may already have rolled back).
class RollbackGuard {
 public:
  explicit RollbackGuard(sqlite3* db) : db_(db) {}
  RollbackGuard(const RollbackGuard&) = delete;
  RollbackGuard& operator=(const RollbackGuard&) = delete;
  ~RollbackGuard() {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  sqlite3* db_;
};

// Runs `body()` (returning a Result) between `begin_sql` ("BEGIN" or "BEGIN IMMEDIATE") and
// COMMIT. Nothing of it is kept when the body or the commit fails.
template <class Body>
auto InTransaction(sqlite3* db, std::string_view begin_sql, Body&& body) -> decltype(body()) {
  if (auto begun = Exec(db, begin_sql); !begun) return std::unexpected(begun.error());
  RollbackGuard guard(db);
  auto result = body();
  if (!result) return result;
  if (auto committed = Exec(db, "COMMIT"); !committed) return std::unexpected(committed.error());
  return result;
}

// InTransaction on a Session: its BEGIN and COMMIT are prepared once and reused, not parsed
// again for every call.
template <class Body>
auto InTransaction(Session& session, std::string_view begin_sql, Body&& body) -> decltype(body()) {
  if (auto begun = sql::Run(session, begin_sql); !begun) return std::unexpected(begun.error());
  RollbackGuard guard(session.db());
  auto result = body();
  if (!result) return result;
  if (auto committed = sql::Run(session, "COMMIT"); !committed)
    return std::unexpected(committed.error());
  return result;
}

}  // namespace dlipkg::sqlite
