// --metadata parsing: the embedded default, SQLite paths, PostgreSQL URLs, and refusals that
// do not echo what may be a password.

#include <gtest/gtest.h>

#include "app/config.hpp"

namespace dlipkg::app {
namespace {

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
  for (const std::string url : {"postgresql://u:pw@db:5432/dlipkg?sslmode=require",
                                "postgres://db/dlipkg"}) {
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
