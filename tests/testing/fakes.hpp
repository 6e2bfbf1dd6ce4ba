// In-memory fakes of the ports, for the unit tests of core and api (and, for the blob store,
// the contract suite): a metadata store and job queue, a blob store, a fetcher with scripted
// answers, and an event sink that records. Thread-safe (one mutex each).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "adapters/common/sha256.hpp"
#include "core/package_service.hpp"
#include "ports/blob_store.hpp"
#include "ports/clock.hpp"
#include "ports/event_sink.hpp"
#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"
#include "ports/source_fetcher.hpp"
#include "testing/settable_clock.hpp"

namespace dlipkg::testing {

// Keeps every event, and lets a test wait (bounded) until some event has been reported.
class RecordingEventSink final : public EventSink {
 public:
  void Report(const Event& event) override {
    std::lock_guard lock(mutex_);
    events_.push_back(event);
    changed_.notify_all();
  }
  std::vector<Event> Events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::vector<Event> Of(EventKind kind) const {
    std::vector<Event> found;
    for (const Event& event : Events())
      if (event.kind == kind) found.push_back(event);
    return found;
  }
  // Waits until `count` events of `kind` were reported, at most `bound` of real time; false
  // when the bound passed first.
  bool WaitFor(EventKind kind, std::size_t count = 1,
               std::chrono::milliseconds bound = std::chrono::seconds(10)) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, bound, [&] {
      return static_cast<std::size_t>(std::count_if(
                 events_.begin(), events_.end(), [&](auto& e) { return e.kind == kind; })) >= count;
    });
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<Event> events_;
};

