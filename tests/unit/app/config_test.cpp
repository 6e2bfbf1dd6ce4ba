#include "app/config.hpp"
#include "unit/app/parse_command_line.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace dlipkg::app {
namespace {

using testing::Parse;

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsAreTheEmbeddedServer) {
  auto command = Parse({"serve"});
  const auto& config = std::get<ServeConfig>(command);
  EXPECT_EQ(config.listen_host, "127.0.0.1");
  EXPECT_EQ(config.listen_port, 8080);
  EXPECT_EQ(config.data_dir, "./dlipkg-data");
  EXPECT_EQ(config.max_body_size, 1 << 20);
  EXPECT_EQ(config.workers, 4);
}

// Defaults are stated once (the components' options) and the shipped example, which spells
// them out, must agree with them; the README documents the same figures.
TEST(Config, DefaultsAreStatedOnceAndTheExampleRepeatsThem) {
  const auto defaults = std::get<ServeConfig>(Parse({"serve"}));
  EXPECT_EQ(defaults.handler_threads, 32);
  EXPECT_EQ(defaults.handler_threads, http::ServerOptions{}.handler_threads);
  EXPECT_EQ(defaults.fetch_timeout_s, 3600);
  EXPECT_EQ(defaults.max_object_size, 5LL << 30);
  EXPECT_EQ(defaults.max_object_size, SourcePolicy{}.max_object_bytes);
  EXPECT_EQ(defaults.owner, api::ApiOptions{}.default_owner);
  const auto example = std::get<ServeConfig>(
      Parse({"serve", "--config", DLIPKG_SOURCE_DIR "/config/dlipkg.example.toml"}));
  EXPECT_EQ(example.listen_host, defaults.listen_host);
  EXPECT_EQ(example.listen_port, defaults.listen_port);
  EXPECT_EQ(example.data_dir, defaults.data_dir);
  EXPECT_EQ(example.max_object_size, defaults.max_object_size);
  EXPECT_EQ(example.fetch_connect_timeout_s, defaults.fetch_connect_timeout_s);
  EXPECT_EQ(example.fetch_first_byte_timeout_s, defaults.fetch_first_byte_timeout_s);
  EXPECT_EQ(example.fetch_stall_timeout_s, defaults.fetch_stall_timeout_s);
  EXPECT_EQ(example.fetch_timeout_s, defaults.fetch_timeout_s);
  EXPECT_EQ(example.max_body_size, defaults.max_body_size);
  EXPECT_EQ(example.io_threads, defaults.io_threads);
  EXPECT_EQ(example.handler_threads, defaults.handler_threads);
  EXPECT_EQ(example.workers, defaults.workers);
  EXPECT_EQ(example.max_queued_jobs, defaults.max_queued_jobs);
  EXPECT_EQ(example.job_deadline_s, defaults.job_deadline_s);
  EXPECT_EQ(example.job_lease_s, defaults.job_lease_s);
  EXPECT_EQ(example.retry_base_delay_ms, defaults.retry_base_delay_ms);
  EXPECT_EQ(example.retry_max_delay_ms, defaults.retry_max_delay_ms);
  EXPECT_EQ(example.owner, defaults.owner);
  EXPECT_EQ(example.collect_interval_s, defaults.collect_interval_s);
  EXPECT_EQ(example.collect_grace_s, defaults.collect_grace_s);
}

TEST(Config, CollectorFlagsParseAndAreBounded) {
  auto command = Parse({"serve", "--collect-interval", "2", "--collect-grace", "0"});
  const auto& config = std::get<ServeConfig>(command);
  EXPECT_EQ(config.collect_interval_s, 2);
  EXPECT_EQ(config.collect_grace_s, 0);
  EXPECT_NE(std::get<ExitNow>(Parse({"serve", "--collect-interval", "0"})).code, 0);
  EXPECT_NE(std::get<ExitNow>(Parse({"serve", "--collect-grace", "-1"})).code, 0);
}

