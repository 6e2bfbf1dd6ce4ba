#include "adapters/sqlite_metadata_store.hpp"

#include <chrono>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "adapters/sqlite_db.hpp"

namespace dlipkg {
namespace {

using sqlite::Statement;

constexpr int kBusyTimeoutMs = 5000;
// Enough readers for the blocking-work threads of a small machine; more would wait on disk.
constexpr std::size_t kReaderCount = 4;
// group_name of ungrouped packages: real group names are never empty.
constexpr std::string_view kUngrouped = "";

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

Result<std::string> TextFromRow(const Statement& row) { return row.Text(0); }
Result<std::int64_t> IntFromRow(const Statement& row) { return row.Int(0); }

// The first column of a query that yields exactly one row (a PRAGMA, an EXISTS).
template <class FromRow, class... Values>
Result<sqlite::RowType<FromRow>> SelectOne(sqlite3* db, std::string_view sql, FromRow from_row,
                                           const Values&... values) {
  auto rows = sqlite::SelectRows(db, sql, from_row, values...);
  if (!rows) return std::unexpected(rows.error());
  if (rows->size() != 1) return Fail(ErrorCode::kInternal, "metadata store failure: no result");
  return std::move(rows->front());
}

Result<void> EnableWal(sqlite3* db) {
  // WAL lets readers work while the writer commits. Switching a new file to it takes an
  // exclusive lock that sqlite refuses at once, without the busy handler (two connections
  // upgrading their locks would deadlock), while another process is switching too; so a busy
  // refusal is retried up to the busy timeout. Once the file is in WAL mode no lock is needed.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    auto mode = SelectOne(db, "PRAGMA journal_mode = WAL", TextFromRow);
    if (mode && *mode == "wal") return {};
    if (mode) {  // e.g. a file system without shared memory
      return Fail(ErrorCode::kInternal, "metadata store failure: write-ahead logging unavailable");
    }
    if (!mode.error().retryable || std::chrono::steady_clock::now() >= deadline)
      return std::unexpected(mode.error());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<void> ApplyMigrations(sqlite3* db) {
  auto version = SelectOne(db, "PRAGMA user_version", IntFromRow);
  if (!version) return std::unexpected(version.error());
  const auto latest = static_cast<std::int64_t>(std::size(kMigrations));
  if (*version > latest) {
    return Fail(ErrorCode::kInternal, "metadata store failure: schema version " +
                                          std::to_string(*version) +
                                          " is newer than this server's " + std::to_string(latest));
  }
  if (*version == latest) return {};
  for (auto step = *version; step < latest; ++step) {
    if (auto ok = sqlite::Exec(db, kMigrations[step]); !ok) return ok;
  }
  return sqlite::Exec(db, "PRAGMA user_version = " + std::to_string(latest));
}

Result<void> Migrate(sqlite3* db) {
  // IMMEDIATE takes the write lock before the version is read: of two processes opening a new
  // database at once, the second waits, then finds the schema in place.
  return sqlite::InTransaction(db, "BEGIN IMMEDIATE", [db] { return ApplyMigrations(db); });
}

// Connections for reads, each lent to one thread at a time.
class ReaderPool {
 public:
  struct Returner {
    ReaderPool* pool;
    void operator()(sqlite3* db) const { pool->Return(db); }
  };
  using Lease = std::unique_ptr<sqlite3, Returner>;

  void Add(sqlite::Connection db) { Return(db.release()); }

  // Waits for an idle connection; it goes back to the pool when the lease ends.
  Lease Acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !idle_.empty(); });
    sqlite3* db = idle_.back().release();
    idle_.pop_back();
    return Lease(db, Returner{this});
  }

 private:
  void Return(sqlite3* db) {
    {
      std::lock_guard lock(mutex_);
      idle_.emplace_back(db);
    }
    available_.notify_one();
  }

  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<sqlite::Connection> idle_;
};

// ---- Reading rows ----

constexpr std::string_view kSelectPackages =
    "SELECT project, group_name, name, kind, status, sha256, size, underlying_name, owner, "
    "create_time, update_time, is_async, status_reason FROM packages ";
constexpr std::string_view kSelectGroups =
    "SELECT project, name, owner, description, create_time, update_time FROM groups ";

