// SQLite store specifics: a database file deleted or replaced under the running store. What
// every metadata store must do is in tests/contract/metadata_store_contract.cpp.
#include <gtest/gtest.h>

#include <filesystem>

#include "adapters/metadata/sqlite/sqlite_metadata_store.hpp"
#include "testing/temp_dir.hpp"

namespace dlipkg {
namespace {

namespace fs = std::filesystem;

PackageRecord Ungrouped(const std::string& name) {
  return PackageRecord{.project = "p1",
                       .group = "",
                       .name = name,
                       .kind = PackageKind::kFile,
                       .status = PackageStatus::kReady,
                       .sha256 = std::string(64, 'a'),
                       .size = 1,
                       .underlying_name = "u",
                       .owner = "local",
                       .create_time = 1,
                       .update_time = 1};
}

// Issue 15: SQLite goes on writing to an unlinked file, so writes were acknowledged that vanish
// at the next start. Now every write is refused once the file is gone or another one.
TEST(SqliteMetadataFile, WritesAreRefusedOnceTheFileIsDeletedOrReplaced) {
  for (const bool replace : {false, true}) {
    test::TempDir dir;
    const fs::path file = dir.path() / "metadata.db";
    auto store = SqliteMetadataStore::Open(file);
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE((*store)->PutUngrouped({Ungrouped("a.py")}));
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix);
    if (replace) {
      ASSERT_TRUE(SqliteMetadataStore::Open(file));  // a new, empty database
    }
    auto refused = (*store)->PutUngrouped({Ungrouped("b.py")});
    ASSERT_FALSE(refused) << (replace ? "replaced" : "deleted");
    EXPECT_EQ(refused.error().code, ErrorCode::kInternal);
    EXPECT_NE(refused.error().message.find("deleted or replaced"), std::string::npos)
        << refused.error().message;
    EXPECT_EQ(refused.error().message.find(dir.path().string()), std::string::npos);
  }
}

// The readiness check says so too, naming no path: GET /readyz turns 503 instead of reporting
// a store that refuses every write as ready.
TEST(SqliteMetadataFile, ReadinessFailsOnceTheFileIsDeletedOrReplaced) {
  for (const bool replace : {false, true}) {
    test::TempDir dir;
    const fs::path file = dir.path() / "metadata.db";
    auto store = SqliteMetadataStore::Open(file);
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE((*store)->CheckReady());
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix);
    if (replace) {
      ASSERT_TRUE(SqliteMetadataStore::Open(file));
    }
    auto ready = (*store)->CheckReady();
    ASSERT_FALSE(ready) << (replace ? "replaced" : "deleted");
    EXPECT_EQ(ready.error().code, ErrorCode::kInternal);
    EXPECT_NE(ready.error().message.find("deleted or replaced"), std::string::npos)
        << ready.error().message;
    EXPECT_EQ(ready.error().message.find(dir.path().string()), std::string::npos);
  }
}

}  // namespace
}  // namespace dlipkg
