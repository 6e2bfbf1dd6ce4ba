#include "adapters/metadata/metadata_sql.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <span>
#include <tuple>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

namespace dlipkg {
namespace {

namespace json = boost::json;

using sql::IntFromRow;
using sql::Row;
using sql::Session;
using sql::TextFromRow;

// group_name of ungrouped packages: real group names are never empty.
constexpr std::string_view kUngrouped = "";

// ---- Reading rows ----

constexpr std::string_view kSelectPackages =
    "SELECT project, group_name, name, kind, status, sha256, size, underlying_name, owner, "
    "create_time, update_time, is_async, status_reason FROM packages ";
constexpr std::string_view kSelectGroups =
    "SELECT project, name, owner, description, create_time, update_time FROM groups ";
constexpr std::string_view kSelectJobs =
    "SELECT id, project, group_name, name, url, attempts, deadline_at, last_error FROM jobs ";

Result<PackageRecord> PackageFromRow(const Row& row) {
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

Result<GroupRecord> GroupFromRow(const Row& row) {
  GroupRecord g;
  g.project = row.Text(0);
  g.name = row.Text(1);
  g.owner = row.Text(2);
  g.description = row.Text(3);
  g.create_time = row.Int(4);
  g.update_time = row.Int(5);
  return g;
}

Result<UploadJob> JobFromRow(const Row& row) {
  return UploadJob{.id = row.Int(0),
                   .project = row.Text(1),
                   .group = row.Text(2),
                   .name = row.Text(3),
                   .url = row.Text(4),
                   .attempts = static_cast<int>(row.Int(5)),
                   .deadline_ms = row.Int(6),
                   .last_error = row.Text(7)};
}

// Packages (alias pg) with their tags: one row per tag, or one row with tag position -1 for a
// package without tags. Reading a package and its tags in one statement saves a round trip
// (and a statement) per read on either engine.
constexpr std::string_view kPackageWithTagColumns =
    "SELECT pg.project, pg.group_name, pg.name, pg.kind, pg.status, pg.sha256, pg.size, "
    "pg.underlying_name, pg.owner, pg.create_time, pg.update_time, pg.is_async, "
    "pg.status_reason, COALESCE(t.position, -1), COALESCE(t.key, ''), COALESCE(t.value, '')";
constexpr std::string_view kJoinTags =
    " LEFT JOIN package_tags t ON t.project = pg.project AND t.group_name = pg.group_name "
    "AND t.name = pg.name ";
constexpr int kTagPosition = 13, kTagKey = 14, kTagValue = 15;
// Columns after the tag's in a page: the package's group (blank for ungrouped packages).
constexpr std::string_view kGroupColumns =
    ", COALESCE(g.owner, ''), COALESCE(g.description, ''), COALESCE(g.create_time, 0), "
    "COALESCE(g.update_time, 0)";
constexpr int kGroupOwner = 16, kGroupDescription = 17, kGroupCreated = 18, kGroupUpdated = 19;

// Packages from rows of kPackageWithTagColumns in which each package's rows are adjacent
// (ordered by the package key, then the tag position).
class PackageCollector {
 public:
  Result<void> Add(const Row& row) {
    if (packages_.empty() || !IsLast(row)) {
      auto package = PackageFromRow(row);
      if (!package) return std::unexpected(package.error());
      packages_.push_back(std::move(*package));
      new_package_ = true;
    } else {
      new_package_ = false;
    }
    if (row.Int(kTagPosition) >= 0)
      packages_.back().tags.push_back(Tag{row.Text(kTagKey), row.Text(kTagValue)});
    return {};
  }
  // Whether the last row added began a package.
  bool new_package() const { return new_package_; }
  std::vector<PackageRecord>& packages() { return packages_; }

 private:
  bool IsLast(const Row& row) const {
    const PackageRecord& last = packages_.back();
    return row.Text(2) == last.name && row.Text(1) == last.group && row.Text(0) == last.project;
  }
  std::vector<PackageRecord> packages_;
  bool new_package_ = false;
};

// Runs a statement of kPackageWithTagColumns rows (binding ?1, ?2, ... to `values`).
Result<std::vector<PackageRecord>> CollectPackages(Session& s, std::string_view statement,
                                                   std::span<const sql::Value> values) {
  PackageCollector collector;
  auto ran = s.Execute(statement, values, [&](const Row& row) { return collector.Add(row); });
  if (!ran) return std::unexpected(ran.error());
  return std::move(collector.packages());
}

template <class... Keys>
Result<std::vector<PackageRecord>> SelectPackagesSql(Session& s, std::string_view statement,
                                                     const Keys&... keys) {
  const sql::Value bound[] = {sql::Value{std::int64_t{0}}, sql::ToValue(keys)...};
  return CollectPackages(s, statement, std::span(bound).subspan(1));
}

// Packages selected by `where` (over alias p: "WHERE p.project = ?1 ..." with ?1, ?2, ... =
// keys), in `order` (over alias pg: "pg.name"; "" for any), with their tags.
template <class... Keys>
Result<std::vector<PackageRecord>> SelectPackages(Session& s, std::string_view where,
                                                  std::string_view order, const Keys&... keys) {
  std::string statement = std::string(kPackageWithTagColumns) + " FROM (SELECT * FROM packages p " +
                          std::string(where) + ") pg" + std::string(kJoinTags) + "ORDER BY ";
  if (!order.empty()) statement += std::string(order) + ", ";
  statement += "t.position";
  return SelectPackagesSql(s, statement, keys...);
}

Result<std::optional<PackageRecord>> ReadPackage(Session& s, std::string_view project,
                                                 std::string_view group, std::string_view name) {
  // Built once: a show is the most frequent call, and its text is its prepared statement's key.
  static const std::string kStatement =
      std::string(kPackageWithTagColumns) + " FROM packages pg" + std::string(kJoinTags) +
      "WHERE pg.project = ?1 AND pg.group_name = ?2 AND pg.name = ?3 ORDER BY t.position";
  auto found = SelectPackagesSql(s, kStatement, project, group, name);
  if (!found) return std::unexpected(found.error());
  if (found->empty()) return std::nullopt;
  return std::move(found->front());
}

// A package just written in the same transaction, so absence is a store failure.
Result<PackageRecord> ReadBackPackage(Session& s, std::string_view project, std::string_view group,
                                      std::string_view name) {
  auto stored = ReadPackage(s, project, group, name);
  if (!stored) return std::unexpected(stored.error());
  if (!*stored) return Fail(ErrorCode::kInternal, "metadata store failure: package not written");
  return std::move(**stored);
}

Result<std::optional<GroupRecord>> ReadGroup(Session& s, std::string_view project,
                                             std::string_view name) {
  auto groups = sql::Select(s, std::string(kSelectGroups) + "WHERE project = ?1 AND name = ?2",
                            GroupFromRow, project, name);
  if (!groups) return std::unexpected(groups.error());
  if (groups->empty()) return std::nullopt;
  auto packages =
      SelectPackages(s, "WHERE p.project = ?1 AND p.group_name = ?2", "pg.position", project, name);
  if (!packages) return std::unexpected(packages.error());
  groups->front().packages = std::move(*packages);
  return std::move(groups->front());
}

// A group just written in the same transaction, so absence is a store failure.
Result<GroupRecord> ReadBackGroup(Session& s, std::string_view project, std::string_view name) {
  auto group = ReadGroup(s, project, name);
  if (!group) return std::unexpected(group.error());
  if (!*group) return Fail(ErrorCode::kInternal, "metadata store failure: group not written");
  return std::move(**group);
}

// Hands each package to the group of the same name; both lists are ordered by group name
// (byte order: the engines compare names as bytes, like std::string).
void DistributePackages(std::vector<PackageRecord> packages, std::vector<GroupRecord>& groups) {
  auto group = groups.begin();
  for (auto& p : packages) {
    while (group != groups.end() && group->name < p.group) ++group;
    if (group != groups.end() && group->name == p.group) group->packages.push_back(std::move(p));
  }
}

// ---- Listing ----

// The values of a statement whose text is built at run time (a filter names any number of
// tags), bound to ?1, ?2, ... in the order they were added.
class Bindings {
 public:
  // The placeholder of `value`; a text must outlive the statement.
  std::string Add(sql::Value value) {
    values_.push_back(value);
    return "?" + std::to_string(values_.size());
  }
  std::span<const sql::Value> values() const { return values_; }
  // Texts made for the statement (bound by view), kept as long as the bindings.
  std::deque<std::string>& texts() { return texts_; }

 private:
  std::vector<sql::Value> values_;
  std::deque<std::string> texts_;
};

std::int64_t AsInt(std::size_t n) {
  return static_cast<std::int64_t>(std::min<std::size_t>(n, INT64_MAX));
}

// Characters, not bytes: the trigram indexes count characters (names are valid UTF-8).
std::size_t Characters(std::string_view text) {
  return static_cast<std::size_t>(std::ranges::count_if(
      text, [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// The needle as an FTS5 phrase: quoted, inner quotes doubled, so no character is syntax.
std::string Fts5Phrase(std::string_view needle) {
  std::string phrase = "\"";
  for (const char c : needle) phrase += c == '"' ? std::string("\"\"") : std::string(1, c);
  return phrase + "\"";
}

// The needle as a LIKE pattern matching any text containing it (escape character \).
std::string ContainsPattern(std::string_view needle) {
  std::string pattern = "%";
  for (const char c : needle) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += c;
  }
  return pattern + "%";
}

// The name index's part of a name filter ("" when it cannot help); `texts` keeps the bound
// texts alive for the statement.
std::string NameIndexCondition(Bindings& b, const SqlDialect& dialect, std::string_view needle,
                               std::deque<std::string>& texts) {
  if (Characters(needle) < 3) return "";  // no trigram in it: a scan decides
  switch (dialect.name_index) {
    case SqlDialect::NameIndex::kNone:
      return "";
    case SqlDialect::NameIndex::kFts5Trigram:
      texts.push_back(Fts5Phrase(needle));
      return " AND p.rowid IN (SELECT rowid FROM package_names WHERE package_names MATCH " +
             b.Add(std::string_view(texts.back())) + ")";
    case SqlDialect::NameIndex::kTrigramLike: {
      texts.push_back(ContainsPattern(needle));
      const std::string pattern = b.Add(std::string_view(texts.back()));
      return " AND (p.name LIKE " + pattern + " ESCAPE '\\' OR p.group_name LIKE " + pattern +
             " ESCAPE '\\')";
    }
  }
  return "";
}

// "WHERE p.project = ?1 AND ..." over the packages (alias p) of `project` matching `filter`.
// The text depends only on the number of tags (a tag without a value binds a flag instead of
// changing the text), so engines that cache prepared statements keep a bounded few.
// `by_name_index`: a name filter reads the name index's matches (all of them, then sorted)
// rather than the project's entries in listing order until the page is full; right when the
// matches are few (a count or a pass over all of them wants every match either way).
std::string FilterWhere(Bindings& b, const SqlDialect& dialect, const std::string& project,
                        const PackageFilter& filter, bool by_name_index = true) {
  const std::string name_index =
      by_name_index && !filter.name_contains.empty()
          ? NameIndexCondition(b, dialect, filter.name_contains, b.texts())
          : "";
  // SQLite would still walk the project's index and test each entry against the matches;
  // "+" keeps it from using that index, so it looks the matches up by rowid instead.
  const bool by_rowid =
      !name_index.empty() && dialect.name_index == SqlDialect::NameIndex::kFts5Trigram;
  std::string where = (by_rowid ? "WHERE +p.project = " : "WHERE p.project = ") + b.Add(project);
  if (filter.kind) where += " AND p.kind = " + b.Add(ToString(*filter.kind));
  if (!filter.name_contains.empty()) {
    where += name_index;
    const std::string position(dialect.position_of);
    where += " AND (" + position + "(p.name, " + b.Add(filter.name_contains) + ") > 0 OR " +
             position + "(p.group_name, " + b.Add(filter.name_contains) + ") > 0)";
  }
  for (const auto& tag : filter.tags) {
    where +=
        " AND EXISTS (SELECT 1 FROM package_tags ft WHERE ft.project = p.project "
        "AND ft.group_name = p.group_name AND ft.name = p.name AND ft.key = " +
        b.Add(tag.key);
    const std::string any_value = b.Add(std::int64_t{tag.value ? 0 : 1});
    where += " AND (" + any_value + " = 1 OR ft.value = " +
             b.Add(tag.value ? std::string_view(*tag.value) : std::string_view()) + "))";
  }
  return where;
}

Result<std::size_t> CountMatching(Session& s, const SqlDialect& dialect, const std::string& project,
                                  const PackageFilter& filter) {
  Bindings b;
  const std::string statement =
      "SELECT COUNT(*) FROM packages p " + FilterWhere(b, dialect, project, filter);
  std::int64_t count = 0;
  auto ran = s.Execute(statement, b.values(), [&](const Row& row) -> Result<void> {
    count = row.Int(0);
    return {};
  });
  if (!ran) return std::unexpected(ran.error());
  return static_cast<std::size_t>(count);
}

GroupRecord GroupOfRow(const Row& row) {
  GroupRecord g;
  g.project = row.Text(0);
  g.name = row.Text(1);
  g.owner = row.Text(kGroupOwner);
  g.description = row.Text(kGroupDescription);
  g.create_time = row.Int(kGroupCreated);
  g.update_time = row.Int(kGroupUpdated);
  return g;
}

// ---- Writing rows ----

constexpr std::string_view kInsertPackage = R"sql(
INSERT INTO packages (project, group_name, name, position, kind, status, sha256, size,
                      underlying_name, owner, create_time, update_time, is_async, status_reason,
                      job_id)
VALUES (?1, ?2, ?3,
        (SELECT COALESCE(MAX(position) + 1, 0) FROM packages
          WHERE project = ?1 AND group_name = ?2),
        ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14))sql";
// Replacing a package keeps its identity in the group: create_time and position. The new
// job_id (0 for a synchronous write) supersedes the job that owned the package, if any.
constexpr std::string_view kReplaceExistingPackage = R"sql(
ON CONFLICT (project, group_name, name) DO UPDATE SET
  kind = excluded.kind, status = excluded.status, sha256 = excluded.sha256,
  size = excluded.size, underlying_name = excluded.underlying_name, owner = excluded.owner,
  update_time = excluded.update_time, is_async = excluded.is_async,
  status_reason = excluded.status_reason, job_id = excluded.job_id)sql";

enum class OnExisting { kFail, kReplace };

// Writes `p` into (project, group), whatever p.project and p.group say: the caller's
// arguments decide where a package goes. Its tags replace the stored ones.
Result<void> WritePackage(Session& s, OnExisting on_existing, std::string_view project,
                          std::string_view group, const PackageRecord& p, std::int64_t job_id = 0) {
  static const std::string kReplacing =
      std::string(kInsertPackage) + std::string(kReplaceExistingPackage);
  const std::string_view insert =
      on_existing == OnExisting::kReplace ? std::string_view(kReplacing) : kInsertPackage;
  if (auto ok = sql::Run(s, insert, project, group, p.name, ToString(p.kind), ToString(p.status),
                         p.sha256, p.size, p.underlying_name, p.owner, p.create_time, p.update_time,
                         p.is_async, p.status_reason, job_id);
      !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = sql::Run(
          s, "DELETE FROM package_tags WHERE project = ?1 AND group_name = ?2 AND name = ?3",
          project, group, p.name);
      !ok) {
    return std::unexpected(ok.error());
  }
  for (std::size_t i = 0; i < p.tags.size(); ++i) {
    const Tag& tag = p.tags[i];
    if (auto ok = sql::Run(s,
                           "INSERT INTO package_tags (project, group_name, name, position, key, "
                           "value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           project, group, p.name, i, tag.key, tag.value);
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  return {};
}

Result<void> WritePackages(Session& s, const GroupRecord& group,
                           const std::vector<PackageRecord>& packages, OnExisting on_existing) {
  for (const auto& p : packages) {
    if (auto ok = WritePackage(s, on_existing, group.project, group.name, p); !ok) return ok;
  }
  return {};
}

// Creates the group from `group`; an existing one keeps create_time and takes update_time,
// and with kTake also owner and description.
enum class OwnerAndDescription { kKeep, kTake };
Result<void> UpsertGroup(Session& s, const GroupRecord& group, OwnerAndDescription existing) {
  std::string statement =
      "INSERT INTO groups (project, name, owner, description, create_time, update_time) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
      "ON CONFLICT (project, name) DO UPDATE SET update_time = excluded.update_time";
  if (existing == OwnerAndDescription::kTake)
    statement += ", owner = excluded.owner, description = excluded.description";
  auto ok = sql::Run(s, statement, group.project, group.name, group.owner, group.description,
                     group.create_time, group.update_time);
  if (!ok) return std::unexpected(ok.error());
  return {};
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

Result<std::size_t> CountJobs(Session& s) {
  auto queued = sql::SelectOne(s, "SELECT COUNT(*) FROM jobs", IntFromRow);
  if (!queued) return std::unexpected(queued.error());
  return static_cast<std::size_t>(*queued);
}

Result<std::size_t> CountProjectJobs(Session& s, const std::string& project) {
  auto queued =
      sql::SelectOne(s, "SELECT COUNT(*) FROM jobs WHERE project = ?1", IntFromRow, project);
  if (!queued) return std::unexpected(queued.error());
  return static_cast<std::size_t>(*queued);
}

Result<void> DeleteJob(Session& s, std::int64_t job_id) {
  if (auto ok = sql::Run(s, "DELETE FROM jobs WHERE id = ?1", job_id); !ok)
    return std::unexpected(ok.error());
  return {};
}

// The job's package as it stands: the job that owns its pending upload (0 for none) and the
// bytes it refers to ("" for none). nullopt when the package is gone.
struct PackageOwner {
  std::int64_t job_id = 0;
  std::string sha256;
};
Result<std::optional<PackageOwner>> OwningJob(Session& s, const UploadJob& job) {
  auto rows = sql::Select(
      s, "SELECT job_id, sha256 FROM packages WHERE project = ?1 AND group_name = ?2 AND name = ?3",
      [](const Row& row) -> Result<PackageOwner> {
        return PackageOwner{.job_id = row.Int(0), .sha256 = row.Text(1)};
      },
      job.project, job.group, job.name);
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return std::nullopt;
  return std::move(rows->front());
}

// Settles the job's package (READY or FAILED: `set_clause` over ?5, ?6, ... = values) and
// deletes the job.
template <class... Values>
Result<void> FinishJob(Session& s, const UploadJob& job, std::string_view set_clause,
                       std::int64_t now_ms, const Values&... values) {
  const std::string statement = "UPDATE packages SET " + std::string(set_clause) +
                                ", update_time = ?4, job_id = 0 "
                                "WHERE project = ?1 AND group_name = ?2 AND name = ?3";
  if (auto ok = sql::Run(s, statement, job.project, job.group, job.name, now_ms, values...); !ok)
    return std::unexpected(ok.error());
  return DeleteJob(s, job.id);
}

}  // namespace

Result<void> CheckSchemaVersion(std::int64_t stored, std::int64_t latest) {
  if (stored <= latest) return {};
  return Fail(ErrorCode::kInternal, "metadata store failure: schema version " +
                                        std::to_string(stored) + " is newer than this server's " +
                                        std::to_string(latest));
}

Result<void> MetadataSql::LockGroup(Session& s, std::string_view project,
                                    std::string_view group) const {
  if (dialect_.lock_group.empty()) return {};
  if (auto ok = sql::Run(s, dialect_.lock_group, project, group); !ok)
    return std::unexpected(ok.error());
  return {};
}

Result<void> MetadataSql::LockBlobs(Session& s, const std::set<std::string>& shas) const {
  if (dialect_.lock_blob.empty()) return {};
  for (const auto& sha : shas) {
    if (auto ok = sql::Run(s, dialect_.lock_blob, sha); !ok) return std::unexpected(ok.error());
  }
  return {};
}

// The pins of the new blobs go in the commit's own transaction (one write instead of two).
// Under the blob's lock a live pin proves the bytes were kept all along: a reclaim checks
// pins under the same lock. Only a pin that ran out leaves the bytes to be looked at.
Result<void> MetadataSql::ReleasePins(Session& s, const BlobCheck* check, bool locked) const {
  if (check == nullptr || check->pins.empty()) return {};
  if (!locked) {
    std::set<std::string> shas;
    for (const auto& pin : check->pins) shas.insert(pin.sha256);
    if (auto ok = LockBlobs(s, shas); !ok) return ok;
  }
  for (const auto& pin : check->pins) {
    auto live = sql::Run(s,
                         "DELETE FROM blob_pins WHERE sha256 = ?1 AND pin_id = ?2 "
                         "AND pinned_until > ?3",
                         pin.sha256, pin.pin_id, check->now_ms);
    if (!live) return std::unexpected(live.error());
    if (*live > 0) continue;
    if (auto ok = sql::Run(s, "DELETE FROM blob_pins WHERE sha256 = ?1 AND pin_id = ?2", pin.sha256,
                           pin.pin_id);
        !ok) {
      return std::unexpected(ok.error());
    }
    if (!check->exists) continue;
    auto stored = check->exists(pin.sha256);
    if (!stored) return std::unexpected(stored.error());
    if (!*stored)
      return Fail(ErrorCode::kInternal,
                  "The stored bytes were reclaimed by a concurrent delete; retry the upload.",
                  /*retryable=*/true);
  }
  return {};
}

// ---- MetadataStore ----

// The hashes of the stored packages among `names` (all of the group's when `names` is null),
// appended to `out`; nothing when `out` is null. Call under the group's lock.
Result<void> MetadataSql::CollectHashes(Session& s, const std::string& project,
                                        const std::string& group,
                                        const std::vector<PackageRecord>* names,
                                        std::vector<std::string>* out) const {
  if (out == nullptr) return {};
  if (names == nullptr) {
    auto old = GetGroup(s, project, group);
    if (!old) return std::unexpected(old.error());
    if (*old)
      for (const auto& p : (*old)->packages)
        if (!p.sha256.empty()) out->push_back(p.sha256);
    return {};
  }
  for (const auto& p : *names) {
    auto old = ReadPackage(s, project, group, p.name);
    if (!old) return std::unexpected(old.error());
    if (*old && !(*old)->sha256.empty()) out->push_back((*old)->sha256);
  }
  return {};
}

Result<GroupRecord> MetadataSql::ReplaceGroup(Session& s, const GroupRecord& group,
                                              const std::vector<PackageRecord>& packages,
                                              std::vector<std::string>* replaced,
                                              const BlobCheck* check) const {
  if (auto ok = LockGroup(s, group.project, group.name); !ok) return std::unexpected(ok.error());
  if (auto ok = ReleasePins(s, check); !ok) return std::unexpected(ok.error());
  std::vector<std::string> dropped;
  if (auto ok = CollectHashes(s, group.project, group.name, nullptr, &dropped); !ok)
    return std::unexpected(ok.error());
  if (auto ok = UpsertGroup(s, group, OwnerAndDescription::kTake); !ok)
    return std::unexpected(ok.error());
  // Tags go with their packages (ON DELETE CASCADE).
  if (auto ok = sql::Run(s, "DELETE FROM packages WHERE project = ?1 AND group_name = ?2",
                         group.project, group.name);
      !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = WritePackages(s, group, packages, OnExisting::kFail); !ok)
    return std::unexpected(ok.error());
  if (auto ok = QueueUnreferenced(s, dropped); !ok) return std::unexpected(ok.error());
  if (replaced != nullptr) replaced->insert(replaced->end(), dropped.begin(), dropped.end());
  return ReadBackGroup(s, group.project, group.name);
}

Result<GroupRecord> MetadataSql::MergeIntoGroup(Session& s, const GroupRecord& group,
                                                const std::vector<PackageRecord>& packages,
                                                std::vector<std::string>* replaced,
                                                const BlobCheck* check) const {
  if (auto ok = LockGroup(s, group.project, group.name); !ok) return std::unexpected(ok.error());
  if (auto ok = ReleasePins(s, check); !ok) return std::unexpected(ok.error());
  std::vector<std::string> dropped;
  if (auto ok = CollectHashes(s, group.project, group.name, &packages, &dropped); !ok)
    return std::unexpected(ok.error());
  if (auto ok = UpsertGroup(s, group, OwnerAndDescription::kKeep); !ok)
    return std::unexpected(ok.error());
  if (auto ok = WritePackages(s, group, packages, OnExisting::kReplace); !ok)
    return std::unexpected(ok.error());
  if (auto ok = QueueUnreferenced(s, dropped); !ok) return std::unexpected(ok.error());
  if (replaced != nullptr) replaced->insert(replaced->end(), dropped.begin(), dropped.end());
  return ReadBackGroup(s, group.project, group.name);
}

Result<std::vector<PackageRecord>> MetadataSql::PutUngrouped(
    Session& s, const std::vector<PackageRecord>& packages, std::vector<std::string>* replaced,
    const BlobCheck* check) const {
  // In a fixed order, so that two calls locking the same projects cannot deadlock.
  std::set<std::string_view> projects;
  for (const auto& p : packages) projects.insert(p.project);
  for (const auto project : projects) {
    if (auto ok = LockGroup(s, project, kUngrouped); !ok) return std::unexpected(ok.error());
  }
  if (auto ok = ReleasePins(s, check); !ok) return std::unexpected(ok.error());
  std::vector<std::string> dropped;
  for (const auto& p : packages) {
    const std::vector<PackageRecord> one{p};
    if (auto ok = CollectHashes(s, p.project, std::string(kUngrouped), &one, &dropped); !ok)
      return std::unexpected(ok.error());
  }
  for (const auto& p : packages) {
    if (auto ok = WritePackage(s, OnExisting::kReplace, p.project, kUngrouped, p); !ok)
      return std::unexpected(ok.error());
  }
  if (auto ok = QueueUnreferenced(s, dropped); !ok) return std::unexpected(ok.error());
  if (replaced != nullptr) replaced->insert(replaced->end(), dropped.begin(), dropped.end());
  std::vector<PackageRecord> stored;
  for (const auto& p : packages) {
    auto back = ReadBackPackage(s, p.project, kUngrouped, p.name);
    if (!back) return std::unexpected(back.error());
    stored.push_back(std::move(*back));
  }
  return stored;
}

Result<std::optional<PackageRecord>> MetadataSql::GetPackage(Session& s, const std::string& project,
                                                             const std::string& group,
                                                             const std::string& name) const {
  return ReadPackage(s, project, group, name);
}

namespace {

// One part of each key as a PostgreSQL array literal of texts: each element double-quoted, with its
// quotes and backslashes escaped, so any name (commas, braces, quotes, NULL) stays one exact
// element.
std::string TextArray(std::span<const PackageKey> keys, std::string PackageKey::*part) {
  std::string literal = "{";
  for (const auto& key : keys) {
    if (literal.size() > 1) literal += ',';
    literal += '"';
    for (const char c : key.*part) {
      if (c == '"' || c == '\\') literal += '\\';
      literal += c;
    }
    literal += '"';
  }
  literal += '}';
  return literal;
}

}  // namespace

Result<std::vector<std::optional<PackageRecord>>> MetadataSql::GetPackages(
    Session& s, std::span<const PackageKey> keys) const {
  // The key's index (from 1) follows the package's and tag's columns.
  constexpr int kKeyIndex = kTagValue + 1;
  const std::string statement =
      std::string(kPackageWithTagColumns) + ", k.i FROM " + std::string(dialect_.show_keys) +
      " JOIN packages pg ON pg.project = k.project AND pg.group_name = k.group_name "
      "AND pg.name = k.name" +
      std::string(kJoinTags) + "ORDER BY k.i, t.position";
  const std::string projects = TextArray(keys, &PackageKey::project);
  const std::string groups = TextArray(keys, &PackageKey::group);
  const std::string names = TextArray(keys, &PackageKey::name);
  const sql::Value bound[] = {std::string_view(projects), std::string_view(groups),
                              std::string_view(names)};
  PackageCollector collector;
  std::vector<std::int64_t> positions;  // of each package collected, in keys
  auto ran = s.Execute(statement, bound, [&](const Row& row) -> Result<void> {
    if (auto ok = collector.Add(row); !ok) return ok;
    if (collector.new_package()) positions.push_back(row.Int(kKeyIndex));
    return {};
  });
  if (!ran) return std::unexpected(ran.error());
  std::vector<std::optional<PackageRecord>> found(keys.size());
  for (std::size_t j = 0; j < positions.size(); ++j) {
    if (positions[j] < 1 || positions[j] > static_cast<std::int64_t>(keys.size()))
      return Fail(ErrorCode::kInternal, "metadata store failure: a key out of range");
    found[positions[j] - 1] = std::move(collector.packages()[j]);
  }
  return found;
}

Result<std::optional<GroupRecord>> MetadataSql::GetGroup(Session& s, const std::string& project,
                                                         const std::string& name) const {
  return ReadGroup(s, project, name);
}

Result<ProjectContents> MetadataSql::ListProject(Session& s, const std::string& project) const {
  auto groups = sql::Select(s, std::string(kSelectGroups) + "WHERE project = ?1 ORDER BY name",
                            GroupFromRow, project);
  if (!groups) return std::unexpected(groups.error());
  auto grouped = SelectPackages(s, "WHERE p.project = ?1 AND p.group_name <> ''",
                                "pg.group_name, pg.position", project);
  if (!grouped) return std::unexpected(grouped.error());
  auto ungrouped =
      SelectPackages(s, "WHERE p.project = ?1 AND p.group_name = ''", "pg.name", project);
  if (!ungrouped) return std::unexpected(ungrouped.error());
  DistributePackages(std::move(*grouped), *groups);
  return ProjectContents{std::move(*groups), std::move(*ungrouped)};
}

Result<PackagePage> MetadataSql::ListPage(Session& s, const PageRequest& request,
                                          std::optional<std::size_t> known_total) const {
  PackagePage page;
  if (known_total) {
    page.total = *known_total;
  } else {
    auto total = CountMatching(s, dialect_, request.project, request.filter);
    if (!total) return std::unexpected(total.error());
    page.total = *total;
  }
  // Few matches of a name filter are read from the name index and sorted; many are found
  // soon enough in listing order, which then stops when the page is full.
  constexpr std::size_t kFewMatches = 10'000;
  Bindings b;
  std::string where =
      FilterWhere(b, dialect_, request.project, request.filter, page.total <= kFewMatches);
  if (request.after) {
    where += " AND (p.group_name, p.name) > (" + b.Add(request.after->group) + ", " +
             b.Add(request.after->name) + ")";
  }
  // The page's keys come from the primary key (project, group_name, name), or the kind index,
  // in listing order: rows skipped by the offset are index entries passed over, never table
  // rows read. Only the page's rows are then read whole.
  const std::string statement =
      std::string(kPackageWithTagColumns) + std::string(kGroupColumns) +
      " FROM (SELECT p.project, p.group_name, p.name FROM packages p " + where +
      " ORDER BY p.group_name, p.name LIMIT " + b.Add(AsInt(request.limit)) + " OFFSET " +
      b.Add(AsInt(request.offset)) +
      ") k JOIN packages pg ON pg.project = k.project AND pg.group_name = k.group_name "
      "AND pg.name = k.name" +
      std::string(kJoinTags) +
      "LEFT JOIN groups g ON g.project = pg.project AND g.name = pg.group_name "
      "ORDER BY pg.group_name, pg.name, t.position";
  PackageCollector collector;
  auto ran = s.Execute(statement, b.values(), [&](const Row& row) -> Result<void> {
    if (auto ok = collector.Add(row); !ok) return ok;
    const std::string& group = collector.packages().back().group;
    if (collector.new_package() && !group.empty() &&
        (page.groups.empty() || page.groups.back().name != group))
      page.groups.push_back(GroupOfRow(row));
    return {};
  });
  if (!ran) return std::unexpected(ran.error());
  page.packages = std::move(collector.packages());
  return page;
}

namespace {

// Adds the key at 1-based `position` of a listing to `marks` when the spacing wants it. Past
// `max_marks`, every other mark is dropped and the spacing doubles, so memory stays bounded
// whatever the project's size.
void AddMark(ListingMarks& marks, std::size_t position, ListPosition key, std::size_t max_marks) {
  if (position % marks.every != 0) return;
  marks.marks.push_back(std::move(key));
  if (marks.marks.size() <= std::max<std::size_t>(max_marks, 1)) return;
  std::vector<ListPosition> kept;
  for (std::size_t i = 1; i < marks.marks.size(); i += 2) kept.push_back(std::move(marks.marks[i]));
  marks.marks = std::move(kept);
  marks.every *= 2;
}

}  // namespace

Result<ListingMarks> MetadataSql::ListMarks(Session& s, const std::string& project,
                                            const PackageFilter& filter, std::size_t min_every,
                                            std::size_t max_marks) const {
  min_every = std::max<std::size_t>(min_every, 1);
  if (dialect_.marks_by_seeking) return SeekMarks(s, project, filter, min_every, max_marks);
  Bindings b;
  const std::string statement = "SELECT p.group_name, p.name FROM packages p " +
                                FilterWhere(b, dialect_, project, filter) +
                                " ORDER BY p.group_name, p.name";
  ListingMarks marks{.every = min_every};
  // Only the marks' columns are read.
  auto ran = s.Execute(statement, b.values(), [&](const Row& row) -> Result<void> {
    if (++marks.total % marks.every == 0)
      AddMark(marks, marks.total, ListPosition{row.Text(0), row.Text(1)}, max_marks);
    return {};
  });
  if (!ran) return std::unexpected(ran.error());
  return marks;
}

// The server counts the matches (by the name index where it helps), then, unless there are
// fewer than `every`, steps from each mark to the next (an index seek, then `every` entries
// passed over), so only the marks cross the network.
Result<ListingMarks> MetadataSql::SeekMarks(Session& s, const std::string& project,
                                            const PackageFilter& filter, std::size_t every,
                                            std::size_t max_marks) const {
  auto total = CountMatching(s, dialect_, project, filter);
  if (!total) return std::unexpected(total.error());
  ListingMarks marks{.total = *total, .every = every};
  if (*total < every) return marks;  // a rare name= needle: no walk over the project
  Bindings b;
  // In listing order, not by the name index: each step passes over the next entries only.
  const std::string first = FilterWhere(b, dialect_, project, filter, /*by_name_index=*/false);
  const std::string skip_first = b.Add(AsInt(every - 1));
  const std::string next = FilterWhere(b, dialect_, project, filter, /*by_name_index=*/false) +
                           " AND (p.group_name, p.name) > (m.group_name, m.name)";
  const std::string skip_next = b.Add(AsInt(every - 1));
  const std::string statement =
      "WITH RECURSIVE m (group_name, name) AS ((SELECT p.group_name, p.name FROM packages p " +
      first + " ORDER BY p.group_name, p.name OFFSET " + skip_first +
      " LIMIT 1) UNION ALL SELECT x.group_name, x.name FROM m, LATERAL (SELECT p.group_name, "
      "p.name FROM packages p " +
      next + " ORDER BY p.group_name, p.name OFFSET " + skip_next +
      " LIMIT 1) x) SELECT group_name, name FROM m ORDER BY group_name, name";
  std::size_t found = 0;
  auto ran = s.Execute(statement, b.values(), [&](const Row& row) -> Result<void> {
    AddMark(marks, ++found * every, ListPosition{row.Text(0), row.Text(1)}, max_marks);
    return {};
  });
  if (!ran) return std::unexpected(ran.error());
  return marks;
}

Result<std::int64_t> MetadataSql::ListingVersion(Session& s, const std::string& project) const {
  return sql::SelectOne(s,
                        "SELECT COALESCE(SUM(changes), 0) FROM listing_changes WHERE project = ?1",
                        IntFromRow, project);
}

Result<std::vector<PackageRecord>> MetadataSql::ListUngrouped(Session& s,
                                                              const std::string& project,
                                                              const PackageFilter& filter,
                                                              const std::string& after_name,
                                                              std::size_t limit) const {
  Bindings b;
  std::string where = FilterWhere(b, dialect_, project, filter, /*by_name_index=*/false);
  where += " AND p.group_name = '' AND p.name > " + b.Add(after_name);
  const std::string statement = std::string(kPackageWithTagColumns) +
                                " FROM (SELECT * FROM packages p " + where +
                                " ORDER BY p.name LIMIT " + b.Add(AsInt(limit)) + ") pg" +
                                std::string(kJoinTags) + "ORDER BY pg.name, t.position";
  return CollectPackages(s, statement, b.values());
}

namespace {

// Columns after kGroupColumns in a batch of groups: the group's name (its package may be
// absent), whether the row holds a package (0 for an empty group's one row) and, in a batch
// whose rows come in any order, the package's position in its group (-1 for none).
constexpr int kBatchGroupName = 20, kBatchHasPackage = 21, kBatchPosition = 22;

// Adds one row of a batch statement (groups by name, each one's packages by position, each
// package's tags by position) to `groups`.
Result<void> AddBatchRow(const Row& row, const std::string& project,
                         std::vector<GroupRecord>& groups) {
  std::string name = row.Text(kBatchGroupName);
  if (groups.empty() || groups.back().name != name) {
    GroupRecord g;
    g.project = project;
    g.name = std::move(name);
    g.owner = row.Text(kGroupOwner);
    g.description = row.Text(kGroupDescription);
    g.create_time = row.Int(kGroupCreated);
    g.update_time = row.Int(kGroupUpdated);
    groups.push_back(std::move(g));
  }
  if (row.Int(kBatchHasPackage) == 0) return {};
  auto& packages = groups.back().packages;
  if (packages.empty() || packages.back().name != row.Text(2)) {
    auto package = PackageFromRow(row);
    if (!package) return std::unexpected(package.error());
    packages.push_back(std::move(*package));
  }
  if (row.Int(kTagPosition) >= 0)
    packages.back().tags.push_back(Tag{row.Text(kTagKey), row.Text(kTagValue)});
  return {};
}

// The statement of a batch of groups: kPackageWithTagColumns, kGroupColumns, then the group's
// name and whether the row holds a package; by group name, package position, tag position.
// `ordered` false: rows in any order (the caller sorts them; GroupBatchFromRows does), which
// spares PostgreSQL a sort of every row of the batch.
std::string GroupBatchStatement(Bindings& b, const SqlDialect& dialect, const std::string& project,
                                const PackageFilter& filter, const std::string& after_group,
                                std::size_t max_groups, bool ordered = true) {
  // The limit is written out, not bound: PostgreSQL then plans the statement once (a bound
  // limit is assumed to keep a tenth of the groups, so it would plan each call afresh).
  const std::string project_at = b.Add(project), after = b.Add(after_group);
  const std::string groups = "SELECT * FROM groups WHERE project = " + project_at + " AND name > " +
                             after + " ORDER BY name LIMIT " + std::to_string(max_groups);
  const std::string columns = std::string(kPackageWithTagColumns) + std::string(kGroupColumns) +
                              ", g.name, CASE WHEN pg.name IS NULL THEN 0 ELSE 1 END" +
                              std::string(ordered ? "" : ", COALESCE(pg.position, -1)");
  const std::string order = ordered ? "ORDER BY g.name, pg.position, t.position" : "";
  if (dialect.batch_by_ranges) {
    // The batch's packages and tags are those with group names in (after, the last group].
    const auto range = [&](std::string_view alias) {
      const std::string column = std::string(alias) + ".group_name";
      return column + " > " + after + " AND " + column + " <= (SELECT last FROM r)";
    };
    return "WITH g AS MATERIALIZED (" + groups + "), r AS (SELECT max(name) AS last FROM g) " +
           columns + " FROM g LEFT JOIN (SELECT p.* FROM packages p " +
           FilterWhere(b, dialect, project, filter, /*by_name_index=*/false) + " AND " +
           range("p") + ") pg ON pg.group_name = g.name" +
           " LEFT JOIN (SELECT * FROM package_tags t WHERE t.project = " + project_at + " AND " +
           range("t") +
           ") t ON t.project = pg.project AND t.group_name = pg.group_name AND t.name = pg.name " +
           order;
  }
  std::string packages =
      " LEFT JOIN packages pg ON pg.project = g.project AND pg.group_name = g.name";
  if (!filter.empty()) {  // checked per package, by its primary key
    packages += " AND EXISTS (SELECT 1 FROM packages p " +
                FilterWhere(b, dialect, project, filter, /*by_name_index=*/false) +
                " AND p.group_name = pg.group_name AND p.name = pg.name)";
  }
  return columns + " FROM (" + groups + ") g" + packages + std::string(kJoinTags) + order;
}

}  // namespace

// One statement per batch: the batch's groups (by the primary key, so the LIMIT bounds the
// rows looked at), with their packages and the packages' tags. (A second statement over the
// range of the batch's group names, joined to the tags by probes, cost PostgreSQL ~27 ms for
// one batch in ten, whose range estimate chose a plan that read the whole project.)
Result<GroupBatch> MetadataSql::ListGroups(Session& s, const std::string& project,
                                           const PackageFilter& filter,
                                           const std::string& after_group,
                                           std::size_t max_groups) const {
  Bindings b;
  const std::string statement =
      GroupBatchStatement(b, dialect_, project, filter, after_group, max_groups);
  GroupBatch batch;
  auto ran = s.Execute(statement, b.values(),
                       [&](const Row& row) { return AddBatchRow(row, project, batch.groups); });
  if (!ran) return std::unexpected(ran.error());
  EndBatch(batch, filter, max_groups);
  return batch;
}

Result<void> MetadataSql::SendGroupBatch(sql::Pipeline& pipeline, const std::string& project,
                                         const PackageFilter& filter,
                                         const std::string& after_group,
                                         std::size_t max_groups) const {
  Bindings b;
  const std::string statement =
      GroupBatchStatement(b, dialect_, project, filter, after_group, max_groups, /*ordered=*/false);
  return pipeline.Send(statement, b.values());
}

Result<GroupBatch> MetadataSql::GroupBatchFromRows(const sql::Rows& rows,
                                                   const std::string& project,
                                                   const PackageFilter& filter,
                                                   std::size_t max_groups) {
  // The rows in the statement's order (by group name, package position, tag position).
  struct Place {
    std::string group;
    std::int64_t position = 0, tag = 0;
    std::size_t row = 0;
  };
  std::vector<Place> places(rows.Count());
  for (std::size_t i = 0; i < places.size(); ++i) {
    auto ok = rows.Visit(i, [&](const Row& row) -> Result<void> {
      places[i] = {row.Text(kBatchGroupName), row.Int(kBatchPosition), row.Int(kTagPosition), i};
      return {};
    });
    if (!ok) return std::unexpected(ok.error());
  }
  std::ranges::sort(places, [](const Place& a, const Place& b) {
    return std::tie(a.group, a.position, a.tag) < std::tie(b.group, b.position, b.tag);
  });
  GroupBatch batch;
  const sql::RowHandler add = [&](const Row& row) {
    return AddBatchRow(row, project, batch.groups);
  };
  for (const Place& place : places) {
    if (auto ok = rows.Visit(place.row, add); !ok) return std::unexpected(ok.error());
  }
  EndBatch(batch, filter, max_groups);
  return batch;
}

Result<std::string> MetadataSql::LastBatchGroup(const sql::Rows& rows) {
  std::string last;
  const sql::RowHandler see = [&](const Row& row) -> Result<void> {
    if (std::string name = row.Text(kBatchGroupName); name > last) last = std::move(name);
    return {};
  };
  for (std::size_t i = 0, n = rows.Count(); i < n; ++i) {
    if (auto ok = rows.Visit(i, see); !ok) return std::unexpected(ok.error());
  }
  return last;
}

// Every group looked at has a row. A short batch was the last one: no further query is
// needed to find that out.
void MetadataSql::EndBatch(GroupBatch& batch, const PackageFilter& filter, std::size_t max_groups) {
  if (batch.groups.size() >= max_groups) batch.next_after = batch.groups.back().name;
  if (!filter.empty())
    std::erase_if(batch.groups, [](const GroupRecord& g) { return g.packages.empty(); });
}

Result<PackageRecord> MetadataSql::DeletePackage(Session& s, const std::string& project,
                                                 const std::string& group,
                                                 const std::string& name) const {
  if (auto ok = LockGroup(s, project, group); !ok) return std::unexpected(ok.error());
  auto found = ReadPackage(s, project, group, name);
  if (!found) return std::unexpected(found.error());
  if (!*found) return PackageNotFound(group, name);
  if (auto ok =
          sql::Run(s, "DELETE FROM packages WHERE project = ?1 AND group_name = ?2 AND name = ?3",
                   project, group, name);
      !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = QueueUnreferenced(s, {(*found)->sha256}); !ok) return std::unexpected(ok.error());
  return std::move(**found);
}

Result<void> MetadataSql::SetGroupOwner(Session& s, const std::string& project,
                                        const std::string& group, const std::string& owner,
                                        std::int64_t now_ms) const {
  if (auto ok = LockGroup(s, project, group); !ok) return ok;
  auto changed =
      sql::Run(s, "UPDATE groups SET owner = ?3, update_time = ?4 WHERE project = ?1 AND name = ?2",
               project, group, owner, now_ms);
  if (!changed) return std::unexpected(changed.error());
  if (*changed == 0) return GroupNotFound(group);
  if (auto ok = sql::Run(s,
                         "UPDATE packages SET owner = ?3, update_time = ?4 "
                         "WHERE project = ?1 AND group_name = ?2",
                         project, group, owner, now_ms);
      !ok) {
    return std::unexpected(ok.error());
  }
  return {};
}

Result<void> MetadataSql::SetPackageOwner(Session& s, const std::string& project,
                                          const std::string& group, const std::string& name,
                                          const std::string& owner, std::int64_t now_ms) const {
  if (auto ok = LockGroup(s, project, group); !ok) return ok;
  auto changed = sql::Run(s,
                          "UPDATE packages SET owner = ?4, update_time = ?5 "
                          "WHERE project = ?1 AND group_name = ?2 AND name = ?3",
                          project, group, name, owner, now_ms);
  if (!changed) return std::unexpected(changed.error());
  if (*changed == 0) return PackageNotFound(group, name);
  return {};
}

Result<void> MetadataSql::MarkCorrupt(Session& s, const std::string& project,
                                      const std::string& group, const std::string& name,
                                      const std::string& sha256, const std::string& reason,
                                      std::int64_t now_ms) const {
  if (auto ok = LockGroup(s, project, group); !ok) return ok;
  auto found = GetPackage(s, project, group, name);
  if (!found) return std::unexpected(found.error());
  if (!*found) return PackageNotFound(group, name);
  // A replacement committed since the download began has other bytes: nothing to mark.
  auto changed = sql::Run(s,
                          "UPDATE packages SET status = ?5, status_reason = ?6, update_time = ?7 "
                          "WHERE project = ?1 AND group_name = ?2 AND name = ?3 AND sha256 = ?4",
                          project, group, name, sha256,
                          std::string(ToString(PackageStatus::kFailed)), reason, now_ms);
  if (!changed) return std::unexpected(changed.error());
  return {};
}

Result<std::string> MetadataSql::UrlKey(Session& s, const std::string& candidate,
                                        std::int64_t now_ms) const {
  // The one row (id 1): the first instance's candidate wins, the others read it.
  auto ok = sql::Run(s,
                     "INSERT INTO url_keys (id, secret, created_at) VALUES (1, ?1, ?2) "
                     "ON CONFLICT (id) DO NOTHING",
                     candidate, now_ms);
  if (!ok) return std::unexpected(ok.error());
  return sql::SelectOne(s, "SELECT secret FROM url_keys WHERE id = 1", TextFromRow);
}

Result<void> MetadataSql::RotateUrlKey(Session& s, const std::string& new_key,
                                       std::int64_t now_ms) const {
  auto ok = sql::Run(s,
                     "INSERT INTO url_keys (id, secret, created_at) VALUES (1, ?1, ?2) "
                     "ON CONFLICT (id) DO UPDATE SET secret = excluded.secret, "
                     "created_at = excluded.created_at",
                     new_key, now_ms);
  if (!ok) return std::unexpected(ok.error());
  return {};
}

Result<void> MetadataSql::PinBlob(Session& s, const std::string& sha256, const std::string& pin_id,
                                  std::int64_t until_ms) const {
  if (!dialect_.lock_blob.empty()) {
    if (auto ok = sql::Run(s, dialect_.lock_blob, sha256); !ok) return std::unexpected(ok.error());
  }
  auto ok =
      sql::Run(s,
               "INSERT INTO blob_pins (sha256, pin_id, pinned_until) VALUES (?1, ?2, ?3) "
               "ON CONFLICT (sha256, pin_id) DO UPDATE SET pinned_until = excluded.pinned_until",
               sha256, pin_id, until_ms);
  if (!ok) return std::unexpected(ok.error());
  return {};
}

Result<void> MetadataSql::UnpinBlob(Session& s, const std::string& sha256,
                                    const std::string& pin_id) const {
  auto ok = sql::Run(s, "DELETE FROM blob_pins WHERE sha256 = ?1 AND pin_id = ?2", sha256, pin_id);
  if (!ok) return std::unexpected(ok.error());
  return {};
}

Result<bool> MetadataSql::ReclaimBlob(Session& s, const std::string& sha256, std::int64_t now_ms,
                                      const std::function<Result<void>()>& remove) const {
  if (sha256.empty()) return false;
  if (!dialect_.lock_blob.empty()) {
    if (auto ok = sql::Run(s, dialect_.lock_blob, sha256); !ok) return std::unexpected(ok.error());
  }
  // Pins of uploads that died without unpinning run out.
  if (auto ok = sql::Run(s, "DELETE FROM blob_pins WHERE sha256 = ?1 AND pinned_until <= ?2",
                         sha256, now_ms);
      !ok) {
    return std::unexpected(ok.error());
  }
  auto held = sql::SelectOne(
      s, "SELECT CASE WHEN EXISTS (SELECT 1 FROM blob_pins WHERE sha256 = ?1) THEN 1 ELSE 0 END",
      IntFromRow, sha256);
  if (!held) return std::unexpected(held.error());
  if (*held != 0) return false;
  auto referenced = IsBlobReferenced(s, sha256);
  if (!referenced) return std::unexpected(referenced.error());
  // Referenced again: whoever drops that reference queues the blob anew.
  if (!*referenced) {
    if (auto removed = remove(); !removed) return std::unexpected(removed.error());
  }
  for (const std::string_view forget : {"DELETE FROM reclaim_queue WHERE sha256 = ?1",
                                        "DELETE FROM blob_sightings WHERE sha256 = ?1"}) {
    if (auto ok = sql::Run(s, forget, sha256); !ok) return std::unexpected(ok.error());
  }
  return !*referenced;
}

Result<void> MetadataSql::QueueUnreferenced(Session& s,
                                            const std::vector<std::string>& shas) const {
  for (const auto& sha : std::set<std::string>(shas.begin(), shas.end())) {
    if (sha.empty()) continue;  // no bytes (a package's first upload)
    auto referenced = IsBlobReferenced(s, sha);
    if (!referenced) return std::unexpected(referenced.error());
    if (*referenced) continue;
    if (auto ok = QueueReclaims(s, {sha}); !ok) return ok;
  }
  return {};
}

Result<void> MetadataSql::QueueReclaims(Session& s, const std::vector<std::string>& shas) const {
  for (const auto& sha : shas) {
    if (sha.empty()) continue;
    auto ok = sql::Run(s,
                       "INSERT INTO reclaim_queue (sha256, attempts, next_attempt_at) "
                       "VALUES (?1, 0, 0) ON CONFLICT (sha256) DO NOTHING",
                       sha);
    if (!ok) return std::unexpected(ok.error());
  }
  return {};
}

Result<std::vector<QueuedReclaim>> MetadataSql::DueReclaims(Session& s, std::int64_t now_ms,
                                                            std::size_t limit) const {
  return sql::Select(
      s,
      "SELECT sha256, attempts FROM reclaim_queue WHERE next_attempt_at <= ?1 "
      "ORDER BY attempts, sha256 LIMIT ?2",
      [](const sql::Row& row) -> Result<QueuedReclaim> {
        return QueuedReclaim{.sha256 = row.Text(0), .attempts = row.Int(1)};
      },
      now_ms, static_cast<std::int64_t>(limit));
}

Result<void> MetadataSql::DeferReclaim(Session& s, const std::string& sha256,
                                       std::int64_t next_attempt_ms) const {
  auto ok = sql::Run(s,
                     "UPDATE reclaim_queue SET attempts = attempts + 1, next_attempt_at = ?2 "
                     "WHERE sha256 = ?1",
                     sha256, next_attempt_ms);
  if (!ok) return std::unexpected(ok.error());
  return {};
}

Result<bool> MetadataSql::TakeCollectorLease(Session& s, const std::string& owner,
                                             std::int64_t now_ms, std::int64_t until_ms) const {
  // One row: inserted by the first collector, then taken over only once it has run out.
  auto changed = sql::Run(s,
                          "INSERT INTO collector_lease (id, owner, lease_until) VALUES (1, ?1, ?3) "
                          "ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, "
                          "lease_until = excluded.lease_until "
                          "WHERE collector_lease.owner = excluded.owner "
                          "OR collector_lease.lease_until <= ?2",
                          owner, now_ms, until_ms);
  if (!changed) return std::unexpected(changed.error());
  return *changed > 0;
}

Result<void> MetadataSql::ReleaseCollectorLease(Session& s, const std::string& owner) const {
  auto ok =
      sql::Run(s, "UPDATE collector_lease SET lease_until = 0 WHERE id = 1 AND owner = ?1", owner);
  if (!ok) return std::unexpected(ok.error());
  return {};
}

Result<std::vector<std::string>> MetadataSql::AbandonedBlobs(Session& s,
                                                             const std::vector<std::string>& stored,
                                                             std::int64_t now_ms,
                                                             std::int64_t grace_ms) const {
  // Sightings of blobs referenced since are forgotten, whether or not they are in `stored`
  // (the caller may leave referenced blobs out): a later unreference starts a new grace period.
  if (auto ok = sql::Run(s,
                         "DELETE FROM blob_sightings WHERE EXISTS (SELECT 1 FROM packages "
                         "WHERE packages.sha256 = blob_sightings.sha256)");
      !ok) {
    return std::unexpected(ok.error());
  }
  std::vector<std::string> abandoned;
  for (const auto& sha : stored) {
    if (sha.empty()) continue;
    auto wanted = sql::SelectOne(
        s,
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM packages WHERE sha256 = ?1) OR EXISTS (SELECT 1 "
        "FROM blob_pins WHERE sha256 = ?1 AND pinned_until > ?2) THEN 1 ELSE 0 END",
        IntFromRow, sha, now_ms);
    if (!wanted) return std::unexpected(wanted.error());
    if (*wanted != 0) {
      if (auto ok = sql::Run(s, "DELETE FROM blob_sightings WHERE sha256 = ?1", sha); !ok)
        return std::unexpected(ok.error());
      continue;
    }
    if (auto ok =
            sql::Run(s,
                     "INSERT INTO blob_sightings (sha256, unreferenced_since) VALUES (?1, ?2) "
                     "ON CONFLICT (sha256) DO NOTHING",
                     sha, now_ms);
        !ok) {
      return std::unexpected(ok.error());
    }
    auto since = sql::SelectOne(
        s, "SELECT unreferenced_since FROM blob_sightings WHERE sha256 = ?1", IntFromRow, sha);
    if (!since) return std::unexpected(since.error());
    if (*since <= now_ms - grace_ms) abandoned.push_back(sha);
  }
  return abandoned;
}

Result<std::size_t> MetadataSql::DropExpiredPins(Session& s, std::int64_t now_ms) const {
  auto dropped = sql::Run(s, "DELETE FROM blob_pins WHERE pinned_until <= ?1", now_ms);
  if (!dropped) return std::unexpected(dropped.error());
  return static_cast<std::size_t>(*dropped);
}

Result<bool> MetadataSql::IsBlobReferenced(Session& s, const std::string& sha256) const {
  if (sha256.empty()) return false;  // "" means "no bytes yet", not a blob
  auto exists = sql::SelectOne(
      s, "SELECT CASE WHEN EXISTS (SELECT 1 FROM packages WHERE sha256 = ?1) THEN 1 ELSE 0 END",
      IntFromRow, sha256);
  if (!exists) return std::unexpected(exists.error());
  return *exists != 0;
}

Result<std::vector<std::string>> MetadataSql::ReferencedBlobs(Session& s) const {
  return sql::Select(s, "SELECT DISTINCT sha256 FROM packages WHERE sha256 <> '' ORDER BY sha256",
                     TextFromRow);
}

// ---- JobQueue ----

// Whether `worker` still holds the job's lease and the job still owns its package. A job that
// lost its package is deleted here, since nobody will want its result. When responsible and
// `stored` is given, it is set to the package's bytes as stored now (read in the same query).
Result<bool> MetadataSql::StillResponsible(Session& s, const UploadJob& job,
                                           const std::string& worker, std::string* stored) const {
  auto held = sql::Select(
      s, "SELECT id FROM jobs WHERE id = ?1 AND lease_owner = ?2" + std::string(dialect_.lock_rows),
      IntFromRow, job.id, worker);
  if (!held) return std::unexpected(held.error());
  if (held->empty()) return false;
  auto owner = OwningJob(s, job);
  if (!owner) return std::unexpected(owner.error());
  if (*owner && (*owner)->job_id == job.id) {
    if (stored != nullptr) *stored = std::move((*owner)->sha256);
    return true;
  }
  if (auto ok = DeleteJob(s, job.id); !ok) return std::unexpected(ok.error());
  return false;
}

namespace {

// Whether a text of the package (or its URL) holds a NUL byte, which no validated name, tag or
// URL does, and which a JSON text would carry differently on each engine.
bool HasNul(const PackageRecord& p, std::string_view url) {
  const auto nul = [](std::string_view text) { return text.find('\0') != text.npos; };
  return nul(p.name) || nul(url) || nul(p.underlying_name) || nul(p.owner) ||
         nul(p.status_reason) ||
         std::ranges::any_of(p.tags, [&](const Tag& t) { return nul(t.key) || nul(t.value); });
}

// The fields of a request's packages that its bulk statements read (SqlDialect::json_rows), one
// JSON array per package in request order, the fields by position (reading a field by position
// costs SQLite a third less than by key): 0 name, 1 url, 2 kind, 3 underlying_name, 4 owner,
// 5 create_time, 6 update_time, 7 status_reason, 8 job_id (0 until the jobs are written).
// Fails on a name given twice (one statement cannot write a row twice) or a NUL byte (HasNul).
Result<std::string> EnqueueRows(const std::vector<PackageRecord>& packages,
                                const std::vector<std::string>& urls,
                                std::span<const std::int64_t> job_ids = {}) {
  std::set<std::string_view> names;
  json::array rows;
  rows.reserve(packages.size());
  for (std::size_t i = 0; i < packages.size(); ++i) {
    const PackageRecord& p = packages[i];
    if (!names.insert(p.name).second)
      return Fail(ErrorCode::kInternal, "metadata store failure: a name given twice");
    if (HasNul(p, urls[i]))
      return Fail(ErrorCode::kInternal, "metadata store failure: a NUL byte in a field");
    rows.emplace_back(json::array{p.name, urls[i], ToString(p.kind), p.underlying_name, p.owner,
                                  p.create_time, p.update_time, p.status_reason,
                                  i < job_ids.size() ? job_ids[i] : 0});
  }
  return json::serialize(rows);
}

// The tags of a request's packages, one JSON array per tag: 0 its package's name, 1 its
// position among the package's tags, 2 key, 3 value.
std::string TagRows(const std::vector<PackageRecord>& packages) {
  json::array rows;
  for (const auto& p : packages) {
    for (std::size_t i = 0; i < p.tags.size(); ++i)
      rows.emplace_back(json::array{p.name, i, p.tags[i].key, p.tags[i].value});
  }
  return json::serialize(rows);
}

}  // namespace

std::string MetadataSql::JsonRows(std::string_view placeholder) const {
  std::string rows(dialect_.json_rows);
  const auto at = rows.find("?J");
  if (at != std::string::npos) rows.replace(at, 2, placeholder);
  return rows;
}

// One statement for every job, in request order (so ids grow in it, and claims follow it).
Result<std::vector<std::int64_t>> MetadataSql::InsertJobs(
    Session& s, const std::string& project, const std::string& group,
    const std::vector<PackageRecord>& packages, const std::string& rows,
    std::int64_t deadline_ms) const {
  const std::string statement =
      "INSERT INTO jobs (project, group_name, name, url, next_attempt_at, deadline_at) "
      "SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), r.v ->> 0, r.v ->> 1, 0, "
      "CAST(?3 AS BIGINT) FROM " +
      JsonRows("?4") + " r ORDER BY r.i RETURNING id, name";
  std::map<std::string, std::int64_t, std::less<>> ids;
  const sql::Value bound[] = {std::string_view(project), std::string_view(group), deadline_ms,
                              std::string_view(rows)};
  auto ran = s.Execute(statement, bound, [&](const Row& row) -> Result<void> {
    ids[row.Text(1)] = row.Int(0);
    return {};
  });
  if (!ran) return std::unexpected(ran.error());
  std::vector<std::int64_t> job_ids;
  for (const auto& p : packages) {
    const auto found = ids.find(p.name);
    if (found == ids.end()) return Fail(ErrorCode::kInternal, "metadata store failure: no job");
    job_ids.push_back(found->second);
  }
  return job_ids;
}

// All the request's packages, UPLOADING, in one upsert. A replaced package keeps its identity
// in the group (position, create_time) and the bytes it refers to (sha256, size,
// underlying_name), which stay downloadable until the new ones commit. New packages take the
// positions after the group's last, in request order: the statement's reads see the table as
// it was before it, so the base and each name's existence are counted once, not row by row.
Result<void> MetadataSql::UpsertUploading(Session& s, const std::string& project,
                                          const std::string& group, const std::string& rows) const {
  const std::string statement = R"sql(
INSERT INTO packages (project, group_name, name, position, kind, status, sha256, size,
                      underlying_name, owner, create_time, update_time, is_async, status_reason,
                      job_id)
SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), r.v ->> 0,
       (SELECT COALESCE(MAX(position) + 1, 0) FROM packages
         WHERE project = ?1 AND group_name = ?2) - 1 +
       SUM(CASE WHEN EXISTS (SELECT 1 FROM packages o WHERE o.project = ?1
                               AND o.group_name = ?2 AND o.name = r.v ->> 0)
                THEN 0 ELSE 1 END) OVER (ORDER BY r.i),
       r.v ->> 2, CAST(?3 AS TEXT), '', 0, r.v ->> 3, r.v ->> 4,
       CAST(r.v ->> 5 AS BIGINT), CAST(r.v ->> 6 AS BIGINT), 1,
       r.v ->> 7, CAST(r.v ->> 8 AS BIGINT)
FROM )sql" + JsonRows("?4") + R"sql( r WHERE true ORDER BY r.i
ON CONFLICT (project, group_name, name) DO UPDATE SET
  kind = excluded.kind, status = excluded.status, owner = excluded.owner,
  update_time = excluded.update_time, is_async = excluded.is_async,
  status_reason = excluded.status_reason, job_id = excluded.job_id)sql";
  // (WHERE true: without it SQLite would read ON CONFLICT as a join's ON.)
  if (auto ok = sql::Run(s, statement, project, group, ToString(PackageStatus::kUploading), rows);
      !ok) {
    return std::unexpected(ok.error());
  }
  return {};
}

// The packages' tags replace the stored ones: one DELETE, one INSERT.
Result<void> MetadataSql::ReplaceTags(Session& s, const std::string& project,
                                      const std::string& group,
                                      const std::vector<PackageRecord>& packages,
                                      const std::string& rows) const {
  if (auto ok = sql::Run(s,
                         "DELETE FROM package_tags WHERE project = ?1 AND group_name = ?2 AND "
                         "name IN (SELECT r.v ->> 0 FROM " +
                             JsonRows("?3") + " r)",
                         project, group, rows);
      !ok) {
    return std::unexpected(ok.error());
  }
  const std::string tags = TagRows(packages);
  if (tags == "[]") return {};
  if (auto ok = sql::Run(s,
                         "INSERT INTO package_tags (project, group_name, name, position, key, "
                         "value) SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), r.v ->> 0, "
                         "CAST(r.v ->> 1 AS BIGINT), r.v ->> 2, r.v ->> 3 "
                         "FROM " +
                             JsonRows("?3") + " r ORDER BY r.i",
                         project, group, tags);
      !ok) {
    return std::unexpected(ok.error());
  }
  return {};
}

Result<EnqueuedUploads> MetadataSql::ReadBackQueued(Session& s, const std::string& project,
                                                    const std::optional<GroupRecord>& group,
                                                    const std::vector<PackageRecord>& packages,
                                                    const std::string& rows) const {
  EnqueuedUploads result;
  std::vector<PackageRecord> stored;
  if (group) {
    auto whole = ReadBackGroup(s, project, group->name);
    if (!whole) return std::unexpected(whole.error());
    result.group = std::move(*whole);
    stored = result.group->packages;
  } else {
    auto found = SelectPackages(s,
                                "WHERE p.project = ?1 AND p.group_name = '' AND p.name IN "
                                "(SELECT r.v ->> 0 FROM " +
                                    JsonRows("?2") + " r)",
                                "pg.name", project, rows);
    if (!found) return std::unexpected(found.error());
    stored = std::move(*found);
  }
  std::map<std::string_view, const PackageRecord*> by_name;
  for (const auto& p : stored) by_name.emplace(p.name, &p);
  for (const auto& p : packages) {
    const auto found = by_name.find(p.name);
    if (found == by_name.end())
      return Fail(ErrorCode::kInternal, "metadata store failure: package not written");
    result.packages.push_back(*found->second);
  }
  return result;
}

// A fixed number of statements whatever the number of packages: on SQLite each statement that
// fires the name index's triggers flushes the index's pending terms, so one per package cost
// more than the writes themselves.
Result<EnqueuedUploads> MetadataSql::EnqueueUploads(
    Session& s, const std::optional<GroupRecord>& group, const std::vector<PackageRecord>& packages,
    const std::vector<std::string>& urls, std::int64_t deadline_ms, std::size_t max_queued) const {
  if (packages.empty() || urls.size() != packages.size())
    return Fail(ErrorCode::kInternal, "metadata store failure: one URL per package expected");
  const std::string project = group ? group->project : packages.front().project;
  const std::string group_name = group ? group->name : std::string(kUngrouped);
  auto job_rows = EnqueueRows(packages, urls);
  if (!job_rows) return std::unexpected(job_rows.error());
  // The queue first, then the group: every writer that takes both takes them in this order.
  if (!dialect_.lock_queue.empty()) {
    if (auto ok = sql::Run(s, dialect_.lock_queue); !ok) return std::unexpected(ok.error());
  }
  if (auto ok = LockGroup(s, project, group_name); !ok) return std::unexpected(ok.error());
  // Per project, as DLI's quotas are: one project's backlog must not block the others.
  auto queued = CountProjectJobs(s, project);
  if (!queued) return std::unexpected(queued.error());
  if (*queued + packages.size() > max_queued)
    return Fail(ErrorCode::kQuotaExceeded, "The upload queue of this project is full (" +
                                               std::to_string(*queued) + " jobs queued, at most " +
                                               std::to_string(max_queued) + "); try again later.");
  if (group) {
    if (auto ok = UpsertGroup(s, *group, OwnerAndDescription::kKeep); !ok)
      return std::unexpected(ok.error());
  }
  auto job_ids = InsertJobs(s, project, group_name, packages, *job_rows, deadline_ms);
  if (!job_ids) return std::unexpected(job_ids.error());
  auto rows = EnqueueRows(packages, urls, *job_ids);
  if (!rows) return std::unexpected(rows.error());
  if (auto ok = UpsertUploading(s, project, group_name, *rows); !ok)
    return std::unexpected(ok.error());
  if (auto ok = ReplaceTags(s, project, group_name, packages, *rows); !ok)
    return std::unexpected(ok.error());
  auto result = ReadBackQueued(s, project, group, packages, *rows);
  if (!result) return std::unexpected(result.error());
  result->job_ids = std::move(*job_ids);
  return result;
}

Result<std::vector<UploadJob>> MetadataSql::ClaimJobs(Session& s, const std::string& worker,
                                                      std::int64_t now_ms,
                                                      std::int64_t lease_until_ms,
                                                      std::size_t max_jobs) const {
  const std::string due_sql = std::string(kSelectJobs) +
                              "WHERE next_attempt_at <= ?1 AND lease_until <= ?1 "
                              "ORDER BY next_attempt_at, id LIMIT ?2" +
                              std::string(dialect_.skip_locked);
  std::vector<UploadJob> claimed;
  // A claimed job's lease ends after now, so it is not due again: another round only fills
  // the places of superseded jobs dropped in this one.
  for (bool dropped = true; dropped && claimed.size() < max_jobs;) {
    dropped = false;
    auto due = sql::Select(s, due_sql, JobFromRow, now_ms, AsInt(max_jobs - claimed.size()));
    if (!due) return std::unexpected(due.error());
    for (auto& job : *due) {
      if (std::ranges::any_of(claimed, [&](const UploadJob& c) { return c.id == job.id; }))
        continue;  // a lease that ends by now leaves a claimed job due: never twice
      auto owner = OwningJob(s, job);
      if (!owner) return std::unexpected(owner.error());
      if (!*owner || (*owner)->job_id != job.id) {  // superseded or deleted: nobody wants it
        if (auto ok = DeleteJob(s, job.id); !ok) return std::unexpected(ok.error());
        dropped = true;
        continue;
      }
      if (auto ok = sql::Run(s,
                             "UPDATE jobs SET lease_owner = ?2, lease_until = ?3, "
                             "attempts = attempts + 1, bytes_fetched = 0, expected_bytes = -1 "
                             "WHERE id = ?1",
                             job.id, worker, lease_until_ms);
          !ok) {
        return std::unexpected(ok.error());
      }
      job.attempts += 1;
      claimed.push_back(std::move(job));
    }
  }
  return claimed;
}

Result<void> MetadataSql::ReportProgress(Session& s, const UploadJob& job,
                                         const std::string& worker, std::int64_t bytes,
                                         std::int64_t expected) const {
  auto ok = sql::Run(s,
                     "UPDATE jobs SET bytes_fetched = ?3, expected_bytes = ?4 "
                     "WHERE id = ?1 AND lease_owner = ?2",
                     job.id, worker, bytes, expected);
  if (!ok) return std::unexpected(ok.error());
  return {};
}

Result<void> MetadataSql::AttachProgress(Session& s, const std::string& project,
                                         std::vector<PackageRecord*> packages) const {
  std::erase_if(packages,
                [](const PackageRecord* p) { return p->status != PackageStatus::kUploading; });
  if (packages.empty()) return {};
  // A package's job is its newest one: a later upload supersedes (and outlives) older jobs.
  struct JobState {
    std::string group, name, last_error;
    std::int64_t bytes = 0, expected = -1;
    int attempts = 0;
  };
  const auto from_row = [](const sql::Row& row) -> Result<JobState> {
    return JobState{row.Text(0), row.Text(1), row.Text(2),
                    row.Int(3),  row.Int(4),  static_cast<int>(row.Int(5))};
  };
  const bool one = packages.size() == 1;
  auto jobs = one ? sql::Select(s,
                                "SELECT group_name, name, last_error, bytes_fetched, "
                                "expected_bytes, attempts FROM jobs WHERE project = ?1 AND "
                                "group_name = ?2 AND name = ?3 ORDER BY id",
                                from_row, project, packages.front()->group, packages.front()->name)
                  : sql::Select(s,
                                "SELECT group_name, name, last_error, bytes_fetched, "
                                "expected_bytes, attempts FROM jobs WHERE project = ?1 ORDER BY id",
                                from_row, project);
  if (!jobs) return std::unexpected(jobs.error());
  std::map<std::pair<std::string, std::string>, const JobState*> newest;
  for (const auto& job : *jobs) newest[{job.group, job.name}] = &job;
  for (PackageRecord* p : packages) {
    const auto it = newest.find({p->group, p->name});
    if (it == newest.end()) continue;
    const JobState& job = *it->second;
    p->progress = PackageRecord::Progress{job.bytes, job.expected, job.attempts};
    if (!job.last_error.empty()) p->status_reason = job.last_error;
  }
  return {};
}

Result<bool> MetadataSql::RenewLease(Session& s, std::int64_t job_id, const std::string& worker,
                                     std::int64_t lease_until_ms) const {
  auto changed = sql::Run(s, "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2",
                          job_id, worker, lease_until_ms);
  if (!changed) return std::unexpected(changed.error());
  return *changed > 0;
}

Result<std::vector<CompletionResult>> MetadataSql::CompleteJobs(
    Session& s, const std::vector<JobCompletion>& done, const std::string& worker,
    std::int64_t now_ms) const {
  // Every lock in a fixed order (groups, then blobs, each sorted; job rows by id), so batches
  // of several instances never deadlock with each other or with single commits.
  std::set<std::pair<std::string, std::string>> groups;
  std::set<std::string> shas;
  std::vector<std::size_t> order(done.size());
  for (std::size_t i = 0; i < done.size(); ++i) {
    groups.insert({done[i].job.project, done[i].job.group});
    for (const auto& pin : done[i].check.pins) shas.insert(pin.sha256);
    order[i] = i;
  }
  for (const auto& [project, group] : groups) {
    if (auto ok = LockGroup(s, project, group); !ok) return std::unexpected(ok.error());
  }
  if (auto ok = LockBlobs(s, shas); !ok) return std::unexpected(ok.error());
  std::ranges::sort(order, {}, [&](std::size_t i) { return done[i].job.id; });
  std::vector<CompletionResult> results(done.size(), std::optional<std::string>());
  for (const std::size_t i : order) {
    auto applied = CompleteOne(s, done[i], worker, now_ms);
    if (!applied) return std::unexpected(applied.error());
    results[i] = std::move(*applied);
  }
  return results;
}

// A completion whose bytes are gone leaves the job and its package as they were (its pin,
// already run out, is released all the same).
Result<CompletionResult> MetadataSql::CompleteOne(Session& s, const JobCompletion& c,
                                                  const std::string& worker,
                                                  std::int64_t now_ms) const {
  if (auto released = ReleasePins(s, &c.check, /*locked=*/true); !released) {
    if (!released.error().retryable) return std::unexpected(released.error());
    return CompletionResult(std::unexpected(released.error()));
  }
  std::string previous;  // the bytes the package referred to until now ("" for none)
  auto responsible = StillResponsible(s, c.job, worker, &previous);
  if (!responsible) return std::unexpected(responsible.error());
  if (!*responsible) return CompletionResult(std::optional<std::string>());
  if (auto ok = FinishJob(s, c.job,
                          "status = 'READY', status_reason = '', sha256 = ?5, size = ?6, "
                          "underlying_name = ?7",
                          now_ms, c.blob.sha256, c.blob.size, c.underlying_name);
      !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = QueueUnreferenced(s, {previous}); !ok) return std::unexpected(ok.error());
  return CompletionResult(std::optional<std::string>(previous));
}

Result<void> MetadataSql::RetryJob(Session& s, const UploadJob& job, const std::string& worker,
                                   std::int64_t next_attempt_ms, const std::string& reason) const {
  auto ok = sql::Run(s,
                     "UPDATE jobs SET lease_owner = '', lease_until = 0, next_attempt_at = ?3, "
                     "last_error = ?4 WHERE id = ?1 AND lease_owner = ?2",
                     job.id, worker, next_attempt_ms, reason);
  if (!ok) return std::unexpected(ok.error());
  return {};
}

Result<void> MetadataSql::FailJob(Session& s, const UploadJob& job, const std::string& worker,
                                  const std::string& reason, std::int64_t now_ms) const {
  if (auto ok = LockGroup(s, job.project, job.group); !ok) return ok;
  auto responsible = StillResponsible(s, job, worker);
  if (!responsible) return std::unexpected(responsible.error());
  if (!*responsible) return {};
  return FinishJob(s, job, "status = 'FAILED', status_reason = ?5", now_ms, reason);
}

Result<std::size_t> MetadataSql::RecoverAfterRestart(Session& s, std::int64_t now_ms,
                                                     LeasesAtStart leases) const {
  if (leases == LeasesAtStart::kRelease) {
    if (auto ok = sql::Run(s, "UPDATE jobs SET lease_owner = '', lease_until = 0"); !ok)
      return std::unexpected(ok.error());
  }
  // A package and its job are written in one transaction, so an UPLOADING package without
  // its job is left over from an upload that nobody can finish, whoever is running.
  if (auto ok = sql::Run(
          s,
          "UPDATE packages SET status = 'FAILED', update_time = ?1, job_id = 0, "
          "status_reason = 'The upload was interrupted and cannot be resumed; upload it again.' "
          "WHERE status = 'UPLOADING' AND NOT EXISTS "
          "(SELECT 1 FROM jobs WHERE jobs.id = packages.job_id)",
          now_ms);
      !ok) {
    return std::unexpected(ok.error());
  }
  return CountJobs(s);
}

Result<std::size_t> MetadataSql::CountQueued(Session& s) const { return CountJobs(s); }

}  // namespace dlipkg