// Blobs in memory under their real SHA-256, held to the BlobStore contract (it runs through
// tests/contract/blob_store_contract.cpp like the real stores): spent writers refuse work,
// malformed keys are refused, readers check the bytes against the key on the last read, and
// temporaries (live writers, crashed leftovers) are counted so sweeps can be checked.
class FakeBlobStore final : public BlobStore {
 public:
  static std::string Key(std::string_view bytes) {
    Sha256Hasher hasher;
    hasher.Update(bytes);
    return hasher.FinishHex();
  }
  static bool WellFormedKey(const std::string& key) {
    return key.size() == 64 && std::ranges::all_of(key, [](char c) {
             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
  }

  class Writer final : public BlobWriter {
   public:
    explicit Writer(FakeBlobStore& store) : store_(store) { store_.AddTemporaries(1); }
    ~Writer() override {
      if (!spent_) store_.AddTemporaries(-1);
    }
    Result<void> Write(std::span<const char> bytes) override {
      if (spent_ || sealed_) return Fail(ErrorCode::kInternal, "the blob writer is spent");
      data_.append(bytes.data(), bytes.size());
      return {};
    }
    Result<BlobInfo> Seal() override {
      if (spent_) return Fail(ErrorCode::kInternal, "the blob writer is spent");
      sealed_ = true;
      return BlobInfo{Key(data_), static_cast<std::int64_t>(data_.size())};
    }
    Result<BlobInfo> Commit() override {
      if (spent_) return Fail(ErrorCode::kInternal, "the blob writer is spent");
      spent_ = true;
      const auto key = Key(data_);
      std::lock_guard lock(store_.mutex_);
      --store_.temporaries_;
      store_.blobs_.try_emplace(key, data_);  // an existing blob is kept, the copy dropped
      return BlobInfo{key, static_cast<std::int64_t>(data_.size())};
    }

   private:
    FakeBlobStore& store_;
    std::string data_;
    bool spent_ = false;
    bool sealed_ = false;
  };

  class Reader final : public BlobReader {
   public:
    Reader(std::string key, std::string data) : key_(std::move(key)), data_(std::move(data)) {}
    std::int64_t Size() const override { return static_cast<std::int64_t>(data_.size() - start_); }
    Result<void> Seek(std::int64_t offset) override {
      if (offset < 0 || static_cast<std::size_t>(offset) > data_.size() - start_)
        return Fail(ErrorCode::kBadRequest, "offset past the end of the blob");
      start_ += static_cast<std::size_t>(offset);
      offset_ = start_;
      whole_ = whole_ && offset == 0;
      return {};
    }
    Result<std::size_t> Read(std::span<char> buffer) override {
      const std::size_t n = std::min(buffer.size(), data_.size() - offset_);
      if (whole_ && n > 0 && offset_ + n == data_.size() && Key(data_) != key_)
        return Fail(ErrorCode::kCorrupted, "stored bytes do not match their SHA-256");
      std::copy_n(data_.data() + offset_, n, buffer.data());
      offset_ += n;
      return n;
    }

   private:
    std::string key_;
    std::string data_;
    std::size_t start_ = 0;   // where a Seek put the reader
    std::size_t offset_ = 0;  // how far it has read
    bool whole_ = true;
  };

  Result<std::unique_ptr<BlobWriter>> Create() override { return std::make_unique<Writer>(*this); }
  Result<std::unique_ptr<BlobReader>> Open(const std::string& sha) override {
    std::lock_guard lock(mutex_);
    if (!blobs_.contains(sha)) return Fail(ErrorCode::kNotFound, "no blob");
    return std::make_unique<Reader>(sha, blobs_.at(sha));
  }
  Result<bool> Exists(const std::string& sha) override {
    std::lock_guard lock(mutex_);
    return blobs_.contains(sha);
  }
  Result<void> Remove(const std::string& sha) override {
    if (!WellFormedKey(sha)) return Fail(ErrorCode::kBadRequest, "not a blob key");
    std::lock_guard lock(mutex_);
    blobs_.erase(sha);
    return {};
  }
  Result<std::vector<std::string>> List() override {
    std::lock_guard lock(mutex_);
    std::vector<std::string> keys;
    for (const auto& [k, v] : blobs_) keys.push_back(k);
    return keys;
  }
  // Removes what crashed writers left (whatever `min_age`: they count as old); live writers
  // keep theirs.
  Result<std::size_t> SweepTemporaries(std::chrono::milliseconds) override {
    std::lock_guard lock(mutex_);
    temporaries_ -= crashed_;
    return static_cast<std::size_t>(std::exchange(crashed_, 0));
  }
  std::size_t Count() {
    std::lock_guard lock(mutex_);
    return blobs_.size();
  }
  // For tests: temporaries in storage (live writers and crashed leftovers), one left by a
  // writer that crashed, and stored bytes altered behind the store's back.
  std::size_t Temporaries() {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(temporaries_);
  }
  void LeaveCrashedTemporary() {
    std::lock_guard lock(mutex_);
    ++crashed_;
    ++temporaries_;
  }
  void Tamper(const std::string& sha, std::string bytes) {
    std::lock_guard lock(mutex_);
    blobs_.at(sha) = std::move(bytes);
  }

 private:
  void AddTemporaries(int n) {
    std::lock_guard lock(mutex_);
    temporaries_ += n;
  }

  std::mutex mutex_;
  std::map<std::string, std::string> blobs_;
  int temporaries_ = 0;
  int crashed_ = 0;
};

// Answers each URL from a script: bytes, or an error. Unknown URLs: 404-like error.
class FakeFetcher final : public SourceFetcher {
 public:
  void Serve(const std::string& url, std::string bytes) { bytes_[url] = std::move(bytes); }
  void Fail(const std::string& url, Error error, int times = 1 << 30) {
    std::lock_guard lock(mutex_);
    errors_[url] = std::move(error);
    failures_left_[url] = times;
  }
  // The URL's source never ends: bytes flow until the sink refuses one (a runner stopping),
  // or 10 s pass.
  void StreamUntilRefused(const std::string& url) {
    std::lock_guard lock(mutex_);
    endless_.insert(url);
  }
  Result<std::int64_t> Fetch(std::string_view url, ByteSink& sink) override {
    ++calls;
    const std::string key(url);
    bool endless = false;
    {
      std::lock_guard lock(mutex_);
      if (errors_.contains(key) && failures_left_[key]-- > 0)
        return std::unexpected(errors_.at(key));
      endless = endless_.contains(key);
    }
    if (endless) return Endless(sink);
    if (!bytes_.contains(key))
      return dlipkg::Fail(ErrorCode::kSourceUnavailable, key + ": not found (HTTP 404)");
    const auto& data = bytes_.at(key);
    if (auto w = sink.Write(std::span<const char>(data.data(), data.size())); !w)
      return std::unexpected(w.error());
    return static_cast<std::int64_t>(data.size());
  }
  std::atomic<int> calls{0};

 private:
  static Result<std::int64_t> Endless(ByteSink& sink) {
    const auto bound = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::int64_t written = 0;
    while (std::chrono::steady_clock::now() < bound) {
      if (auto w = sink.Write(std::span<const char>("x", 1)); !w) return std::unexpected(w.error());
      if (++written % 4096 == 0) std::this_thread::yield();
    }
    return dlipkg::Fail(ErrorCode::kSourceUnavailable, "the endless source was never refused");
  }
  std::mutex mutex_;
  std::set<std::string> endless_;
  std::map<std::string, std::string> bytes_;
  std::map<std::string, Error> errors_;
  std::map<std::string, int> failures_left_;
};

class FakeMetadataStore final : public MetadataStore {
 public:
  Result<GroupRecord> ReplaceGroup(const GroupRecord& group,
                                   const std::vector<PackageRecord>& packages,
                                   std::vector<std::string>* replaced = nullptr,
                                   const BlobCheck* check = nullptr) override {
    std::unique_lock pins = LockPins(check);
    std::lock_guard lock(mutex_);
    if (auto valid = Writable(packages); !valid) return std::unexpected(valid.error());
    if (auto ok = ReleasePinsLocked(check); !ok) return std::unexpected(ok.error());
    GroupRecord stored = group;
    std::vector<std::string> dropped;
    if (auto it = groups_.find({group.project, group.name}); it != groups_.end()) {
      stored.create_time = it->second.create_time;
      for (const auto& old : it->second.packages) {
        Touch(group.project, group.name, old.name);
        dropped.push_back(old.sha256);
      }
    }
    for (const auto& p : packages) Touch(group.project, group.name, p.name);
    stored.packages = packages;
    groups_[{group.project, group.name}] = stored;
    QueueUnreferenced(dropped, replaced);
    return stored;
  }
  Result<GroupRecord> MergeIntoGroup(const GroupRecord& group,
                                     const std::vector<PackageRecord>& packages,
                                     std::vector<std::string>* replaced = nullptr,
                                     const BlobCheck* check = nullptr) override {
    std::unique_lock pins = LockPins(check);
    std::lock_guard lock(mutex_);
    if (auto valid = Writable(packages); !valid) return std::unexpected(valid.error());
    if (auto ok = ReleasePinsLocked(check); !ok) return std::unexpected(ok.error());
    auto [it, created] = groups_.try_emplace({group.project, group.name}, group);
    it->second.update_time = group.update_time;
    std::vector<std::string> dropped;
    for (const auto& p : packages) {
      Touch(group.project, group.name, p.name);
      auto& list = it->second.packages;
      auto old = std::find_if(list.begin(), list.end(), [&](auto& q) { return q.name == p.name; });
      if (old == list.end()) {
        list.push_back(p);
      } else {
        if (!old->sha256.empty()) dropped.push_back(old->sha256);
        const auto create_time = old->create_time;
        *old = p;
        old->create_time = create_time;
      }
    }
    QueueUnreferenced(dropped, replaced);
    return it->second;
  }
  Result<std::vector<PackageRecord>> PutUngrouped(const std::vector<PackageRecord>& packages,
                                                  std::vector<std::string>* replaced = nullptr,
                                                  const BlobCheck* check = nullptr) override {
    std::unique_lock pins = LockPins(check);
    std::lock_guard lock(mutex_);
    if (auto valid = Writable(packages); !valid) return std::unexpected(valid.error());
    if (auto ok = ReleasePinsLocked(check); !ok) return std::unexpected(ok.error());
    std::vector<PackageRecord> out;
    std::vector<std::string> dropped;
    for (auto p : packages) {
      p.group.clear();
      auto key = std::pair{p.project, p.name};
      Touch(p.project, "", p.name);
      if (ungrouped_.contains(key)) {
        p.create_time = ungrouped_.at(key).create_time;
        if (!ungrouped_.at(key).sha256.empty()) dropped.push_back(ungrouped_.at(key).sha256);
      }
      ungrouped_[key] = p;
      out.push_back(p);
    }
    QueueUnreferenced(dropped, replaced);
    return out;
  }
  Result<std::optional<PackageRecord>> GetPackage(const std::string& project,
                                                  const std::string& group,
                                                  const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto* p = Find(project, group, name);
    return p ? std::optional(*p) : std::nullopt;
  }
  Result<std::optional<GroupRecord>> GetGroup(const std::string& project,
                                              const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto it = groups_.find({project, name});
    return it == groups_.end() ? std::nullopt : std::optional(it->second);
  }
  Result<ProjectContents> ListProject(const std::string& project) override {
    std::lock_guard lock(mutex_);
    ProjectContents contents;
    for (const auto& [key, g] : groups_)
      if (key.first == project) contents.groups.push_back(g);
    for (const auto& [key, p] : ungrouped_)
      if (key.first == project) contents.ungrouped.push_back(p);
    return contents;
  }
  Result<PackagePage> ListPage(const PageRequest& request) override {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<const GroupRecord*, PackageRecord>> matching;  // in listing order
    for (const auto& [key, p] : ungrouped_)
      if (key.first == request.project && Matches(p, request.filter))
        matching.emplace_back(nullptr, p);
    for (const auto& [key, g] : groups_) {
      if (key.first != request.project) continue;
      std::vector<PackageRecord> by_name = g.packages;
      std::sort(by_name.begin(), by_name.end(),
                [](const auto& a, const auto& b) { return a.name < b.name; });
      for (const auto& p : by_name)
        if (Matches(p, request.filter)) matching.emplace_back(&g, p);
    }
    PackagePage page;
    page.total = matching.size();
    std::size_t skipped = 0;
    for (const auto& [g, p] : matching) {
      if (request.after &&
          std::pair(p.group, p.name) <= std::pair(request.after->group, request.after->name))
        continue;
      if (skipped++ < request.offset) continue;
      if (page.packages.size() == request.limit) break;
      page.packages.push_back(p);
      if (g && (page.groups.empty() || page.groups.back().name != g->name)) {
        GroupRecord copy = *g;
        copy.packages.clear();
        page.groups.push_back(copy);
      }
    }
    return page;
  }
  Result<std::vector<PackageRecord>> ListUngrouped(const std::string& project,
                                                   const PackageFilter& filter,
                                                   const std::string& after_name,
                                                   std::size_t limit) override {
    std::lock_guard lock(mutex_);
    std::vector<PackageRecord> out;
    for (const auto& [key, p] : ungrouped_)
      if (key.first == project && key.second > after_name && Matches(p, filter) &&
          out.size() < limit)
        out.push_back(p);
    return out;
  }
  Result<GroupBatch> ListGroups(const std::string& project, const PackageFilter& filter,
                                const std::string& after_group, std::size_t max_groups) override {
    std::lock_guard lock(mutex_);
    GroupBatch batch;
    std::size_t looked_at = 0;
    for (const auto& [key, g] : groups_) {
      if (key.first != project || key.second <= after_group) continue;
      if (looked_at++ == max_groups) break;
      batch.next_after = g.name;
      GroupRecord copy = g;
      std::erase_if(copy.packages, [&](const auto& p) { return !Matches(p, filter); });
      if (filter.empty() || !copy.packages.empty()) batch.groups.push_back(copy);
    }
    if (looked_at <= max_groups) batch.next_after.reset();  // none left
    return batch;
  }
  static bool Matches(const PackageRecord& p, const PackageFilter& filter) {
    if (filter.kind && p.kind != *filter.kind) return false;
    const auto& needle = filter.name_contains;
    if (!needle.empty() && p.name.find(needle) == std::string::npos &&
        p.group.find(needle) == std::string::npos)
      return false;
    return std::all_of(filter.tags.begin(), filter.tags.end(), [&](const TagFilter& f) {
      return std::any_of(p.tags.begin(), p.tags.end(), [&](const Tag& t) {
        return t.key == f.key && (!f.value || t.value == *f.value);
      });
    });
  }
  Result<PackageRecord> DeletePackage(const std::string& project, const std::string& group,
                                      const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto* p = Find(project, group, name);
    if (!p) return std::unexpected(Absent(group, name).error());
    PackageRecord copy = *p;
    Touch(project, group, name);
    if (group.empty()) {
      ungrouped_.erase({project, name});
    } else {
      auto& list = groups_.at({project, group}).packages;
      std::erase_if(list, [&](auto& q) { return q.name == name; });
    }
    QueueUnreferenced({copy.sha256}, nullptr);
    return copy;
  }
  Result<void> SetGroupOwner(const std::string& project, const std::string& group,
                             const std::string& owner, std::int64_t now_ms) override {
    std::lock_guard lock(mutex_);
    auto it = groups_.find({project, group});
    if (it == groups_.end()) return Fail(ErrorCode::kNotFound, "group " + group + " not found");
    it->second.owner = owner;
    it->second.update_time = now_ms;
    for (auto& p : it->second.packages) {
      p.owner = owner;
      p.update_time = now_ms;
    }
    return {};
  }
  Result<void> SetPackageOwner(const std::string& project, const std::string& group,
                               const std::string& name, const std::string& owner,
                               std::int64_t now_ms) override {
    std::lock_guard lock(mutex_);
    auto* p = Find(project, group, name);
    if (!p) return Absent(group, name);
    p->owner = owner;
    p->update_time = now_ms;
    return {};
  }
  Result<void> MarkCorrupt(const std::string& project, const std::string& group,
                           const std::string& name, const std::string& sha256,
                           const std::string& reason, std::int64_t now_ms) override {
    std::lock_guard lock(mutex_);
    auto* p = Find(project, group, name);
    if (!p) return Absent(group, name);
    if (p->sha256 != sha256) return {};
    p->status = PackageStatus::kFailed;
    p->status_reason = reason;
    p->update_time = now_ms;
    return {};
  }
  Result<bool> IsBlobReferenced(const std::string& sha) override {
    auto all = ReferencedBlobs();
    return std::find(all->begin(), all->end(), sha) != all->end();
  }
  Result<void> PinBlob(const std::string& sha, const std::string& pin_id,
                       std::int64_t until) override {
    std::lock_guard lock(pin_mutex_);
    pins_[{sha, pin_id}] = until;
    return {};
  }
  Result<void> UnpinBlob(const std::string& sha, const std::string& pin_id) override {
    std::lock_guard lock(pin_mutex_);
    pins_.erase({sha, pin_id});
    return {};
  }
  // The pin mutex is held across the check and `remove`, as the real stores hold the blob lock.
  Result<bool> ReclaimBlob(const std::string& sha, std::int64_t now,
                           const std::function<Result<void>()>& remove) override {
    std::lock_guard lock(pin_mutex_);
    for (const auto& [key, until] : pins_)
      if (key.first == sha && until > now) return false;
    const bool referenced = *IsBlobReferenced(sha);
    if (!referenced) {
      if (auto ok = remove(); !ok) return std::unexpected(ok.error());
    }
    std::lock_guard queue_lock(mutex_);
    queue_.erase(sha);
    sightings_.erase(sha);
    return !referenced;
  }
  Result<void> QueueReclaims(const std::vector<std::string>& shas) override {
    std::lock_guard lock(mutex_);
    for (const auto& sha : shas)
      if (!sha.empty()) queue_.try_emplace(sha, QueuedRow{});
    return {};
  }
  Result<std::vector<QueuedReclaim>> DueReclaims(std::int64_t now, std::size_t limit) override {
    std::lock_guard lock(mutex_);
    std::vector<QueuedReclaim> due;
    for (const auto& [sha, row] : queue_)
      if (row.next_attempt <= now) due.push_back({sha, row.attempts});
    std::stable_sort(due.begin(), due.end(),
                     [](const auto& a, const auto& b) { return a.attempts < b.attempts; });
    if (due.size() > limit) due.resize(limit);
    return due;
  }
  Result<void> DeferReclaim(const std::string& sha, std::int64_t next) override {
    std::lock_guard lock(mutex_);
    if (auto it = queue_.find(sha); it != queue_.end()) {
      ++it->second.attempts;
      it->second.next_attempt = next;
    }
    return {};
  }
  Result<bool> TakeCollectorLease(const std::string& owner, std::int64_t now,
                                  std::int64_t until) override {
    std::lock_guard lock(mutex_);
    if (lease_owner_ != owner && lease_until_ > now) return false;
    lease_owner_ = owner;
    lease_until_ = until;
    return true;
  }
  Result<void> ReleaseCollectorLease(const std::string& owner) override {
    std::lock_guard lock(mutex_);
    if (lease_owner_ == owner) lease_until_ = 0;
    return {};
  }
  Result<std::vector<std::string>> AbandonedBlobs(const std::vector<std::string>& stored,
                                                  std::int64_t now, std::int64_t grace) override {
    std::lock_guard pin_lock(pin_mutex_);
    std::lock_guard lock(mutex_);
    const auto referenced = ReferencedLocked();
    std::erase_if(sightings_, [&](const auto& seen) { return referenced.contains(seen.first); });
    std::vector<std::string> abandoned;
    for (const auto& sha : stored) {
      bool wanted = referenced.contains(sha);
      for (const auto& [key, until] : pins_) wanted = wanted || (key.first == sha && until > now);
      if (wanted) {
        sightings_.erase(sha);
        continue;
      }
      if (sightings_.try_emplace(sha, now).first->second <= now - grace) abandoned.push_back(sha);
    }
    return abandoned;
  }
  Result<std::size_t> DropExpiredPins(std::int64_t now) override {
    std::lock_guard lock(pin_mutex_);
    return std::erase_if(pins_, [&](const auto& pin) { return pin.second <= now; });
  }
  // For tests: the reclaim queue's hashes.
  std::vector<std::string> QueuedHashes() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [sha, row] : queue_) out.push_back(sha);
    return out;
  }
  // How often the package was written (put, merged, replaced, deleted): a job holds on to the
  // number it saw, and a later write supersedes it, as the job row does in the real stores.
  std::int64_t Version(const std::string& project, const std::string& group,
                       const std::string& name) {
    std::lock_guard lock(mutex_);
    auto it = versions_.find({project, group, name});
    return it == versions_.end() ? 0 : it->second;
  }
  // Rewrites a stored package in place (the job queue settling a job): its group is left as
  // it is. False when the package is gone.
  bool Overwrite(const PackageRecord& package) {
    std::lock_guard lock(mutex_);
    auto* p = Find(package.project, package.group, package.name);
    if (p == nullptr) return false;
    const std::string previous = p->sha256;
    *p = package;
    Touch(package.project, package.group, package.name);
    QueueUnreferenced({previous}, nullptr);
    return true;
  }
  // Every package of every project, for the job queue's start-up recovery.
  std::vector<PackageRecord> AllPackages() {
    std::lock_guard lock(mutex_);
    std::vector<PackageRecord> all;
    for (const auto& [k, g] : groups_) all.insert(all.end(), g.packages.begin(), g.packages.end());
    for (const auto& [k, p] : ungrouped_) all.push_back(p);
    return all;
  }
  std::size_t PinCount() {
    std::lock_guard lock(pin_mutex_);
    return pins_.size();
  }
  // A BlobCheck as the SQL stores apply it (MetadataSql::ReleasePins): live pins released,
  // the bytes of run-out ones looked at. For the job queue; the commits above hold the pin
  // lock across the whole write, as the real stores hold the blobs' locks.
  Result<void> ReleasePins(const BlobCheck& check) {
    std::lock_guard lock(pin_mutex_);
    return ReleasePinsLocked(&check);
  }
  Result<std::vector<std::string>> ReferencedBlobs() override {
    std::lock_guard lock(mutex_);
    const auto shas = ReferencedLocked();
    return std::vector<std::string>(shas.begin(), shas.end());
  }

