#include "adapters/metadata/postgres/postgres_db.hpp"

#include <cctype>
#include <charconv>
#include <mutex>
#include <stdexcept>
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

bool IsConnectionState(std::string_view sqlstate) {
  // Class 08: connection exception; 57P01-57P03: the server is shutting down or starting.
  return sqlstate.starts_with("08") || sqlstate.starts_with("57P");
}

class ResultRow final : public sql::Row {
 public:
  ResultRow(const PGresult* result, int row) : result_(result), row_(row) {}
  std::int64_t Int(int column) const override {
    const char* text = PQgetvalue(result_, row_, column);
    const char* end = text + PQgetlength(result_, row_, column);
    std::int64_t value = 0;
    const auto [stop, error] = std::from_chars(text, end, value);
    // Thrown to Session::Execute, which fails the statement with it.
    if (error != std::errc() || stop != end || text == end)
      throw std::runtime_error("column " + std::to_string(column) + " is not an integer");
    return value;
  }
  std::string Text(int column) const override {
    return std::string(PQgetvalue(result_, row_, column), PQgetlength(result_, row_, column));
  }

 private:
  const PGresult* result_;
  int row_;
};

// The rows of a received result, each read through ResultRow.
class ResultRows final : public sql::Rows {
 public:
  explicit ResultRows(ResultPtr result) : result_(std::move(result)) {}
  std::size_t Count() const override { return static_cast<std::size_t>(PQntuples(result_.get())); }
  Result<void> Visit(std::size_t index, const sql::RowHandler& on_row) const override {
    try {
      return on_row(ResultRow(result_.get(), static_cast<int>(index)));
    } catch (const std::exception& e) {  // an unreadable value
      return std::unexpected(StatementFailure(e.what()).error);
    }
  }

 private:
  ResultPtr result_;
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

Failure Classify(std::string_view sqlstate, std::string_view message, bool connection_lost,
                 bool committing) {
  if (connection_lost && committing) {
    return Make(FailureKind::kInDoubt, message,
                "the connection to PostgreSQL was lost while committing, so the change may or "
                "may not have been made: ");
  }
  if (connection_lost || IsConnectionState(sqlstate))
    return Make(FailureKind::kConnection, message, "PostgreSQL unreachable: ");
  if (sqlstate == "40001" || sqlstate == "40P01") return Make(FailureKind::kConflict, message);
  return Make(FailureKind::kStatement, message);
}

Failure StatementFailure(std::string_view what) { return Make(FailureKind::kStatement, what); }

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

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& connection_string) {
  std::unique_ptr<PGconn, ConnDeleter> connection(PQconnectdb(connection_string.c_str()));
  if (!connection) {
    return std::unexpected(
        Make(FailureKind::kConnection, "out of memory", "cannot connect to PostgreSQL: ").error);
  }
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    return std::unexpected(Make(FailureKind::kConnection, PQerrorMessage(connection.get()),
                                "cannot connect to PostgreSQL: ")
                               .error);
  }
  // Notices ("relation already exists, skipping") are not the log's business.
  PQsetNoticeProcessor(
      connection.get(), [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(connection.release()));
}

std::optional<Failure> Connection::Check(const PGresult* result, bool committing) const {
  const ExecStatusType status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return std::nullopt;
  const char* sqlstate = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const char* message = result != nullptr ? PQresultErrorMessage(result) : "";
  if (message == nullptr || *message == '\0') message = PQerrorMessage(connection_.get());
  // No result at all: libpq could not send the statement or read its answer.
  const bool lost = result == nullptr || PQstatus(connection_.get()) != CONNECTION_OK;
  return Classify(sqlstate != nullptr ? sqlstate : "", message, lost, committing);
}

std::optional<Failure> Connection::Command(const std::string& sql, bool committing) {
  const ResultPtr result(PQexec(connection_.get(), sql.c_str()));
  return Check(result.get(), committing);
}

std::expected<ResultPtr, Failure> Connection::Query(const std::string& sql, const std::string* name,
                                                    std::span<const char* const> values) {
  const int count = static_cast<int>(values.size());
  ResultPtr result;
  if (name != nullptr) {
    if (!prepared_.contains(*name)) {
      // Prepared statements outlive a transaction's rollback: once per connection.
      const ResultPtr prepared(
          PQprepare(connection_.get(), name->c_str(), sql.c_str(), 0, nullptr));
      if (auto failure = Check(prepared.get(), false)) return std::unexpected(std::move(*failure));
      prepared_.insert(*name);
    }
    result.reset(PQexecPrepared(connection_.get(), name->c_str(), count, values.data(), nullptr,
                                nullptr, 0));
  } else {
    result.reset(PQexecParams(connection_.get(), sql.c_str(), count, nullptr, values.data(),
                              nullptr, nullptr, 0));
  }
  if (auto failure = Check(result.get(), false)) return std::unexpected(std::move(*failure));
  return result;
}

