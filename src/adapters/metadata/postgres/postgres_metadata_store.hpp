// MetadataStore and JobQueue on PostgreSQL (libpq), for several server instances sharing one
// database, with the semantics of SqliteMetadataStore (the SQL is shared, metadata_sql.hpp).
// Schema migrations are versioned (table schema_version) and applied at Open under an advisory
// lock, so instances may start at once. Used by the composition root for --metadata postgresql://.
// Thread-safe: each call borrows one connection of a small pool for one transaction; shows
// arriving together share one statement (ShowBatcher).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "adapters/metadata/sql_metadata_store.hpp"

namespace dlipkg {

struct PostgresOptions {
  std::string url;              // postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]
  std::size_t connections = 8;  // calls at once; more wait for a free connection
};

// Writers of one group wait for each other (advisory locks), reads see one snapshot, jobs are
// claimed with FOR UPDATE SKIP LOCKED, and enqueuers take turns so the queue bound is exact.
//
// Unlike SQLite, RecoverAfterRestart keeps every lease: the holders may be other instances,
// alive, and a dead one's leases run out by themselves. It only fails UPLOADING packages left
// without a job.
//
// Connection loss: a call fails with kInternal "metadata store failure: ..." (no URL, host or
// password in it), its connection and the idle ones are dropped, and later calls connect
// again, so the store recovers by itself when PostgreSQL is back. A transaction that failed on
// a broken connection before committing is run once more on a fresh one.
class PostgresMetadataStore final : public SqlMetadataStore {
 public:
  // Connects and migrates the schema. Errors: kInternal (bad URL, unreachable, refused, a
  // schema newer than this server).
  static Result<std::unique_ptr<PostgresMetadataStore>> Open(const PostgresOptions& options);

 private:
  using SqlMetadataStore::SqlMetadataStore;
};

}  // namespace dlipkg