TEST(Config, FlagsParseSizesAndRepeats) {
  auto command = Parse({"serve", "--listen", "[::1]:0", "--max-object-size", "10MiB",
                        "--allow-source", "127.0.0.1", "--allow-source", "10.0.0.0/8"});
  const auto& config = std::get<ServeConfig>(command);
  EXPECT_EQ(config.listen_host, "::1");
  EXPECT_EQ(config.listen_port, 0);
  EXPECT_EQ(config.max_object_size, 10 << 20);
  EXPECT_EQ(config.allow_sources, (std::vector<std::string>{"127.0.0.1", "10.0.0.0/8"}));
}

TEST(Config, BadValuesExitNonZero) {
  EXPECT_NE(std::get<ExitNow>(Parse({"serve", "--listen", "nope"})).code, 0);
  EXPECT_NE(std::get<ExitNow>(Parse({"serve", "--listen", "h:99999"})).code, 0);
  EXPECT_NE(std::get<ExitNow>(Parse({"serve", "--workers", "0"})).code, 0);
  EXPECT_NE(std::get<ExitNow>(Parse({"serve", "--bogus"})).code, 0);
  EXPECT_EQ(std::get<ExitNow>(Parse({"--help"})).code, 0);
}

TEST(Config, TheShippedExampleParses) {
  auto command = Parse({"serve", "--config", DLIPKG_SOURCE_DIR "/config/dlipkg.example.toml"});
  ASSERT_TRUE(std::holds_alternative<ServeConfig>(command));
  const auto& config = std::get<ServeConfig>(command);
  EXPECT_EQ(config.max_object_size, 5LL << 30);
  EXPECT_EQ(config.allow_sources, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(config.max_queued_jobs, 100000);
}

TEST(Config, CommandLineBeatsEnvironmentBeatsFile) {
  const auto file = WriteFile("dlipkg-test.toml",
                              "[serve]\nlisten = \"127.0.0.1:1111\"\nworkers = 7\n"
                              "data-dir = \"/from/file\"\n");
  setenv("DLIPKG_WORKERS", "5", 1);
  auto command = Parse({"serve", "--config", file, "--data-dir", "/from/flag"});
  unsetenv("DLIPKG_WORKERS");
  const auto& config = std::get<ServeConfig>(command);
  EXPECT_EQ(config.listen_port, 1111);
  EXPECT_EQ(config.workers, 5);
  EXPECT_EQ(config.data_dir, "/from/flag");
}

TEST(Config, SourcePolicyFlags) {
  const Command plain = Parse({"serve"});
  const auto& defaults = std::get<ServeConfig>(plain);
  EXPECT_EQ(defaults.fetch_first_byte_timeout_s, 30);
  EXPECT_EQ(defaults.read_timeout_s, 30);
  EXPECT_TRUE(defaults.deny_sources.empty());
  EXPECT_EQ(defaults.object_stores_file, "");

  const auto stores = WriteFile("dlipkg-stores.json", R"({"stores": []})");
  setenv("DLIPKG_DENY_SOURCE", "10.0.0.0/8,evil.example", 1);
  auto command = Parse({"serve", "--object-stores", stores, "--fetch-first-byte-timeout", "5",
                        "--read-timeout", "2"});
  unsetenv("DLIPKG_DENY_SOURCE");
  const auto& config = std::get<ServeConfig>(command);
  EXPECT_EQ(config.deny_sources, (std::vector<std::string>{"10.0.0.0/8", "evil.example"}));
  EXPECT_EQ(config.object_stores_file, stores);
  EXPECT_EQ(config.fetch_first_byte_timeout_s, 5);
  EXPECT_EQ(config.read_timeout_s, 2);
  EXPECT_NE(std::get<ExitNow>(Parse({"serve", "--object-stores", "/nonexistent.json"})).code, 0);
  EXPECT_NE(std::get<ExitNow>(Parse({"serve", "--fetch-first-byte-timeout", "0"})).code, 0);
}

TEST(Config, UnknownFileKeyIsAnError) {
  const auto file = WriteFile("dlipkg-bad.toml", "[serve]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n");
  EXPECT_NE(std::get<ExitNow>(Parse({"serve", "--config", file})).code, 0);
}

// --metadata: the embedded default, SQLite paths, PostgreSQL URLs, and refusals that do not
// echo what may be a password.
TEST(ParseMetadata, DefaultsToSqliteInTheDataDirectory) {
  const auto location = ParseMetadata("", "/var/lib/dlipkg");
  ASSERT_TRUE(location);
  ASSERT_TRUE(std::holds_alternative<SqliteMetadata>(*location));
  EXPECT_EQ(std::get<SqliteMetadata>(*location).path, "/var/lib/dlipkg/metadata.db");
}

TEST(ParseMetadata, TakesASqlitePath) {
  const auto location = ParseMetadata("sqlite:/srv/meta.db", "/ignored");
  ASSERT_TRUE(location);
  EXPECT_EQ(std::get<SqliteMetadata>(*location).path, "/srv/meta.db");
}

TEST(ParseMetadata, TakesPostgresUrlsAsGiven) {
  for (const std::string url :
       {"postgresql://u:pw@db:5432/dlipkg?sslmode=require", "postgres://db/dlipkg"}) {
    const auto location = ParseMetadata(url, "/ignored");
    ASSERT_TRUE(location) << url;
    EXPECT_EQ(std::get<PostgresMetadata>(*location).url, url);
  }
}

TEST(ParseMetadata, RefusesOtherSchemesWithoutEchoingThem) {
  for (const std::string text : {"mysql://u:secret@db/x", "sqlite:", "/path/only.db"}) {
    const auto location = ParseMetadata(text, "/data");
    ASSERT_FALSE(location) << text;
    EXPECT_EQ(location.error().code, ErrorCode::kBadRequest);
    EXPECT_EQ(location.error().message.find("secret"), std::string::npos);
  }
}

}  // namespace
}  // namespace dlipkg::app