Result<PackageRecord> PackageFromRow(const Statement& row) {
  const auto kind = ParseKind(row.Text(3));
  const auto status = ParseStatus(row.Text(4));
  if (!kind || !status) {
    return Fail(ErrorCode::kInternal,
                "metadata store failure: unknown kind or status of '" + row.Text(2) + "'");
  }
  PackageRecord p;
  p.project = row.Text(0);
  p.group = row.Text(1);
  p.name = row.Text(2);
  p.kind = *kind;
  p.status = *status;
  p.sha256 = row.Text(5);
  p.size = row.Int(6);
  p.underlying_name = row.Text(7);
  p.owner = row.Text(8);
  p.create_time = row.Int(9);
  p.update_time = row.Int(10);
  p.is_async = row.Int(11) != 0;
  p.status_reason = row.Text(12);
  return p;
}

Result<GroupRecord> GroupFromRow(const Statement& row) {
  GroupRecord g;
  g.project = row.Text(0);
  g.name = row.Text(1);
  g.owner = row.Text(2);
  g.description = row.Text(3);
  g.create_time = row.Int(4);
  g.update_time = row.Int(5);
  return g;
}

Result<Tag> TagFromRow(const Statement& row) { return Tag{row.Text(0), row.Text(1)}; }

Result<void> LoadTags(sqlite3* db, std::vector<PackageRecord>& packages) {
  if (packages.empty()) return {};
  auto stmt = Statement::Prepare(db,
                                 "SELECT key, value FROM package_tags WHERE project = ?1 AND "
                                 "group_name = ?2 AND name = ?3 ORDER BY position");
  if (!stmt) return std::unexpected(stmt.error());
  for (auto& p : packages) {
    if (auto bound = stmt->Bind(p.project, p.group, p.name); !bound) return bound;
    auto tags = sqlite::CollectRows(*stmt, TagFromRow);
    if (!tags) return std::unexpected(tags.error());
    p.tags = std::move(*tags);
  }
  return {};
}

// Packages selected by `condition` ("WHERE ... ORDER BY ..." over ?1, ?2, ... = keys), with tags.
template <class... Keys>
Result<std::vector<PackageRecord>> SelectPackages(sqlite3* db, std::string_view condition,
                                                  const Keys&... keys) {
  auto packages = sqlite::SelectRows(db, std::string(kSelectPackages) + std::string(condition),
                                     PackageFromRow, keys...);
  if (!packages) return packages;
  if (auto tagged = LoadTags(db, *packages); !tagged) return std::unexpected(tagged.error());
  return packages;
}

Result<std::optional<PackageRecord>> ReadPackage(sqlite3* db, std::string_view project,
                                                 std::string_view group, std::string_view name) {
  auto found = SelectPackages(db, "WHERE project = ?1 AND group_name = ?2 AND name = ?3", project,
                              group, name);
  if (!found) return std::unexpected(found.error());
  if (found->empty()) return std::nullopt;
  return std::move(found->front());
}

Result<std::optional<GroupRecord>> ReadGroup(sqlite3* db, std::string_view project,
                                             std::string_view name) {
  auto groups =
      sqlite::SelectRows(db, std::string(kSelectGroups) + "WHERE project = ?1 AND name = ?2",
                         GroupFromRow, project, name);
  if (!groups) return std::unexpected(groups.error());
  if (groups->empty()) return std::nullopt;
  auto packages =
      SelectPackages(db, "WHERE project = ?1 AND group_name = ?2 ORDER BY position", project, name);
  if (!packages) return std::unexpected(packages.error());
  groups->front().packages = std::move(*packages);
  return std::move(groups->front());
}

// A group just written in the same transaction, so absence is a store failure.
Result<GroupRecord> ReadBackGroup(sqlite3* db, std::string_view project, std::string_view name) {
  auto group = ReadGroup(db, project, name);
  if (!group) return std::unexpected(group.error());
  if (!*group) return Fail(ErrorCode::kInternal, "metadata store failure: group not written");
  return std::move(**group);
}

