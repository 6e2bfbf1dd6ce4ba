#include "app/config.hpp"

#include <toml++/toml.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "api/peer_address.hpp"
#include "client/cli.hpp"
#include "domain/names.hpp"

namespace dlipkg::app {

#ifndef DLIPKG_VERSION
#define DLIPKG_VERSION "unknown"
#endif
constexpr std::string_view kVersion = DLIPKG_VERSION;

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

namespace {

// Where an option's value came from, for --print-config and for messages about file values.
struct Origin {
  std::string source;  // "flag", "env DLIPKG_X", "file PATH"
  std::string where;   // "PATH:LINE" for file values, for messages
};
using Origins = std::map<std::string, Origin>;  // by long option name

// The long name of an argument "--name" or "--name=value"; "" for anything else.
std::string LongName(std::string_view arg) {
  if (!arg.starts_with("--") || arg.size() == 2) return "";
  return std::string(arg.substr(2, arg.find('=') - 2));
}

const CLI::Option* FindLong(const CLI::App& app, std::string_view name) {
  for (const CLI::Option* option : app.get_options())
    for (const auto& lname : option->get_lnames())
      if (lname == name) return option;
  return nullptr;
}

std::vector<std::string> LongNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options())
    for (const auto& lname : option->get_lnames()) names.push_back(lname);
  return names;
}

std::string Suggestion(std::string_view word, const std::vector<std::string>& candidates,
                       std::string_view prefix = "") {
  const std::string close = client::ClosestMatch(word, candidates);
  return close.empty() ? "" : "; did you mean '" + std::string(prefix) + close + "'?";
}

// A TOML scalar as the command-line text CLI11 then validates; nullopt for other types.
std::optional<std::string> ScalarText(const toml::node& node) {
  if (const auto* text = node.as_string()) return text->get();
  if (const auto* number = node.as_integer()) return std::to_string(number->get());
  if (const auto* flag = node.as_boolean()) return flag->get() ? "true" : "false";
  return std::nullopt;
}

// One [serve] key as command-line arguments. Errors name the file, the line and the key.
Result<std::vector<std::string>> KeyArguments(const CLI::Option& option, const std::string& key,
                                              const toml::node& node, const std::string& where) {
  const bool many = option.get_expected_max() > 1;
  std::vector<std::string> args;
  if (const auto* array = node.as_array()) {
    if (!many)
      return Fail(ErrorCode::kBadRequest,
                  where + ": key '" + key + "' takes one value, not an array");
    for (const auto& element : *array) {
      auto text = ScalarText(element);
      if (!text)
        return Fail(ErrorCode::kBadRequest,
                    where + ": key '" + key + "' must be an array of strings or integers");
      args.push_back("--" + key + "=" + *text);
    }
    return args;
  }
  auto text = ScalarText(node);
  if (!text)
    return Fail(ErrorCode::kBadRequest,
                where + ": key '" + key + "' must be a string, a whole number or a boolean");
  args.push_back("--" + key + "=" + *text);
  return args;
}

// Reads the TOML file into arguments for the options that neither the command line nor the
// environment gave, recording their origin.
Result<std::vector<std::string>> FileArguments(const CLI::App& serve, const std::string& file,
                                               Origins& origins) {
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    return Fail(ErrorCode::kBadRequest, file + ":" + std::to_string(begin.line) + ":" +
                                            std::to_string(begin.column) + ": " +
                                            std::string(e.description()));
  }
  const auto line_of = [&](const toml::source_region& region) {
    return file + ":" + std::to_string(region.begin.line);
  };
  std::vector<std::string> args;
  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (name != "serve" || !node.is_table()) {
      const std::string hint =
          node.is_table() ? Suggestion(name, {"serve"}) : "; keys belong in the [serve] table";
      return Fail(ErrorCode::kBadRequest, line_of(key.source()) + ": unknown " +
                                              (node.is_table() ? "table [" : "key '") + name +
                                              (node.is_table() ? "]" : "'") + hint);
    }
  }
  const toml::table* table = root["serve"].as_table();
  if (table == nullptr) return args;
  std::vector<std::string> known;
  for (auto& name : LongNames(serve))
    if (name != "config" && name != "print-config" && name != "help") known.push_back(name);
  for (const auto& [key, node] : *table) {
    const std::string name(key.str());
    const std::string where = line_of(key.source());
    const CLI::Option* option = FindLong(serve, name);
    if (option == nullptr || std::find(known.begin(), known.end(), name) == known.end())
      return Fail(ErrorCode::kBadRequest,
                  where + ": unknown key '" + name + "' in [serve]" + Suggestion(name, known));
    auto key_args = KeyArguments(*option, name, node, where);
    if (!key_args) return std::unexpected(key_args.error());
    if (origins.contains(name)) continue;  // the command line or the environment wins
    origins[name] = Origin{"file " + file, where};
    args.insert(args.end(), key_args->begin(), key_args->end());
  }
  return args;
}

