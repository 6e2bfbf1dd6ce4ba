// Typed configuration of `dlipkg serve`, parsed from the command line, DLIPKG_* environment
// variables and a config file (in that order of precedence), validated before anything starts.
// Plain values.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "domain/error.hpp"

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

struct ServeConfig {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  std::string data_dir = "./dlipkg-data";
  MetadataLocation metadata = SqliteMetadata{"./dlipkg-data/metadata.db"};
  int metadata_connections = 0;  // PostgreSQL connections per instance; 0: handler_threads
  std::vector<std::string> allow_sources;
  std::vector<std::string> allow_file_roots;
  std::vector<std::string> deny_sources;
  std::string object_stores_file;  // empty: no object stores (obs:// and s3:// refused)
  BlobsLocation blobs = DirBlobs{"./dlipkg-data"};
  std::int64_t blob_part_size = 16LL << 20;  // S3 multipart part size
  int fetch_first_byte_timeout_s = 30;
  int read_timeout_s = 30;  // the HTTP server's limit on receiving one request
  std::int64_t max_object_size = 5LL << 30;
  std::int64_t max_body_size = 1 << 20;
  int fetch_connect_timeout_s = 10;
  int fetch_stall_timeout_s = 30;
  int fetch_timeout_s = 3600;
  int io_threads = 2;
  int handler_threads = 32;
  int workers = 4;  // fetches running at once (sync and async)
  std::int64_t max_queued_jobs = 100'000;
  int job_deadline_s = 3600;
  int job_lease_s = 60;
  int retry_base_delay_ms = 500;
  int retry_max_delay_ms = 30'000;
  std::string owner = "local";
  std::string modules_file;       // built-in modules listed by GET /resources
  std::string credentials_file;   // empty: no authentication (loopback clients only)
  bool insecure_no_auth = false;  // without credentials, serve non-loopback clients anyway
  std::string log_level = "info";
};

// What the command line asked for: serve with a config, or exit now with a code (after
// --help, --version or a usage error, whose text has been printed).
struct ExitNow {
  int code;
};
using Command = std::variant<ServeConfig, ExitNow>;

Command ParseCommandLine(int argc, char** argv);

// "sqlite:PATH", "postgresql://..." (or "postgres://...") into a location; "" means the
// embedded default, sqlite:<data_dir>/metadata.db. Errors: kBadRequest.
Result<MetadataLocation> ParseMetadata(const std::string& text, const std::string& data_dir);

// "dir:PATH" or "s3://bucket[/prefix]" into a location; "" means the embedded default, the data
// directory. Errors: kBadRequest.
Result<BlobsLocation> ParseBlobs(const std::string& text, const std::string& data_dir);

// "HOST:PORT" or "[V6]:PORT" into host and port. Errors: kBadRequest.
Result<std::pair<std::string, std::uint16_t>> ParseListen(const std::string& text);

}  // namespace dlipkg::app