// Hands each package to the group of the same name; both lists are ordered by group name.
void DistributePackages(std::vector<PackageRecord> packages, std::vector<GroupRecord>& groups) {
  auto group = groups.begin();
  for (auto& p : packages) {
    while (group != groups.end() && group->name < p.group) ++group;
    if (group != groups.end() && group->name == p.group) group->packages.push_back(std::move(p));
  }
}

// ---- Writing rows ----

constexpr std::string_view kInsertPackage = R"sql(
INSERT INTO packages (project, group_name, name, position, kind, status, sha256, size,
                      underlying_name, owner, create_time, update_time, is_async, status_reason)
VALUES (?1, ?2, ?3,
        (SELECT COALESCE(MAX(position) + 1, 0) FROM packages
          WHERE project = ?1 AND group_name = ?2),
        ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13))sql";
// Replacing a package keeps its identity in the group: create_time and position.
constexpr std::string_view kReplaceExistingPackage = R"sql(
ON CONFLICT (project, group_name, name) DO UPDATE SET
  kind = excluded.kind, status = excluded.status, sha256 = excluded.sha256,
  size = excluded.size, underlying_name = excluded.underlying_name, owner = excluded.owner,
  update_time = excluded.update_time, is_async = excluded.is_async,
  status_reason = excluded.status_reason, job_id = 0)sql";

enum class OnExisting { kFail, kReplace };

struct PackageWrites {
  Statement insert;
  Statement clear_tags;
  Statement insert_tag;
};

Result<PackageWrites> PreparePackageWrites(sqlite3* db, OnExisting on_existing) {
  std::string insert_sql(kInsertPackage);
  if (on_existing == OnExisting::kReplace) insert_sql += kReplaceExistingPackage;
  auto insert = Statement::Prepare(db, insert_sql);
  auto clear_tags = Statement::Prepare(
      db, "DELETE FROM package_tags WHERE project = ?1 AND group_name = ?2 AND name = ?3");
  auto insert_tag = Statement::Prepare(
      db,
      "INSERT INTO package_tags (project, group_name, name, position, key, value) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  for (const auto* stmt : {&insert, &clear_tags, &insert_tag}) {
    if (!*stmt) return std::unexpected(stmt->error());
  }
  return PackageWrites{std::move(*insert), std::move(*clear_tags), std::move(*insert_tag)};
}

// Writes `p` into (project, group), whatever p.project and p.group say: the caller's
// arguments decide where a package goes. Its tags replace the stored ones.
Result<void> WritePackage(PackageWrites& writes, std::string_view project, std::string_view group,
                          const PackageRecord& p) {
  if (auto ok = writes.insert.BindAndRun(
          project, group, p.name, ToString(p.kind), ToString(p.status), p.sha256, p.size,
          p.underlying_name, p.owner, p.create_time, p.update_time, p.is_async, p.status_reason);
      !ok) {
    return ok;
  }
  if (auto ok = writes.clear_tags.BindAndRun(project, group, p.name); !ok) return ok;
  for (std::size_t i = 0; i < p.tags.size(); ++i) {
    const Tag& tag = p.tags[i];
    if (auto ok = writes.insert_tag.BindAndRun(project, group, p.name, i, tag.key, tag.value);
        !ok) {
      return ok;
    }
  }
  return {};
}

Result<void> WritePackages(sqlite3* db, const GroupRecord& group,
                           const std::vector<PackageRecord>& packages, OnExisting on_existing) {
  auto writes = PreparePackageWrites(db, on_existing);
  if (!writes) return std::unexpected(writes.error());
  for (const auto& p : packages) {
    if (auto ok = WritePackage(*writes, group.project, group.name, p); !ok) return ok;
  }
  return {};
}

// Creates the group from `group`; an existing one keeps create_time and takes update_time,
// and with kTake also owner and description.
enum class OwnerAndDescription { kKeep, kTake };
Result<void> UpsertGroup(sqlite3* db, const GroupRecord& group, OwnerAndDescription existing) {
  std::string sql =
      "INSERT INTO groups (project, name, owner, description, create_time, update_time) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
      "ON CONFLICT (project, name) DO UPDATE SET update_time = excluded.update_time";
  if (existing == OwnerAndDescription::kTake)
    sql += ", owner = excluded.owner, description = excluded.description";
  return sqlite::Run(db, sql, group.project, group.name, group.owner, group.description,
                     group.create_time, group.update_time);
}