// The command line, then DLIPKG_* variables for options it does not give, then the file for
// options neither gives: one argument list for CLI11, each option's origin recorded.
Result<std::vector<std::string>> Arguments(const CLI::App& serve, int argc, char** argv,
                                           Origins& origins) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool serving = std::find(args.begin(), args.end(), serve.get_name()) != args.end();
  if (!serving) return args;
  std::string config_file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string name = LongName(args[i]);
    if (name.empty()) continue;
    if (FindLong(serve, name) != nullptr) origins[name] = Origin{"flag", ""};
    if (name == "config")
      config_file = args[i].find('=') != std::string::npos ? args[i].substr(9)
                    : i + 1 < args.size()                  ? args[i + 1]
                                                           : "";
  }
  for (const CLI::Option* option : serve.get_options()) {
    const std::string& env = option->get_envname();
    const char* value = env.empty() ? nullptr : std::getenv(env.c_str());
    if (!value || option->get_lnames().empty()) continue;
    const std::string& name = option->get_lnames().front();
    if (origins.contains(name)) continue;
    origins[name] = Origin{"env " + env, ""};
    // "--flag=value" so that a boolean flag (--insecure-no-auth) takes its value too.
    if (name != "config") args.push_back("--" + name + "=" + value);
    if (name == "config") config_file = value;
  }
  if (config_file.empty()) return args;
  auto from_file = FileArguments(serve, config_file, origins);
  if (!from_file) return std::unexpected(from_file.error());
  args.insert(args.end(), from_file->begin(), from_file->end());
  return args;
}

// `dlipkg serv`: CLI11 would only say that a subcommand is required.
std::optional<std::string> UnknownCommand(const CLI::App& app,
                                          const std::vector<std::string>& args) {
  if (args.empty() || args.front().starts_with("-")) return std::nullopt;
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
  for (auto& name : client::ClientCommandNames()) commands.push_back(std::move(name));
  if (std::find(commands.begin(), commands.end(), args.front()) != commands.end())
    return std::nullopt;
  return "unknown command '" + args.front() + "'" + Suggestion(args.front(), commands);
}

// `dlipkg serve --workrs 4`: the first unknown long flag, with a did-you-mean.
std::optional<std::string> UnknownFlag(const CLI::App& app, const CLI::App& serve,
                                       const std::vector<std::string>& args) {
  std::vector<std::string> known = LongNames(serve);
  for (auto& name : LongNames(app)) known.push_back(name);
  for (const auto& arg : args) {
    const std::string name = LongName(arg);
    if (name.empty() || std::find(known.begin(), known.end(), name) != known.end()) continue;
    return "unknown option '--" + name + "'" + Suggestion(name, known, "--");
  }
  return std::nullopt;
}

// A CLI11 refusal of a value that came from the file names the file, line and key.
std::string WithFileLocation(const std::string& message, const Origins& origins) {
  for (const auto& [name, origin] : origins) {
    if (origin.where.empty()) continue;
    if (message.find("--" + name) != std::string::npos)
      return origin.where + ": key '" + name + "': " + message;
  }
  return message;
}

bool LooksNumeric(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

std::string TomlValue(const std::string& text) {
  if (LooksNumeric(text) || text == "true" || text == "false") return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

// The effective configuration as a TOML [serve] table, each line saying where its value came
// from; the password of a PostgreSQL URL masked.
void PrintConfig(const CLI::App& serve, const Origins& origins) {
  std::cout << "# dlipkg serve: effective configuration (after flags > environment > file > "
               "defaults)\n[serve]\n";
  for (const CLI::Option* option : serve.get_options()) {
    if (option->get_lnames().empty()) continue;
    const std::string& name = option->get_lnames().front();
    if (name == "help" || name == "print-config" || name == "config") continue;
    std::vector<std::string> values =
        option->count() > 0 ? option->results() : std::vector<std::string>{};
    if (option->count() == 0 && !option->get_default_str().empty())
      values.push_back(option->get_default_str());
    if (name == "metadata")
      for (auto& value : values) value = MaskPassword(value);
    std::string rendered;
    if (option->get_expected_max() > 1) {
      rendered = "[";
      for (std::size_t i = 0; i < values.size(); ++i)
        rendered += (i ? ", " : "") + TomlValue(values[i]);
      rendered += "]";
    } else {
      rendered = values.empty() ? "\"\"" : TomlValue(values.back());
    }
    const auto origin = origins.find(name);
    std::cout << name << " = " << rendered << "  # "
              << (origin == origins.end() ? "default" : origin->second.source) << "\n";
  }
  if (const auto origin = origins.find("config"); origin != origins.end())
    std::cout << "# config file named by: " << origin->second.source << "\n";
}

}  // namespace

std::string_view Version() { return kVersion; }

namespace {

std::string Joined(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : ",") + item;
  return text.empty() ? "none" : text;
}

}  // namespace

