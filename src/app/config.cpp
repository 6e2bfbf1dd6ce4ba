#include "app/config.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "api/peer_address.hpp"

namespace dlipkg::app {

Result<std::pair<std::string, std::uint16_t>> ParseListen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Fail(ErrorCode::kBadRequest, "--listen must be HOST:PORT, got '" + text + "'");
  std::string host = text.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  const std::string port_text = text.substr(colon + 1);
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty())
    return Fail(ErrorCode::kBadRequest, "--listen port must be 0-65535, got '" + port_text + "'");
  return std::pair{host, static_cast<std::uint16_t>(port)};
}

Result<BlobsLocation> ParseBlobs(const std::string& text, const std::string& data_dir) {
  if (text.empty()) return DirBlobs{data_dir};
  if (text.starts_with("dir:") && text.size() > 4) return DirBlobs{text.substr(4)};
  if (text.starts_with("s3://")) {
    std::string rest = text.substr(5);
    while (rest.ends_with('/')) rest.pop_back();
    const auto slash = rest.find('/');
    S3Blobs s3{rest.substr(0, slash), slash == std::string::npos ? "" : rest.substr(slash + 1)};
    if (!s3.bucket.empty()) return s3;
  }
  return Fail(ErrorCode::kBadRequest,
              "--blobs must be dir:PATH or s3://bucket[/prefix], got '" + text + "'");
}

// CLI11 2.1 lets a config file value beat an environment variable; we want the command line,
// then DLIPKG_* variables, then the file. So each variable set for an option the command line
// does not give becomes a command-line argument. Returns the arguments reversed, as CLI11's
// vector parse expects.
std::vector<std::string> WithEnvironment(const CLI::App& serve, int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool serving = std::find(args.begin(), args.end(), serve.get_name()) != args.end();
  for (const CLI::Option* option : serve.get_options()) {
    const std::string& env = option->get_envname();
    const char* value = env.empty() ? nullptr : std::getenv(env.c_str());
    if (!serving || !value || option->get_lnames().empty()) continue;
    const std::string flag = "--" + option->get_lnames().front();
    const bool given = std::any_of(args.begin(), args.end(), [&](const std::string& a) {
      return a == flag || a.starts_with(flag + "=");
    });
    // "--flag=value" so that a boolean flag (--insecure-no-auth) takes its value too.
    if (!given) args.push_back(flag + "=" + value);
  }
  std::reverse(args.begin(), args.end());
  return args;
}

Result<MetadataLocation> ParseMetadata(const std::string& text, const std::string& data_dir) {
  if (text.empty())
    return SqliteMetadata{(std::filesystem::path(data_dir) / "metadata.db").string()};
  if (text.starts_with("sqlite:") && text.size() > 7) return SqliteMetadata{text.substr(7)};
  if (text.starts_with("postgresql://") || text.starts_with("postgres://"))
    return PostgresMetadata{text};
  // The text may be a URL with a password in it: not echoed.
  return Fail(
      ErrorCode::kBadRequest,
      "--metadata must be sqlite:PATH or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE");
}

