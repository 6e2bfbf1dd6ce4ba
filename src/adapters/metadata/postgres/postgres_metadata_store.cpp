#include "adapters/metadata/postgres/postgres_metadata_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <optional>
#include <utility>

#include "adapters/metadata/lending_pool.hpp"
#include "adapters/metadata/postgres/postgres_db.hpp"
#include "adapters/metadata/sql_session.hpp"

namespace dlipkg {
namespace {

// Advisory lock keys: "dlipkg" in ASCII for migrations (the one-bigint key space); in the
// two-int key space, "dlip" (1684826480) for groups, the next numbers for the queue bound and
// for blobs.
constexpr std::int64_t kMigrationLock = 0x646c69706b67;

// Writers of one group (or of a project's ungrouped packages) take its lock first, so their
// statements run as if alone for that group; READ COMMITTED then shows each statement what the
// previous holder committed. Hash collisions only make unrelated groups wait for each other.
constexpr SqlDialect kPostgresDialect{
    .lock_rows = " FOR UPDATE",
    .skip_locked = " FOR UPDATE SKIP LOCKED",
    .lock_group = "SELECT pg_advisory_xact_lock(1684826480, hashtext(?1::text || '/' || ?2::text))",
    .lock_queue = "SELECT pg_advisory_xact_lock(1684826481, 0)",
    .lock_blob = "SELECT pg_advisory_xact_lock(1684826482, hashtext(?1::text))",
    .position_of = "strpos",
    .name_index = SqlDialect::NameIndex::kTrigramLike,
    .marks_by_seeking = true,
    .batch_by_ranges = true,
    .show_keys =
        "unnest(?1::text[], ?2::text[], ?3::text[]) WITH ORDINALITY "
        "AS k(project, group_name, name, i)",
    .json_rows =
        "(SELECT e.i - 1 AS i, e.v FROM jsonb_array_elements(CAST(?J AS jsonb)) "
        "WITH ORDINALITY AS e(v, i))",
};

// Serialization failures and deadlocks are retried this often before the call fails.
constexpr int kConflictAttempts = 5;

// Step i moves a database from schema version i to i + 1. Append new steps; never edit one
// that has shipped. The tables are SQLite's (sqlite_metadata_store.cpp) in PostgreSQL types;
// names sort as bytes (COLLATE "C"), as in SQLite and std::string, whatever the database's
// locale.
constexpr std::string_view kMigrations[] = {
    R"sql(
CREATE TABLE groups (
  project     TEXT COLLATE "C" NOT NULL,
  name        TEXT COLLATE "C" NOT NULL,
  owner       TEXT NOT NULL,
  description TEXT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  PRIMARY KEY (project, name)
);
-- group_name '' holds a project's ungrouped packages; position is the upload order in a group.
-- job_id names the job that owns a package's pending upload (0: none).
CREATE TABLE packages (
  project         TEXT COLLATE "C" NOT NULL,
  group_name      TEXT COLLATE "C" NOT NULL,
  name            TEXT COLLATE "C" NOT NULL,
  position        INTEGER NOT NULL,
  kind            TEXT NOT NULL,
  status          TEXT NOT NULL,
  sha256          TEXT COLLATE "C" NOT NULL,
  size            BIGINT NOT NULL,
  underlying_name TEXT NOT NULL,
  owner           TEXT NOT NULL,
  create_time     BIGINT NOT NULL,
  update_time     BIGINT NOT NULL,
  is_async        INTEGER NOT NULL,
  status_reason   TEXT NOT NULL,
  job_id          BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (project, group_name, name)
);
CREATE INDEX packages_by_sha256 ON packages (sha256);
CREATE TABLE package_tags (
  project    TEXT COLLATE "C" NOT NULL,
  group_name TEXT COLLATE "C" NOT NULL,
  name       TEXT COLLATE "C" NOT NULL,
  position   INTEGER NOT NULL,
  key        TEXT COLLATE "C" NOT NULL,
  value      TEXT NOT NULL,
  PRIMARY KEY (project, group_name, name, key),
  FOREIGN KEY (project, group_name, name) REFERENCES packages (project, group_name, name)
    ON DELETE CASCADE
);
CREATE TABLE jobs (
  id              BIGSERIAL PRIMARY KEY,
  project         TEXT COLLATE "C" NOT NULL,
  group_name      TEXT COLLATE "C" NOT NULL,
  name            TEXT COLLATE "C" NOT NULL,
  url             TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  deadline_at     BIGINT NOT NULL,
  lease_owner     TEXT NOT NULL DEFAULT '',
  lease_until     BIGINT NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_due ON jobs (next_attempt_at, id);
)sql",
    R"sql(
CREATE TABLE blob_pins (
  sha256       TEXT COLLATE "C" NOT NULL,
  pin_id       TEXT COLLATE "C" NOT NULL,
  pinned_until BIGINT NOT NULL,
  PRIMARY KEY (sha256, pin_id)
);
)sql",
    // 3: the key presigned URLs are signed with (UrlKeyStore).
    R"sql(
CREATE TABLE url_keys (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  secret     TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
)sql",
    // 4: progress of a job's current attempt, which every instance's show and list read.
    R"sql(
ALTER TABLE jobs ADD COLUMN bytes_fetched BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN expected_bytes BIGINT NOT NULL DEFAULT -1;
)sql",
    // 5: a listing filtered by kind reads its page in listing order (MetadataStore::ListPage).
    // IF NOT EXISTS: a database made by a build that had this index as step 4 still migrates.
    R"sql(
CREATE INDEX IF NOT EXISTS packages_by_kind ON packages (project, kind, group_name, name);
)sql",
    // 6: reclamation that cannot forget (issue 15): the blobs whose last reference was dropped,
    // until their bytes are gone; when each unreferenced blob was first seen so (bug 5's
    // recorded grace period); and the periodic collector's lease.
    R"sql(