namespace dlipkg::app {
namespace {

TEST(BlobsConfig, DefaultIsTheDataDirectoryAndBothFormsParse) {
  EXPECT_EQ(std::get<DirBlobs>(*ParseBlobs("", "/data")).path, "/data");
  EXPECT_EQ(std::get<DirBlobs>(*ParseBlobs("dir:/srv/blobs", "/data")).path, "/srv/blobs");
  const auto s3 = std::get<S3Blobs>(*ParseBlobs("s3://pkgs/dlipkg/prod/", "/data"));
  EXPECT_EQ(s3.bucket, "pkgs");
  EXPECT_EQ(s3.prefix, "dlipkg/prod");
  EXPECT_EQ(std::get<S3Blobs>(*ParseBlobs("s3://pkgs", "/data")).prefix, "");
  for (const char* bad : {"dir:", "s3://", "/plain/path", "http://x/y"})
    EXPECT_EQ(ParseBlobs(bad, "/data").error().code, ErrorCode::kBadRequest) << bad;
}

TEST(BlobsConfig, S3BlobsNeedTheObjectStoresFile) {
  const char* args[] = {"dlipkg", "serve", "--blobs", "s3://pkgs/p"};
  const Command command = ParseCommandLine(4, const_cast<char**>(args));
  EXPECT_EQ(std::get<ExitNow>(command).code, 2);
}

}  // namespace
}  // namespace dlipkg::app

