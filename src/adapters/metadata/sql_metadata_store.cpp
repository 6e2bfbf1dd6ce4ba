#include "adapters/metadata/sql_metadata_store.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace dlipkg {
namespace {

enum class Kind { kRead, kReadOne, kWrite, kBookkeeping };

bool AnyUploading(const GroupBatch& batch) {
  return std::ranges::any_of(batch.groups, [](const GroupRecord& g) {
    return std::ranges::any_of(
        g.packages, [](const PackageRecord& p) { return p.status == PackageStatus::kUploading; });
  });
}

Result<void> Run(SqlTransactions& engine, Kind kind, const SqlTransactions::Body& body) {
  switch (kind) {
    case Kind::kRead:
      return engine.Read(body);
    case Kind::kReadOne:
      return engine.ReadOne(body);
    case Kind::kWrite:
      return engine.Write(body);
    case Kind::kBookkeeping:
      return engine.WriteBookkeeping(body);
  }
  return engine.Write(body);
}

// Runs `call(session)`, returning Result<T>, as a SqlTransactions body and hands its value back.
template <class Call>
auto InTransaction(SqlTransactions& engine, Kind kind, Call&& call)
    -> std::invoke_result_t<Call&, sql::Session&> {
  using Returned = std::invoke_result_t<Call&, sql::Session&>;
  using Value = typename Returned::value_type;
  if constexpr (std::is_void_v<Value>) {
    const SqlTransactions::Body body = [&](sql::Session& s) { return call(s); };
    return Run(engine, kind, body);
  } else {
    std::optional<Value> value;
    const SqlTransactions::Body body = [&](sql::Session& s) -> Result<void> {
      auto result = call(s);
      if (!result) return std::unexpected(result.error());
      value = std::move(*result);
      return {};
    };
    if (auto ok = Run(engine, kind, body); !ok) return std::unexpected(ok.error());
    return std::move(*value);
  }
}

}  // namespace

SqlMetadataStore::SqlMetadataStore(std::unique_ptr<SqlTransactions> engine, SqlDialect dialect,
                                   LeasesAtStart leases_at_start)
    : engine_(std::move(engine)), sql_(dialect), leases_at_start_(leases_at_start) {
  if (dialect.show_keys.empty()) return;
  show_batcher_ = std::make_unique<ShowBatcher>(
      [this](std::span<const PackageKey> keys) {
        return InTransaction(*engine_, Kind::kReadOne,
                             [&](sql::Session& s) { return sql_.GetPackages(s, keys); });
      },
      ShowBatcher::Limits{});
}

SqlMetadataStore::~SqlMetadataStore() = default;

template <class T>
Result<T> SqlMetadataStore::Noted(Result<T> result, std::string_view operation) const {
  if (!result && result.error().code == ErrorCode::kInternal && error_hook_) error_hook_(operation);
  return result;
}

template <class Call>
auto SqlMetadataStore::Write(Call&& call) {
  return Noted(InTransaction(*engine_, Kind::kWrite, std::forward<Call>(call)), "write");
}

template <class Call>
auto SqlMetadataStore::WriteBookkeeping(Call&& call) {
  return Noted(InTransaction(*engine_, Kind::kBookkeeping, std::forward<Call>(call)),
               "bookkeeping");
}

template <class Call>
auto SqlMetadataStore::Read(Call&& call) {
  return Noted(InTransaction(*engine_, Kind::kRead, std::forward<Call>(call)), "read");
}

Result<void> SqlMetadataStore::CheckReady() {
  if (auto intact = engine_->CheckIntact(); !intact) return intact;
  auto version = Read([&](sql::Session& s) -> Result<std::int64_t> {
    return sql::SelectOne(s, schema_query_, sql::IntFromRow);
  });
  if (!version) return std::unexpected(version.error());
  if (*version != schema_expected_)
    return Fail(ErrorCode::kInternal, "metadata store schema version " + std::to_string(*version) +
                                          ", this server expects " +
                                          std::to_string(schema_expected_));
  return {};
}

template <class Call>
auto SqlMetadataStore::ReadOne(Call&& call) {
  return Noted(InTransaction(*engine_, Kind::kReadOne, std::forward<Call>(call)), "read");
}

