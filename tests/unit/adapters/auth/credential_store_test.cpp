// The credential file: what loads, what is refused (naming the user and field, never a secret),
// and a reload that keeps the old store when the new file is bad.
#include "adapters/auth/credential_store.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>

#include "adapters/common/utc_time.hpp"
#include "testing/temp_dir.hpp"

namespace dlipkg {
namespace {

constexpr std::string_view kGood = R"({"users": [
  {"name": "alice", "projects": ["p1", "p2"],
   "access_keys": [{"ak": "AKALICE", "sk": "sk-alice-secret"}],
   "tokens": [{"token": "tok-alice", "expires_at": "2027-01-01T00:00:00Z"},
              {"token": "tok-alice-forever"}]},
  {"name": "owner_only"}
]})";

TEST(CredentialStore, LoadsUsersKeysAndTokens) {
  auto credentials = ParseCredentials(kGood);
  ASSERT_TRUE(credentials) << credentials.error().message;
  const auto& c = **credentials;
  ASSERT_EQ(c.users.size(), 2u);
  EXPECT_TRUE(c.users.at("alice").projects.contains("p2"));
  EXPECT_TRUE(c.users.at("owner_only").projects.empty());
  ASSERT_TRUE(c.access_keys.contains("AKALICE"));
  EXPECT_EQ(c.access_keys.at("AKALICE").secret, "sk-alice-secret");
  EXPECT_EQ(c.access_keys.at("AKALICE").user, "alice");
  EXPECT_FALSE(c.tokens.contains("tok-alice"));  // kept by digest only
  const auto& token = c.tokens.at(TokenDigest("tok-alice"));
  EXPECT_EQ(token.user, "alice");
  EXPECT_EQ(token.expires_at_ms, 1798761600000);
  EXPECT_FALSE(c.tokens.at(TokenDigest("tok-alice-forever")).expires_at_ms);
}

struct BadFile {
  std::string json;
  std::string message_has;
};

TEST(CredentialStore, RefusesInvalidFilesNamingTheUserAndFieldButNoSecret) {
  const BadFile cases[] = {
      {R"({"users": [{"name": "alice", "sk-oops": 1)", "not valid JSON"},
      {R"([])", "\"users\" array"},
      {R"({"users": {}})", "\"users\" array"},
      {R"({"users": [], "extra": 1})", "unknown key \"extra\""},
      {R"({"users": [7]})", "users[0] must be an object"},
      {R"({"users": [{"projects": []}]})", "users[0].name must be a string"},
      {R"({"users": [{"name": "al"}]})", "users[0].name: Invalid owner 'al'"},
      {R"({"users": [{"name": "alice"}, {"name": "alice"}]})",
       "users[1] (alice): the name is used by an earlier user"},
      {R"({"users": [{"name": "alice", "projects": "p1"}]})",
       "users[0] (alice).projects must be an array"},
      {R"({"users": [{"name": "alice", "projects": ["p-1"]}]})",
       "users[0] (alice).projects[0] must be a project_id"},
      {R"({"users": [{"name": "alice", "access_keys": [{"ak": "AK1"}]}]})",
       "users[0] (alice).access_keys[0].sk must be a non-empty string"},
      {R"({"users": [{"name": "alice", "access_keys": [{"ak": "AK1", "sk": "TOPSECRET x"}]}]})",
       "users[0] (alice).access_keys[0].sk must not contain white space"},
      {R"({"users": [{"name": "alice", "access_keys": [{"ak": "AK1", "sk": "TOPSECRET",
                                                         "secret": "TOPSECRET"}]}]})",
       "users[0] (alice).access_keys[0]: unknown key \"secret\""},
      {R"({"users": [{"name": "alice", "access_keys": [{"ak": "AK1", "sk": "TOPSECRET"}]},
                     {"name": "bobby", "access_keys": [{"ak": "AK1", "sk": "TOPSECRET2"}]}]})",
       "users[1] (bobby).access_keys[0].ak is already used"},
      {R"({"users": [{"name": "alice", "tokens": [{"token": ""}]}]})",
       "users[0] (alice).tokens[0].token must be a non-empty string"},
      {R"({"users": [{"name": "alice", "tokens": [{"token": "TOPSECRET",
                                                  "expires_at": "2027-01-01"}]}]})",
       "users[0] (alice).tokens[0].expires_at must be an RFC 3339 time"},
      {R"({"users": [{"name": "alice", "tokens": [{"token": "TOPSECRET", "expire_at": "x"}]}]})",
       "users[0] (alice).tokens[0]: unknown key \"expire_at\""},
      {R"({"users": [{"name": "alice", "tokens": [{"token": "TOPSECRET"}]},
                     {"name": "bobby", "tokens": [{"token": "TOPSECRET"}]}]})",
       "users[1] (bobby).tokens[0].token is already used"},
  };
  for (const auto& bad : cases) {
    auto credentials = ParseCredentials(bad.json);
    ASSERT_FALSE(credentials) << bad.json;
    EXPECT_EQ(credentials.error().code, ErrorCode::kBadRequest);
    EXPECT_NE(credentials.error().message.find(bad.message_has), std::string::npos)
        << credentials.error().message;
    EXPECT_EQ(credentials.error().message.find("TOPSECRET"), std::string::npos)
        << credentials.error().message;
  }
}