 private:
  // What the real stores' uniqueness constraints refuse, refused here as a whole and before
  // anything changes: a name twice in one write, a tag key twice on one package.
  static Result<void> Writable(const std::vector<PackageRecord>& packages) {
    std::set<std::string> names;
    for (const auto& p : packages) {
      if (!names.insert(p.name).second)
        return Fail(ErrorCode::kInternal, "package " + p.name + " written twice");
      std::set<std::string> keys;
      for (const auto& tag : p.tags)
        if (!keys.insert(tag.key).second)
          return Fail(ErrorCode::kInternal, "tag " + tag.key + " given twice");
    }
    return {};
  }
  static Result<void> Absent(const std::string& group, const std::string& name) {
    return Fail(ErrorCode::kNotFound,
                "package " + (group.empty() ? "" : group + "/") + name + " not found");
  }
  PackageRecord* Find(const std::string& project, const std::string& group,
                      const std::string& name) {
    if (group.empty()) {
      auto it = ungrouped_.find({project, name});
      return it == ungrouped_.end() ? nullptr : &it->second;
    }
    auto it = groups_.find({project, group});
    if (it == groups_.end()) return nullptr;
    for (auto& p : it->second.packages)
      if (p.name == name) return &p;
    return nullptr;
  }
  void Touch(const std::string& project, const std::string& group, const std::string& name) {
    versions_[{project, group, name}] = ++last_version_;
  }
  std::set<std::string> ReferencedLocked() const {
    std::set<std::string> shas;
    for (const auto& [k, g] : groups_)
      for (const auto& p : g.packages) shas.insert(p.sha256);
    for (const auto& [k, p] : ungrouped_) shas.insert(p.sha256);
    shas.erase("");  // a package still uploading its first bytes references none
    return shas;
  }
  // As the real stores do in the transaction that dropped the references (mutex_ held).
  void QueueUnreferenced(const std::vector<std::string>& dropped,
                         std::vector<std::string>* replaced) {
    const auto referenced = ReferencedLocked();
    for (const auto& sha : dropped) {
      if (replaced != nullptr) replaced->push_back(sha);
      if (!sha.empty() && !referenced.contains(sha)) queue_.try_emplace(sha, QueuedRow{});
    }
  }
  struct QueuedRow {
    std::int64_t attempts = 0;
    std::int64_t next_attempt = 0;
  };
  std::map<std::string, QueuedRow> queue_;
  std::map<std::string, std::int64_t> sightings_;
  std::string lease_owner_;
  std::int64_t lease_until_ = 0;
  std::unique_lock<std::mutex> LockPins(const BlobCheck* check) {
    std::unique_lock pins(pin_mutex_, std::defer_lock);
    if (check != nullptr && !check->pins.empty()) pins.lock();
    return pins;
  }
  Result<void> ReleasePinsLocked(const BlobCheck* check) {
    if (check == nullptr) return {};
    for (const auto& pin : check->pins) {  // first every check, so a refusal changes nothing
      auto it = pins_.find({pin.sha256, pin.pin_id});
      const bool live = it != pins_.end() && it->second > check->now_ms;
      if (live || !check->exists) continue;
      auto stored = check->exists(pin.sha256);
      if (!stored) return std::unexpected(stored.error());
      if (!*stored)
        return Fail(ErrorCode::kInternal,
                    "The stored bytes were reclaimed by a concurrent delete; retry the upload.",
                    /*retryable=*/true);
    }
    for (const auto& pin : check->pins) pins_.erase({pin.sha256, pin.pin_id});
    return {};
  }
  std::mutex mutex_;
  std::mutex pin_mutex_;
  std::map<std::tuple<std::string, std::string, std::string>, std::int64_t> versions_;
  std::int64_t last_version_ = 0;
  std::map<std::pair<std::string, std::string>, std::int64_t> pins_;
  std::map<std::pair<std::string, std::string>, GroupRecord> groups_;
  std::map<std::pair<std::string, std::string>, PackageRecord> ungrouped_;
};