// The configuration file is TOML read by toml++: what TOML allows is accepted, what it does not
// is refused with the file and line, and a misspelt key, flag or command gets a did-you-mean.
namespace dlipkg::app {
namespace {

struct Outcome {
  Command command;
  std::string err;
  std::string out;
};

Outcome ParseCapturing(std::vector<std::string> args) {
  ::testing::internal::CaptureStderr();
  ::testing::internal::CaptureStdout();
  Command command = testing::Parse(std::move(args));
  std::string out = ::testing::internal::GetCapturedStdout();
  std::string err = ::testing::internal::GetCapturedStderr();
  return {std::move(command), std::move(err), std::move(out)};
}

TEST(TomlConfig, BareListenAddressIsInvalidTomlNamedByFileAndLine) {
  const auto file = WriteFile("toml-bare.toml", "[serve]\nworkers = 3\nlisten = 127.0.0.1:8093\n");
  const auto outcome = ParseCapturing({"serve", "--config", file});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(outcome.command));
  EXPECT_EQ(std::get<ExitNow>(outcome.command).code, 2);
  EXPECT_NE(outcome.err.find(file + ":3:"), std::string::npos) << outcome.err;
}

TEST(TomlConfig, UnderscoredIntegersAndMultiLineArraysAreAccepted) {
  const auto file = WriteFile("toml-valid.toml",
                              "[serve]\n"
                              "max-queued-jobs = 100_000\n"
                              "retry-max-delay-ms = 30_000\n"
                              "allow-source = [\n"
                              "  \"127.0.0.1\",   # loopback\n"
                              "  \"10.0.0.0/8\",\n"
                              "]\n"
                              "insecure-no-auth = false\n");
  const auto outcome = ParseCapturing({"serve", "--config", file});
  ASSERT_TRUE(std::holds_alternative<ServeConfig>(outcome.command)) << outcome.err;
  const auto& config = std::get<ServeConfig>(outcome.command);
  EXPECT_EQ(config.max_queued_jobs, 100'000);
  EXPECT_EQ(config.retry_max_delay_ms, 30'000);
  EXPECT_EQ(config.allow_sources, (std::vector<std::string>{"127.0.0.1", "10.0.0.0/8"}));
}

TEST(TomlConfig, MisspeltKeyNamesFileLineAndTheClosestKey) {
  const auto file =
      WriteFile("toml-workrs.toml", "[serve]\nlisten = \"127.0.0.1:1\"\nworkrs = 4\n");
  const auto outcome = ParseCapturing({"serve", "--config", file});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(outcome.command));
  EXPECT_EQ(std::get<ExitNow>(outcome.command).code, 2);
  EXPECT_NE(outcome.err.find(file + ":3: unknown key 'workrs' in [serve]; did you mean 'workers'?"),
            std::string::npos)
      << outcome.err;
}

TEST(TomlConfig, ValueRefusedByAnOptionNamesFileLineAndKey) {
  const auto file = WriteFile("toml-range.toml", "[serve]\n\nworkers = 0\n");
  const auto outcome = ParseCapturing({"serve", "--config", file});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(outcome.command));
  EXPECT_NE(outcome.err.find(file + ":3: key 'workers'"), std::string::npos) << outcome.err;
}

TEST(TomlConfig, WrongTypesAndKeysOutsideServeAreRefused) {
  for (const std::string text : {"[serve]\nlisten = [\"a:1\"]\n", "[serve]\nworkers = 1.5\n",
                                 "workers = 4\n", "[srve]\nworkers = 4\n"}) {
    const auto file = WriteFile("toml-types.toml", text);
    const auto outcome = ParseCapturing({"serve", "--config", file});
    ASSERT_TRUE(std::holds_alternative<ExitNow>(outcome.command)) << text;
    EXPECT_NE(outcome.err.find(file + ":"), std::string::npos) << text << outcome.err;
  }
  const auto file = WriteFile("toml-table.toml", "[srve]\nworkers = 4\n");
  EXPECT_NE(ParseCapturing({"serve", "--config", file}).err.find("did you mean 'serve'?"),
            std::string::npos);
}

TEST(TomlConfig, FlagBeatsEnvironmentBeatsFile) {
  const auto file = WriteFile("toml-precedence.toml",
                              "[serve]\nworkers = 5\nio-threads = 3\nhandler-threads = 7\n");
  setenv("DLIPKG_IO_THREADS", "4", 1);
  setenv("DLIPKG_WORKERS", "6", 1);
  const auto outcome = ParseCapturing({"serve", "--config", file, "--workers", "9"});
  unsetenv("DLIPKG_IO_THREADS");
  unsetenv("DLIPKG_WORKERS");
  ASSERT_TRUE(std::holds_alternative<ServeConfig>(outcome.command)) << outcome.err;
  const auto& config = std::get<ServeConfig>(outcome.command);
  EXPECT_EQ(config.workers, 9);          // flag
  EXPECT_EQ(config.io_threads, 4);       // environment
  EXPECT_EQ(config.handler_threads, 7);  // file
}

TEST(TomlConfig, PrintConfigSaysWhereEachValueCameFromAndMasksPasswords) {
  const auto file = WriteFile("toml-print.toml", "[serve]\nworkers = 5\n");
  setenv("DLIPKG_IO_THREADS", "4", 1);
  const auto outcome =
      ParseCapturing({"serve", "--config", file, "--print-config", "--metadata",
                      "postgresql://dlipkg:s3cret@db:5432/pkgs", "--handler-threads", "12"});
  unsetenv("DLIPKG_IO_THREADS");
  ASSERT_TRUE(std::holds_alternative<ExitNow>(outcome.command)) << outcome.err;
  EXPECT_EQ(std::get<ExitNow>(outcome.command).code, 0);
  EXPECT_NE(outcome.out.find("workers = 5  # file " + file), std::string::npos) << outcome.out;
  EXPECT_NE(outcome.out.find("io-threads = 4  # env DLIPKG_IO_THREADS"), std::string::npos);
  EXPECT_NE(outcome.out.find("handler-threads = 12  # flag"), std::string::npos);
  EXPECT_NE(outcome.out.find("fetch-timeout = 3600  # default"), std::string::npos);
  EXPECT_NE(outcome.out.find("postgresql://dlipkg:****@db:5432/pkgs"), std::string::npos);
  EXPECT_EQ(outcome.out.find("s3cret"), std::string::npos);
}

TEST(CommandLine, MisspeltSubcommandAndFlagGetDidYouMean) {
  auto outcome = ParseCapturing({"serv"});
  EXPECT_EQ(std::get<ExitNow>(outcome.command).code, 2);
  EXPECT_NE(outcome.err.find("unknown command 'serv'; did you mean 'serve'?"), std::string::npos)
      << outcome.err;
  outcome = ParseCapturing({"serve", "--workrs", "4"});
  EXPECT_EQ(std::get<ExitNow>(outcome.command).code, 2);
  EXPECT_NE(outcome.err.find("unknown option '--workrs'; did you mean '--workers'?"),
            std::string::npos)
      << outcome.err;
}

TEST(CommandLine, OwnerMustObeyTheOwnerNameRule) {
  const auto outcome = ParseCapturing({"serve", "--owner", "bob"});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(outcome.command));
  EXPECT_EQ(std::get<ExitNow>(outcome.command).code, 2);
  EXPECT_NE(outcome.err.find("--owner"), std::string::npos) << outcome.err;
  EXPECT_TRUE(std::holds_alternative<ServeConfig>(testing::Parse({"serve", "--owner", "alice"})));
}

