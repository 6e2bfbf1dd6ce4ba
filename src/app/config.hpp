// Typed configuration of `dlipkg serve`, parsed from the command line, DLIPKG_* environment
// variables and a TOML config file (in that order of precedence; the file read by toml++),
// validated before anything starts. Mistakes are named with their file, line and key, with a
// did-you-mean for misspelt keys, flags and commands. Plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "adapters/blobs/s3_blob_store.hpp"
#include "adapters/metadata/postgres/postgres_metadata_store.hpp"
#include "adapters/sources/curl_fetcher.hpp"
#include "api/route.hpp"
#include "core/job_runner.hpp"
#include "core/package_service.hpp"
#include "http/server.hpp"

namespace dlipkg::app {

// Where metadata and the job queue live (--metadata).
struct SqliteMetadata {
  std::string path;  // the database file
};
struct PostgresMetadata {
  std::string url;  // a libpq connection URL; may hold a password: never logged
};
using MetadataLocation = std::variant<SqliteMetadata, PostgresMetadata>;

// Where package bytes live (--blobs).
struct DirBlobs {
  std::string path;  // holds blobs/ and tmp/
};
struct S3Blobs {
  std::string bucket;  // its endpoint and keys: the --object-stores entry serving it
  std::string prefix;  // "" or "a/b" (no leading or trailing '/')
};
using BlobsLocation = std::variant<DirBlobs, S3Blobs>;

// Defaults are stated once: where a setting belongs to a component, its default is that
// component's own (its options struct), read here, so --help, the server and a component built
// without configuration (tests, tools) agree. Only what is the command line's alone is here.
namespace defaults {
inline const std::string kDataDir = "./dlipkg-data";
inline constexpr int kWorkers = 4;  // fetches running at once (sync and async)
inline const http::ServerOptions kServer{};
inline const SourcePolicy kFetch{};
inline const JobRunnerOptions kJobs{};
inline const ServiceOptions kService{};
inline const S3BlobStoreOptions kS3Blobs{};
inline const PostgresOptions kPostgres{};
inline const api::ApiOptions kApi{};
inline constexpr int Seconds(std::chrono::milliseconds duration) {
  return static_cast<int>(duration.count() / 1000);
}
inline constexpr int Millis(std::chrono::milliseconds duration) {
  return static_cast<int>(duration.count());
}
}  // namespace defaults

struct ServeConfig {
  std::string listen_host = defaults::kServer.host;
  std::uint16_t listen_port = defaults::kServer.port;
  std::string data_dir = defaults::kDataDir;
  MetadataLocation metadata = SqliteMetadata{defaults::kDataDir + "/metadata.db"};
  // PostgreSQL connections per instance; 0: one per handler thread, so no request waits for a
  // connection (the app decides, as only it knows the thread count)
  int metadata_connections = 0;
  std::vector<std::string> allow_sources;
  std::vector<std::string> allow_file_roots;
  std::vector<std::string> deny_sources;
  std::string object_stores_file;  // empty: no object stores (obs:// and s3:// refused)
  BlobsLocation blobs = DirBlobs{defaults::kDataDir};
  std::int64_t blob_part_size = defaults::kS3Blobs.part_bytes;  // S3 multipart part size
  int fetch_first_byte_timeout_s = defaults::Seconds(defaults::kFetch.first_byte_timeout);
  // the HTTP server's limit on receiving one request
  int read_timeout_s = defaults::Seconds(defaults::kServer.read_timeout);
  std::int64_t max_object_size = defaults::kFetch.max_object_bytes;
  std::int64_t max_body_size = static_cast<std::int64_t>(defaults::kServer.max_body_bytes);
  int fetch_connect_timeout_s = defaults::Seconds(defaults::kFetch.connect_timeout);
  // also the window of the low-speed limit
  int fetch_stall_timeout_s = defaults::Seconds(defaults::kFetch.stall_timeout);
  std::int64_t fetch_low_speed_limit = 1024;  // bytes/s a fetch must average over that window
  int fetch_timeout_s = defaults::Seconds(defaults::kFetch.total_timeout);
  int io_threads = defaults::kServer.io_threads;
  int handler_threads = defaults::kServer.handler_threads;
  int max_connections = 1024;  // open client connections; beyond it new ones are closed at once
  int workers = defaults::kWorkers;  // async job fetches running at once
  int sync_workers = 4;              // sync upload fetches running at once (apart from the jobs')
  int sync_wait_s = 30;              // how long a sync upload's source waits for a fetcher
  int max_sync_uploads = 0;          // 0: half the handler threads
  int shutdown_grace_s = 60;         // SIGTERM: requests in flight get this long, fetches included
  std::int64_t max_queued_jobs = static_cast<std::int64_t>(defaults::kService.max_queued_jobs);
  int job_deadline_s = static_cast<int>(defaults::kService.job_deadline_ms / 1000);
  int job_lease_s = defaults::Seconds(defaults::kJobs.lease);
  int retry_base_delay_ms = defaults::Millis(defaults::kJobs.retry_base);
  int retry_max_delay_ms = defaults::Millis(defaults::kJobs.retry_cap);
  std::string owner = defaults::kApi.default_owner;
  std::string modules_file;       // built-in modules listed by GET /resources
  std::string credentials_file;   // empty: no authentication (loopback clients only)
  bool insecure_no_auth = false;  // without credentials, serve non-loopback clients anyway
  std::int64_t max_url_lifetime_s = 7 * 86400;  // cap of a presigned URL's expires_in
  bool rotate_url_key = false;                  // new URL key at start: revokes every URL
  std::string public_url;  // scheme://host[:port] of presigned URLs; "" from the Host header
  bool allow_empty_metadata = false;  // start on an empty metadata store next to stored blobs
  // The periodic collector (issue 15): seconds between passes, and how old a temporary, or
  // how long a blob seen unreferenced, must be before it goes (bug 5's grace period).
  std::int64_t collect_interval_s = 3600;
  std::int64_t collect_grace_s = 86400;
  std::string log_level = "info";
  bool metrics = true;             // instrument requests and serve GET /metrics
  std::string metrics_token_file;  // non-empty: GET /metrics needs "Authorization: Bearer <it>"
};

// What the command line asked for: serve with a config, or exit now with a code (after
// --help, --version or a usage error, whose text has been printed).
struct ExitNow {
  int code;
};
using Command = std::variant<ServeConfig, ExitNow>;

// Parses and validates; prints usage errors, --help, --version and --print-config itself.
Command ParseCommandLine(int argc, char** argv);

// This build's version ("0.1.0").
std::string_view Version();

// The URL with any password replaced by "****", for logs and --print-config.
std::string MaskPassword(const std::string& url);

// One line for the start-up log: version, data directory, stores, listen address, auth mode
// and source policy; no secret.
std::string StartupSummary(const ServeConfig& config);

// "sqlite:PATH", "postgresql://..." (or "postgres://...") into a location; "" means the
// embedded default, sqlite:<data_dir>/metadata.db. Errors: kBadRequest.
Result<MetadataLocation> ParseMetadata(const std::string& text, const std::string& data_dir);

// "dir:PATH" or "s3://bucket[/prefix]" into a location; "" means the embedded default, the data
// directory. Errors: kBadRequest.
Result<BlobsLocation> ParseBlobs(const std::string& text, const std::string& data_dir);

// "HOST:PORT" or "[V6]:PORT" into host and port. Errors: kBadRequest.
Result<std::pair<std::string, std::uint16_t>> ParseListen(const std::string& text);

}  // namespace dlipkg::app
