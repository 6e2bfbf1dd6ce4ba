// Fault injection for every port: decorators that forward each call to the real object and
// fail the N-th one (counted over all the port's methods, or only those of one name), as "a
// store that fails the N-th write" of the design's fault tests. Used by unit and contract tests.
// Thread-safe: the counter is atomic; the decorated object must be thread-safe itself.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "ports/blob_store.hpp"
#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"
#include "ports/source_fetcher.hpp"

namespace dlipkg::testing {

// Counts calls and says which one fails. `only` empty counts every method; otherwise only the
// method of that name ("Remove", "FailJob", ...).
class FailNth {
 public:
  FailNth(int nth, Error error, std::string only = "")
      : nth_(nth), error_(std::move(error)), only_(std::move(only)) {}
  // Whether the call to `method` now is the one to fail.
  bool Fails(std::string_view method) {
    if (!only_.empty() && method != only_) return false;
    return ++calls_ == nth_;
  }
  std::unexpected<Error> Failure() const { return std::unexpected(error_); }
  int Calls() const { return calls_; }

 private:
  const int nth_;
  const Error error_;
  const std::string only_;
  std::atomic<int> calls_{0};
};

#define DLIPKG_FAIL_NTH(method, call) \
  return fail_.Fails(#method) ? decltype(inner_.call)(fail_.Failure()) : inner_.call

class FailNthMetadataStore final : public MetadataStore {
 public:
  FailNthMetadataStore(MetadataStore& inner, FailNth& fail) : inner_(inner), fail_(fail) {}
  Result<GroupRecord> ReplaceGroup(const GroupRecord& g, const std::vector<PackageRecord>& p,
                                   std::vector<std::string>* replaced = nullptr,
                                   const BlobCheck* check = nullptr) override {
    DLIPKG_FAIL_NTH(ReplaceGroup, ReplaceGroup(g, p, replaced, check));
  }
  Result<GroupRecord> MergeIntoGroup(const GroupRecord& g, const std::vector<PackageRecord>& p,
                                     std::vector<std::string>* replaced = nullptr,
                                     const BlobCheck* check = nullptr) override {
    DLIPKG_FAIL_NTH(MergeIntoGroup, MergeIntoGroup(g, p, replaced, check));
  }
  Result<std::vector<PackageRecord>> PutUngrouped(const std::vector<PackageRecord>& p,
                                                  std::vector<std::string>* replaced = nullptr,
                                                  const BlobCheck* check = nullptr) override {
    DLIPKG_FAIL_NTH(PutUngrouped, PutUngrouped(p, replaced, check));
  }
  Result<std::optional<PackageRecord>> GetPackage(const std::string& project,
                                                  const std::string& group,
                                                  const std::string& name) override {
    DLIPKG_FAIL_NTH(GetPackage, GetPackage(project, group, name));
  }
  Result<std::optional<GroupRecord>> GetGroup(const std::string& project,
                                              const std::string& name) override {
    DLIPKG_FAIL_NTH(GetGroup, GetGroup(project, name));
  }
  Result<ProjectContents> ListProject(const std::string& project) override {
    DLIPKG_FAIL_NTH(ListProject, ListProject(project));
  }
  Result<PackagePage> ListPage(const PageRequest& request) override {
    DLIPKG_FAIL_NTH(ListPage, ListPage(request));
  }
  Result<std::vector<PackageRecord>> ListUngrouped(const std::string& project,
                                                   const PackageFilter& filter,
                                                   const std::string& after_name,
                                                   std::size_t limit) override {
    DLIPKG_FAIL_NTH(ListUngrouped, ListUngrouped(project, filter, after_name, limit));
  }
  Result<GroupBatch> ListGroups(const std::string& project, const PackageFilter& filter,
                                const std::string& after_group, std::size_t max_groups) override {
    DLIPKG_FAIL_NTH(ListGroups, ListGroups(project, filter, after_group, max_groups));
  }
  // Each batch counts as a call of WalkGroups.
  std::unique_ptr<GroupWalk> WalkGroups(const std::string& project, const PackageFilter& filter,
                                        std::size_t max_groups) override {
    return std::make_unique<Walk>(inner_.WalkGroups(project, filter, max_groups), fail_);
  }
  Result<PackageRecord> DeletePackage(const std::string& project, const std::string& group,
                                      const std::string& name) override {
    DLIPKG_FAIL_NTH(DeletePackage, DeletePackage(project, group, name));
  }
  Result<void> SetGroupOwner(const std::string& project, const std::string& group,
                             const std::string& owner, std::int64_t now) override {
    DLIPKG_FAIL_NTH(SetGroupOwner, SetGroupOwner(project, group, owner, now));
  }
  Result<void> SetPackageOwner(const std::string& project, const std::string& group,
                               const std::string& name, const std::string& owner,
                               std::int64_t now) override {
    DLIPKG_FAIL_NTH(SetPackageOwner, SetPackageOwner(project, group, name, owner, now));
  }
  Result<void> MarkCorrupt(const std::string& project, const std::string& group,
                           const std::string& name, const std::string& sha,
                           const std::string& reason, std::int64_t now) override {
    DLIPKG_FAIL_NTH(MarkCorrupt, MarkCorrupt(project, group, name, sha, reason, now));
  }
  Result<bool> IsBlobReferenced(const std::string& sha) override {
    DLIPKG_FAIL_NTH(IsBlobReferenced, IsBlobReferenced(sha));
  }
  Result<std::vector<std::string>> ReferencedBlobs() override {
    DLIPKG_FAIL_NTH(ReferencedBlobs, ReferencedBlobs());
  }
  Result<void> PinBlob(const std::string& sha, const std::string& pin_id,
                       std::int64_t until) override {
    DLIPKG_FAIL_NTH(PinBlob, PinBlob(sha, pin_id, until));
  }
  Result<void> UnpinBlob(const std::string& sha, const std::string& pin_id) override {
    DLIPKG_FAIL_NTH(UnpinBlob, UnpinBlob(sha, pin_id));
  }
  Result<bool> ReclaimBlob(const std::string& sha, std::int64_t now,
                           const std::function<Result<void>()>& remove) override {
    DLIPKG_FAIL_NTH(ReclaimBlob, ReclaimBlob(sha, now, remove));
  }
  Result<void> QueueReclaims(const std::vector<std::string>& shas) override {
    DLIPKG_FAIL_NTH(QueueReclaims, QueueReclaims(shas));
  }
  Result<std::vector<QueuedReclaim>> DueReclaims(std::int64_t now, std::size_t limit) override {
    DLIPKG_FAIL_NTH(DueReclaims, DueReclaims(now, limit));
  }
  Result<void> DeferReclaim(const std::string& sha, std::int64_t next) override {
    DLIPKG_FAIL_NTH(DeferReclaim, DeferReclaim(sha, next));
  }
  Result<bool> TakeCollectorLease(const std::string& owner, std::int64_t now,
                                  std::int64_t until) override {
    DLIPKG_FAIL_NTH(TakeCollectorLease, TakeCollectorLease(owner, now, until));
  }
  Result<void> ReleaseCollectorLease(const std::string& owner) override {
    DLIPKG_FAIL_NTH(ReleaseCollectorLease, ReleaseCollectorLease(owner));
  }
  Result<std::vector<std::string>> AbandonedBlobs(const std::vector<std::string>& stored,
                                                  std::int64_t now, std::int64_t grace) override {
    DLIPKG_FAIL_NTH(AbandonedBlobs, AbandonedBlobs(stored, now, grace));
  }
  Result<std::size_t> DropExpiredPins(std::int64_t now) override {
    DLIPKG_FAIL_NTH(DropExpiredPins, DropExpiredPins(now));
  }

 private:
  class Walk final : public GroupWalk {
   public:
    Walk(std::unique_ptr<GroupWalk> inner, FailNth& fail) : inner_(std::move(inner)), fail_(fail) {}
    Result<GroupBatch> Next() override {
      if (fail_.Fails("WalkGroups")) return fail_.Failure();
      return inner_->Next();
    }

   private:
    std::unique_ptr<GroupWalk> inner_;
    FailNth& fail_;
  };

  MetadataStore& inner_;
  FailNth& fail_;
};

class FailNthJobQueue final : public JobQueue {
 public:
  FailNthJobQueue(JobQueue& inner, FailNth& fail) : inner_(inner), fail_(fail) {}
  Result<EnqueuedUploads> EnqueueUploads(const std::optional<GroupRecord>& group,
                                         const std::vector<PackageRecord>& packages,
                                         const std::vector<std::string>& urls,
                                         std::int64_t deadline_ms,
                                         std::size_t max_queued) override {
    DLIPKG_FAIL_NTH(EnqueueUploads, EnqueueUploads(group, packages, urls, deadline_ms, max_queued));
  }
  Result<std::vector<UploadJob>> ClaimJobs(const std::string& worker, std::int64_t now,
                                           std::int64_t until, std::size_t max_jobs) override {
    DLIPKG_FAIL_NTH(ClaimJobs, ClaimJobs(worker, now, until, max_jobs));
  }
  Result<bool> RenewLease(std::int64_t id, const std::string& worker, std::int64_t until) override {
    DLIPKG_FAIL_NTH(RenewLease, RenewLease(id, worker, until));
  }
  Result<void> ReportProgress(const UploadJob& job, const std::string& worker, std::int64_t bytes,
                              std::int64_t expected) override {
    DLIPKG_FAIL_NTH(ReportProgress, ReportProgress(job, worker, bytes, expected));
  }
  Result<std::vector<CompletionResult>> CompleteJobs(const std::vector<JobCompletion>& done,
                                                     const std::string& worker,
                                                     std::int64_t now) override {
    DLIPKG_FAIL_NTH(CompleteJobs, CompleteJobs(done, worker, now));
  }
  Result<void> RetryJob(const UploadJob& job, const std::string& worker, std::int64_t next,
                        const std::string& reason) override {
    DLIPKG_FAIL_NTH(RetryJob, RetryJob(job, worker, next, reason));
  }
  Result<void> FailJob(const UploadJob& job, const std::string& worker, const std::string& reason,
                       std::int64_t now) override {
    DLIPKG_FAIL_NTH(FailJob, FailJob(job, worker, reason, now));
  }
  Result<std::size_t> RecoverAfterRestart(std::int64_t now) override {
    DLIPKG_FAIL_NTH(RecoverAfterRestart, RecoverAfterRestart(now));
  }
  Result<std::size_t> CountQueued() override { DLIPKG_FAIL_NTH(CountQueued, CountQueued()); }

 private:
  JobQueue& inner_;
  FailNth& fail_;
};

// Counts the store's own calls; writers and readers it hands out are the inner store's.
class FailNthBlobStore final : public BlobStore {
 public:
  FailNthBlobStore(BlobStore& inner, FailNth& fail) : inner_(inner), fail_(fail) {}
  Result<std::unique_ptr<BlobWriter>> Create() override { DLIPKG_FAIL_NTH(Create, Create()); }
  Result<std::unique_ptr<BlobReader>> Open(const std::string& sha) override {
    DLIPKG_FAIL_NTH(Open, Open(sha));
  }
  Result<bool> Exists(const std::string& sha) override { DLIPKG_FAIL_NTH(Exists, Exists(sha)); }
  Result<void> Remove(const std::string& sha) override { DLIPKG_FAIL_NTH(Remove, Remove(sha)); }
  Result<std::vector<std::string>> List() override { DLIPKG_FAIL_NTH(List, List()); }
  Result<std::size_t> SweepTemporaries(std::chrono::milliseconds min_age) override {
    DLIPKG_FAIL_NTH(SweepTemporaries, SweepTemporaries(min_age));
  }

 private:
  BlobStore& inner_;
  FailNth& fail_;
};

class FailNthFetcher final : public SourceFetcher {
 public:
  FailNthFetcher(SourceFetcher& inner, FailNth& fail) : inner_(inner), fail_(fail) {}
  Result<std::int64_t> Fetch(std::string_view url, ByteSink& sink) override {
    DLIPKG_FAIL_NTH(Fetch, Fetch(url, sink));
  }

 private:
  SourceFetcher& inner_;
  FailNth& fail_;
};

#undef DLIPKG_FAIL_NTH

}  // namespace dlipkg::testing
