#include "contract/store_backends.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "adapters/metadata/postgres/postgres_db.hpp"
#include "adapters/metadata/postgres/postgres_metadata_store.hpp"
#include "adapters/metadata/sqlite/sqlite_metadata_store.hpp"
#include "testing/fakes.hpp"
#include "testing/temp_dir.hpp"

namespace dlipkg::test {
namespace {

namespace fs = std::filesystem;

template <class Store>
StoreUnderTest Serving(std::unique_ptr<Store> store) {
  std::shared_ptr<Store> shared = std::move(store);
  return StoreUnderTest{shared, shared};
}

class SqliteBackend final : public StoreBackend {
 public:
  // In a subdirectory not yet there, so Open has to create it.
  fs::path File() const { return dir_.path() / "data" / "metadata.db"; }

  Result<StoreUnderTest> Connect() override {
    auto store = SqliteMetadataStore::Open(File());
    if (!store) return std::unexpected(store.error());
    return Serving(std::move(*store));
  }

 private:
  TempDir dir_;
};

// The in-memory fakes the unit tests of core and api use, held to the same contract so that
// what those tests learn from them is true of the real stores. "Reconnecting" hands out the
// same objects again: the fakes keep no files, and their state is what was committed.
class FakeBackend final : public StoreBackend {
 public:
  Result<StoreUnderTest> Connect() override {
    return StoreUnderTest{std::shared_ptr<MetadataStore>(state_, &state_->metadata),
                          std::shared_ptr<JobQueue>(state_, &state_->jobs)};
  }

 private:
  struct State {
    testing::FakeMetadataStore metadata;
    testing::FakeJobQueue jobs{metadata};
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace

PostgresBackend::PostgresBackend() {
  static std::atomic<int> counter{0};
  schema_ = "contract_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
  if (!TestPostgresUrl().empty()) Admin("CREATE SCHEMA " + schema_);
}

PostgresBackend::~PostgresBackend() {
  try {
    if (!TestPostgresUrl().empty()) Admin("DROP SCHEMA " + schema_ + " CASCADE");
  } catch (const std::exception&) {  // PostgreSQL is down: the schema stays behind
  }
}

Result<StoreUnderTest> PostgresBackend::Connect() {
  if (TestPostgresUrl().empty()) return Fail(ErrorCode::kInternal, std::string(kNoPostgres));
  auto store = PostgresMetadataStore::Open({.url = Url(), .connections = 8});
  if (!store) return std::unexpected(store.error());
  return Serving(std::move(*store));
}

std::string PostgresBackend::Url() const { return WithSearchPath(TestPostgresUrl(), schema_); }

void PostgresBackend::Admin(const std::string& statement) const {
  auto connection = postgres::Connection::Open(TestPostgresUrl());
  if (!connection) throw std::runtime_error(connection.error().message);
  if (auto failure = (*connection)->Command(statement))
    throw std::runtime_error(failure->error.message);
}

std::string TestPostgresUrl() {
  const char* url = std::getenv("DLIPKG_TEST_POSTGRES_URL");
  return url != nullptr ? url : "";
}

std::string PostgresSkipReason() {
  const char* skip = std::getenv("DLIPKG_TEST_SKIP_POSTGRES");
  if (skip != nullptr && *skip != '\0' && std::string(skip) != "0")
    return "DLIPKG_TEST_SKIP_POSTGRES is set: the PostgreSQL backend is not tested";
  return "";
}

std::string WithSearchPath(const std::string& url, const std::string& schema) {
  const std::string option = "options=-csearch_path%3D" + schema;
  return url + (url.find('?') == std::string::npos ? "?" : "&") + option;
}

std::vector<BackendFactory> StoreBackends() {
  return {
      {.name = "Sqlite",
       .make = [] { return std::make_unique<SqliteBackend>(); },
       .skip_reason = [] { return std::string(); },
       .recovery_releases_leases = true},
      {.name = "InMemoryFake",
       .make = [] { return std::make_unique<FakeBackend>(); },
       .skip_reason = [] { return std::string(); },
       .recovery_releases_leases = true},
      {.name = "Postgres",
       .make = [] { return std::make_unique<PostgresBackend>(); },
       .skip_reason = PostgresSkipReason,
       .recovery_releases_leases = false},
  };
}

}  // namespace dlipkg::test
