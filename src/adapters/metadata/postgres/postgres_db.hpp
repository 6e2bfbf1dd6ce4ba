// A thin layer over libpqxx for the PostgreSQL adapters only: a sql::Session over an open
// transaction, connection strings checked and completed before use, and pqxx errors turned
// into kInternal errors that name no host, URL or credential, classed by what the caller
// should do next. Nothing here leaves the adapters.
// Not thread-safe: a connection, its transaction and its session belong to one thread at a time.
#pragma once

#include <pqxx/pqxx>

#include <exception>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "adapters/metadata/sql_session.hpp"
#include "domain/error.hpp"

namespace dlipkg::postgres {

// What a failed transaction means for the caller.
enum class FailureKind {
  kStatement,   // the statement failed (a constraint, a bug): the connection is fine
  kConflict,    // serialization failure or deadlock: run the transaction again
  kConnection,  // the connection is lost or unusable: drop it; nothing was committed
  kInDoubt,     // lost while committing: the transaction may or may not have been committed
};

struct Failure {
  FailureKind kind;
  Error error;  // kInternal "metadata store failure: ..."
};

// Classes an exception thrown by pqxx (or anything else) inside a transaction.
Failure Classify(const std::exception& e);

// Opens a connection. Errors: kInternal "metadata store failure: cannot connect to
// PostgreSQL: <reason>", without the connection string.
Result<std::unique_ptr<pqxx::connection>> Connect(const std::string& connection_string);

// `url` (a postgresql:// URI or key=value connection string) with the defaults this server
// wants (a connect timeout, an application name) where it sets none; nullopt when libpq
// cannot parse it.
std::optional<std::string> CompleteConnectionString(const std::string& url);

// ?1, ?2, ... (the shared SQL's placeholders) as $1, $2, ...; quoted text is left alone.
std::string DollarPlaceholders(std::string_view sql);

// Which statement texts are run as prepared statements, under which name: the first
// kMaxPrepared distinct texts a store runs, so the server parses and plans a frequent statement
// (a show, a claim) once per connection instead of on every call, while SQL built from varying
// filters cannot make each connection hold an unbounded number of plans. Thread-safe.
class StatementNames {
 public:
  static constexpr std::size_t kMaxPrepared = 64;
  // The name `sql` (in $n form) is prepared under, or nullptr when the set is full without it.
  // The pointer stays valid as long as this object.
  const std::string* NameFor(const std::string& sql);

 private:
  std::shared_mutex mutex_;
  std::unordered_map<std::string, std::string> names_;
};

class Session final : public sql::Session {
 public:
  // `statements` null: every statement is sent with its text (PQexecParams).
  explicit Session(pqxx::transaction_base& tx, StatementNames* statements = nullptr)
      : tx_(tx), statements_(statements) {}

  Result<std::int64_t> Execute(std::string_view sql, std::span<const sql::Value> values,
                               const sql::RowHandler& on_row) override;

  // Why the last statement failed, if one did: the transaction is then unusable.
  const std::optional<Failure>& failure() const { return failure_; }

 private:
  pqxx::transaction_base& tx_;
  StatementNames* statements_;
  std::optional<Failure> failure_;
};

}  // namespace dlipkg::postgres