Command ParseCommandLine(int argc, char** argv) {
  CLI::App app{
      "dlipkg: a self-hosted package-group service speaking Huawei Cloud DLI's v2.0 "
      "resources API."};
  app.require_subcommand(1);
  // The client subcommands are parsed by src/client (app::Main hands them over first).
  app.footer(
      "Client subcommands (each with --help): push, ls, show, get, rm, chown, wait, spark-args, "
      "completion, configure.");
  app.set_version_flag("--version", "dlipkg 0.1.0");
  auto* serve = app.add_subcommand(
      "serve",
      "Run the HTTP server. Every option can also be set as DLIPKG_<OPTION> in the "
      "environment (e.g. DLIPKG_LISTEN), or as 'option = value' in the [serve] table of "
      "a TOML file named by --config FILE (or DLIPKG_CONFIG); the command line wins "
      "over the environment, which wins over the file.");
  serve->fallthrough();  // `dlipkg serve --config F` hands --config to the top level
  ServeConfig config;
  std::string listen = config.listen_host + ":" + std::to_string(config.listen_port);
  std::string metadata;
  // CLI11 2.1 reads a config file only at the top level; the serve options live in its
  // [serve] table. `dlipkg serve --config F` works because the flag is accepted there too.
  // DLIPKG_CONFIG names the file when --config does not; then it must exist.
  const char* config_env = std::getenv("DLIPKG_CONFIG");
  app.set_config("--config", config_env ? config_env : "",
                 "Read options from this TOML file: a [serve] table with the long option "
                 "names as keys (also DLIPKG_CONFIG)",
                 config_env != nullptr);
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key is an error
  serve
      ->add_option("--listen", listen,
                   "HOST:PORT to listen on; port 0 picks a free port and "
                   "the log line 'listening on HOST:PORT' tells which")
      ->envname("DLIPKG_LISTEN")
      ->capture_default_str();
  serve
      ->add_option("--data-dir", config.data_dir,
                   "Directory for the embedded store: metadata.db (SQLite) and blobs/")
      ->envname("DLIPKG_DATA_DIR")
      ->capture_default_str();
  serve
      ->add_option("--metadata", metadata,
                   "Where metadata and the job queue live: sqlite:PATH (one instance; default "
                   "sqlite:<data-dir>/metadata.db) or postgresql://USER[:PASSWORD]@HOST[:PORT]/DB "
                   "(any number of instances sharing it)")
      ->envname("DLIPKG_METADATA");
  serve
      ->add_option("--metadata-connections", config.metadata_connections,
                   "PostgreSQL connections per instance (store calls at once); 0: one per "
                   "handler thread, so no request waits for a connection")
      ->envname("DLIPKG_METADATA_CONNECTIONS")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  serve
      ->add_option("--allow-source", config.allow_sources,
                   "Host name, IP or CIDR whose loopback/private/link-local addresses may be "
                   "fetched from (repeatable; comma-separated in the environment)")
      ->envname("DLIPKG_ALLOW_SOURCE")
      ->delimiter(',');
  serve
      ->add_option("--allow-file-root", config.allow_file_roots,
                   "Directory below which file:// sources may be read (repeatable)")
      ->envname("DLIPKG_ALLOW_FILE_ROOT")
      ->delimiter(',')
      ->check(CLI::ExistingDirectory);
  serve
      ->add_option("--deny-source", config.deny_sources,
                   "Host name, IP or CIDR never fetched from, public or not; wins over "
                   "--allow-source (repeatable; comma-separated in the environment)")
      ->envname("DLIPKG_DENY_SOURCE")
      ->delimiter(',');
  serve
      ->add_option("--object-stores", config.object_stores_file,
                   "JSON file declaring the object stores obs://, s3:// and OBS-style https "
                   "sources resolve against (format: docs/sources.md)")
      ->envname("DLIPKG_OBJECT_STORES")
      ->check(CLI::ExistingFile);
  std::string blobs;
  serve
      ->add_option("--blobs", blobs,
                   "Where package bytes live: dir:PATH (default: the data directory) or "
                   "s3://bucket[/prefix], shared by any number of instances. The bucket's "
                   "endpoint, region, addressing and keys come from the --object-stores entry "
                   "serving it, the one place S3 endpoints are declared (docs/scale-out-blobs.md)")
      ->envname("DLIPKG_BLOBS");
  serve
      ->add_option("--blob-part-size", config.blob_part_size,
                   "With s3:// blobs: multipart part size, 5 MiB to 5 GiB; smaller blobs are one "
                   "PUT. Memory per upload in flight is one part")
      ->envname("DLIPKG_BLOB_PART_SIZE")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str()
      ->group("Advanced");
  serve
      ->add_option("--fetch-first-byte-timeout", config.fetch_first_byte_timeout_s,
                   "Seconds a source may take to start answering a request")
      ->envname("DLIPKG_FETCH_FIRST_BYTE_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve
      ->add_option("--read-timeout", config.read_timeout_s,
                   "Seconds a client may take to send one request (slow clients are cut off)")
      ->envname("DLIPKG_READ_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str()
      ->group("Advanced");
  serve
      ->add_option("--max-object-size", config.max_object_size,
                   "Largest source object accepted, in bytes (suffixes KiB, MiB, GiB accepted)")
      ->envname("DLIPKG_MAX_OBJECT_SIZE")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  serve
      ->add_option("--max-body-size", config.max_body_size,
                   "Largest request body accepted, in bytes (suffixes accepted)")
      ->envname("DLIPKG_MAX_BODY_SIZE")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  serve
      ->add_option("--fetch-connect-timeout", config.fetch_connect_timeout_s,
                   "Seconds to connect to a source")
      ->envname("DLIPKG_FETCH_CONNECT_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve
      ->add_option("--fetch-stall-timeout", config.fetch_stall_timeout_s,
                   "Seconds a source may send nothing before the fetch fails")
      ->envname("DLIPKG_FETCH_STALL_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_option("--fetch-timeout", config.fetch_timeout_s, "Seconds one source fetch may take")
      ->envname("DLIPKG_FETCH_TIMEOUT")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  serve->add_option("--io-threads", config.io_threads, "Threads running network I/O")
      ->envname("DLIPKG_IO_THREADS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  serve
      ->add_option("--handler-threads", config.handler_threads,
                   "Threads running requests (store, disk and source work)")
      ->envname("DLIPKG_HANDLER_THREADS")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  serve
      ->add_option("--workers", config.workers,
                   "Source fetches running at once, shared by synchronous uploads and the "
                   "asynchronous job queue")
      ->envname("DLIPKG_WORKERS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  serve
      ->add_option("--max-queued-jobs", config.max_queued_jobs,
                   "Asynchronous uploads that may wait at once; beyond it uploads are refused "
                   "(DLI.1028)")
      ->envname("DLIPKG_MAX_QUEUED_JOBS")
      ->check(CLI::Range(1, 100'000'000))
      ->capture_default_str();
  serve
      ->add_option("--job-deadline", config.job_deadline_s,
                   "Seconds an asynchronous upload may take, retries included, before it FAILs")
      ->envname("DLIPKG_JOB_DEADLINE")
      ->check(CLI::Range(1, 7 * 86400))
      ->capture_default_str();
  serve
      ->add_option("--job-lease", config.job_lease_s,
                   "Seconds a job claim lasts unless renewed (a dead instance's jobs are taken "
                   "over after it)")
      ->envname("DLIPKG_JOB_LEASE")
      ->check(CLI::Range(3, 3600))
      ->capture_default_str();
  serve
      ->add_option("--retry-base-delay-ms", config.retry_base_delay_ms,
                   "First retry delay ceiling of a failing async fetch; doubles per attempt, "
                   "with full jitter")
      ->envname("DLIPKG_RETRY_BASE_DELAY_MS")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  serve
      ->add_option("--retry-max-delay-ms", config.retry_max_delay_ms,
                   "Largest retry delay ceiling of a failing async fetch")
      ->envname("DLIPKG_RETRY_MAX_DELAY_MS")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  serve
      ->add_option("--owner", config.owner,
                   "Owner recorded for what requests create when no authentication is configured")
      ->envname("DLIPKG_OWNER")
      ->capture_default_str();
  serve
      ->add_option("--modules", config.modules_file,
                   "JSON file of built-in modules to list: [{\"module_name\", \"module_type\", "
                   "\"description\", \"resources\": [...]}]; none by default")
      ->envname("DLIPKG_MODULES")
      ->check(CLI::ExistingFile);
  serve
      ->add_option("--credentials", config.credentials_file,
                   "JSON file of users, their projects, access keys and tokens; enables "
                   "authentication (AK/SK and X-Auth-Token). SIGHUP reloads it")
      ->envname("DLIPKG_CREDENTIALS")
      ->check(CLI::ExistingFile);
  serve
      ->add_flag("--insecure-no-auth", config.insecure_no_auth,
                 "Without --credentials, serve clients from any address, not only loopback "
                 "(anyone who can reach the server can use it)")
      ->envname("DLIPKG_INSECURE_NO_AUTH");
  serve
      ->add_option("--max-url-lifetime", config.max_url_lifetime_s,
                   "Longest lifetime of a presigned download URL, in seconds (expires_in is "
                   "capped to it)")
      ->envname("DLIPKG_MAX_URL_LIFETIME")
      ->check(CLI::Range(1, 366 * 86400))
      ->capture_default_str();
  serve
      ->add_flag("--rotate-url-key", config.rotate_url_key,
                 "Replace the key presigned URLs are signed with before serving: every URL "
                 "signed so far stops working, on every instance sharing the metadata store")
      ->envname("DLIPKG_ROTATE_URL_KEY");
  serve
      ->add_option("--public-url", config.public_url,
                   "Scheme and host presigned URLs start with (e.g. https://dlipkg.example.com, "
                   "behind a load balancer); by default http:// and the request's Host header")
      ->envname("DLIPKG_PUBLIC_URL");
  serve->add_option("--log-level", config.log_level, "trace, debug, info, warn, error")
      ->envname("DLIPKG_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  try {
    app.parse(WithEnvironment(*serve, argc, argv));
  } catch (const CLI::ParseError& e) {
    return ExitNow{app.exit(e)};
  }
  auto parsed = ParseListen(listen);
  if (!parsed) {
    std::cerr << "dlipkg: " << parsed.error().message << "\n";
    return ExitNow{2};
  }
  auto blobs_location = ParseBlobs(blobs, config.data_dir);
  if (!blobs_location) {
    std::cerr << "dlipkg: " << blobs_location.error().message << "\n";
    return ExitNow{2};
  }
  config.blobs = std::move(*blobs_location);
  if (std::holds_alternative<S3Blobs>(config.blobs) && config.object_stores_file.empty()) {
    std::cerr << "dlipkg: --blobs s3://... needs --object-stores FILE with a store serving "
                 "the bucket (its endpoint, region and keys)\n";
    return ExitNow{2};
  }
  config.listen_host = parsed->first;
  config.listen_port = parsed->second;
  if (config.credentials_file.empty() && !config.insecure_no_auth &&
      !api::IsLoopback(config.listen_host)) {
    std::cerr << "dlipkg: refusing to listen on " << listen
              << " without authentication: give --credentials FILE, or --insecure-no-auth to "
                 "let anyone who can reach this address use the server\n";
    return ExitNow{2};
  }
  auto location = ParseMetadata(metadata, config.data_dir);
  if (!location) {
    std::cerr << "dlipkg: " << location.error().message << "\n";
    return ExitNow{2};
  }
  config.metadata = std::move(*location);
  return config;
}

}  // namespace dlipkg::app