Result<GroupRecord> SqlMetadataStore::ReplaceGroup(const GroupRecord& group,
                                                   const std::vector<PackageRecord>& packages,
                                                   std::vector<std::string>* replaced,
                                                   const BlobCheck* check) {
  return Write(
      [&](sql::Session& s) { return sql_.ReplaceGroup(s, group, packages, replaced, check); });
}

Result<GroupRecord> SqlMetadataStore::MergeIntoGroup(const GroupRecord& group,
                                                     const std::vector<PackageRecord>& packages,
                                                     std::vector<std::string>* replaced,
                                                     const BlobCheck* check) {
  return Write(
      [&](sql::Session& s) { return sql_.MergeIntoGroup(s, group, packages, replaced, check); });
}

Result<std::vector<PackageRecord>> SqlMetadataStore::PutUngrouped(
    const std::vector<PackageRecord>& packages, std::vector<std::string>* replaced,
    const BlobCheck* check) {
  return Write([&](sql::Session& s) { return sql_.PutUngrouped(s, packages, replaced, check); });
}

Result<std::optional<PackageRecord>> SqlMetadataStore::GetPackage(const std::string& project,
                                                                  const std::string& group,
                                                                  const std::string& name) {
  // Read before the store is: an answer kept at a version still current is still the truth.
  const std::optional<std::uint64_t> version = engine_->ChangeVersion();
  if (version) {
    if (auto kept = shows_.Find(project, group, name, *version)) return kept;
  }
  // One statement (the package joined with its tags), unless it is uploading: then its job's
  // progress is read beside it, in one transaction (and not kept: progress moves).
  // Batched with the shows arriving together where each statement is a round trip.
  auto package =
      show_batcher_
          ? Noted(show_batcher_->Show(PackageKey{project, group, name}), "read")
          : ReadOne([&](sql::Session& s) { return sql_.GetPackage(s, project, group, name); });
  if (!package || !*package || (*package)->status != PackageStatus::kUploading) {
    if (version && package && *package) shows_.Keep(project, group, name, **package, *version);
    return package;
  }
  return Read([&](sql::Session& s) -> Result<std::optional<PackageRecord>> {
    auto package = sql_.GetPackage(s, project, group, name);
    if (!package || !*package) return package;
    if (auto ok = sql_.AttachProgress(s, project, {&**package}); !ok)
      return std::unexpected(ok.error());
    return package;
  });
}

Result<std::optional<GroupRecord>> SqlMetadataStore::GetGroup(const std::string& project,
                                                              const std::string& name) {
  return Read([&](sql::Session& s) -> Result<std::optional<GroupRecord>> {
    auto group = sql_.GetGroup(s, project, name);
    if (!group || !*group) return group;
    std::vector<PackageRecord*> packages;
    for (auto& p : (*group)->packages) packages.push_back(&p);
    if (auto ok = sql_.AttachProgress(s, project, packages); !ok)
      return std::unexpected(ok.error());
    return group;
  });
}

Result<ProjectContents> SqlMetadataStore::ListProject(const std::string& project) {
  return Read([&](sql::Session& s) -> Result<ProjectContents> {
    auto contents = sql_.ListProject(s, project);
    if (!contents) return contents;
    std::vector<PackageRecord*> packages;
    for (auto& p : contents->ungrouped) packages.push_back(&p);
    for (auto& g : contents->groups)
      for (auto& p : g.packages) packages.push_back(&p);
    if (auto ok = sql_.AttachProgress(s, project, packages); !ok)
      return std::unexpected(ok.error());
    return contents;
  });
}