// A job queue over FakeMetadataStore: package writes go through the store's own methods; each
// job remembers the package's version it wrote, so any later write of the package supersedes
// the job (held to the JobQueue contract). One mutex; no persistence.
class FakeJobQueue final : public JobQueue {
 public:
  explicit FakeJobQueue(FakeMetadataStore& metadata) : metadata_(metadata) {}

  Result<EnqueuedUploads> EnqueueUploads(const std::optional<GroupRecord>& group,
                                         const std::vector<PackageRecord>& packages,
                                         const std::vector<std::string>& urls,
                                         std::int64_t deadline_ms,
                                         std::size_t max_queued) override {
    std::lock_guard lock(mutex_);
    std::set<std::string> names;
    for (const auto& p : packages)
      if (!names.insert(p.name).second) return Fail(ErrorCode::kInternal, "a name given twice");
    const auto of_project = std::ranges::count_if(jobs_, [&](const auto& entry) {
      return !packages.empty() && entry.second.project == packages.front().project;
    });
    if (static_cast<std::size_t>(of_project) + packages.size() > max_queued)
      return Fail(ErrorCode::kQuotaExceeded, "queue full");
    EnqueuedUploads out;
    std::vector<PackageRecord> rows;
    for (std::size_t i = 0; i < packages.size(); ++i) {
      PackageRecord p = packages[i];
      p.status = PackageStatus::kUploading;
      p.is_async = true;
      auto old = metadata_.GetPackage(p.project, p.group, p.name);
      p.sha256 = *old ? (*old)->sha256 : "";
      p.size = *old ? (*old)->size : 0;
      if (*old) {  // the old bytes stay until the job completes
        p.underlying_name = (*old)->underlying_name;
        p.create_time = (*old)->create_time;
      }
      rows.push_back(p);
      const std::int64_t id = ++next_id_;
      jobs_[id] = UploadJob{id, p.project, p.group, p.name, urls[i], 0, deadline_ms, ""};
      out.job_ids.push_back(id);
    }
    if (group) {
      out.group = *metadata_.MergeIntoGroup(*group, rows);
    } else {
      (void)metadata_.PutUngrouped(rows);
    }
    for (auto& [id, job] : jobs_)
      if (!version_.contains(id))
        version_[id] = metadata_.Version(job.project, job.group, job.name);
    out.packages = rows;
    return out;
  }
  Result<std::vector<UploadJob>> ClaimJobs(const std::string& worker, std::int64_t now,
                                           std::int64_t until, std::size_t max_jobs) override {
    std::lock_guard lock(mutex_);
    last_claim_at_ = std::max(last_claim_at_, now);
    ++claim_calls_;
    claimed_.notify_all();
    std::erase_if(jobs_, [&](const auto& entry) { return Superseded(entry.second); });
    std::vector<UploadJob> out;
    while (out.size() < max_jobs) {
      UploadJob* soonest = nullptr;  // due soonest, then queued first
      for (auto& [id, job] : jobs_) {
        if (due_[id] > now || lease_until_[id] > now) continue;
        if (soonest == nullptr || due_[id] < due_[soonest->id]) soonest = &job;
      }
      if (soonest == nullptr) break;
      lease_[soonest->id] = worker;
      lease_until_[soonest->id] = std::max(until, now + 1);  // never claimed twice in one call
      soonest->attempts += 1;
      out.push_back(*soonest);
    }
    if (!out.empty()) claimed_sizes.push_back(out.size());
    return out;
  }
  Result<bool> RenewLease(std::int64_t id, const std::string& worker, std::int64_t until) override {
    std::lock_guard lock(mutex_);
    if (lease_[id] != worker) return false;
    lease_until_[id] = until;
    return true;
  }
  Result<std::vector<CompletionResult>> CompleteJobs(const std::vector<JobCompletion>& done,
                                                     const std::string& worker,
                                                     std::int64_t now) override {
    std::lock_guard lock(mutex_);
    ++complete_calls_;
    std::vector<CompletionResult> results;
    for (const auto& c : done) {
      if (auto released = metadata_.ReleasePins(c.check); !released) {
        results.push_back(std::unexpected(released.error()));
        continue;
      }
      results.push_back(CompleteOne(c.job, worker, c.blob, c.underlying_name, now));
    }
    return results;
  }