TEST(MaskPassword, HidesOnlyThePassword) {
  EXPECT_EQ(MaskPassword("postgresql://u:pw@h:5432/d"), "postgresql://u:****@h:5432/d");
  EXPECT_EQ(MaskPassword("postgresql://u@h/d"), "postgresql://u@h/d");
  EXPECT_EQ(MaskPassword("postgresql://h:5432/d"), "postgresql://h:5432/d");
}

TEST(ShippedConfigs, ProductionConfigParsesWithItsFilesPresent) {
  const auto creds = WriteFile("prod-creds.json", "{\"users\": []}");
  const auto token = WriteFile("prod-token", "0123456789abcdef0123\n");
  setenv("DLIPKG_CREDENTIALS", creds.c_str(), 1);
  setenv("DLIPKG_METRICS_TOKEN_FILE", token.c_str(), 1);
  const auto outcome =
      ParseCapturing({"serve", "--config", DLIPKG_SOURCE_DIR "/config/dlipkg.production.toml"});
  unsetenv("DLIPKG_CREDENTIALS");
  unsetenv("DLIPKG_METRICS_TOKEN_FILE");
  ASSERT_TRUE(std::holds_alternative<ServeConfig>(outcome.command)) << outcome.err;
  const auto& config = std::get<ServeConfig>(outcome.command);
  EXPECT_EQ(config.data_dir, "/var/lib/dlipkg");
  EXPECT_EQ(config.max_queued_jobs, 100'000);
  EXPECT_EQ(config.listen_host, "0.0.0.0");
}

}  // namespace
}  // namespace dlipkg::app
