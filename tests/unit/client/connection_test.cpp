// Where the client's endpoint, project and credentials come from (flags, then DLIPKG_*, then
// the profile file), and the profile file's rules: private mode only, known keys only, written
// with mode 0600 keeping other profiles.
#include "client/connection.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>

#include "testing/temp_dir.hpp"

namespace dlipkg::client {
namespace {

GetEnv Env(std::map<std::string, std::string> values) {
  return [values](const char* name) -> std::optional<std::string> {
    auto found = values.find(name);
    if (found == values.end()) return std::nullopt;
    return found->second;
  };
}

std::filesystem::path PrivateProfile(const test::TempDir& dir, std::string_view text) {
  auto file = dir.WriteFile("client.toml", text);
  ::chmod(file.c_str(), 0600);
  return file;
}

TEST(ClientConnection, FlagsBeatEnvironmentWhichBeatsTheProfile) {
  test::TempDir dir;
  const auto file = PrivateProfile(dir, R"([default]
endpoint = "http://profile:1/"
project = "p-profile"
ak = "AK-PROFILE"
sk = "SK-PROFILE"
)");
  auto all_profile = ResolveConnection({}, Env({}), file);
  ASSERT_TRUE(all_profile) << all_profile.error();
  EXPECT_EQ(all_profile->endpoint, "http://profile:1");  // trailing '/' dropped
  EXPECT_EQ(all_profile->project, "p-profile");
  EXPECT_EQ(all_profile->access_key, "AK-PROFILE");

  auto mixed = ResolveConnection(
      {.project = "p-flag"},
      Env({{"DLIPKG_PROJECT", "p-env"}, {"DLIPKG_ENDPOINT", "http://env:2"}}), file);
  ASSERT_TRUE(mixed) << mixed.error();
  EXPECT_EQ(mixed->project, "p-flag");
  EXPECT_EQ(mixed->endpoint, "http://env:2");
  EXPECT_EQ(mixed->secret_key, "SK-PROFILE");
}

TEST(ClientConnection, NamedProfilesAndTheirErrors) {
  test::TempDir dir;
  const auto file = PrivateProfile(dir, R"([default]
endpoint = "http://a:1"
project = "pa"
[work]
endpoint = "http://b:2"
project = "pb"
token = "TOKEN-B"
)");
  auto work = ResolveConnection({.profile = "work"}, Env({}), file);
  ASSERT_TRUE(work) << work.error();
  EXPECT_EQ(work->token, "TOKEN-B");
  auto by_env = ResolveConnection({}, Env({{"DLIPKG_PROFILE", "work"}}), file);
  ASSERT_TRUE(by_env);
  EXPECT_EQ(by_env->endpoint, "http://b:2");
  EXPECT_FALSE(ResolveConnection({.profile = "nope"}, Env({}), file));
  EXPECT_FALSE(ResolveConnection({.profile = "work"}, Env({}), dir.path() / "absent.toml"));
  // Without a profile file the flags alone are enough; a missing endpoint is not.
  EXPECT_TRUE(ResolveConnection({.endpoint = "http://h:1", .project = "p"}, Env({}),
                                dir.path() / "absent.toml"));
  EXPECT_FALSE(ResolveConnection({.project = "p"}, Env({}), dir.path() / "absent.toml"));
  EXPECT_FALSE(ResolveConnection({.endpoint = "ftp://h", .project = "p"}, Env({}),
                                 dir.path() / "absent.toml"));
  EXPECT_FALSE(ResolveConnection({.endpoint = "http://h:1", .project = "p", .access_key = "A"},
                                 Env({}), dir.path() / "absent.toml"));
}

TEST(ClientConnection, RefusesAProfileOthersCanReadWithoutShowingIt) {
  test::TempDir dir;
  const auto file = PrivateProfile(dir, "[default]\nsk = \"SECRET-IN-FILE\"\n");
  EXPECT_FALSE(ProfilePermissionProblem(file));
  for (mode_t mode : {0644, 0640, 0604, 0660, 0602}) {
    ::chmod(file.c_str(), mode);
    const auto problem = ProfilePermissionProblem(file);
    ASSERT_TRUE(problem) << std::oct << mode;
    EXPECT_NE(problem->find("chmod 600"), std::string::npos);
    auto resolved = ResolveConnection({.endpoint = "http://h:1", .project = "p"}, Env({}), file);
    ASSERT_FALSE(resolved);
    EXPECT_EQ(resolved.error().find("SECRET-IN-FILE"), std::string::npos);
  }
}

TEST(ClientConnection, RefusesUnknownKeysAndBadToml) {
  test::TempDir dir;
  auto file = PrivateProfile(dir, "[default]\nendpont = \"http://h\"\n");
  auto misspelt = ReadProfile(file, "default", false);
  ASSERT_FALSE(misspelt);
  EXPECT_NE(misspelt.error().find("endpont"), std::string::npos);
  file = PrivateProfile(dir, "[default]\nsk = \"SECRET\n");
  auto broken = ReadProfile(file, "default", false);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().find("SECRET"), std::string::npos);
  file = PrivateProfile(dir, "[default]\nproject = 7\n");
  EXPECT_FALSE(ReadProfile(file, "default", false));
}

TEST(ClientConnection, WritesAPrivateFileAndKeepsOtherProfiles) {
  test::TempDir dir;
  const auto file = dir.path() / "cfg" / "dlipkg" / "client.toml";
  ASSERT_TRUE(WriteProfile(file, "default", {.endpoint = "http://a:1", .project = "pa"}));
  ASSERT_TRUE(WriteProfile(
      file, "work",
      {.endpoint = "http://b:2", .project = "pb", .access_key = "AK", .secret_key = "SK"}));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto first = ReadProfile(file, "default", true);
  auto second = ReadProfile(file, "work", true);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->endpoint, "http://a:1");
  EXPECT_EQ(second->secret_key, "SK");
  EXPECT_EQ(DefaultProfileFile(Env({{"HOME", "/home/u"}})), "/home/u/.config/dlipkg/client.toml");
  EXPECT_EQ(DefaultProfileFile(Env({{"HOME", "/home/u"}, {"XDG_CONFIG_HOME", "/x"}})),
            "/x/dlipkg/client.toml");
}

}  // namespace
}  // namespace dlipkg::client
