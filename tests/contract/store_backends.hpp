// The metadata backends that the MetadataStore and JobQueue contract suites run against, and
// helpers both suites use. A backend joins by adding a factory to StoreBackends(); each test
// gets a fresh, empty store. Used from the test thread; the stores themselves are thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "domain/error.hpp"
#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg::test {

// One store object serving both ports, as in production.
struct StoreUnderTest {
  std::shared_ptr<MetadataStore> metadata;
  std::shared_ptr<JobQueue> jobs;
};

// The data of one test; Connect may be called again after the previous store is destroyed,
// and must then see what that store committed. Several stores may be connected at once (as
// several server instances).
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  virtual Result<StoreUnderTest> Connect() = 0;
};

struct BackendFactory {
  std::string name;
  std::function<std::unique_ptr<StoreBackend>()> make;
  // Non-empty: why this backend's tests are skipped (the developer opted out explicitly).
  std::function<std::string()> skip_reason;
  // Whether RecoverAfterRestart releases every lease (a single-instance store) or leaves them
  // to run out (a queue shared by several instances).
  bool recovery_releases_leases = true;
};

inline void PrintTo(const BackendFactory& factory, std::ostream* out) { *out << factory.name; }

std::vector<BackendFactory> StoreBackends();

// PostgreSQL for tests: the database URL comes from DLIPKG_TEST_POSTGRES_URL (scripts/test.sh
// starts a server with scripts/postgres.sh and sets it). Without it the PostgreSQL tests fail,
// unless DLIPKG_TEST_SKIP_POSTGRES=1 says to skip them (developers without PostgreSQL).
inline constexpr std::string_view kNoPostgres =
    "DLIPKG_TEST_POSTGRES_URL is not set: run scripts/test.sh, or start a server with "
    "`scripts/postgres.sh start DIR` and export its URL; DLIPKG_TEST_SKIP_POSTGRES=1 skips "
    "the PostgreSQL tests";
std::string TestPostgresUrl();     // "" when unset
std::string PostgresSkipReason();  // "" unless the developer opted out
// `url` with `schema` first on the search path (a URI; its query string extended).
std::string WithSearchPath(const std::string& url, const std::string& schema);

// A schema of its own in the test database, dropped at the end. Connect fails (kNoPostgres)
// when DLIPKG_TEST_POSTGRES_URL is unset.
class PostgresBackend final : public StoreBackend {
 public:
  PostgresBackend();
  ~PostgresBackend() override;
  Result<StoreUnderTest> Connect() override;
  // The test database with this backend's schema first on the search path.
  std::string Url() const;
  // Runs a statement outside the schema (autocommit). Throws on failure.
  void Admin(const std::string& statement) const;

 private:
  std::string schema_;
};

// Unwraps a result or ends the test (gtest reports the exception as a failure).
template <class T>
T Must(Result<T> result) {
  if (!result) throw std::runtime_error("unexpected error: " + result.error().message);
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

}  // namespace dlipkg::test
