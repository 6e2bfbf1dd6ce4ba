#include "adapters/metadata/sqlite/sqlite_metadata_store.hpp"

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/metadata/lending_pool.hpp"
#include "adapters/metadata/sqlite/sqlite_db.hpp"

namespace dlipkg {
namespace {

constexpr int kBusyTimeoutMs = 5000;
// Enough readers for the blocking-work threads of a small machine; more would wait on disk.
constexpr std::size_t kReaderCount = 4;

// Step i moves a database from user_version i to i + 1. Append new steps; never edit one that
// has shipped, since existing databases have already run it.
constexpr std::string_view kMigrations[] = {
    R"sql(
CREATE TABLE groups (
  project     TEXT NOT NULL,
  name        TEXT NOT NULL,
  owner       TEXT NOT NULL,
  description TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  PRIMARY KEY (project, name)
);
-- group_name '' holds a project's ungrouped packages; position is the upload order in a group.
CREATE TABLE packages (
  project         TEXT NOT NULL,
  group_name      TEXT NOT NULL,
  name            TEXT NOT NULL,
  position        INTEGER NOT NULL,
  kind            TEXT NOT NULL,
  status          TEXT NOT NULL,
  sha256          TEXT NOT NULL,
  size            INTEGER NOT NULL,
  underlying_name TEXT NOT NULL,
  owner           TEXT NOT NULL,
  create_time     INTEGER NOT NULL,
  update_time     INTEGER NOT NULL,
  is_async        INTEGER NOT NULL,
  status_reason   TEXT NOT NULL,
  PRIMARY KEY (project, group_name, name)
);
CREATE INDEX packages_by_sha256 ON packages (sha256);
CREATE TABLE package_tags (
  project    TEXT NOT NULL,
  group_name TEXT NOT NULL,
  name       TEXT NOT NULL,
  position   INTEGER NOT NULL,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  PRIMARY KEY (project, group_name, name, key),
  FOREIGN KEY (project, group_name, name) REFERENCES packages (project, group_name, name)
    ON DELETE CASCADE
);
)sql",
    // 2: the asynchronous upload queue. packages.job_id names the job that owns a package's
    // pending upload (0: none); a later write resets it, which supersedes the job.
    R"sql(
ALTER TABLE packages ADD COLUMN job_id INTEGER NOT NULL DEFAULT 0;
CREATE TABLE jobs (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  project         TEXT NOT NULL,
  group_name      TEXT NOT NULL,
  name            TEXT NOT NULL,
  url             TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  deadline_at     INTEGER NOT NULL,
  lease_owner     TEXT NOT NULL DEFAULT '',
  lease_until     INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_due ON jobs (next_attempt_at, id);
)sql",
    // 3: pins that keep bytes an upload has just committed from being reclaimed before its
    // package refers to them (MetadataStore::PinBlob).
    R"sql(
CREATE TABLE blob_pins (
  sha256       TEXT NOT NULL,
  pin_id       TEXT NOT NULL,
  pinned_until INTEGER NOT NULL,
  PRIMARY KEY (sha256, pin_id)
);
)sql",
    // 4: the key presigned URLs are signed with (UrlKeyStore): one row, shared by every
    // process that opens this file, so URLs survive restarts until the key is rotated.
    R"sql(
CREATE TABLE url_keys (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  secret     TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
)sql",
    // 5: progress of a job's current attempt, which every instance's show and list read.
    R"sql(
ALTER TABLE jobs ADD COLUMN bytes_fetched INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN expected_bytes INTEGER NOT NULL DEFAULT -1;
)sql",
    // 6: a listing filtered by kind reads its page in listing order from this index instead
    // of scanning the project's packages (MetadataStore::ListPage). IF NOT EXISTS: a database
    // made by a build that had this index as step 5 still migrates.
    R"sql(
CREATE INDEX IF NOT EXISTS packages_by_kind ON packages (project, kind, group_name, name);
)sql",
    // 7: reclamation that cannot forget (issue 15): the blobs whose last reference was dropped,
    // until their bytes are gone; when each unreferenced blob was first seen so (bug 5's
    // recorded grace period); and the periodic collector's lease.
    R"sql(
