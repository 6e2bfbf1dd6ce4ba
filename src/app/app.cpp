#include "app/app.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <thread>
#include <variant>

#include "adapters/auth/credential_authenticator.hpp"
#include "adapters/auth/credential_store.hpp"
#include "adapters/auth/hmac_url_signer.hpp"
#include "adapters/common/log_event_sink.hpp"
#include "adapters/common/random_jitter.hpp"
#include "adapters/common/system_clock.hpp"
#include "adapters/common/xxh3_checksum.hpp"
#include "adapters/metadata/sql_metadata_store.hpp"
#include "adapters/metrics/counting_decorators.hpp"
#include "adapters/metrics/prometheus_metrics.hpp"
#include "adapters/sources/curl_fetcher.hpp"
#include "adapters/text/icu_text_rules.hpp"
#include "api/resources_api.hpp"
#include "app/blob_store_factory.hpp"
#include "app/config.hpp"
#include "app/data_dir_lock.hpp"
#include "app/fan_out_event_sink.hpp"
#include "app/stores.hpp"
#include "client/cli.hpp"
#include "core/collector.hpp"
#include "core/job_runner.hpp"
#include "core/package_service.hpp"
#include "core/url_grants.hpp"
#include "http/server.hpp"

namespace dlipkg::app {
namespace {

constexpr std::chrono::milliseconds kCancelMargin{5'000};

SourcePolicy PolicyFrom(const ServeConfig& config, std::vector<ObjectStore> object_stores) {
  SourcePolicy policy;
  policy.allow_sources = config.allow_sources;
  policy.deny_sources = config.deny_sources;
  for (const auto& root : config.allow_file_roots) policy.allow_file_roots.emplace_back(root);
  policy.object_stores = std::move(object_stores);
  policy.max_object_bytes = config.max_object_size;
  policy.connect_timeout = std::chrono::seconds(config.fetch_connect_timeout_s);
  policy.first_byte_timeout = std::chrono::seconds(config.fetch_first_byte_timeout_s);
  policy.stall_timeout = std::chrono::seconds(config.fetch_stall_timeout_s);
  policy.low_speed_bytes_per_s = config.fetch_low_speed_limit;
  policy.total_timeout = std::chrono::seconds(config.fetch_timeout_s);
  return policy;
}

Result<std::vector<api::Module>> LoadModules(const std::string& file) {
  if (file.empty()) return std::vector<api::Module>{};
  std::ifstream in(file);
  const std::string text{std::istreambuf_iterator<char>(in), {}};
  if (!in.good() && !in.eof()) return Fail(ErrorCode::kBadRequest, "cannot read the file");
  return api::DecodeModules(text);
}

// What the files the configuration names say (apart from the credentials, which SIGHUP
// reloads), each read once and validated before any store is opened or recovered: a mistake
// in one of them stops the start with nothing changed.
struct ConfigFiles {
  std::vector<ObjectStore> object_stores;  // --object-stores
  std::vector<api::Module> modules;        // --modules
};

Result<ConfigFiles> ReadConfigFiles(const ServeConfig& config) {
  ConfigFiles files;
  if (!config.object_stores_file.empty()) {
    auto stores = LoadObjectStores(config.object_stores_file);
    if (!stores) return Fail(stores.error().code, "--object-stores: " + stores.error().message);
    files.object_stores = std::move(*stores);
  }
  auto modules = LoadModules(config.modules_file);
  if (!modules) return Fail(modules.error().code, "--modules: " + modules.error().message);
  files.modules = std::move(*modules);
  return files;
}

// A name for this process's job leases: unique across instances and restarts.
std::string WorkerId() {
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid()) + "-" +
         std::to_string(std::random_device{}() % 1'000'000);
}

// Crash-test hook: DLIPKG_TEST_FAULT=<point> kills the process at that point of an async job
// ("before-fetch", "mid-fetch", "after-blob-commit"), as a power cut would.
std::function<void(std::string_view)> FaultHook() {
  const char* point = std::getenv("DLIPKG_TEST_FAULT");
  if (!point || !*point) return nullptr;
  spdlog::warn("fault injection armed at '{}': the process will kill itself there", point);
  return [wanted = std::string(point)](std::string_view at) {
    if (at == wanted) kill(getpid(), SIGKILL);
  };
}

// SIGTERM, SIGINT (stop) and SIGHUP (reload the credentials), blocked in the calling thread
// before any other thread starts so that every thread inherits the mask and only the sigwait
// below sees them; a SIGHUP can then never kill the process by its default action.
sigset_t BlockServerSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// At start and at every reload: secrets readable by every local user deserve a word.
void WarnIfReadableByOthers(const std::string& file) {
  std::error_code ec;
  const auto perms = std::filesystem::status(file, ec).permissions();
  if (!ec && (perms & std::filesystem::perms::others_read) != std::filesystem::perms::none)
    spdlog::warn("the credential file {} is readable by every local user", file);
}

// Reloads the credential file. Requests in flight keep the snapshot they started with; a file
// that no longer loads leaves the old credentials in force. Messages name no secret.
void ReloadCredentials(CredentialStore* credentials, const std::string& file) {
  if (credentials == nullptr) {
    spdlog::info("received SIGHUP; no --credentials file to reload");
    return;
  }
  WarnIfReadableByOthers(file);
  auto reloaded = credentials->Reload();
  if (!reloaded)
    spdlog::warn("credentials not reloaded, the previous ones stay in force: {}",
                 reloaded.error().message);
  else
    spdlog::info("credentials reloaded: {} user(s)", (*reloaded)->users.size());
}

// Blocks until SIGTERM or SIGINT, reloading the credentials on each SIGHUP meanwhile.
int WaitForStopSignal(const sigset_t& signals, CredentialStore* credentials,
                      const std::string& file) {
  for (;;) {
    int signal = 0;
    sigwait(&signals, &signal);
    if (signal != SIGHUP) return signal;
    ReloadCredentials(credentials, file);
  }
}

// Async jobs go back to the queue at once (the next start, or another instance, resumes them);
// synchronous uploads get most of the grace period, then their fetches are cancelled, so the
// server stops within the grace whatever the sources do.
void StopWithinGrace(http::Server& server, JobRunner& runner, PackageService& service,
                     std::chrono::milliseconds grace) {
  std::jthread jobs([&runner] { runner.Stop(); });
  std::mutex mutex;
  std::condition_variable changed;
  bool stopped = false;
  // Room left after the cancellation for the handlers to answer and the connections to close.
  const auto cancel_at = grace - std::min<std::chrono::milliseconds>(grace / 2, kCancelMargin);
  std::jthread watchdog([&] {
    std::unique_lock lock(mutex);
    if (changed.wait_for(lock, cancel_at, [&] { return stopped; })) return;
    spdlog::warn("shutdown: cancelling the source fetches of uploads still running");
    service.CancelFetches();
  });
  server.Stop();
  std::lock_guard lock(mutex);
  stopped = true;
  changed.notify_all();
}

// With a credential file: the store and the authenticator over it. Without: warns when the
// server is open to non-loopback clients (the command line allowed it with --insecure-no-auth).
struct Authentication {
  std::unique_ptr<CredentialStore> store;
  std::unique_ptr<CredentialAuthenticator> authenticator;
};

Result<Authentication> SetUpAuthentication(const ServeConfig& config, const Clock& clock) {
  if (config.credentials_file.empty()) {
    if (config.insecure_no_auth)
      spdlog::warn(
          "authentication is disabled (--insecure-no-auth): anyone who can reach {} "
          "can read, replace and delete every project's packages",
          config.listen_host);
    else
      spdlog::info("no --credentials: serving loopback clients only, as user '{}'", config.owner);
    return Authentication{};
  }
  if (config.insecure_no_auth)
    spdlog::warn("--insecure-no-auth is ignored: --credentials enables authentication");
  WarnIfReadableByOthers(config.credentials_file);
  auto store = CredentialStore::Open(config.credentials_file);
  if (!store) return std::unexpected(store.error());
  spdlog::info("authentication enabled: {} user(s) from {}", (*store)->Snapshot()->users.size(),
               config.credentials_file);
  auto authenticator = std::make_unique<CredentialAuthenticator>(**store, clock);
  return Authentication{std::move(*store), std::move(authenticator)};
}

// The directories of single-instance stores (SQLite file, blob directory, the data directory),
// each locked so that a second server on them stops before touching anything. Shared metadata
// (PostgreSQL) means several instances are expected: nothing is locked then.
Result<std::vector<std::unique_ptr<DataDirLock>>> LockLocalStores(const ServeConfig& config) {
  std::vector<std::unique_ptr<DataDirLock>> locks;
  const auto* sqlite = std::get_if<SqliteMetadata>(&config.metadata);
  if (sqlite == nullptr) return locks;
  std::vector<std::filesystem::path> dirs{config.data_dir};
  dirs.push_back(std::filesystem::path(sqlite->path).parent_path());
  if (const auto* dir = std::get_if<DirBlobs>(&config.blobs)) dirs.emplace_back(dir->path);
  std::vector<std::filesystem::path> seen;
  for (auto& dir : dirs) {
    if (dir.empty()) dir = ".";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    auto key = std::filesystem::weakly_canonical(dir, ec);
    if (ec) key = dir;
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    auto lock = DataDirLock::Acquire(dir);
    if (!lock) return std::unexpected(lock.error());
    locks.push_back(std::move(*lock));
  }
  return locks;
}

// Samples the queue depth for /metrics in the background, so that a scrape never queries a
// store; with shared stores the count is every instance's.
class QueueDepthSampler {
 public:
  QueueDepthSampler(JobQueue& jobs, Metrics& metrics) : jobs_(jobs), metrics_(metrics) {}
  void Start() {
    thread_ = std::jthread([this](std::stop_token stop) {
      std::mutex mutex;
      std::condition_variable_any wake;
      while (!stop.stop_requested()) {
        if (auto queued = jobs_.CountQueued(); queued)
          metrics_.SetQueuedJobs(static_cast<std::int64_t>(*queued));
        std::unique_lock lock(mutex);
        wake.wait_for(lock, stop, kPeriod, [] { return false; });
      }
    });
  }

