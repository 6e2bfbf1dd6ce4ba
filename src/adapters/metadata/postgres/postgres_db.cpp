#include "adapters/metadata/postgres/postgres_db.hpp"

#include <libpq-fe.h>

#include <cctype>
#include <mutex>
#include <variant>
#include <vector>

namespace dlipkg::postgres {
namespace {

constexpr std::string_view kDefaultConnectTimeoutS = "10";

// The part of a libpq or server message worth showing: its first line, without the server's
// address that libpq puts before connection errors ("connection to server at "h", port p
// failed: ...") and without the severity ("FATAL:  ").
std::string Reason(std::string_view what) {
  std::string_view line = what.substr(0, what.find('\n'));
  if (const auto at = line.find("failed: "); at != std::string_view::npos)
    line = line.substr(at + 8);
  for (const std::string_view severity : {"FATAL:  ", "ERROR:  ", "PANIC:  "}) {
    if (line.starts_with(severity)) line.remove_prefix(severity.size());
  }
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
    line.remove_suffix(1);
  return line.empty() ? "unknown error" : std::string(line);
}

Failure Make(FailureKind kind, std::string_view what, std::string_view context = "") {
  return Failure{kind, Error{ErrorCode::kInternal,
                             "metadata store failure: " + std::string(context) + Reason(what),
                             /*retryable=*/kind != FailureKind::kStatement}};
}

bool IsConnectionState(const std::string& sqlstate) {
  // Class 08: connection exception; 57P01-57P03: the server is shutting down or starting.
  return sqlstate.starts_with("08") || sqlstate.starts_with("57P");
}

class ResultRow final : public sql::Row {
 public:
  explicit ResultRow(const pqxx::row& row) : row_(row) {}
  std::int64_t Int(int column) const override { return row_[column].as<std::int64_t>(); }
  std::string Text(int column) const override {
    const auto& field = row_[column];
    return std::string(field.c_str(), field.size());
  }

 private:
  const pqxx::row& row_;
};

// key='value' for a connection string: backslashes and quotes escaped.
std::string Quoted(std::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

Failure Classify(const std::exception& e) {
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return Make(FailureKind::kInDoubt, e.what(),
                "the connection to PostgreSQL was lost while committing, so the change may or "
                "may not have been made: ");
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
    return Make(FailureKind::kConnection, e.what(), "PostgreSQL unreachable: ");
  }
  if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr ||
      dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) {
    return Make(FailureKind::kConflict, e.what());
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e); sql != nullptr) {
    if (IsConnectionState(sql->sqlstate()))
      return Make(FailureKind::kConnection, e.what(), "PostgreSQL unreachable: ");
    if (sql->sqlstate() == "40001" || sql->sqlstate() == "40P01")
      return Make(FailureKind::kConflict, e.what());
  }
  return Make(FailureKind::kStatement, e.what());
}

Result<std::unique_ptr<pqxx::connection>> Connect(const std::string& connection_string) {
  try {
    return std::make_unique<pqxx::connection>(connection_string);
  } catch (const std::exception& e) {
    return std::unexpected(
        Make(FailureKind::kConnection, e.what(), "cannot connect to PostgreSQL: ").error);
  }
}

std::optional<std::string> CompleteConnectionString(const std::string& url) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(url.c_str(), &error), &PQconninfoFree);
  // The parser's message may quote parts of the string, passwords included: not passed on.
  if (error != nullptr) PQfreemem(error);
  if (!options) return std::nullopt;
  std::string out;
  bool has_timeout = false;
  bool has_name = false;
  for (const PQconninfoOption* option = options.get(); option->keyword != nullptr; ++option) {
    if (option->val == nullptr) continue;
    const std::string_view keyword = option->keyword;
    has_timeout = has_timeout || keyword == "connect_timeout";
    has_name = has_name || keyword == "application_name";
    out += std::string(keyword) + "=" + Quoted(option->val) + " ";
  }
  // Without a timeout, a call waits as long as the kernel does for an unreachable host.
  if (!has_timeout) out += "connect_timeout=" + std::string(kDefaultConnectTimeoutS) + " ";
  if (!has_name) out += "application_name=dlipkg";
  return out;
}

std::string DollarPlaceholders(std::string_view sql) {
  std::string out(sql);
  bool quoted = false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\'') quoted = !quoted;
    if (!quoted && out[i] == '?' && i + 1 < out.size() &&
        std::isdigit(static_cast<unsigned char>(out[i + 1])))
      out[i] = '$';
  }
  return out;
}

const std::string* StatementNames::NameFor(const std::string& sql) {
  {
    std::shared_lock lock(mutex_);
    if (const auto found = names_.find(sql); found != names_.end()) return &found->second;
    if (names_.size() >= kMaxPrepared) return nullptr;
  }
  std::unique_lock lock(mutex_);
  if (const auto found = names_.find(sql); found != names_.end()) return &found->second;
  if (names_.size() >= kMaxPrepared) return nullptr;
  const std::string name = "dlipkg_" + std::to_string(names_.size() + 1);
  return &names_.emplace(sql, name).first->second;
}

Result<std::int64_t> Session::Execute(std::string_view sql, std::span<const sql::Value> values,
                                      const sql::RowHandler& on_row) {
  if (failure_) return std::unexpected(failure_->error);  // the transaction is aborted
  try {
    std::vector<std::string> params;
    params.reserve(values.size());
    for (const auto& value : values) {
      if (const auto* number = std::get_if<std::int64_t>(&value))
        params.push_back(std::to_string(*number));
      else
        params.emplace_back(std::get<std::string_view>(value));
    }
    const std::string text = DollarPlaceholders(sql);
    const std::string* name = statements_ != nullptr ? statements_->NameFor(text) : nullptr;
    pqxx::result rows;
    if (name != nullptr) {
      // Only recorded by libpqxx (a no-op once known): it prepares the statement on the
      // connection when first executed there, one round trip once per connection.
      tx_.conn().prepare(*name, text);
      rows = tx_.exec_prepared(*name, pqxx::prepare::make_dynamic_params(params));
    } else {
      rows = tx_.exec_params(text, pqxx::prepare::make_dynamic_params(params));
    }
    if (on_row) {
      for (const auto& row : rows) {
        if (auto ok = on_row(ResultRow(row)); !ok) return std::unexpected(ok.error());
      }
    }
    return static_cast<std::int64_t>(rows.affected_rows());
  } catch (const std::exception& e) {
    failure_ = Classify(e);
    return std::unexpected(failure_->error);
  }
}

}  // namespace dlipkg::postgres