CREATE TABLE reclaim_queue (
  sha256          TEXT PRIMARY KEY,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reclaim_queue_due ON reclaim_queue (next_attempt_at);
CREATE TABLE blob_sightings (
  sha256             TEXT PRIMARY KEY,
  unreferenced_since INTEGER NOT NULL
);
CREATE TABLE collector_lease (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  owner       TEXT NOT NULL,
  lease_until INTEGER NOT NULL
);
)sql",
    // 8: a listing's name= filter reads only the packages whose name or group name holds the
    // needle's trigrams (SqlDialect::NameIndex), not every package of the project before the
    // first match. External content: the index keeps trigrams only, and these triggers keep it
    // in step with packages in the writing transaction itself. (packages has no INTEGER
    // PRIMARY KEY, so its rowids may change only by VACUUM, which this server never runs.)
    R"sql(
CREATE VIRTUAL TABLE package_names USING fts5(
  name, group_name, content = 'packages', content_rowid = 'rowid',
  tokenize = 'trigram case_sensitive 1');
INSERT INTO package_names (package_names) VALUES ('rebuild');
CREATE TRIGGER package_names_insert AFTER INSERT ON packages BEGIN
  INSERT INTO package_names (rowid, name, group_name)
  VALUES (new.rowid, new.name, new.group_name);
END;
CREATE TRIGGER package_names_delete AFTER DELETE ON packages BEGIN
  INSERT INTO package_names (package_names, rowid, name, group_name)
  VALUES ('delete', old.rowid, old.name, old.group_name);
END;
CREATE TRIGGER package_names_update AFTER UPDATE OF name, group_name ON packages BEGIN
  INSERT INTO package_names (package_names, rowid, name, group_name)
  VALUES ('delete', old.rowid, old.name, old.group_name);
  INSERT INTO package_names (rowid, name, group_name)
  VALUES (new.rowid, new.name, new.group_name);
END;
)sql",
    // 9: a count of the changes to each project's listing (its packages' keys, kinds and tags),
    // kept by triggers so that no writer can miss it, which the stores' remembered listing
    // marks are checked against in each page's own read (SqlMetadataStore::ListPage). One row
    // per project: SQLite admits one writer at a time anyway (PostgreSQL spreads it over 16).
    R"sql(
CREATE TABLE listing_changes (
  project TEXT NOT NULL,
  slot    INTEGER NOT NULL,
  changes INTEGER NOT NULL,
  PRIMARY KEY (project, slot)
);
CREATE TRIGGER packages_listing_insert AFTER INSERT ON packages BEGIN
  INSERT INTO listing_changes (project, slot, changes) VALUES (NEW.project, 0, 1)
    ON CONFLICT (project, slot) DO UPDATE SET changes = changes + 1;
END;
CREATE TRIGGER packages_listing_delete AFTER DELETE ON packages BEGIN
  INSERT INTO listing_changes (project, slot, changes) VALUES (OLD.project, 0, 1)
    ON CONFLICT (project, slot) DO UPDATE SET changes = changes + 1;
END;
CREATE TRIGGER packages_listing_kind AFTER UPDATE OF kind ON packages
  WHEN OLD.kind IS NOT NEW.kind BEGIN
  INSERT INTO listing_changes (project, slot, changes) VALUES (NEW.project, 0, 1)
    ON CONFLICT (project, slot) DO UPDATE SET changes = changes + 1;
END;
CREATE TRIGGER package_tags_listing_insert AFTER INSERT ON package_tags BEGIN
  INSERT INTO listing_changes (project, slot, changes) VALUES (NEW.project, 0, 1)
    ON CONFLICT (project, slot) DO UPDATE SET changes = changes + 1;
END;
CREATE TRIGGER package_tags_listing_delete AFTER DELETE ON package_tags BEGIN
  INSERT INTO listing_changes (project, slot, changes) VALUES (OLD.project, 0, 1)
    ON CONFLICT (project, slot) DO UPDATE SET changes = changes + 1;
END;
CREATE TRIGGER package_tags_listing_update AFTER UPDATE ON package_tags BEGIN
  INSERT INTO listing_changes (project, slot, changes) VALUES (NEW.project, 0, 1)
    ON CONFLICT (project, slot) DO UPDATE SET changes = changes + 1;
END;
)sql",
};

// ---- Connections and schema ----

Result<sqlite::Connection> OpenConnection(const std::filesystem::path& file, bool writer) {
  // NOMUTEX: a connection is used by one thread at a time (the write mutex, the reader pool).
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
  auto db = sqlite::Open(file.string(), flags);
  if (!db) return db;
  sqlite3_busy_timeout(db->get(), kBusyTimeoutMs);
  // Readers are read-write connections told not to write: a SQLITE_OPEN_READONLY one cannot
  // always join a WAL database. FULL makes each commit durable before a client hears READY.
  const char* pragmas =
      writer ? "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;" : "PRAGMA query_only = ON;";
  if (auto ok = sqlite::Exec(db->get(), pragmas); !ok) return std::unexpected(ok.error());
  return db;
}

