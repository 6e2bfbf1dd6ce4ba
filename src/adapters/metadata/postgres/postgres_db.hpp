// A thin layer over libpq for the PostgreSQL adapters (and their tests) only: a connection that
// owns every result the moment libpq hands it over, a sql::Session over it, connection strings
// checked and completed before use, and failures turned into kInternal errors that name no
// host, URL or credential, classed by what the caller should do next. Nothing here leaves the
// adapters. Not thread-safe: a connection and its session belong to one thread at a time.
//
// Not libpqxx: libpqxx 6.4 (Debian 12's) leaks the PGresult of every statement that finds its
// connection lost (connection_base::make_result asks for the client encoding, which throws,
// before the result is owned), 2 KiB per dead pooled connection at each PostgreSQL restart.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "adapters/metadata/sql_session.hpp"
#include "domain/error.hpp"

namespace dlipkg::postgres {

// What a failed statement or transaction means for the caller.
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

// Classes a failure from what libpq reports: the SQLSTATE (empty when the server sent none),
// libpq's or the server's message, whether the connection is gone, and whether the statement
// was the COMMIT.
Failure Classify(std::string_view sqlstate, std::string_view message, bool connection_lost,
                 bool committing = false);

// A failure that is not PostgreSQL's (an unreadable value, an exception in a row handler).
Failure StatementFailure(std::string_view what);

// ?1, ?2, ... (the shared SQL's placeholders) as $1, $2, ...; quoted text is left alone.
std::string DollarPlaceholders(std::string_view sql);

// `url` (a postgresql:// URI or key=value connection string) with the defaults this server
// wants (a connect timeout, an application name) where it sets none; nullopt when libpq
// cannot parse it.
std::optional<std::string> CompleteConnectionString(const std::string& url);

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

struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

class Connection {
 public:
  // Errors: kInternal "metadata store failure: cannot connect to PostgreSQL: <reason>",
  // without the connection string.
  static Result<std::unique_ptr<Connection>> Open(const std::string& connection_string);

  // Runs SQL without parameters, possibly several statements (BEGIN, COMMIT, a migration step);
  // `committing`: a lost connection makes the outcome unknown (kInDoubt).
  std::optional<Failure> Command(const std::string& sql, bool committing = false);

  // Runs one statement with text parameters: as the prepared statement `name` (prepared on
  // this connection when first used) or, with no name, sent with its text. Its rows, or why
  // it failed.
  std::expected<ResultPtr, Failure> Query(const std::string& sql, const std::string* name,
                                          std::span<const char* const> values);

  // Query in two halves: Send puts the statement on its way (preparing it first when `name`
  // is new to this connection, which waits for that) and returns; Receive waits for its rows.
  // Nothing else may run on the connection in between.
  std::optional<Failure> Send(const std::string& sql, const std::string* name,
                              std::span<const char* const> values);
  std::expected<ResultPtr, Failure> Receive();

  // Inside a transaction (or a failed one), with the connection still up.
  bool InTransaction() const;
  // Neither lost nor inside a transaction: fit to be lent again.
  bool Reusable() const;

 private:
  struct ConnDeleter {
    void operator()(PGconn* connection) const { PQfinish(connection); }
  };
  explicit Connection(PGconn* connection) : connection_(connection) {}
  // The failure `result` (possibly null) reports, or nullopt for a success.
  std::optional<Failure> Check(const PGresult* result, bool committing) const;

  std::unique_ptr<PGconn, ConnDeleter> connection_;
  std::unordered_set<std::string> prepared_;  // names prepared on this connection
};

// The statement texts and values of a call, as libpq takes them.
class TextStatement {
 public:
  TextStatement(std::string_view sql, std::span<const sql::Value> values,
                StatementNames* statements);
  const std::string& text() const { return text_; }
  const std::string* name() const { return name_; }  // null: sent with its text
  std::span<const char* const> values() const { return pointers_; }

 private:
  std::string text_;
  const std::string* name_;
  std::vector<std::string> params_;
  std::vector<const char*> pointers_;
};

// A sql::Pipeline on a connection in autocommit mode. Destroying it with a statement in
// flight waits for that statement's rows and drops them, so the connection is left idle.
class Pipeline final : public sql::Pipeline {
 public:
  Pipeline(Connection& connection, StatementNames* statements)
      : connection_(connection), statements_(statements) {}
  ~Pipeline() override;

  Result<void> Send(std::string_view sql, std::span<const sql::Value> values) override;
  Result<std::unique_ptr<sql::Rows>> Receive() override;

  const std::optional<Failure>& failure() const { return failure_; }

 private:
  Connection& connection_;
  StatementNames* statements_;
  bool in_flight_ = false;
  std::optional<Failure> failure_;
};

class Session final : public sql::Session {
 public:
  // `statements` null: every statement is sent with its text (PQexecParams).
  explicit Session(Connection& connection, StatementNames* statements = nullptr)
      : connection_(connection), statements_(statements) {}

  Result<std::int64_t> Execute(std::string_view sql, std::span<const sql::Value> values,
                               const sql::RowHandler& on_row) override;

  // Why the last statement failed, if one did: a transaction is then unusable.
  const std::optional<Failure>& failure() const { return failure_; }

 private:
  Connection& connection_;
  StatementNames* statements_;
  std::optional<Failure> failure_;
};

}  // namespace dlipkg::postgres
