// The authentication options of `dlipkg serve`: --credentials and --insecure-no-auth from the
// command line, the environment and the config file, and the refusal to serve a non-loopback
// address without authentication.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "app/config.hpp"
#include "unit/app/parse_command_line.hpp"

namespace dlipkg::app {
namespace {

using testing::Parse;

std::string CredentialFile() {
  const std::string path = ::testing::TempDir() + "auth_config_credentials.json";
  std::ofstream(path) << R"({"users": []})";
  return path;
}

TEST(AuthConfig, NoCredentialsMeansLoopbackOnly) {
  const auto command = Parse({"serve", "--listen", "127.0.0.1:0"});
  const auto& config = std::get<ServeConfig>(command);
  EXPECT_TRUE(config.credentials_file.empty());
  EXPECT_FALSE(config.insecure_no_auth);
  for (const char* listen : {"localhost:0", "[::1]:0", "127.0.0.2:0"})
    EXPECT_TRUE(std::holds_alternative<ServeConfig>(Parse({"serve", "--listen", listen})))
        << listen;
}

TEST(AuthConfig, RefusesANonLoopbackListenWithoutCredentials) {
  for (const char* listen : {"0.0.0.0:0", "[::]:0", "10.0.0.1:80", "example.com:80"}) {
    const auto command = Parse({"serve", "--listen", listen});
    ASSERT_TRUE(std::holds_alternative<ExitNow>(command)) << listen;
    EXPECT_EQ(std::get<ExitNow>(command).code, 2);
  }
}

TEST(AuthConfig, InsecureNoAuthOrCredentialsAllowAnyListen) {
  const auto insecure = Parse({"serve", "--listen", "0.0.0.0:0", "--insecure-no-auth"});
  ASSERT_TRUE(std::holds_alternative<ServeConfig>(insecure));
  EXPECT_TRUE(std::get<ServeConfig>(insecure).insecure_no_auth);

  const auto file = CredentialFile();
  const auto with_credentials = Parse({"serve", "--listen", "0.0.0.0:0", "--credentials", file});
  ASSERT_TRUE(std::holds_alternative<ServeConfig>(with_credentials));
  EXPECT_EQ(std::get<ServeConfig>(with_credentials).credentials_file, file);
}

TEST(AuthConfig, TakesBothFromTheEnvironmentAndTheConfigFile) {
  setenv("DLIPKG_INSECURE_NO_AUTH", "true", 1);
  const auto from_env = Parse({"serve", "--listen", "0.0.0.0:0"});
  unsetenv("DLIPKG_INSECURE_NO_AUTH");
  ASSERT_TRUE(std::holds_alternative<ServeConfig>(from_env));
  EXPECT_TRUE(std::get<ServeConfig>(from_env).insecure_no_auth);

  const auto file = CredentialFile();
  const std::string toml = ::testing::TempDir() + "auth_config.toml";
  std::ofstream(toml) << "[serve]\ncredentials = \"" << file << "\"\n";
  const auto from_file = Parse({"serve", "--config", toml, "--listen", "0.0.0.0:0"});
  ASSERT_TRUE(std::holds_alternative<ServeConfig>(from_file));
  EXPECT_EQ(std::get<ServeConfig>(from_file).credentials_file, file);
}

TEST(AuthConfig, AMissingCredentialFileIsAUsageError) {
  const auto command = Parse({"serve", "--credentials", ::testing::TempDir() + "absent.json"});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(command));
  EXPECT_NE(std::get<ExitNow>(command).code, 0);
}

}  // namespace
}  // namespace dlipkg::app