 private:
  static constexpr std::chrono::seconds kPeriod{5};
  JobQueue& jobs_;
  Metrics& metrics_;
  std::jthread thread_;  // declared last: stopped and joined first
};

// The token GET /metrics requires, from --metrics-token-file ("" without one).
Result<std::string> LoadMetricsToken(const ServeConfig& config) {
  if (config.metrics_token_file.empty()) return std::string();
  std::ifstream in(config.metrics_token_file);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (!in.good() && !in.eof())
    return Fail(ErrorCode::kInternal, "cannot read " + config.metrics_token_file);
  if (token.size() < 16)
    return Fail(ErrorCode::kBadRequest,
                config.metrics_token_file + ": the metrics token must be at least 16 characters");
  return token;
}

int Serve(const ServeConfig& config) {
  const sigset_t signals = BlockServerSignals();
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::info("{}", StartupSummary(config));
  SystemClock clock;
  auto auth = SetUpAuthentication(config, clock);
  if (!auth) return spdlog::error("credentials: {}", auth.error().message), 1;
  auto files = ReadConfigFiles(config);
  if (!files) return spdlog::error("{}", files.error().message), 1;
  const std::filesystem::path data_dir = config.data_dir;
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    spdlog::error("cannot create the data directory {}: {}", data_dir.string(), ec.message());
    return 1;
  }
  // Before anything reads or changes the stores.
  auto locks = LockLocalStores(config);
  if (!locks) return spdlog::error("{}", locks.error().message), 1;
  auto blobs = OpenBlobStore(config, files->object_stores);
  if (!blobs) return spdlog::error("blob store: {}", blobs.error().message), 1;
  auto stores = OpenMetadataStores(config);
  if (!stores) return spdlog::error("metadata store: {}", stores.error().message), 1;
  spdlog::info("metadata store: {}", stores->description);
  MetadataStore& metadata = *stores->metadata;
  JobQueue& jobs = *stores->jobs;
  auto metrics_token = LoadMetricsToken(config);
  if (!metrics_token) return spdlog::error("{}", metrics_token.error().message), 1;
  // Instrumentation wraps the adapters; without --metrics the core talks to them directly.
  std::unique_ptr<PrometheusMetrics> prometheus;
  if (config.metrics) prometheus = std::make_unique<PrometheusMetrics>(std::string(Version()));
  std::optional<CountingBlobStore> counted_blobs;
  if (prometheus) counted_blobs.emplace(**blobs, *prometheus);
  BlobStore& blob_store = counted_blobs ? static_cast<BlobStore&>(*counted_blobs) : **blobs;
  auto* sql_store = dynamic_cast<SqlMetadataStore*>(stores->metadata.get());
  if (prometheus && sql_store != nullptr)
    sql_store->SetErrorHook([metrics = prometheus.get()](std::string_view operation) {
      metrics->CountStoreError("metadata", operation);
    });
  std::vector<api::ReadinessCheck> readiness{
      {"metadata store", sql_store}, {"blob store", dynamic_cast<ReadinessProbe*>(blobs->get())}};
  const std::size_t store_count = files->object_stores.size();
  auto curl_fetcher = CurlFetcher::Create(PolicyFrom(config, files->object_stores));
  if (!curl_fetcher) return spdlog::error("source policy: {}", curl_fetcher.error().message), 1;
  std::optional<CountingFetcher> counted_fetcher;
  if (prometheus) counted_fetcher.emplace(**curl_fetcher, *prometheus);
  SourceFetcher& fetcher =
      counted_fetcher ? static_cast<SourceFetcher&>(*counted_fetcher) : **curl_fetcher;
  if (store_count > 0) spdlog::info("object stores: {} declared", store_count);
  const std::string worker_id = WorkerId();
  // The core's events become a log line each and, with --metrics, the job counters.
  LogEventSink log_events;
  FanOutEventSink events({&log_events, prometheus.get()});
  // A SQLite store is this process's alone (its directory is locked): holds of fresh blobs
  // need no pin written to it, so an upload's commit is its only metadata write.
  const PinScope pin_scope = std::holds_alternative<SqliteMetadata>(config.metadata)
                                 ? PinScope::kProcess
                                 : PinScope::kShared;
  BlobKeeper keeper(metadata, blob_store, clock, events, worker_id, std::chrono::minutes(30),
                    pin_scope);
  // Two fetch pools, so that neither kind of upload waits behind the other (issue 15).
  WorkerPool job_pool(config.workers);
  WorkerPool sync_pool(config.sync_workers);
  JobRunner runner(
      jobs, blob_store, keeper, fetcher, clock, events, job_pool,
      JobRunnerOptions{.worker_id = worker_id,
                       .lease = std::chrono::seconds(config.job_lease_s),
                       .retry_base = std::chrono::milliseconds(config.retry_base_delay_ms),
                       .retry_cap = std::chrono::milliseconds(config.retry_max_delay_ms),
                       .jitter = RandomJitter(),
                       .fault_point = FaultHook()});
  PackageService service(
      ServicePorts{metadata, jobs, blob_store, fetcher, clock, keeper, sync_pool, events},
      ServiceOptions{.max_queued_jobs = static_cast<std::size_t>(config.max_queued_jobs),
                     .max_sync_uploads = static_cast<std::size_t>(config.max_sync_uploads),
                     .sync_start_wait = std::chrono::seconds(config.sync_wait_s),
                     .job_deadline_ms = config.job_deadline_s * 1000LL,
                     .collect_grace = std::chrono::seconds(config.collect_grace_s),
                     .on_enqueued = [&runner] { runner.Notify(); }});
  // The signer reads the key lazily, so a --rotate-url-key below is seen by its first use.
  HmacUrlSigner signer(*stores->url_keys, clock);
  UrlGrants grants(metadata, signer, clock, config.max_url_lifetime_s);
  IcuTextRules text_rules;
  api::ResourcesApi api(
      service,
      api::ApiOptions{.default_owner = config.owner,
                      .modules = files->modules,
                      .insecure_no_auth = config.insecure_no_auth,
                      .quick_reads = !stores->shared,
                      .quick_blob_opens = std::holds_alternative<DirBlobs>(config.blobs),
                      .transfer = {.max_object_bytes = config.max_object_size,
                                   .public_url = config.public_url,
                                   .new_checksum = NewXxh3Checksum},
                      .metrics = prometheus.get(),
                      .metrics_token = *metrics_token,
                      .readiness = readiness,
                      .text_rules = &text_rules},
      auth->authenticator.get(), &grants);
  http::Server server(
      http::ServerOptions{.host = config.listen_host,
                          .port = config.listen_port,
                          .io_threads = config.io_threads,
                          .handler_threads = config.handler_threads,
                          .max_body_bytes = static_cast<std::size_t>(config.max_body_size),
                          .max_connections = static_cast<std::size_t>(config.max_connections),
                          .read_timeout = std::chrono::seconds(config.read_timeout_s),
                          .shutdown_grace = std::chrono::seconds(config.shutdown_grace_s),
                          .metrics = prometheus.get()},
      api);
  // The port is claimed before recovery and the sweep: a second server started by mistake on
  // the same port stops here, before it changes anything.
  auto bound = server.Bind();
  if (!bound) return spdlog::error("{}", bound.error().message), 1;
  // SQLite releases every lease (this instance was the only one); PostgreSQL keeps them, since
  // other instances may be alive, and a dead one's leases run out by themselves.
  auto queued = jobs.RecoverAfterRestart(clock.NowMs());
  if (!queued) return spdlog::error("start-up recovery failed: {}", queued.error().message), 1;
  // Alone on its stores (the data directory is locked), the server sweeps every temporary
  // before serving. With other instances writing to the same stores, what is in flight may be
  // theirs: the collector removes only what the grace period proves abandoned, on one
  // instance at a time. Either way an unreferenced blob goes only once this metadata store
  // has seen it unreferenced for the grace period (bug 5).
  if (!stores->shared) {
    auto swept = service.Sweep(config.allow_empty_metadata);
    if (!swept) return spdlog::error("start-up sweep refused: {}", swept.error().message), 1;
    for (const auto& sha : *swept)
      spdlog::info("start-up sweep: removing unreferenced blob {}", sha);
    spdlog::info("start-up sweep: {} unreferenced blob(s) removed", swept->size());
  } else {
    spdlog::info("start-up sweep left to the collector: other instances share the stores");
  }
  Collector collector(metadata, blob_store, keeper, clock, events,
                      CollectorOptions{.owner = worker_id,
                                       .interval = std::chrono::seconds(config.collect_interval_s),
                                       .grace = std::chrono::seconds(config.collect_grace_s)});
  if (*queued > 0) spdlog::info("resuming {} queued upload jobs", *queued);
  if (config.rotate_url_key) {
    if (auto rotated = stores->url_keys->RotateUrlKey(NewUrlKey(), clock.NowMs()); !rotated)
      return spdlog::error("rotating the URL key failed: {}", rotated.error().message), 1;
    spdlog::warn("the URL key was rotated: every presigned URL signed before now is revoked");
  }
  if (auto started = server.Start(); !started)
    return spdlog::error("{}", started.error().message), 1;
  // Tools find the port in this line, so it must appear whatever --log-level hides; the
  // server itself logs it at info, once it serves.
  if (spdlog::get_level() > spdlog::level::info)
    spdlog::log(spdlog::get_level(), "listening on {}", *bound);
  std::optional<QueueDepthSampler> sampler;
  if (prometheus) sampler.emplace(jobs, *prometheus).Start();
  runner.Start();
  collector.Start();
  const int signal = WaitForStopSignal(signals, auth->store.get(), config.credentials_file);
  spdlog::info("received {}, finishing requests in flight", strsignal(signal));
  {
    std::jthread collecting([&collector] { collector.Stop(); });
    StopWithinGrace(server, runner, service, std::chrono::seconds(config.shutdown_grace_s));
  }
  sampler.reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
  // One executable: every subcommand but `serve` is the client (src/client).
  if (argc > 1 && client::IsClientCommand(argv[1])) return client::Main(argc, argv);
  const Command command = ParseCommandLine(argc, argv);
  if (const auto* exit = std::get_if<ExitNow>(&command)) return exit->code;
  return Serve(std::get<ServeConfig>(command));
}

}  // namespace dlipkg::app