std::optional<Failure> Connection::Send(const std::string& sql, const std::string* name,
                                        std::span<const char* const> values) {
  const int count = static_cast<int>(values.size());
  if (name != nullptr && !prepared_.contains(*name)) {
    const ResultPtr prepared(PQprepare(connection_.get(), name->c_str(), sql.c_str(), 0, nullptr));
    if (auto failure = Check(prepared.get(), false)) return failure;
    prepared_.insert(*name);
  }
  const int sent = name != nullptr ? PQsendQueryPrepared(connection_.get(), name->c_str(), count,
                                                         values.data(), nullptr, nullptr, 0)
                                   : PQsendQueryParams(connection_.get(), sql.c_str(), count,
                                                       nullptr, values.data(), nullptr, nullptr, 0);
  if (sent == 0) return Check(nullptr, false);  // not sent: the connection is lost or busy
  return std::nullopt;
}

std::expected<ResultPtr, Failure> Connection::Receive() {
  ResultPtr result(PQgetResult(connection_.get()));
  // The statement's one result, then null: read so that the connection is idle again.
  while (ResultPtr more{PQgetResult(connection_.get())}) {
  }
  if (auto failure = Check(result.get(), false)) return std::unexpected(std::move(*failure));
  return result;
}

bool Connection::InTransaction() const {
  const PGTransactionStatusType status = PQtransactionStatus(connection_.get());
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

bool Connection::Reusable() const {
  return PQstatus(connection_.get()) == CONNECTION_OK &&
         PQtransactionStatus(connection_.get()) == PQTRANS_IDLE;
}

TextStatement::TextStatement(std::string_view sql, std::span<const sql::Value> values,
                             StatementNames* statements)
    : text_(DollarPlaceholders(sql)),
      name_(statements != nullptr ? statements->NameFor(text_) : nullptr) {
  params_.reserve(values.size());
  for (const auto& value : values) {
    if (const auto* number = std::get_if<std::int64_t>(&value))
      params_.push_back(std::to_string(*number));
    else
      params_.emplace_back(std::get<std::string_view>(value));
  }
  pointers_.reserve(params_.size());
  for (const auto& param : params_) pointers_.push_back(param.c_str());
}

Pipeline::~Pipeline() {
  if (in_flight_) (void)connection_.Receive();
}

Result<void> Pipeline::Send(std::string_view sql, std::span<const sql::Value> values) {
  if (failure_) return std::unexpected(failure_->error);
  if (in_flight_) {
    failure_ = StatementFailure("a statement is already in flight");
    return std::unexpected(failure_->error);
  }
  const TextStatement statement(sql, values, statements_);
  if (auto failure = connection_.Send(statement.text(), statement.name(), statement.values())) {
    failure_ = std::move(*failure);
    return std::unexpected(failure_->error);
  }
  in_flight_ = true;
  return {};
}

Result<std::unique_ptr<sql::Rows>> Pipeline::Receive() {
  if (failure_) return std::unexpected(failure_->error);
  if (!in_flight_) {
    failure_ = StatementFailure("no statement in flight");
    return std::unexpected(failure_->error);
  }
  in_flight_ = false;
  auto result = connection_.Receive();
  if (!result) {
    failure_ = std::move(result.error());
    return std::unexpected(failure_->error);
  }
  return std::make_unique<ResultRows>(std::move(*result));
}

Result<std::int64_t> Session::Execute(std::string_view sql, std::span<const sql::Value> values,
                                      const sql::RowHandler& on_row) {
  if (failure_) return std::unexpected(failure_->error);  // the transaction is aborted
  try {
    const TextStatement statement(sql, values, statements_);
    auto rows = connection_.Query(statement.text(), statement.name(), statement.values());
    if (!rows) {
      failure_ = std::move(rows.error());
      return std::unexpected(failure_->error);
    }
    const PGresult* result = rows->get();
    if (on_row) {
      for (int row = 0, count = PQntuples(result); row < count; ++row) {
        if (auto ok = on_row(ResultRow(result, row)); !ok) return std::unexpected(ok.error());
      }
    }
    const std::string_view changed = PQcmdTuples(const_cast<PGresult*>(result));
    std::int64_t count = 0;
    std::from_chars(changed.data(), changed.data() + changed.size(), count);
    return count;
  } catch (const std::exception& e) {
    failure_ = StatementFailure(e.what());
    return std::unexpected(failure_->error);
  }
}

}  // namespace dlipkg::postgres