namespace {

std::vector<PackageRecord*> Pointers(std::vector<PackageRecord>& packages) {
  std::vector<PackageRecord*> pointers;
  pointers.reserve(packages.size());
  for (auto& p : packages) pointers.push_back(&p);
  return pointers;
}

// What a listing total depends on: the project and the filter (each part length-prefixed, so
// no two filters share a key).
std::string TotalKey(const PageRequest& request) {
  std::string key;
  const auto add = [&key](std::string_view part) {
    key += std::to_string(part.size()) + ":";
    key += part;
  };
  add(request.project);
  add(request.filter.name_contains);
  add(request.filter.kind ? ToString(*request.filter.kind) : "");
  for (const auto& tag : request.filter.tags) {
    add(tag.key);
    add(tag.value ? "=" + *tag.value : "");
  }
  return key;
}

// Listings remembered (by filter), their marks at least this far apart, and at most this many
// marks each: about 128 x 512 keys at most, and a page starts at most kMinMarkSpacing - 1 (or
// 1/512 of the listing) entries after its mark.
constexpr std::size_t kMaxRememberedListings = 128;
constexpr std::size_t kMinMarkSpacing = 256;
constexpr std::size_t kMaxMarks = 512;

// `request` moved to start from the mark before its offset (no cursor: a cursor is a seek
// already).
PageRequest FromMark(const PageRequest& request, const ListingMarks& marks) {
  PageRequest moved = request;
  if (request.after || marks.every == 0 || request.offset < marks.every) return moved;
  const std::size_t mark = std::min(request.offset / marks.every, marks.marks.size());
  if (mark == 0) return moved;
  moved.after = marks.marks[mark - 1];
  moved.offset = request.offset - mark * marks.every;
  return moved;
}

}  // namespace

std::shared_ptr<const SqlMetadataStore::KeptMarks> SqlMetadataStore::KeptFor(
    const std::string& key) {
  std::lock_guard lock(listings_mutex_);
  const auto found = listings_.find(key);
  return found != listings_.end() ? found->second : nullptr;
}

void SqlMetadataStore::Keep(const std::string& key, std::shared_ptr<const KeptMarks> marks) {
  std::lock_guard lock(listings_mutex_);
  if (listings_.size() >= kMaxRememberedListings && !listings_.contains(key)) listings_.clear();
  listings_[key] = std::move(marks);
}

// One read transaction (one snapshot): the listing version, then the marks kept at that
// version or else marks read afresh (one pass over the matching keys, which replaces the
// COUNT a page needs for its total anyway), then the page from the mark before its offset.
Result<PackagePage> SqlMetadataStore::ListPage(const PageRequest& request) {
  const std::string key = TotalKey(request);
  const std::shared_ptr<const KeptMarks> kept = KeptFor(key);
  std::shared_ptr<const KeptMarks> fresh;
  auto page = Read([&](sql::Session& s) -> Result<PackagePage> {
    fresh.reset();  // a body may run again
    auto version = sql_.ListingVersion(s, request.project);
    if (!version) return std::unexpected(version.error());
    const KeptMarks* marks = kept && kept->version == *version ? kept.get() : nullptr;
    if (!marks) {
      auto scanned = sql_.ListMarks(s, request.project, request.filter, kMinMarkSpacing, kMaxMarks);
      if (!scanned) return std::unexpected(scanned.error());
      fresh = std::make_shared<const KeptMarks>(KeptMarks{*version, std::move(*scanned)});
      marks = fresh.get();
    }
    auto listed = sql_.ListPage(s, FromMark(request, marks->marks), marks->marks.total);
    if (!listed) return listed;
    if (auto ok = sql_.AttachProgress(s, request.project, Pointers(listed->packages)); !ok)
      return std::unexpected(ok.error());
    return listed;
  });
  if (page && fresh) Keep(key, std::move(fresh));
  return page;
}

Result<std::vector<PackageRecord>> SqlMetadataStore::ListUngrouped(const std::string& project,
                                                                   const PackageFilter& filter,
                                                                   const std::string& after_name,
                                                                   std::size_t limit) {
  // One statement, unless a package is uploading: then the jobs' progress is read beside the
  // packages, in one transaction.
  auto listed = ReadOne(
      [&](sql::Session& s) { return sql_.ListUngrouped(s, project, filter, after_name, limit); });
  if (!listed || std::ranges::none_of(*listed, [](const PackageRecord& p) {
        return p.status == PackageStatus::kUploading;
      }))
    return listed;
  return Read([&](sql::Session& s) -> Result<std::vector<PackageRecord>> {
    auto listed = sql_.ListUngrouped(s, project, filter, after_name, limit);
    if (!listed) return listed;
    if (auto ok = sql_.AttachProgress(s, project, Pointers(*listed)); !ok)
      return std::unexpected(ok.error());
    return listed;
  });
}

