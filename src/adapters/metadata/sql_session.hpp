// What the metadata SQL shared by the SQLite and PostgreSQL stores (metadata_sql.hpp) needs
// from a database: run one statement, inside a transaction the store has opened, with values
// bound to ?1, ?2, ... and its rows read by column. Each engine's adapter implements Session;
// the helpers below bind C++ values and turn rows into records.
// Not thread-safe: a session belongs to one connection, used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "domain/error.hpp"

namespace dlipkg::sql {

// A bound value. Texts are borrowed for the duration of the statement only.
using Value = std::variant<std::int64_t, std::string_view>;

class Row {
 public:
  virtual std::int64_t Int(int column) const = 0;
  virtual std::string Text(int column) const = 0;

 protected:
  ~Row() = default;
};

using RowHandler = std::function<Result<void>(const Row&)>;

class Session {
 public:
  virtual ~Session() = default;
  // Runs one statement with values bound to ?1, ?2, ... in order, handing each row it yields
  // to `on_row` (which may be empty). Returns the rows an INSERT, UPDATE or DELETE changed.
  // Errors: kInternal "metadata store failure: ...", naming no file, host or credential; the
  // transaction is then unusable and the caller returns the error.
  virtual Result<std::int64_t> Execute(std::string_view sql, std::span<const Value> values,
                                       const RowHandler& on_row) = 0;
};

// The rows of a statement received from a Pipeline, kept until destroyed.
class Rows {
 public:
  virtual ~Rows() = default;
  virtual std::size_t Count() const = 0;
  // Hands row `index` (< Count()) to `on_row`.
  virtual Result<void> Visit(std::size_t index, const RowHandler& on_row) const = 0;
};

// One connection held for a series of single statements in autocommit mode (each its own
// snapshot), where the next statement may be sent before the rows of the one before are
// handled, so that the database works on it meanwhile. At most one statement is in flight.
// Errors as Session::Execute's; after one, the pipeline is unusable. Not thread-safe.
class Pipeline {
 public:
  virtual ~Pipeline() = default;
  // Sends a statement (values as for Session::Execute, copied before this returns).
  virtual Result<void> Send(std::string_view sql, std::span<const Value> values) = 0;
  // Waits for the rows of the statement sent.
  virtual Result<std::unique_ptr<Rows>> Receive() = 0;
};

// Integers and bools bind as integers, anything convertible to string_view as text.
template <class T>
Value ToValue(const T& value) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<std::int64_t>(value);
  else
    return std::string_view(value);
}

// Runs a statement whose rows, if any, are not wanted; returns the rows changed.
template <class... Values>
Result<std::int64_t> Run(Session& session, std::string_view sql, const Values&... values) {
  const Value bound[] = {Value{std::int64_t{0}}, ToValue(values)...};
  return session.Execute(sql, std::span(bound).subspan(1), {});
}

// What a row converter (`Result<T> (const Row&)`) makes: T.
template <class FromRow>
using RowType = typename std::invoke_result_t<FromRow&, const Row&>::value_type;

// Runs a query, converting each row with `from_row`.
template <class FromRow, class... Values>
Result<std::vector<RowType<FromRow>>> Select(Session& session, std::string_view sql,
                                             FromRow from_row, const Values&... values) {
  std::vector<RowType<FromRow>> rows;
  const Value bound[] = {Value{std::int64_t{0}}, ToValue(values)...};
  auto ran = session.Execute(sql, std::span(bound).subspan(1), [&](const Row& row) -> Result<void> {
    auto converted = from_row(row);
    if (!converted) return std::unexpected(converted.error());
    rows.push_back(std::move(*converted));
    return {};
  });
  if (!ran) return std::unexpected(ran.error());
  return rows;
}

// The converted row of a query that yields exactly one (a COUNT, a PRAGMA).
template <class FromRow, class... Values>
Result<RowType<FromRow>> SelectOne(Session& session, std::string_view sql, FromRow from_row,
                                   const Values&... values) {
  auto rows = Select(session, sql, from_row, values...);
  if (!rows) return std::unexpected(rows.error());
  if (rows->size() != 1) return Fail(ErrorCode::kInternal, "metadata store failure: no result");
  return std::move(rows->front());
}

inline Result<std::string> TextFromRow(const Row& row) { return row.Text(0); }
inline Result<std::int64_t> IntFromRow(const Row& row) { return row.Int(0); }

}  // namespace dlipkg::sql