std::unexpected<Error> PackageNotFound(const std::string& group, const std::string& name) {
  if (group.empty())
    return Fail(ErrorCode::kNotFound, "The package '" + name + "' does not exist.");
  return Fail(ErrorCode::kNotFound,
              "The package '" + name + "' does not exist in the group '" + group + "'.");
}

std::unexpected<Error> GroupNotFound(const std::string& group) {
  return Fail(ErrorCode::kNotFound, "The group '" + group + "' does not exist.");
}

}  // namespace

struct SqliteMetadataStore::Impl {
  // Writes share one connection: SQLite admits one writer at a time anyway, and the mutex
  // queues threads here instead of in sqlite's busy handler (which sleeps and polls).
  template <class Body>
  auto Write(Body&& body) -> decltype(body(nullptr)) {
    std::lock_guard lock(write_mutex_);
    sqlite3* db = writer_.get();
    return sqlite::InTransaction(db, "BEGIN IMMEDIATE", [&] { return body(db); });
  }

  // For queue bookkeeping whose loss in a power cut is harmless (a claim, a lease renewal, a
  // retry time: the job just becomes claimable again): committed without waiting for fsync.
  // In WAL mode the next FULL commit makes these durable too. Anything a client can observe
  // (a package state) goes through Write.
  template <class Body>
  auto WriteBookkeeping(Body&& body) -> decltype(body(nullptr)) {
    std::lock_guard lock(write_mutex_);
    sqlite3* db = writer_.get();
    (void)sqlite::Exec(db, "PRAGMA synchronous = NORMAL");
    auto result = sqlite::InTransaction(db, "BEGIN IMMEDIATE", [&] { return body(db); });
    (void)sqlite::Exec(db, "PRAGMA synchronous = FULL");
    return result;
  }

  // One read transaction per call, so a call's queries all see the same committed state.
  template <class Body>
  auto Read(Body&& body) -> decltype(body(nullptr)) {
    auto lease = readers_.Acquire();
    sqlite3* db = lease.get();
    return sqlite::InTransaction(db, "BEGIN", [&] { return body(db); });
  }

  std::mutex write_mutex_;
  sqlite::Connection writer_;
  ReaderPool readers_;
};

SqliteMetadataStore::SqliteMetadataStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteMetadataStore::~SqliteMetadataStore() = default;

Result<std::unique_ptr<SqliteMetadataStore>> SqliteMetadataStore::Open(
    const std::filesystem::path& file) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) {
    return Fail(ErrorCode::kInternal,
                "metadata store failure: cannot create the database directory: " + ec.message());
  }
  auto writer = OpenConnection(file, /*writer=*/true);
  if (!writer) return std::unexpected(writer.error());
  if (auto ok = EnableWal(writer->get()); !ok) return std::unexpected(ok.error());
  if (auto ok = Migrate(writer->get()); !ok) return std::unexpected(ok.error());

  auto impl = std::make_unique<Impl>();
  impl->writer_ = std::move(*writer);
  for (std::size_t i = 0; i < kReaderCount; ++i) {
    auto reader = OpenConnection(file, /*writer=*/false);
    if (!reader) return std::unexpected(reader.error());
    impl->readers_.Add(std::move(*reader));
  }
  return std::unique_ptr<SqliteMetadataStore>(new SqliteMetadataStore(std::move(impl)));
}

Result<GroupRecord> SqliteMetadataStore::ReplaceGroup(const GroupRecord& group,
                                                      const std::vector<PackageRecord>& packages) {
  return impl_->Write([&](sqlite3* db) -> Result<GroupRecord> {
    if (auto ok = UpsertGroup(db, group, OwnerAndDescription::kTake); !ok)
      return std::unexpected(ok.error());
    // Tags go with their packages (ON DELETE CASCADE).
    if (auto ok = sqlite::Run(db, "DELETE FROM packages WHERE project = ?1 AND group_name = ?2",
                              group.project, group.name);
        !ok) {
      return std::unexpected(ok.error());
    }
    if (auto ok = WritePackages(db, group, packages, OnExisting::kFail); !ok)
      return std::unexpected(ok.error());
    return ReadBackGroup(db, group.project, group.name);
  });
}