Result<GroupBatch> SqlMetadataStore::ListGroups(const std::string& project,
                                                const PackageFilter& filter,
                                                const std::string& after_group,
                                                std::size_t max_groups) {
  // One statement (one round trip on PostgreSQL), unless a package is uploading: then the
  // jobs' progress is read beside the groups, in one transaction.
  auto listed = ReadOne([&](sql::Session& s) {
    return sql_.ListGroups(s, project, filter, after_group, max_groups);
  });
  if (!listed || !AnyUploading(*listed)) return listed;
  return Read([&](sql::Session& s) -> Result<GroupBatch> {
    auto batch = sql_.ListGroups(s, project, filter, after_group, max_groups);
    if (!batch) return batch;
    std::vector<PackageRecord*> packages;
    for (auto& g : batch->groups)
      for (auto& p : g.packages) packages.push_back(&p);
    if (auto ok = sql_.AttachProgress(s, project, std::move(packages)); !ok)
      return std::unexpected(ok.error());
    return batch;
  });
}

namespace {

// Batches over a Pipeline: as soon as a batch's rows are in, the next batch's statement is
// sent (after the last group of those rows), and the rows are made records while the database
// reads it; the caller then encodes them, still meanwhile. A batch with an uploading package
// is read again by ListGroups (with the jobs' progress, in one snapshot). Once anything fails,
// the pipeline is dropped and the rest of the walk is ListGroups in turn, whose connection
// handling (retry on a fresh connection) then applies.
class PipelinedGroupWalk final : public GroupWalk {
 public:
  PipelinedGroupWalk(MetadataStore& store, const MetadataSql& sql,
                     std::unique_ptr<sql::Pipeline> pipeline, std::string project,
                     PackageFilter filter, std::size_t max_groups)
      : store_(store),
        sql_(sql),
        pipeline_(std::move(pipeline)),
        project_(std::move(project)),
        filter_(std::move(filter)),
        max_groups_(max_groups) {}

  Result<GroupBatch> Next() override {
    if (pipeline_) {
      auto batch = Piped();
      if (batch && !AnyUploading(*batch)) {
        if (!batch->next_after) pipeline_.reset();  // the last: the connection goes back now
        return Advanced(std::move(*batch));
      }
      if (batch) {
        // Read again, in a later state, whose batch may end elsewhere (groups added or
        // removed meanwhile) than where the statement sent ahead starts: then that statement
        // is not the next batch, and the walk goes on by ListGroups.
        auto again = store_.ListGroups(project_, filter_, after_, max_groups_);
        if (!again) return again;
        if (!again->next_after || again->next_after != batch->next_after) pipeline_.reset();
        return Advanced(std::move(*again));
      }
      pipeline_.reset();
    }
    auto batch = store_.ListGroups(project_, filter_, after_, max_groups_);
    if (!batch) return batch;
    return Advanced(std::move(*batch));
  }

 private:
  // The batch after after_, read through the pipeline; sends the one after it.
  Result<GroupBatch> Piped() {
    if (!sent_) {
      if (auto ok = sql_.SendGroupBatch(*pipeline_, project_, filter_, after_, max_groups_); !ok)
        return std::unexpected(ok.error());
      sent_ = true;
    }
    auto rows = pipeline_->Receive();
    sent_ = false;
    if (!rows) return std::unexpected(rows.error());
    if ((*rows)->Count() > 0) {
      // Sent even when this batch turns out the last: that costs one empty statement.
      auto last = MetadataSql::LastBatchGroup(**rows);
      if (!last) return std::unexpected(last.error());
      if (auto ok = sql_.SendGroupBatch(*pipeline_, project_, filter_, *last, max_groups_); !ok)
        return std::unexpected(ok.error());
      sent_ = true;
    }
    return MetadataSql::GroupBatchFromRows(**rows, project_, filter_, max_groups_);
  }

  GroupBatch Advanced(GroupBatch batch) {
    if (batch.next_after) after_ = *batch.next_after;
    return batch;
  }

  MetadataStore& store_;
  const MetadataSql& sql_;
  std::unique_ptr<sql::Pipeline> pipeline_;  // null once done or failed
  const std::string project_;
  const PackageFilter filter_;
  const std::size_t max_groups_;
  std::string after_;  // where the next batch starts
  bool sent_ = false;  // the statement of the batch after after_ is in flight
};

}  // namespace

