// MetadataStore and JobQueue on SQLite, in one file so enqueueing is one transaction
// (WAL mode, synchronous=FULL so a commit survives power loss); the SQL itself is shared with
// PostgreSQL (metadata_sql.hpp). Schema migrations are versioned (PRAGMA user_version) and
// applied on Open. For one instance per database: RecoverAfterRestart releases every lease.
// Thread-safe: writes are serialised on one connection; reads use a small pool of their own.
#pragma once

#include <filesystem>
#include <memory>

#include "adapters/metadata/sql_metadata_store.hpp"

namespace dlipkg {

class SqliteMetadataStore final : public SqlMetadataStore {
 public:
  // Opens or creates the database file. Errors: kInternal.
  static Result<std::unique_ptr<SqliteMetadataStore>> Open(const std::filesystem::path& file);

 private:
  using SqlMetadataStore::SqlMetadataStore;
};

}  // namespace dlipkg
