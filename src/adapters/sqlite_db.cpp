#include "adapters/sqlite_db.hpp"

namespace dlipkg::sqlite {

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

Result<Statement> Statement::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
  Statement stmt(db, raw);
  if (rc != SQLITE_OK) return Failure(db, rc);
  return stmt;
}

Result<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Failure(db_, rc);
}

Result<void> Statement::Run() {
  for (;;) {
    auto row = Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return {};
  }
}

std::string Statement::Text(int column) const {
  const auto* text = sqlite3_column_text(stmt_.get(), column);
  if (text == nullptr) return {};
  // The length is read after the text so it counts the bytes of that UTF-8 form.
  const int size = sqlite3_column_bytes(stmt_.get(), column);
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

int Statement::BindOne(int index, std::int64_t value) {
  return sqlite3_bind_int64(stmt_.get(), index, value);
}

int Statement::BindOne(int index, std::string_view value) {
  // A null pointer would bind SQL NULL; an empty string must stay an empty TEXT.
  const char* data = value.data() != nullptr ? value.data() : "";
  return sqlite3_bind_text64(stmt_.get(), index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

}  // namespace dlipkg::sqlite