CREATE TABLE reclaim_queue (
  sha256          TEXT COLLATE "C" PRIMARY KEY,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX reclaim_queue_due ON reclaim_queue (next_attempt_at);
CREATE TABLE blob_sightings (
  sha256             TEXT COLLATE "C" PRIMARY KEY,
  unreferenced_since BIGINT NOT NULL
);
CREATE TABLE collector_lease (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  owner       TEXT NOT NULL,
  lease_until BIGINT NOT NULL
);
)sql",
    // 7: a listing's name= filter reads only the packages whose name or group name may hold
    // the needle (LIKE '%needle%' served by pg_trgm's GIN indexes), not every package of the
    // project before the first match. pg_trgm ships with Debian's postgresql package, but
    // creating it needs a privileged role: where that is refused (or it lives elsewhere),
    // the indexes are left out and searches scan, with the same answers. The extension goes
    // to schema public, shared by every schema of the database, and is named there.
    R"sql(
DO $$
DECLARE
  trgm_schema name;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    BEGIN
      CREATE EXTENSION pg_trgm WITH SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE 'pg_trgm is not available (%): name= searches scan', SQLERRM;
    END;
  END IF;
  SELECT n.nspname INTO trgm_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
  IF trgm_schema IS NOT NULL THEN
    EXECUTE format('CREATE INDEX IF NOT EXISTS packages_name_trgm ON packages '
                   'USING gin (name %I.gin_trgm_ops)', trgm_schema);
    EXECUTE format('CREATE INDEX IF NOT EXISTS packages_group_name_trgm ON packages '
                   'USING gin (group_name %I.gin_trgm_ops)', trgm_schema);
  END IF;
END $$;
)sql",
    // 8: a count of the changes to each project's listing (its packages' keys, kinds and tags),
    // which every instance checks its remembered listing marks against in each page's own
    // snapshot (SqlMetadataStore::ListPage). Kept by triggers, so that no writer, of whatever
    // instance or code path, can miss it. Split into 16 rows per project, chosen by the
    // writer's backend, so that concurrent writers of one project rarely wait for each other's
    // row; a reader sums them. The triggers are deferred to the commit (the row is then locked
    // only while the transaction commits, after every other lock it takes) and count a
    // transaction once per project in a row (a transaction-local setting remembers it).
    // Package keys are never updated (a rename would be a delete and an insert).
    R"sql(
CREATE TABLE listing_changes (
  project TEXT COLLATE "C" NOT NULL,
  slot    INTEGER NOT NULL,
  changes BIGINT NOT NULL,
  PRIMARY KEY (project, slot)
);
CREATE FUNCTION note_listing_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  changed TEXT := CASE WHEN TG_OP = 'DELETE' THEN OLD.project ELSE NEW.project END;
BEGIN
  IF current_setting('dlipkg.listing_noted', true) = changed THEN
    RETURN NULL;
  END IF;
  INSERT INTO listing_changes AS c (project, slot, changes)
    VALUES (changed, pg_backend_pid() % 16, 1)
    ON CONFLICT (project, slot) DO UPDATE SET changes = c.changes + 1;
  PERFORM set_config('dlipkg.listing_noted', changed, true);
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER packages_listing AFTER INSERT OR DELETE ON packages
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION note_listing_change();
CREATE CONSTRAINT TRIGGER packages_listing_kind AFTER UPDATE OF kind ON packages
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind)
  EXECUTE FUNCTION note_listing_change();