Result<void> EnableWal(sqlite::Session& db) {
  // WAL lets readers work while the writer commits. Switching a new file to it takes an
  // exclusive lock that sqlite refuses at once, without the busy handler (two connections
  // upgrading their locks would deadlock), while another process is switching too; so a busy
  // refusal is retried up to the busy timeout. Once the file is in WAL mode no lock is needed.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    auto mode = sql::SelectOne(db, "PRAGMA journal_mode = WAL", sql::TextFromRow);
    if (mode && *mode == "wal") return {};
    if (mode) {  // e.g. a file system without shared memory
      return Fail(ErrorCode::kInternal, "metadata store failure: write-ahead logging unavailable");
    }
    if (!mode.error().retryable || std::chrono::steady_clock::now() >= deadline)
      return std::unexpected(mode.error());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<void> ApplyMigrations(sqlite::Session& session) {
  sqlite3* db = session.db();
  auto version = sql::SelectOne(session, "PRAGMA user_version", sql::IntFromRow);
  if (!version) return std::unexpected(version.error());
  const auto latest = static_cast<std::int64_t>(std::size(kMigrations));
  if (auto ok = CheckSchemaVersion(*version, latest); !ok) return ok;
  if (*version == latest) return {};
  for (auto step = *version; step < latest; ++step) {
    if (auto ok = sqlite::Exec(db, kMigrations[step]); !ok) return ok;
  }
  return sqlite::Exec(db, "PRAGMA user_version = " + std::to_string(latest));
}

Result<void> Migrate(sqlite::Session& session) {
  // IMMEDIATE takes the write lock before the version is read: of two processes opening a new
  // database at once, the second waits, then finds the schema in place.
  return sqlite::InTransaction(session.db(), "BEGIN IMMEDIATE",
                               [&] { return ApplyMigrations(session); });
}

// The file a path names now, to tell when the database file was deleted or replaced under the
// running server: SQLite would go on writing to the unlinked file, acknowledging writes that
// vanish at the next start.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const FileIdentity&) const = default;
};

std::optional<FileIdentity> IdentityOf(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  return FileIdentity{st.st_dev, st.st_ino};
}

// Counts the write transactions ended on one database file by every store object of this
// process that opened it (two objects on one file share one counter). The file is written by
// this process only: the serving process holds the data-directory lock on the file's directory
// (app/data_dir_lock.hpp), so no other process can write it unseen.
using ChangeCounter = std::atomic<std::uint64_t>;

std::shared_ptr<ChangeCounter> ChangeCounterFor(const FileIdentity& file) {
  static std::mutex mutex;
  static std::map<std::pair<dev_t, ino_t>, std::weak_ptr<ChangeCounter>> counters;
  std::lock_guard lock(mutex);
  std::erase_if(counters, [](const auto& entry) { return entry.second.expired(); });
  auto& slot = counters[{file.device, file.inode}];
  auto counter = slot.lock();
  if (!counter) {
    counter = std::make_shared<ChangeCounter>(0);
    slot = counter;
  }
  return counter;
}

class SqliteTransactions final : public SqlTransactions {
 public:
  SqliteTransactions(const std::filesystem::path& file, std::unique_ptr<sqlite::Session> writer)
      : file_(file),
        identity_(IdentityOf(file)),
        changes_(identity_ ? ChangeCounterFor(*identity_) : nullptr),
        writer_(std::move(writer)),
        readers_(kReaderCount, [file]() -> Result<std::unique_ptr<sqlite::Session>> {
          auto reader = OpenConnection(file, /*writer=*/false);
          if (!reader) return std::unexpected(reader.error());
          return std::make_unique<sqlite::Session>(std::move(*reader));
        }) {}

  // Made at Open so that an unusable file fails the start rather than the first read.
  Result<void> OpenReaders() {
    std::vector<LendingPool<sqlite::Session>::Lease> leases;
    for (std::size_t i = 0; i < kReaderCount; ++i) {
      auto lease = readers_.Acquire();
      if (!lease) return std::unexpected(lease.error());
      leases.push_back(std::move(*lease));
    }
    return {};
  }