  Result<void> RetryJob(const UploadJob& job, const std::string& worker, std::int64_t next,
                        const std::string& reason) override {
    std::lock_guard lock(mutex_);
    if (lease_[job.id] != worker) return {};
    lease_[job.id] = "";
    lease_until_[job.id] = 0;
    due_[job.id] = next;
    jobs_.at(job.id).last_error = reason;
    retries.push_back(reason);
    return {};
  }
  Result<void> FailJob(const UploadJob& job, const std::string& worker, const std::string& reason,
                       std::int64_t now) override {
    std::lock_guard lock(mutex_);
    if (!Responsible(job, worker)) return {};
    auto p = **metadata_.GetPackage(job.project, job.group, job.name);
    p.status = PackageStatus::kFailed;
    p.status_reason = reason;
    p.update_time = now;
    Write(p);
    Forget(job.id);
    return {};
  }
  // As a single-instance store recovers: every lease is released (its holder is gone), and a
  // package left UPLOADING with no job to finish it fails, keeping its previous bytes.
  Result<std::size_t> RecoverAfterRestart(std::int64_t now_ms) override {
    std::lock_guard lock(mutex_);
    std::erase_if(jobs_, [&](const auto& entry) { return Superseded(entry.second); });
    for (auto& [id, until] : lease_until_) until = 0;
    for (auto& [id, worker] : lease_) worker.clear();
    std::set<std::tuple<std::string, std::string, std::string>> queued;
    for (const auto& [id, job] : jobs_) queued.insert({job.project, job.group, job.name});
    for (auto p : metadata_.AllPackages()) {
      if (p.status != PackageStatus::kUploading || queued.contains({p.project, p.group, p.name}))
        continue;
      p.status = PackageStatus::kFailed;
      p.status_reason = "the upload was interrupted by a restart";
      p.update_time = now_ms;
      Write(p);
    }
    return jobs_.size();
  }
  Result<std::size_t> CountQueued() override {
    std::lock_guard lock(mutex_);
    return jobs_.size();
  }
  // Waits (at most `bound` of real time) until a worker has looked for due jobs at `now_ms` or
  // later: what a test stepping the clock waits for before checking that nothing was due.
  bool WaitForClaimAt(std::int64_t now_ms,
                      std::chrono::milliseconds bound = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return claimed_.wait_for(lock, bound, [&] { return last_claim_at_ >= now_ms; });
  }
  std::vector<std::string> retries;

