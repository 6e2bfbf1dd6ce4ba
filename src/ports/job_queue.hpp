// The durable queue of asynchronous uploads: one job per package, stored with the metadata so
// that "packages are UPLOADING" and "their jobs are queued" commit together. Jobs are claimed
// with a lease that the worker renews; a lease that runs out (a dead worker or instance) makes
// the job claimable again. A package row remembers the job that owns it: a later upload or a
// delete of the package supersedes the job, whose result is then discarded.
// Blocking (disk, network); thread-safe; several processes may share one queue.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/error.hpp"
#include "domain/records.hpp"
#include "ports/blob_store.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg {

struct UploadJob {
  std::int64_t id = 0;
  std::string project;
  std::string group;  // "" for an ungrouped package
  std::string name;
  std::string url;
  int attempts = 0;  // claims so far, this one included
  std::int64_t deadline_ms = 0;
  std::string last_error;  // why the previous attempt failed ("" for the first)
};

struct EnqueuedUploads {
  std::optional<GroupRecord> group;     // the whole group after the merge, for grouped uploads
  std::vector<PackageRecord> packages;  // the packages queued, in request order
  std::vector<std::int64_t> job_ids;    // their jobs, in the same order
};

// A finished fetch to settle: the job's package becomes READY with `blob`; `check` releases
// the pin that kept the new bytes until now, as for MetadataStore's commits (BlobCheck).
struct JobCompletion {
  UploadJob job;
  BlobInfo blob;
  std::string underlying_name;
  BlobCheck check;
};

// Per completion: the sha256 of the bytes the package held before (to reclaim; "" if none), or
// nullopt when the result was discarded: the lease was lost, or the package was replaced or
// deleted meanwhile. An error (kInternal, retryable) when the new bytes were reclaimed first.
using CompletionResult = Result<std::optional<std::string>>;

class JobQueue {
 public:
  virtual ~JobQueue() = default;

  // In one transaction: merges `packages` (status UPLOADING) into `group` (created from it if
  // absent), or writes them ungrouped when `group` is nullopt, and queues one job per package
  // (urls[i] fetches packages[i]) due at once and failing at `deadline_ms`. A package replaced
  // this way keeps the sha256/size/underlying_name of its stored bytes, which stay
  // downloadable until the new bytes are committed. kQuotaExceeded, with nothing written, when
  // more than `max_queued` jobs of the project would then be queued (the bound is per project).
  // Names are unique among `packages` (kInternal, with nothing written, otherwise).
  virtual Result<EnqueuedUploads> EnqueueUploads(const std::optional<GroupRecord>& group,
                                                 const std::vector<PackageRecord>& packages,
                                                 const std::vector<std::string>& urls,
                                                 std::int64_t deadline_ms,
                                                 std::size_t max_queued) = 0;

  // Claims up to `max_jobs` due jobs (next attempt time <= now, lease free or expired) in one
  // transaction, due soonest first (then queued first), leasing each to `worker` until
  // `lease_until_ms`. Concurrent claimers never get the same job. Jobs whose package no longer
  // refers to them are dropped on the way. Empty when nothing is due.
  virtual Result<std::vector<UploadJob>> ClaimJobs(const std::string& worker, std::int64_t now_ms,
                                                   std::int64_t lease_until_ms,
                                                   std::size_t max_jobs) = 0;
  // One job: ClaimJobs with max_jobs 1; nullopt when nothing is due.
  Result<std::optional<UploadJob>> ClaimJob(const std::string& worker, std::int64_t now_ms,
                                            std::int64_t lease_until_ms) {
    auto jobs = ClaimJobs(worker, now_ms, lease_until_ms, 1);
    if (!jobs) return std::unexpected(jobs.error());
    if (jobs->empty()) return std::optional<UploadJob>();
    return std::optional<UploadJob>(std::move(jobs->front()));
  }
  // Extends a lease; false when the job is gone or leased to someone else now.
  virtual Result<bool> RenewLease(std::int64_t job_id, const std::string& worker,
                                  std::int64_t lease_until_ms) = 0;

  // How far the current attempt of a leased job got: `bytes` fetched so far, `expected` the
  // source's announced length (-1: unknown). Shown by show and list while the package is
  // UPLOADING; reset when the job is claimed again. Bookkeeping: a lost update is harmless, and
  // a lease held by someone else makes this a no-op. The default keeps nothing.
  virtual Result<void> ReportProgress(const UploadJob& job, const std::string& worker,
                                      std::int64_t bytes, std::int64_t expected) {
    return {};
  }

  // Settles several finished jobs of `worker` in one transaction: each one's package becomes
  // READY with its blob, the job is deleted, and the bytes the package held before are queued
  // for reclaiming when nothing else refers to them. One result per completion, in order (see
  // CompletionResult); a completion whose bytes are gone (its BlobCheck) changes nothing, the
  // others are applied. An error of the call itself means none was applied.
  virtual Result<std::vector<CompletionResult>> CompleteJobs(const std::vector<JobCompletion>& done,
                                                             const std::string& worker,
                                                             std::int64_t now_ms) = 0;
  // One job: CompleteJobs with one completion.
  CompletionResult CompleteJob(const UploadJob& job, const std::string& worker,
                               const BlobInfo& blob, const std::string& underlying_name,
                               std::int64_t now_ms, BlobCheck check = {}) {
    auto results =
        CompleteJobs({JobCompletion{job, blob, underlying_name, std::move(check)}}, worker, now_ms);
    if (!results) return std::unexpected(results.error());
    if (results->size() != 1)
      return Fail(ErrorCode::kInternal, "metadata store failure: one result per completion");
    return std::move(results->front());
  }
  // After a retryable failure: the job is due again at `next_attempt_ms`, its lease released.
  virtual Result<void> RetryJob(const UploadJob& job, const std::string& worker,
                                std::int64_t next_attempt_ms, const std::string& reason) = 0;
  // The job's package becomes FAILED with `reason` (its previous bytes, if any, kept); the job
  // is deleted. A lost lease or superseded package makes this a no-op.
  virtual Result<void> FailJob(const UploadJob& job, const std::string& worker,
                               const std::string& reason, std::int64_t now_ms) = 0;

  // Start-up recovery of a single-instance deployment: releases every lease (whoever held one
  // is gone) and fails packages left UPLOADING without a job. Returns the jobs queued. A queue
  // shared by several instances keeps the leases instead: their holders may be alive.
  virtual Result<std::size_t> RecoverAfterRestart(std::int64_t now_ms) = 0;
  virtual Result<std::size_t> CountQueued() = 0;
};

}  // namespace dlipkg