CREATE CONSTRAINT TRIGGER package_tags_listing AFTER INSERT OR DELETE OR UPDATE ON package_tags
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION note_listing_change();
)sql",
};

// Brings the schema to the latest version in one transaction. The advisory lock makes
// instances starting at once take turns: the second finds the schema in place.
Result<void> Migrate(postgres::Connection& connection) {
  const auto failed = [](const postgres::Failure& failure) -> Result<void> {
    return std::unexpected(failure.error);
  };
  if (auto failure = connection.Command("BEGIN")) return failed(*failure);
  // However this ends, the transaction ends with it (a connection goes back to the pool idle).
  struct Ender {
    postgres::Connection& connection;
    bool done = false;
    ~Ender() {
      if (!done) connection.Command("ROLLBACK");
    }
  } ender{connection};
  if (auto failure = connection.Command("SELECT pg_advisory_xact_lock(" +
                                        std::to_string(kMigrationLock) + ")"))
    return failed(*failure);
  if (auto failure = connection.Command(
          "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
    return failed(*failure);
  postgres::Session session(connection);
  auto version = sql::SelectOne(session, "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                                sql::IntFromRow);
  if (!version) return std::unexpected(version.error());
  const auto latest = static_cast<std::int64_t>(std::size(kMigrations));
  if (auto ok = CheckSchemaVersion(*version, latest); !ok) return ok;
  if (*version == latest) return {};
  for (auto step = *version; step < latest; ++step) {
    if (auto failure = connection.Command(std::string(kMigrations[step]))) return failed(*failure);
  }
  if (auto failure = connection.Command("DELETE FROM schema_version")) return failed(*failure);
  if (auto failure = connection.Command("INSERT INTO schema_version (version) VALUES (" +
                                        std::to_string(latest) + ")"))
    return failed(*failure);
  ender.done = true;
  if (auto failure = connection.Command("COMMIT", /*committing=*/true)) return failed(*failure);
  return {};
}

// A pipeline on a connection lent until it is destroyed; a connection it leaves lost or
// busy is not lent again.
class LeasedPipeline final : public sql::Pipeline {
 public:
  LeasedPipeline(LendingPool<postgres::Connection>::Lease lease,
                 postgres::StatementNames& statements, std::atomic<std::size_t>& open)
      : lease_(std::move(lease)), pipeline_(std::in_place, *lease_, &statements), open_(open) {}
  ~LeasedPipeline() override {
    pipeline_.reset();  // waits for a statement in flight
    if (!lease_->Reusable()) lease_.Discard();
    --open_;
  }
  Result<void> Send(std::string_view sql, std::span<const sql::Value> values) override {
    return pipeline_->Send(sql, values);
  }
  Result<std::unique_ptr<sql::Rows>> Receive() override { return pipeline_->Receive(); }

 private:
  LendingPool<postgres::Connection>::Lease lease_;
  std::optional<postgres::Pipeline> pipeline_;
  std::atomic<std::size_t>& open_;
};

class PostgresTransactions final : public SqlTransactions {
 public:
  PostgresTransactions(std::string connection_string, std::size_t connections)
      : capacity_(connections),
        pool_(connections, [connection_string = std::move(connection_string)] {
          return postgres::Connection::Open(connection_string);
        }) {}

  LendingPool<postgres::Connection>& pool() { return pool_; }

  // READ COMMITTED: each statement sees what was committed before it, and the dialect's
  // locks keep concurrent writers of the same rows apart.
  Result<void> Write(const Body& body) override { return Run("BEGIN", body); }

  // Queue bookkeeping commits without waiting for the WAL flush (losing it only makes a job
  // claimable again).
  Result<void> WriteBookkeeping(const Body& body) override {
    return Run("BEGIN", [&](sql::Session& s) -> Result<void> {
      if (auto ok = sql::Run(s, "SET LOCAL synchronous_commit TO OFF"); !ok)
        return std::unexpected(ok.error());
      return body(s);
    });
  }

  // One snapshot for all of a call's queries, so a group is never seen half replaced.
  Result<void> Read(const Body& body) override {
    return Run("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", body);
  }

  // One statement in autocommit mode: one round trip instead of BEGIN, statement, COMMIT.
  Result<void> ReadOne(const Body& body) override { return Run("", body); }

  // At most half the pool, so that pipelines (held while a listing is sent, as slowly as its
  // client reads) always leave connections for other calls, and a walk that reads one batch
  // again through ListGroups always finds one.
  std::unique_ptr<sql::Pipeline> OpenPipeline() override {
    if (open_pipelines_.fetch_add(1) >= capacity_ / 2) {
      --open_pipelines_;
      return nullptr;
    }
    auto lease = pool_.Acquire();
    if (!lease) {
      --open_pipelines_;
      return nullptr;  // the walk reads by ListGroups, which reports why
    }
    return std::make_unique<LeasedPipeline>(std::move(*lease), statements_, open_pipelines_);
  }

  // Nothing of a server's own to lose: CheckReady's query finds an unreachable server.
  Result<void> CheckIntact() const override { return {}; }

 private:
  // Runs `body` after `begin` (empty: in autocommit mode, no transaction), then commits, or
  // rolls back when the body or a statement failed.
  Result<void> Run(const std::string& begin, const Body& body) {
    bool reconnected = false;
    for (int attempt = 1;; ++attempt) {
      auto lease = pool_.Acquire();
      if (!lease) return Unreachable(lease.error());
      Result<void> result;
      const auto failure = Attempt(**lease, begin, body, result);
      if (failure && result) result = std::unexpected(failure->error);
      // Lost, or still in a transaction (its ROLLBACK failed): not lent again.
      if (!(*lease)->Reusable()) lease->Discard();
      if (!failure) return Reachable(std::move(result));
      switch (failure->kind) {
        case postgres::FailureKind::kStatement:
          return Reachable(std::move(result));
        case postgres::FailureKind::kConflict:
          if (attempt < kConflictAttempts) continue;
          return Reachable(std::move(result));
        case postgres::FailureKind::kConnection:
        case postgres::FailureKind::kInDoubt:
          // The server went away (or restarted): every idle connection is as dead as this one.
          lease->Discard();
          pool_.DiscardIdle();
          // Nothing was committed, so the call may run again, once, on a fresh connection:
          // after a restart of PostgreSQL the first call then succeeds.
          if (failure->kind == postgres::FailureKind::kConnection && !reconnected) {
            reconnected = true;
            continue;
          }
          return Unreachable(failure->error);
      }
    }
  }

  // One try on `connection`: BEGIN (unless autocommit), the body (its outcome in `result`),
  // then COMMIT, or ROLLBACK after a failure. Why it failed, if a statement did.
  std::optional<postgres::Failure> Attempt(postgres::Connection& connection,
                                           const std::string& begin, const Body& body,
                                           Result<void>& result) {
    if (!begin.empty()) {
      if (auto failure = connection.Command(begin)) return failure;
    }
    std::optional<postgres::Failure> failure;
    postgres::Session session(connection, &statements_);
    try {
      result = body(session);
      failure = session.failure();
    } catch (const std::exception& e) {  // an unreadable value, out of memory
      failure = postgres::StatementFailure(e.what());
    }
    if (begin.empty()) return failure;
    if (result && !failure) return connection.Command("COMMIT", /*committing=*/true);
    if (connection.InTransaction()) connection.Command("ROLLBACK");
    return failure;
  }

  // One log line when PostgreSQL stops answering and one when it answers again (whatever the
  // answer), rather than one per failed call.
  std::unexpected<Error> Unreachable(const Error& error) {
    if (!down_.exchange(true))
      spdlog::error("{}; calls fail until PostgreSQL is reachable again", error.message);
    return std::unexpected(error);
  }

  Result<void> Reachable(Result<void> result) {
    if (down_.exchange(false)) spdlog::info("metadata store: PostgreSQL is reachable again");
    return result;
  }

  const std::size_t capacity_;
  LendingPool<postgres::Connection> pool_;
  postgres::StatementNames statements_;  // shared by every connection of the pool
  std::atomic<std::size_t> open_pipelines_{0};
  std::atomic<bool> down_{false};
};

}  // namespace

Result<std::unique_ptr<PostgresMetadataStore>> PostgresMetadataStore::Open(
    const PostgresOptions& options) {
  auto connection_string = postgres::CompleteConnectionString(options.url);
  if (!connection_string) {
    return Fail(ErrorCode::kInternal,
                "metadata store failure: not a valid PostgreSQL connection URL "
                "(postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMETERS])");
  }
  auto engine = std::make_unique<PostgresTransactions>(
      std::move(*connection_string), std::max<std::size_t>(options.connections, 1));
  {
    auto first = engine->pool().Acquire();  // fails the start when PostgreSQL is unreachable
    if (!first) return std::unexpected(first.error());
    if (auto ok = Migrate(**first); !ok) return std::unexpected(ok.error());
  }
  std::unique_ptr<PostgresMetadataStore> store(
      new PostgresMetadataStore(std::move(engine), kPostgresDialect, LeasesAtStart::kKeep));
  store->SetSchemaCheck("SELECT COALESCE(MAX(version), 0) FROM schema_version",
                        static_cast<std::int64_t>(std::size(kMigrations)));
  return store;
}

}  // namespace dlipkg