  // The size of each claim that took jobs, in order (guarded by the queue's mutex).
  std::vector<std::size_t> claimed_sizes;
  // Calls of ClaimJobs and CompleteJobs so far: how many transactions the real stores wrote.
  std::size_t ClaimCalls() {
    std::lock_guard lock(mutex_);
    return claim_calls_;
  }
  std::size_t CompleteCalls() {
    std::lock_guard lock(mutex_);
    return complete_calls_;
  }

 private:
  bool Superseded(const UploadJob& job) {
    return !version_.contains(job.id) ||
           version_.at(job.id) != metadata_.Version(job.project, job.group, job.name);
  }
  Result<std::optional<std::string>> CompleteOne(const UploadJob& job, const std::string& worker,
                                                 const BlobInfo& blob, const std::string& name,
                                                 std::int64_t now) {
    if (!Responsible(job, worker)) return std::optional<std::string>();
    auto p = **metadata_.GetPackage(job.project, job.group, job.name);
    const std::string previous = p.sha256;
    p.status = PackageStatus::kReady;
    p.sha256 = blob.sha256;
    p.size = blob.size;
    p.underlying_name = name;
    p.update_time = now;
    Write(p);
    Forget(job.id);
    return std::optional(previous);
  }
  bool Responsible(const UploadJob& job, const std::string& worker) {
    if (!jobs_.contains(job.id)) return false;
    if (Superseded(job)) {
      Forget(job.id);
      return false;
    }
    return lease_[job.id] == worker;
  }
  void Forget(std::int64_t id) {
    jobs_.erase(id);
    version_.erase(id);
  }
  void Write(const PackageRecord& p) { (void)metadata_.Overwrite(p); }

