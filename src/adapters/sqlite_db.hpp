// A thin RAII layer over the sqlite3 C API for the SQLite adapters only: owned connection and
// statement handles, positional binds, transactions that roll back on any failure, and sqlite
// errors turned into kInternal errors that name no file. Nothing here leaves the adapters.
// Not thread-safe: a connection and its statements are used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

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

class Statement {
 public:
  static Result<Statement> Prepare(sqlite3* db, std::string_view sql);

  // Resets the statement and binds `values` to ?1, ?2, ... in order. Integers and bools bind
  // as INTEGER, anything convertible to string_view as TEXT (copied).
  template <class... Values>
  Result<void> Bind(const Values&... values) {
    sqlite3_reset(stmt_.get());
    int index = 0;
    int rc = SQLITE_OK;
    ((rc = rc == SQLITE_OK ? BindOne(++index, values) : rc), ...);
    if (rc != SQLITE_OK) return Failure(db_, rc);
    return {};
  }

  // Advances one row: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to the end, ignoring rows; for INSERT/UPDATE/DELETE.
  Result<void> Run();
  template <class... Values>
  Result<void> BindAndRun(const Values&... values) {
    if (auto bound = Bind(values...); !bound) return bound;
    return Run();
  }

  std::int64_t Int(int column) const { return sqlite3_column_int64(stmt_.get(), column); }
  std::string Text(int column) const;

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  int BindOne(int index, std::int64_t value);
  int BindOne(int index, std::string_view value);

  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

// Prepares `sql`, binds `values` and runs it to the end.
template <class... Values>
Result<void> Run(sqlite3* db, std::string_view sql, const Values&... values) {
  auto stmt = Statement::Prepare(db, sql);
  if (!stmt) return std::unexpected(stmt.error());
  return stmt->BindAndRun(values...);
}

// Rows changed by the last INSERT, UPDATE or DELETE on `db`.
inline std::int64_t Changes(sqlite3* db) { return sqlite3_changes64(db); }

// What a row converter (`Result<T> (const Statement&)`) makes: T.
template <class FromRow>
using RowType = typename std::invoke_result_t<FromRow&, const Statement&>::value_type;

// Steps a bound statement to the end, converting each row with `from_row`.
template <class FromRow>
Result<std::vector<RowType<FromRow>>> CollectRows(Statement& stmt, FromRow from_row) {
  std::vector<RowType<FromRow>> rows;
  for (;;) {
    auto more = stmt.Step();
    if (!more) return std::unexpected(more.error());
    if (!*more) return rows;
    auto row = from_row(std::as_const(stmt));
    if (!row) return std::unexpected(row.error());
    rows.push_back(std::move(*row));
  }
}

// Prepares a query, binds `values` to ?1, ?2, ... and collects its rows.
template <class FromRow, class... Values>
Result<std::vector<RowType<FromRow>>> SelectRows(sqlite3* db, std::string_view sql,
                                                 FromRow from_row, const Values&... values) {
  auto stmt = Statement::Prepare(db, sql);
  if (!stmt) return std::unexpected(stmt.error());
  if (auto bound = stmt->Bind(values...); !bound) return std::unexpected(bound.error());
  return CollectRows(*stmt, from_row);
}

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

}  // namespace dlipkg::sqlite