  // Writes share one connection: SQLite admits one writer at a time anyway, and the mutex
  // queues threads here instead of in sqlite's busy handler (which sleeps and polls).
  Result<void> Write(const Body& body) override {
    std::lock_guard lock(write_mutex_);
    if (auto same = StillTheFile(); !same) return same;
    const CountChange counted{changes_.get()};
    return sqlite::InTransaction(*writer_, "BEGIN IMMEDIATE", [&] { return body(*writer_); });
  }

  // Committed without fsync; in WAL mode the next FULL commit makes it durable too.
  Result<void> WriteBookkeeping(const Body& body) override {
    std::lock_guard lock(write_mutex_);
    if (auto same = StillTheFile(); !same) return same;
    const CountChange counted{changes_.get()};
    (void)sql::Run(*writer_, "PRAGMA synchronous = NORMAL");
    auto result =
        sqlite::InTransaction(*writer_, "BEGIN IMMEDIATE", [&] { return body(*writer_); });
    (void)sql::Run(*writer_, "PRAGMA synchronous = FULL");
    return result;
  }

  // Moved once a write transaction has ended, committed or not (a failed COMMIT may still
  // have written), so that a reader that saw the old value read before the commit.
  std::optional<std::uint64_t> ChangeVersion() const override {
    if (!changes_) return std::nullopt;
    return changes_->load(std::memory_order_acquire);
  }

  // One read transaction per call, so a call's queries all see the same committed state.
  Result<void> Read(const Body& body) override {
    auto lease = readers_.Acquire();
    if (!lease) return std::unexpected(lease.error());
    sqlite::Session& reader = **lease;
    return sqlite::InTransaction(reader, "BEGIN", [&] { return body(reader); });
  }

  // A statement outside BEGIN is a read transaction of its own.
  Result<void> ReadOne(const Body& body) override {
    auto lease = readers_.Acquire();
    if (!lease) return std::unexpected(lease.error());
    return body(**lease);
  }

  // The readiness check: a server whose file is gone refuses every write, so it is not ready.
  Result<void> CheckIntact() const override { return StillTheFile(); }

 private:
  Result<void> StillTheFile() const {
    if (identity_ && IdentityOf(file_) == identity_) return {};
    return Fail(ErrorCode::kInternal,
                "metadata store failure: the database file was deleted or replaced under the "
                "running server; writes are refused until it is restarted");
  }

  // Bumps the change counter when a write transaction ends, however it ends.
  struct CountChange {
    ChangeCounter* counter;
    ~CountChange() {
      if (counter != nullptr) counter->fetch_add(1, std::memory_order_release);
    }
  };

  const std::filesystem::path file_;
  const std::optional<FileIdentity> identity_;
  const std::shared_ptr<ChangeCounter> changes_;  // null: the file could not be identified
  std::mutex write_mutex_;
  std::unique_ptr<sqlite::Session> writer_;
  LendingPool<sqlite::Session> readers_;
};

// SQLite's memory statistics take one process-wide mutex on every allocation, which readers
// on several threads then contend for; nothing here reads them. Possible only before SQLite
// initialises, so a process that used SQLite earlier keeps them (sqlite3_config refuses).
void TurnOffMemoryStatistics() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

Result<std::unique_ptr<SqliteMetadataStore>> SqliteMetadataStore::Open(
    const std::filesystem::path& file) {
  TurnOffMemoryStatistics();
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) {
    return Fail(ErrorCode::kInternal,
                "metadata store failure: cannot create the database directory: " + ec.message());
  }
  auto connection = OpenConnection(file, /*writer=*/true);
  if (!connection) return std::unexpected(connection.error());
  auto writer = std::make_unique<sqlite::Session>(std::move(*connection));
  if (auto ok = EnableWal(*writer); !ok) return std::unexpected(ok.error());
  if (auto ok = Migrate(*writer); !ok) return std::unexpected(ok.error());
  auto engine = std::make_unique<SqliteTransactions>(file, std::move(writer));
  if (auto ok = engine->OpenReaders(); !ok) return std::unexpected(ok.error());
  // Engines where one writer works at a time need no locks of their own.
  std::unique_ptr<SqliteMetadataStore> store(new SqliteMetadataStore(
      std::move(engine), SqlDialect{.name_index = SqlDialect::NameIndex::kFts5Trigram},
      LeasesAtStart::kRelease));
  store->SetSchemaCheck("PRAGMA user_version", static_cast<std::int64_t>(std::size(kMigrations)));
  return store;
}

}  // namespace dlipkg