  FakeMetadataStore& metadata_;
  std::mutex mutex_;
  std::condition_variable claimed_;
  std::size_t claim_calls_ = 0;
  std::size_t complete_calls_ = 0;
  std::int64_t last_claim_at_ = 0;
  std::int64_t next_id_ = 0;
  std::map<std::int64_t, UploadJob> jobs_;
  std::map<std::int64_t, std::string> lease_;
  std::map<std::int64_t, std::int64_t> lease_until_;
  std::map<std::int64_t, std::int64_t> due_;
  std::map<std::int64_t, std::int64_t> version_;  // the package's version the job wrote
};

// Domain values from text a test knows to be valid (an invalid one throws, failing the test).
template <class T>
T Valid(std::string_view text) {
  return T::Parse(text).value();
}

// The package `name` in `group` ("" for an ungrouped one) of `project`.
inline PackageId PackageAt(const std::string& project, const std::string& group,
                           const std::string& name) {
  return PackageId{Valid<ProjectId>(project),
                   group.empty() ? std::nullopt : std::optional(Valid<GroupName>(group)),
                   Valid<ResourceName>(name)};
}

// An upload of `urls` into `group` (nullopt: ungrouped) of project p1, by alice.
inline UploadCommand UploadOf(const std::vector<std::string>& urls, PackageKind kind,
                              const std::optional<std::string>& group, GroupMode mode) {
  return UploadCommand{.project = Valid<ProjectId>("p1"),
                       .owner = "alice",
                       .kind = kind,
                       .group = group ? std::optional(Valid<GroupName>(*group)) : std::nullopt,
                       .mode = mode,
                       .sources = SourceList::Parse(urls).value()};
}

// A package's stored bytes through the service, or "<error message>".
inline std::string ContentOf(PackageService& service, const std::string& project,
                             const std::string& group, const std::string& name) {
  auto reader = service.OpenContent(PackageAt(project, group, name));
  if (!reader) return "<" + reader.error().message + ">";
  std::string out(static_cast<std::size_t>((*reader)->Size()), '\0');
  (void)(*reader)->Read(out);
  return out;
}

}  // namespace dlipkg::testing