std::unique_ptr<GroupWalk> SqlMetadataStore::WalkGroups(const std::string& project,
                                                        const PackageFilter& filter,
                                                        std::size_t max_groups) {
  auto pipeline = engine_->OpenPipeline();
  if (!pipeline) return MetadataStore::WalkGroups(project, filter, max_groups);
  return std::make_unique<PipelinedGroupWalk>(*this, sql_, std::move(pipeline), project, filter,
                                              max_groups);
}

Result<PackageRecord> SqlMetadataStore::DeletePackage(const std::string& project,
                                                      const std::string& group,
                                                      const std::string& name) {
  return Write([&](sql::Session& s) { return sql_.DeletePackage(s, project, group, name); });
}

Result<void> SqlMetadataStore::SetGroupOwner(const std::string& project, const std::string& group,
                                             const std::string& owner, std::int64_t now_ms) {
  return Write(
      [&](sql::Session& s) { return sql_.SetGroupOwner(s, project, group, owner, now_ms); });
}

Result<void> SqlMetadataStore::SetPackageOwner(const std::string& project, const std::string& group,
                                               const std::string& name, const std::string& owner,
                                               std::int64_t now_ms) {
  return Write([&](sql::Session& s) {
    return sql_.SetPackageOwner(s, project, group, name, owner, now_ms);
  });
}

Result<void> SqlMetadataStore::MarkCorrupt(const std::string& project, const std::string& group,
                                           const std::string& name, const std::string& sha256,
                                           const std::string& reason, std::int64_t now_ms) {
  return Write([&](sql::Session& s) {
    return sql_.MarkCorrupt(s, project, group, name, sha256, reason, now_ms);
  });
}

Result<std::string> SqlMetadataStore::UrlKey(const std::string& candidate, std::int64_t now_ms) {
  return Write([&](sql::Session& s) { return sql_.UrlKey(s, candidate, now_ms); });
}

Result<void> SqlMetadataStore::RotateUrlKey(const std::string& new_key, std::int64_t now_ms) {
  return Write([&](sql::Session& s) { return sql_.RotateUrlKey(s, new_key, now_ms); });
}

Result<bool> SqlMetadataStore::IsBlobReferenced(const std::string& sha256) {
  return Read([&](sql::Session& s) { return sql_.IsBlobReferenced(s, sha256); });
}

Result<std::vector<std::string>> SqlMetadataStore::ReferencedBlobs() {
  return Read([&](sql::Session& s) { return sql_.ReferencedBlobs(s); });
}

// A pin only matters while its uploader lives, so losing one in a crash is harmless.
Result<void> SqlMetadataStore::PinBlob(const std::string& sha256, const std::string& pin_id,
                                       std::int64_t until_ms) {
  return WriteBookkeeping(
      [&](sql::Session& s) { return sql_.PinBlob(s, sha256, pin_id, until_ms); });
}

Result<void> SqlMetadataStore::UnpinBlob(const std::string& sha256, const std::string& pin_id) {
  return WriteBookkeeping([&](sql::Session& s) { return sql_.UnpinBlob(s, sha256, pin_id); });
}

Result<bool> SqlMetadataStore::ReclaimBlob(const std::string& sha256, std::int64_t now_ms,
                                           const std::function<Result<void>()>& remove) {
  return Write([&](sql::Session& s) { return sql_.ReclaimBlob(s, sha256, now_ms, remove); });
}

Result<void> SqlMetadataStore::QueueReclaims(const std::vector<std::string>& shas) {
  return Write([&](sql::Session& s) { return sql_.QueueReclaims(s, shas); });
}

Result<std::vector<QueuedReclaim>> SqlMetadataStore::DueReclaims(std::int64_t now_ms,
                                                                 std::size_t limit) {
  return Read([&](sql::Session& s) { return sql_.DueReclaims(s, now_ms, limit); });
}

// Losing it in a crash only makes the row due sooner.
Result<void> SqlMetadataStore::DeferReclaim(const std::string& sha256,
                                            std::int64_t next_attempt_ms) {
  return WriteBookkeeping(
      [&](sql::Session& s) { return sql_.DeferReclaim(s, sha256, next_attempt_ms); });
}

Result<bool> SqlMetadataStore::TakeCollectorLease(const std::string& owner, std::int64_t now_ms,
                                                  std::int64_t until_ms) {
  return Write(
      [&](sql::Session& s) { return sql_.TakeCollectorLease(s, owner, now_ms, until_ms); });
}