Result<GroupRecord> SqliteMetadataStore::MergeIntoGroup(
    const GroupRecord& group, const std::vector<PackageRecord>& packages) {
  return impl_->Write([&](sqlite3* db) -> Result<GroupRecord> {
    if (auto ok = UpsertGroup(db, group, OwnerAndDescription::kKeep); !ok)
      return std::unexpected(ok.error());
    if (auto ok = WritePackages(db, group, packages, OnExisting::kReplace); !ok)
      return std::unexpected(ok.error());
    return ReadBackGroup(db, group.project, group.name);
  });
}

Result<std::vector<PackageRecord>> SqliteMetadataStore::PutUngrouped(
    const std::vector<PackageRecord>& packages) {
  return impl_->Write([&](sqlite3* db) -> Result<std::vector<PackageRecord>> {
    auto writes = PreparePackageWrites(db, OnExisting::kReplace);
    if (!writes) return std::unexpected(writes.error());
    for (const auto& p : packages) {
      if (auto ok = WritePackage(*writes, p.project, kUngrouped, p); !ok)
        return std::unexpected(ok.error());
    }
    std::vector<PackageRecord> stored;
    for (const auto& p : packages) {
      auto back = ReadPackage(db, p.project, kUngrouped, p.name);
      if (!back) return std::unexpected(back.error());
      if (!*back) return Fail(ErrorCode::kInternal, "metadata store failure: package not written");
      stored.push_back(std::move(**back));
    }
    return stored;
  });
}

Result<std::optional<PackageRecord>> SqliteMetadataStore::GetPackage(const std::string& project,
                                                                     const std::string& group,
                                                                     const std::string& name) {
  return impl_->Read([&](sqlite3* db) { return ReadPackage(db, project, group, name); });
}

Result<std::optional<GroupRecord>> SqliteMetadataStore::GetGroup(const std::string& project,
                                                                 const std::string& name) {
  return impl_->Read([&](sqlite3* db) { return ReadGroup(db, project, name); });
}

Result<ProjectContents> SqliteMetadataStore::ListProject(const std::string& project) {
  return impl_->Read([&](sqlite3* db) -> Result<ProjectContents> {
    auto groups = sqlite::SelectRows(
        db, std::string(kSelectGroups) + "WHERE project = ?1 ORDER BY name", GroupFromRow, project);
    if (!groups) return std::unexpected(groups.error());
    auto grouped = SelectPackages(
        db, "WHERE project = ?1 AND group_name <> '' ORDER BY group_name, position", project);
    if (!grouped) return std::unexpected(grouped.error());
    auto ungrouped =
        SelectPackages(db, "WHERE project = ?1 AND group_name = '' ORDER BY name", project);
    if (!ungrouped) return std::unexpected(ungrouped.error());
    DistributePackages(std::move(*grouped), *groups);
    return ProjectContents{std::move(*groups), std::move(*ungrouped)};
  });
}

Result<PackageRecord> SqliteMetadataStore::DeletePackage(const std::string& project,
                                                         const std::string& group,
                                                         const std::string& name) {
  return impl_->Write([&](sqlite3* db) -> Result<PackageRecord> {
    auto found = ReadPackage(db, project, group, name);
    if (!found) return std::unexpected(found.error());
    if (!*found) return PackageNotFound(group, name);
    if (auto ok = sqlite::Run(
            db, "DELETE FROM packages WHERE project = ?1 AND group_name = ?2 AND name = ?3",
            project, group, name);
        !ok) {
      return std::unexpected(ok.error());
    }
    return std::move(**found);
  });
}

Result<void> SqliteMetadataStore::SetGroupOwner(const std::string& project,
                                                const std::string& group, const std::string& owner,
                                                std::int64_t now_ms) {
  return impl_->Write([&](sqlite3* db) -> Result<void> {
    if (auto ok = sqlite::Run(
            db, "UPDATE groups SET owner = ?3, update_time = ?4 WHERE project = ?1 AND name = ?2",
            project, group, owner, now_ms);
        !ok) {
      return ok;
    }
    if (sqlite::Changes(db) == 0) return GroupNotFound(group);
    return sqlite::Run(db,
                       "UPDATE packages SET owner = ?3, update_time = ?4 "
                       "WHERE project = ?1 AND group_name = ?2",
                       project, group, owner, now_ms);
  });
}