std::string StartupSummary(const ServeConfig& config) {
  std::string metadata;
  if (const auto* sqlite = std::get_if<SqliteMetadata>(&config.metadata))
    metadata = "sqlite:" + sqlite->path;
  else
    metadata = "postgresql";  // the URL may hold credentials, also in its query: never logged
  std::string blobs;
  if (const auto* dir = std::get_if<DirBlobs>(&config.blobs))
    blobs = "dir:" + dir->path;
  else
    blobs = "s3://" + std::get<S3Blobs>(config.blobs).bucket + "/" +
            std::get<S3Blobs>(config.blobs).prefix;
  const std::string auth = !config.credentials_file.empty()
                               ? "credentials " + config.credentials_file
                           : config.insecure_no_auth ? "none (insecure-no-auth)"
                                                     : "none (loopback clients only)";
  const std::string host = config.listen_host.find(':') != std::string::npos
                               ? "[" + config.listen_host + "]"
                               : config.listen_host;
  return "dlipkg " + std::string(kVersion) + " starting: data-dir=" + config.data_dir +
         " metadata=" + metadata + " blobs=" + blobs + " listen=" + host + ":" +
         std::to_string(config.listen_port) + " auth=" + auth +
         " allow-source=" + Joined(config.allow_sources) +
         " allow-file-root=" + Joined(config.allow_file_roots) +
         " deny-source=" + Joined(config.deny_sources) + " object-stores=" +
         (config.object_stores_file.empty() ? "none" : config.object_stores_file) + " metrics=" +
         (!config.metrics                     ? "off"
          : config.metrics_token_file.empty() ? "open"
                                              : "token");
}