Result<void> SqlMetadataStore::ReleaseCollectorLease(const std::string& owner) {
  return WriteBookkeeping([&](sql::Session& s) { return sql_.ReleaseCollectorLease(s, owner); });
}

// In batches, so that no transaction holds the database for the whole bucket's listing.
Result<std::vector<std::string>> SqlMetadataStore::AbandonedBlobs(
    const std::vector<std::string>& stored, std::int64_t now_ms, std::int64_t grace_ms) {
  constexpr std::size_t kBatch = 200;
  std::vector<std::string> abandoned;
  // At least one batch, which also forgets the sightings of blobs referenced since.
  for (std::size_t from = 0; from == 0 || from < stored.size(); from += kBatch) {
    const std::vector<std::string> batch(
        stored.begin() + static_cast<std::ptrdiff_t>(from),
        stored.begin() + static_cast<std::ptrdiff_t>(std::min(stored.size(), from + kBatch)));
    auto found =
        Write([&](sql::Session& s) { return sql_.AbandonedBlobs(s, batch, now_ms, grace_ms); });
    if (!found) return std::unexpected(found.error());
    abandoned.insert(abandoned.end(), found->begin(), found->end());
  }
  return abandoned;
}

Result<std::size_t> SqlMetadataStore::DropExpiredPins(std::int64_t now_ms) {
  return WriteBookkeeping([&](sql::Session& s) { return sql_.DropExpiredPins(s, now_ms); });
}

Result<EnqueuedUploads> SqlMetadataStore::EnqueueUploads(const std::optional<GroupRecord>& group,
                                                         const std::vector<PackageRecord>& packages,
                                                         const std::vector<std::string>& urls,
                                                         std::int64_t deadline_ms,
                                                         std::size_t max_queued) {
  return Write([&](sql::Session& s) {
    return sql_.EnqueueUploads(s, group, packages, urls, deadline_ms, max_queued);
  });
}

Result<std::vector<UploadJob>> SqlMetadataStore::ClaimJobs(const std::string& worker,
                                                           std::int64_t now_ms,
                                                           std::int64_t lease_until_ms,
                                                           std::size_t max_jobs) {
  return WriteBookkeeping(
      [&](sql::Session& s) { return sql_.ClaimJobs(s, worker, now_ms, lease_until_ms, max_jobs); });
}

Result<void> SqlMetadataStore::ReportProgress(const UploadJob& job, const std::string& worker,
                                              std::int64_t bytes, std::int64_t expected) {
  return WriteBookkeeping(
      [&](sql::Session& s) { return sql_.ReportProgress(s, job, worker, bytes, expected); });
}

Result<bool> SqlMetadataStore::RenewLease(std::int64_t job_id, const std::string& worker,
                                          std::int64_t lease_until_ms) {
  return WriteBookkeeping(
      [&](sql::Session& s) { return sql_.RenewLease(s, job_id, worker, lease_until_ms); });
}

Result<std::vector<CompletionResult>> SqlMetadataStore::CompleteJobs(
    const std::vector<JobCompletion>& done, const std::string& worker, std::int64_t now_ms) {
  return Write([&](sql::Session& s) { return sql_.CompleteJobs(s, done, worker, now_ms); });
}

Result<void> SqlMetadataStore::RetryJob(const UploadJob& job, const std::string& worker,
                                        std::int64_t next_attempt_ms, const std::string& reason) {
  return WriteBookkeeping(
      [&](sql::Session& s) { return sql_.RetryJob(s, job, worker, next_attempt_ms, reason); });
}

Result<void> SqlMetadataStore::FailJob(const UploadJob& job, const std::string& worker,
                                       const std::string& reason, std::int64_t now_ms) {
  return Write([&](sql::Session& s) { return sql_.FailJob(s, job, worker, reason, now_ms); });
}

Result<std::size_t> SqlMetadataStore::RecoverAfterRestart(std::int64_t now_ms) {
  return Write(
      [&](sql::Session& s) { return sql_.RecoverAfterRestart(s, now_ms, leases_at_start_); });
}

Result<std::size_t> SqlMetadataStore::CountQueued() {
  return Read([&](sql::Session& s) { return sql_.CountQueued(s); });
}

}  // namespace dlipkg