Result<void> SqliteMetadataStore::SetPackageOwner(const std::string& project,
                                                  const std::string& group, const std::string& name,
                                                  const std::string& owner, std::int64_t now_ms) {
  return impl_->Write([&](sqlite3* db) -> Result<void> {
    if (auto ok = sqlite::Run(db,
                              "UPDATE packages SET owner = ?4, update_time = ?5 "
                              "WHERE project = ?1 AND group_name = ?2 AND name = ?3",
                              project, group, name, owner, now_ms);
        !ok) {
      return ok;
    }
    if (sqlite::Changes(db) == 0) return PackageNotFound(group, name);
    return {};
  });
}

Result<bool> SqliteMetadataStore::IsBlobReferenced(const std::string& sha256) {
  if (sha256.empty()) return false;  // "" means "no bytes yet", not a blob
  return impl_->Read([&](sqlite3* db) -> Result<bool> {
    auto exists = SelectOne(db, "SELECT EXISTS (SELECT 1 FROM packages WHERE sha256 = ?1)",
                            IntFromRow, sha256);
    if (!exists) return std::unexpected(exists.error());
    return *exists != 0;
  });
}

Result<std::vector<std::string>> SqliteMetadataStore::ReferencedBlobs() {
  return impl_->Read([](sqlite3* db) {
    return sqlite::SelectRows(
        db, "SELECT DISTINCT sha256 FROM packages WHERE sha256 <> '' ORDER BY sha256", TextFromRow);
  });
}

// ---- The job queue ----

namespace {

constexpr std::string_view kSelectJobs =
    "SELECT id, project, group_name, name, url, attempts, deadline_at FROM jobs ";

Result<UploadJob> JobFromRow(const Statement& row) {
  return UploadJob{.id = row.Int(0), .project = row.Text(1), .group = row.Text(2),
                   .name = row.Text(3), .url = row.Text(4),
                   .attempts = static_cast<int>(row.Int(5)), .deadline_ms = row.Int(6)};
}

// The job that owns a package's pending upload: 0 for none, nullopt when the package is gone.
Result<std::optional<std::int64_t>> OwningJob(sqlite3* db, const UploadJob& job) {
  auto rows = sqlite::SelectRows(
      db, "SELECT job_id FROM packages WHERE project = ?1 AND group_name = ?2 AND name = ?3",
      IntFromRow, job.project, job.group, job.name);
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return std::nullopt;
  return rows->front();
}

// Whether `worker` still holds the job's lease and the job still owns its package. A job that
// lost its package is deleted here, since nobody will want its result.
Result<bool> StillResponsible(sqlite3* db, const UploadJob& job, const std::string& worker) {
  auto holds = SelectOne(db, "SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND lease_owner = ?2)",
                         IntFromRow, job.id, worker);
  if (!holds) return std::unexpected(holds.error());
  if (*holds == 0) return false;
  auto owner = OwningJob(db, job);
  if (!owner) return std::unexpected(owner.error());
  if (*owner == job.id) return true;
  if (auto ok = sqlite::Run(db, "DELETE FROM jobs WHERE id = ?1", job.id); !ok)
    return std::unexpected(ok.error());
  return false;
}

// Settles the job's package (READY or FAILED: `set_clause` over ?5, ?6, ... = values) and
// deletes the job.
template <class... Values>
Result<void> FinishJob(sqlite3* db, const UploadJob& job, std::string_view set_clause,
                       std::int64_t now_ms, const Values&... values) {
  const std::string sql = "UPDATE packages SET " + std::string(set_clause) +
                          ", update_time = ?4, job_id = 0 "
                          "WHERE project = ?1 AND group_name = ?2 AND name = ?3";
  if (auto ok = sqlite::Run(db, sql, job.project, job.group, job.name, now_ms, values...); !ok)
    return ok;
  return sqlite::Run(db, "DELETE FROM jobs WHERE id = ?1", job.id);
}

}  // namespace