TEST(CredentialStore, ASyntaxErrorGivesTheLineButNotTheText) {
  auto credentials = ParseCredentials(
      "{\"users\": [\n{\"name\": \"alice\",\n \"tokens\": "
      "[{\"token\": \"TOPSECRET\" \"x\"}]}]}");
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().message.find("line 3"), std::string::npos)
      << credentials.error().message;
  EXPECT_EQ(credentials.error().message.find("TOPSECRET"), std::string::npos);
}

void Write(const std::filesystem::path& file, std::string_view text) {
  std::ofstream(file, std::ios::trunc) << text;
}

TEST(CredentialStore, ReloadSwapsInANewFileAndKeepsTheOldStoreWhenTheNewOneIsBad) {
  test::TempDir dir;
  const auto file = dir.path() / "credentials.json";
  Write(file, kGood);
  auto store = CredentialStore::Open(file);
  ASSERT_TRUE(store) << store.error().message;
  const auto first = (*store)->Snapshot();
  EXPECT_FALSE(first->users.contains("carol"));

  Write(file, R"({"users": [{"name": "carol", "tokens": [{"token": "tok-carol"}]}]})");
  auto reloaded = (*store)->Reload();
  ASSERT_TRUE(reloaded) << reloaded.error().message;
  EXPECT_TRUE((*store)->Snapshot()->users.contains("carol"));
  EXPECT_FALSE((*store)->Snapshot()->users.contains("alice"));
  EXPECT_TRUE(first->users.contains("alice"));  // a request holding the old snapshot keeps it

  Write(file, R"({"users": [{"name": "dave!"}]})");
  auto broken = (*store)->Reload();
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find("users[0].name"), std::string::npos);
  EXPECT_TRUE((*store)->Snapshot()->users.contains("carol"));

  std::filesystem::remove(file);
  EXPECT_FALSE((*store)->Reload());
  EXPECT_TRUE((*store)->Snapshot()->users.contains("carol"));
}

// Issue 15, bug 4: a SIGHUP with the credentials path turned into a directory aborted the
// process; a FIFO there blocked the signal thread, so SIGTERM was ignored. The reload now fails
// at once, and the old credentials stay in force.
TEST(CredentialStore, ReloadOfADirectoryOrFifoFailsAtOnceAndKeepsTheOldStore) {
  test::TempDir dir;
  const auto file = dir.path() / "credentials.json";
  Write(file, kGood);
  auto store = CredentialStore::Open(file);
  ASSERT_TRUE(store) << store.error().message;

  std::filesystem::remove(file);
  std::filesystem::create_directory(file);
  auto as_directory = (*store)->Reload();
  ASSERT_FALSE(as_directory);
  EXPECT_NE(as_directory.error().message.find("not a regular file"), std::string::npos)
      << as_directory.error().message;
  EXPECT_TRUE((*store)->Snapshot()->users.contains("alice"));

  std::filesystem::remove(file);
  ASSERT_EQ(::mkfifo(file.c_str(), 0600), 0);
  auto reload = std::async(std::launch::async, [&] { return (*store)->Reload(); });
  const bool returned = reload.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!returned) {  // unblock it by opening and closing the other end, so the test ends
    const int writer = ::open(file.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0) ::close(writer);
  }
  EXPECT_TRUE(returned) << "the reload blocked on a FIFO";
  EXPECT_FALSE(reload.get());
  EXPECT_TRUE((*store)->Snapshot()->users.contains("alice"));
}

TEST(CredentialStore, OpenFailsOnAMissingFile) {
  test::TempDir dir;
  auto store = CredentialStore::Open(dir.path() / "absent.json");
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().message.find("cannot open"), std::string::npos);
}

TEST(UtcTime, ParsesRfc3339AndSdkDates) {
  EXPECT_EQ(ParseRfc3339Ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseRfc3339Ms("2027-01-01T08:00:00+08:00"), 1798761600000);
  EXPECT_EQ(ParseRfc3339Ms("2026-12-31T23:00:00-01:00"), 1798761600000);
  EXPECT_EQ(ParseRfc3339Ms("1970-01-01T00:00:01.5Z"), 1500);
  for (const char* bad : {"2027-01-01", "2027-01-01T00:00:00", "2027-02-30T00:00:00Z",
                          "2027-01-01T24:00:00Z", "2027-01-01T00:00:00Zjunk", "x"})
    EXPECT_FALSE(ParseRfc3339Ms(bad)) << bad;
  EXPECT_EQ(ParseSdkDateMs("20191115T033655Z"), 1573789015000);
  for (const char* bad : {"20191115T033655", "2019-11-15T03:36:55Z", "20191315T033655Z",
                          "20191115T033660Z", "20191115t033655Z", " 20191115T033655Z"})
    EXPECT_FALSE(ParseSdkDateMs(bad)) << bad;
  EXPECT_EQ(FormatUtc(1573789015000), "2019-11-15T03:36:55Z");
  EXPECT_EQ(FormatSdkDate(1573789015999), "20191115T033655Z");
  EXPECT_EQ(ParseSdkDateMs(FormatSdkDate(1573789015000)), 1573789015000);
}

}  // namespace
}  // namespace dlipkg
