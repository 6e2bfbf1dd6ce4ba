#include "adapters/metadata/sqlite/sqlite_db.hpp"

#include <variant>

namespace dlipkg::sqlite {
namespace {

// A row of a statement that sqlite3_step has just positioned.
class StatementRow final : public sql::Row {
 public:
  explicit StatementRow(sqlite3_stmt* stmt) : stmt_(stmt) {}
  std::int64_t Int(int column) const override { return sqlite3_column_int64(stmt_, column); }
  std::string Text(int column) const override {
    const auto* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return {};
    // The length is read after the text so it counts the bytes of that UTF-8 form.
    const int size = sqlite3_column_bytes(stmt_, column);
    return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
  }

 private:
  sqlite3_stmt* stmt_;
};

int Bind(sqlite3_stmt* stmt, int index, const sql::Value& value) {
  if (const auto* number = std::get_if<std::int64_t>(&value))
    return sqlite3_bind_int64(stmt, index, *number);
  const auto text = std::get<std::string_view>(value);
  // A null pointer would bind SQL NULL; an empty string must stay an empty TEXT.
  const char* data = text.data() != nullptr ? text.data() : "";
  return sqlite3_bind_text64(stmt, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

}  // namespace

std::unexpected<Error> Failure(sqlite3* db, int rc) {
  const int primary = rc & 0xff;
  // sqlite3_errmsg describes the last failure on `db` without the file name ("unable to open
  // database file", "UNIQUE constraint failed: ..."), so it is safe to show.
  const char* what = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Fail(ErrorCode::kInternal, std::string("metadata store failure: ") + what,
              primary == SQLITE_BUSY || primary == SQLITE_LOCKED);
}

Result<Connection> Open(const std::string& file, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
  Connection db(raw);  // sqlite hands back a handle to close even when the open fails
  if (rc != SQLITE_OK) return Failure(db.get(), rc);
  sqlite3_extended_result_codes(db.get(), 1);
  return db;
}

Result<void> Exec(sqlite3* db, std::string_view sql) {
  const std::string text(sql);
  const int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Failure(db, rc);
  return {};
}

Result<sqlite3_stmt*> Session::Prepared(std::string_view sql) {
  if (auto found = statements_.find(std::string(sql)); found != statements_.end())
    return found->second.get();
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  Statement stmt(raw);
  if (rc != SQLITE_OK) return Failure(db_.get(), rc);
  return statements_.emplace(std::string(sql), std::move(stmt)).first->second.get();
}

Result<std::int64_t> Session::Execute(std::string_view sql, std::span<const sql::Value> values,
                                      const sql::RowHandler& on_row) {
  auto prepared = Prepared(sql);
  if (!prepared) return std::unexpected(prepared.error());
  sqlite3_stmt* stmt = *prepared;
  // Reset on every way out, so an unfinished statement does not hold its read open.
  struct Resetter {
    sqlite3_stmt* stmt;
    ~Resetter() { sqlite3_reset(stmt); }
  } resetter{stmt};
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (const int rc = Bind(stmt, static_cast<int>(i) + 1, values[i]); rc != SQLITE_OK)
      return Failure(db_.get(), rc);
  }
  for (;;) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return sqlite3_changes64(db_.get());
    if (rc != SQLITE_ROW) return Failure(db_.get(), rc);
    if (!on_row) continue;
    if (auto ok = on_row(StatementRow(stmt)); !ok) return std::unexpected(ok.error());
  }
}

}  // namespace dlipkg::sqlite