Result<EnqueuedUploads> SqliteMetadataStore::EnqueueUploads(
    const std::optional<GroupRecord>& group, const std::vector<PackageRecord>& packages,
    const std::vector<std::string>& urls, std::int64_t deadline_ms, std::size_t max_queued) {
  if (packages.empty() || urls.size() != packages.size())
    return Fail(ErrorCode::kInternal, "metadata store failure: one URL per package expected");
  const std::string project = group ? group->project : packages.front().project;
  const std::string group_name = group ? group->name : std::string(kUngrouped);
  return impl_->Write([&](sqlite3* db) -> Result<EnqueuedUploads> {
    auto queued = SelectOne(db, "SELECT COUNT(*) FROM jobs", IntFromRow);
    if (!queued) return std::unexpected(queued.error());
    if (static_cast<std::size_t>(*queued) + packages.size() > max_queued)
      return Fail(ErrorCode::kQuotaExceeded,
                  "The upload queue is full (" + std::to_string(*queued) + " jobs queued, at most " +
                      std::to_string(max_queued) + "); try again later.");
    if (group) {
      if (auto ok = UpsertGroup(db, *group, OwnerAndDescription::kKeep); !ok)
        return std::unexpected(ok.error());
    }
    auto writes = PreparePackageWrites(db, OnExisting::kReplace);
    if (!writes) return std::unexpected(writes.error());
    EnqueuedUploads result;
    for (std::size_t i = 0; i < packages.size(); ++i) {
      PackageRecord p = packages[i];
      p.status = PackageStatus::kUploading;
      p.is_async = true;
      auto old = ReadPackage(db, project, group_name, p.name);
      if (!old) return std::unexpected(old.error());
      // The stored bytes stay referenced (so downloadable) until the new ones are committed.
      p.sha256 = *old ? (*old)->sha256 : "";
      p.size = *old ? (*old)->size : 0;
      if (*old) p.underlying_name = (*old)->underlying_name;
      if (auto ok = WritePackage(*writes, project, group_name, p); !ok)
        return std::unexpected(ok.error());
      if (auto ok = sqlite::Run(db,
                                "INSERT INTO jobs (project, group_name, name, url, next_attempt_at, "
                                "deadline_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                                project, group_name, p.name, urls[i], deadline_ms);
          !ok) {
        return std::unexpected(ok.error());
      }
      const std::int64_t job_id = sqlite3_last_insert_rowid(db);
      if (auto ok = sqlite::Run(db,
                                "UPDATE packages SET job_id = ?4 "
                                "WHERE project = ?1 AND group_name = ?2 AND name = ?3",
                                project, group_name, p.name, job_id);
          !ok) {
        return std::unexpected(ok.error());
      }
      auto stored = ReadPackage(db, project, group_name, p.name);
      if (!stored || !*stored) return Fail(ErrorCode::kInternal, "metadata store failure: package not written");
      result.packages.push_back(std::move(**stored));
    }
    if (group) {
      auto whole = ReadBackGroup(db, project, group_name);
      if (!whole) return std::unexpected(whole.error());
      result.group = std::move(*whole);
    }
    return result;
  });
}

Result<std::optional<UploadJob>> SqliteMetadataStore::ClaimJob(const std::string& worker,
                                                               std::int64_t now_ms,
                                                               std::int64_t lease_until_ms) {
  return impl_->WriteBookkeeping([&](sqlite3* db) -> Result<std::optional<UploadJob>> {
    for (;;) {
      auto due = sqlite::SelectRows(
          db,
          std::string(kSelectJobs) +
              "WHERE next_attempt_at <= ?1 AND lease_until <= ?1 ORDER BY next_attempt_at, id "
              "LIMIT 1",
          JobFromRow, now_ms);
      if (!due) return std::unexpected(due.error());
      if (due->empty()) return std::nullopt;
      UploadJob job = std::move(due->front());
      auto owner = OwningJob(db, job);
      if (!owner) return std::unexpected(owner.error());
      if (!*owner || **owner != job.id) {  // superseded or deleted: nobody wants it
        if (auto ok = sqlite::Run(db, "DELETE FROM jobs WHERE id = ?1", job.id); !ok)
          return std::unexpected(ok.error());
        continue;
      }
      if (auto ok = sqlite::Run(db,
                                "UPDATE jobs SET lease_owner = ?2, lease_until = ?3, "
                                "attempts = attempts + 1 WHERE id = ?1",
                                job.id, worker, lease_until_ms);
          !ok) {
        return std::unexpected(ok.error());
      }
      job.attempts += 1;
      return job;
    }
  });
}

Result<bool> SqliteMetadataStore::RenewLease(std::int64_t job_id, const std::string& worker,
                                             std::int64_t lease_until_ms) {
  return impl_->WriteBookkeeping([&](sqlite3* db) -> Result<bool> {
    if (auto ok = sqlite::Run(db, "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2",
                              job_id, worker, lease_until_ms);
        !ok) {
      return std::unexpected(ok.error());
    }
    return sqlite::Changes(db) > 0;
  });
}

Result<std::optional<std::string>> SqliteMetadataStore::CompleteJob(
    const UploadJob& job, const std::string& worker, const BlobInfo& blob,
    const std::string& underlying_name, std::int64_t now_ms) {
  return impl_->Write([&](sqlite3* db) -> Result<std::optional<std::string>> {
    auto responsible = StillResponsible(db, job, worker);
    if (!responsible) return std::unexpected(responsible.error());
    if (!*responsible) return std::optional<std::string>();
    auto old = ReadPackage(db, job.project, job.group, job.name);
    if (!old) return std::unexpected(old.error());
    const std::string previous = *old ? (*old)->sha256 : "";
    if (auto ok = FinishJob(db, job,
                            "status = 'READY', status_reason = '', sha256 = ?5, size = ?6, "
                            "underlying_name = ?7",
                            now_ms, blob.sha256, blob.size, underlying_name);
        !ok) {
      return std::unexpected(ok.error());
    }
    return std::optional<std::string>(previous);
  });
}

Result<void> SqliteMetadataStore::RetryJob(const UploadJob& job, const std::string& worker,
                                           std::int64_t next_attempt_ms,
                                           const std::string& reason) {
  return impl_->WriteBookkeeping([&](sqlite3* db) {
    return sqlite::Run(db,
                       "UPDATE jobs SET lease_owner = '', lease_until = 0, next_attempt_at = ?3, "
                       "last_error = ?4 WHERE id = ?1 AND lease_owner = ?2",
                       job.id, worker, next_attempt_ms, reason);
  });
}

Result<void> SqliteMetadataStore::FailJob(const UploadJob& job, const std::string& worker,
                                          const std::string& reason, std::int64_t now_ms) {
  return impl_->Write([&](sqlite3* db) -> Result<void> {
    auto responsible = StillResponsible(db, job, worker);
    if (!responsible) return std::unexpected(responsible.error());
    if (!*responsible) return {};
    return FinishJob(db, job, "status = 'FAILED', status_reason = ?5", now_ms, reason);
  });
}

Result<std::size_t> SqliteMetadataStore::RecoverAfterRestart(std::int64_t now_ms) {
  return impl_->Write([&](sqlite3* db) -> Result<std::size_t> {
    if (auto ok = sqlite::Exec(db, "UPDATE jobs SET lease_owner = '', lease_until = 0"); !ok)
      return std::unexpected(ok.error());
    if (auto ok = sqlite::Run(
            db,
            "UPDATE packages SET status = 'FAILED', update_time = ?1, job_id = 0, "
            "status_reason = 'The upload was interrupted and cannot be resumed; upload it again.' "
            "WHERE status = 'UPLOADING' AND NOT EXISTS "
            "(SELECT 1 FROM jobs WHERE jobs.id = packages.job_id)",
            now_ms);
        !ok) {
      return std::unexpected(ok.error());
    }
    auto queued = SelectOne(db, "SELECT COUNT(*) FROM jobs", IntFromRow);
    if (!queued) return std::unexpected(queued.error());
    return static_cast<std::size_t>(*queued);
  });
}

Result<std::size_t> SqliteMetadataStore::CountQueued() {
  return impl_->Read([](sqlite3* db) -> Result<std::size_t> {
    auto queued = SelectOne(db, "SELECT COUNT(*) FROM jobs", IntFromRow);
    if (!queued) return std::unexpected(queued.error());
    return static_cast<std::size_t>(*queued);
  });
}

}  // namespace dlipkg
