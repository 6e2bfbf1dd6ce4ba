#include "app/app.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "adapters/curl_fetcher.hpp"
#include "adapters/fs_blob_store.hpp"
#include "adapters/system_clock.hpp"
#include "api/resources_api.hpp"
#include "app/config.hpp"
#include "app/stores.hpp"
#include "core/job_runner.hpp"
#include "core/package_service.hpp"
#include "http/server.hpp"

namespace dlipkg::app {
namespace {

SourcePolicy PolicyFrom(const ServeConfig& config) {
  SourcePolicy policy;
  policy.allow_sources = config.allow_sources;
  for (const auto& root : config.allow_file_roots) policy.allow_file_roots.emplace_back(root);
  policy.max_object_bytes = config.max_object_size;
  policy.connect_timeout = std::chrono::seconds(config.fetch_connect_timeout_s);
  policy.stall_timeout = std::chrono::seconds(config.fetch_stall_timeout_s);
  policy.total_timeout = std::chrono::seconds(config.fetch_timeout_s);
  return policy;
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

// Blocks until SIGTERM or SIGINT. The signals are blocked in every thread (the mask is set
// before any thread starts), so only this sigwait sees them.
int WaitForStopSignal(const sigset_t& signals) {
  int signal = 0;
  sigwait(&signals, &signal);
  return signal;
}

int Serve(const ServeConfig& config) {
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  const std::filesystem::path data_dir = config.data_dir;
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    spdlog::error("cannot create the data directory: {}", ec.message());
    return 1;
  }
  auto blobs = FsBlobStore::Open(data_dir);
  if (!blobs) return spdlog::error("blob store: {}", blobs.error().message), 1;
  auto stores = OpenMetadataStores(config);
  if (!stores) return spdlog::error("metadata store: {}", stores.error().message), 1;
  spdlog::info("metadata store: {}", stores->description);
  MetadataStore& metadata = *stores->metadata;
  JobQueue& jobs = *stores->jobs;
  auto fetcher = CurlFetcher::Create(PolicyFrom(config));
  if (!fetcher) return spdlog::error("source policy: {}", fetcher.error().message), 1;
  SystemClock clock;
  BlobKeeper keeper(metadata, **blobs);
  WorkerPool pool(config.workers);
  JobRunner runner(jobs, **blobs, keeper, **fetcher, clock, pool,
                   JobRunnerOptions{.worker_id = WorkerId(),
                                    .lease = std::chrono::seconds(config.job_lease_s),
                                    .retry_base = std::chrono::milliseconds(config.retry_base_delay_ms),
                                    .retry_cap = std::chrono::milliseconds(config.retry_max_delay_ms),
                                    .fault_point = FaultHook()});
  PackageService service(
      ServicePorts{metadata, jobs, **blobs, **fetcher, clock, keeper, pool},
      ServiceOptions{.max_queued_jobs = static_cast<std::size_t>(config.max_queued_jobs),
                     .job_deadline_ms = config.job_deadline_s * 1000LL,
                     .on_enqueued = [&runner] { runner.Notify(); }});
  // SQLite releases every lease (this instance was the only one); PostgreSQL keeps them, since
  // other instances may be alive, and a dead one's leases run out by themselves.
  auto queued = jobs.RecoverAfterRestart(clock.NowMs());
  if (!queued) return spdlog::error("start-up recovery failed: {}", queued.error().message), 1;
  // The sweep removes temporary files and blobs no package refers to yet: with other instances
  // writing to the same stores, those may be their uploads in flight, so it would lose data.
  if (stores->shared) {
    spdlog::info("start-up sweep skipped: other instances may be writing to the same stores");
  } else if (auto swept = service.Sweep(); !swept) {
    return spdlog::error("start-up sweep failed: {}", swept.error().message), 1;
  }
  if (*queued > 0) spdlog::info("resuming {} queued upload jobs", *queued);
  api::ResourcesApi api(service, api::ApiOptions{.default_owner = config.owner});

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  http::Server server(
      http::ServerOptions{.host = config.listen_host,
                          .port = config.listen_port,
                          .io_threads = config.io_threads,
                          .handler_threads = config.handler_threads,
                          .max_body_bytes = static_cast<std::size_t>(config.max_body_size)},
      api);
  auto bound = server.Start();
  if (!bound) return spdlog::error("{}", bound.error().message), 1;
  runner.Start();
  const int signal = WaitForStopSignal(signals);
  spdlog::info("received {}, finishing requests in flight", strsignal(signal));
  server.Stop();
  runner.Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
  const Command command = ParseCommandLine(argc, argv);
  if (const auto* exit = std::get_if<ExitNow>(&command)) return exit->code;
  return Serve(std::get<ServeConfig>(command));
}

}  // namespace dlipkg::app