std::string MaskPassword(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const auto at = url.find('@', scheme + 3);
  const auto slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "****" + url.substr(at);
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
  std::ostringstream version;
  version << "dlipkg " << kVersion;
  app.set_version_flag("--version", version.str());
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
  // The file is read by toml++ (FileArguments above), not by CLI11's INI reader, which took
  // invalid TOML and refused valid TOML. DLIPKG_CONFIG names it when --config does not.
  std::string config_file;
  serve
      ->add_option("--config", config_file,
                   "Read options from this TOML file: a [serve] table with the long option "
                   "names as keys (config/dlipkg.example.toml)")
      ->envname("DLIPKG_CONFIG")
      ->check(CLI::ExistingFile);
  bool print_config = false;
  serve->add_flag("--print-config", print_config,
                  "Print the effective configuration, each value with where it came from "
                  "(default, file, env, flag), secrets masked, and exit");
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
  serve
      ->add_option("--fetch-low-speed-limit", config.fetch_low_speed_limit,
                   "Bytes per second a source must average over --fetch-stall-timeout seconds; "
                   "a slower fetch fails (and an async one is retried), so a trickling source "
                   "cannot hold a fetcher for the whole --fetch-timeout")
      ->envname("DLIPKG_FETCH_LOW_SPEED_LIMIT")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(1LL, (1LL << 31) - 1))
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
      ->add_option("--max-connections", config.max_connections,
                   "Client connections open at once; beyond it new connections are closed at "
                   "once (keep it below the open-file limit)")
      ->envname("DLIPKG_MAX_CONNECTIONS")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  serve
      ->add_option("--workers", config.workers,
                   "Source fetches of the asynchronous job queue running at once")
      ->envname("DLIPKG_WORKERS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  serve
      ->add_option("--sync-workers", config.sync_workers,
                   "Source fetches of synchronous uploads running at once, apart from "
                   "--workers, so that neither kind of upload waits behind the other")
      ->envname("DLIPKG_SYNC_WORKERS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  serve
      ->add_option("--sync-wait", config.sync_wait_s,
                   "Seconds a synchronous upload's source may wait for a free fetcher; then "
                   "the upload is refused with HTTP 429 (APIGW.0308)")
      ->envname("DLIPKG_SYNC_WAIT")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  serve
      ->add_option("--max-sync-uploads", config.max_sync_uploads,
                   "Synchronous uploads (fetched or direct) running at once; beyond it HTTP 429 "
                   "(APIGW.0308). Must be below --handler-threads, so that lists, shows and "
                   "health checks always find a thread. 0: half of --handler-threads")
      ->envname("DLIPKG_MAX_SYNC_UPLOADS")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  serve
      ->add_option("--shutdown-grace", config.shutdown_grace_s,
                   "Seconds requests in flight get after SIGTERM; fetches still running are "
                   "cancelled before it ends, whatever the sources do")
      ->envname("DLIPKG_SHUTDOWN_GRACE")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve
      ->add_option("--max-queued-jobs", config.max_queued_jobs,
                   "Asynchronous uploads of one project that may wait at once; beyond it that "
                   "project's uploads are refused "
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
      ->add_option("--collect-interval", config.collect_interval_s,
                   "Seconds between two passes of the collector, which retries queued blob "
                   "removals and, on one instance at a time, removes what crashed uploads left")
      ->envname("DLIPKG_COLLECT_INTERVAL")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{7 * 86400}))
      ->capture_default_str();
  serve
      ->add_option("--collect-grace", config.collect_grace_s,
                   "Seconds before the collector and the start-up sweep remove a temporary or "
                   "an unfinished multipart upload (by its age), or a blob no package refers to "
                   "(counted from when this metadata store first saw it unreferenced). Keep it "
                   "above --fetch-timeout and --job-deadline: younger temporaries may be uploads "
                   "in progress")
      ->envname("DLIPKG_COLLECT_GRACE")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{365 * 86400}))
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
  serve
      ->add_flag("--allow-empty-metadata", config.allow_empty_metadata,
                 "Start even though the metadata store refers to no package while the blob "
                 "store holds blobs (without it such a start is refused, since a deleted, "
                 "truncated or mistyped database would otherwise have every blob swept); the "
                 "blobs are kept")
      ->envname("DLIPKG_ALLOW_EMPTY_METADATA");
  serve->add_option("--log-level", config.log_level, "trace, debug, info, warn, error")
      ->envname("DLIPKG_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  serve
      ->add_option("--metrics", config.metrics,
                   "Count requests, uploads, jobs and store errors and serve them at GET /metrics "
                   "(Prometheus text format); false turns the instrumentation off")
      ->envname("DLIPKG_METRICS")
      ->capture_default_str();
  serve
      ->add_option("--metrics-token-file", config.metrics_token_file,
                   "File holding a token that GET /metrics then requires as 'Authorization: "
                   "Bearer TOKEN' (Prometheus: authorization.credentials_file); without it "
                   "/metrics is open like /healthz")
      ->envname("DLIPKG_METRICS_TOKEN_FILE")
      ->check(CLI::ExistingFile);
  const std::vector<std::string> raw(argv + 1, argv + argc);
  if (auto unknown = UnknownCommand(app, raw)) {
    std::cerr << "dlipkg: " << *unknown << "\n";
    return ExitNow{2};
  }
  if (auto unknown = UnknownFlag(app, *serve, raw)) {
    std::cerr << "dlipkg: " << *unknown << "\n";
    return ExitNow{2};
  }
  Origins origins;
  auto args = Arguments(*serve, argc, argv, origins);
  if (!args) {
    std::cerr << "dlipkg: " << args.error().message << "\n";
    return ExitNow{2};
  }
  std::reverse(args->begin(), args->end());  // CLI11's vector parse takes them reversed
  try {
    app.parse(*args);
  } catch (const CLI::Success& e) {
    return ExitNow{app.exit(e)};
  } catch (const CLI::ParseError& e) {
    std::cerr << "dlipkg: " << WithFileLocation(e.what(), origins)
              << "\nRun 'dlipkg serve --help' for the options.\n";
    return ExitNow{2};
  }
  if (auto owner = ParseOwnerName(config.owner); !owner) {
    std::cerr << "dlipkg: --owner: " << owner.error().message << "\n";
    return ExitNow{2};
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
  if (config.max_sync_uploads == 0)
    config.max_sync_uploads = std::max(1, config.handler_threads / 2);
  if (config.handler_threads > 1 && config.max_sync_uploads >= config.handler_threads) {
    std::cerr << "dlipkg: --max-sync-uploads must be below --handler-threads ("
              << config.handler_threads << "), so that requests needing no fetch find a thread\n";
    return ExitNow{2};
  }
  auto location = ParseMetadata(metadata, config.data_dir);
  if (!location) {
    std::cerr << "dlipkg: " << location.error().message << "\n";
    return ExitNow{2};
  }
  config.metadata = std::move(*location);
  if (print_config) {
    PrintConfig(*serve, origins);
    return ExitNow{0};
  }
  return config;
}

}  // namespace dlipkg::app
