// SQL store specifics of the asynchronous enqueue: a request's rows reach SQLite as one JSON
// text, which would carry a NUL byte differently from a bound text, so the store refuses one.
// What every job queue must do is in tests/contract/job_queue_contract.cpp.
#include <gtest/gtest.h>

#include <string>

#include "adapters/metadata/sqlite/sqlite_metadata_store.hpp"
#include "testing/temp_dir.hpp"

namespace dlipkg {
namespace {

using namespace std::string_literals;

PackageRecord Queued(const std::string& name) {
  return PackageRecord{.project = "p1",
                       .group = "g1",
                       .name = name,
                       .kind = PackageKind::kFile,
                       .status = PackageStatus::kUploading,
                       .owner = "local",
                       .create_time = 1,
                       .update_time = 1};
}

TEST(SqliteEnqueue, ANulByteInAnyTextFailsTheRequestWithNothingWritten) {
  test::TempDir dir;
  auto store = SqliteMetadataStore::Open(dir.path() / "metadata.db");
  ASSERT_TRUE(store) << store.error().message;
  const GroupRecord group{.project = "p1", .name = "g1", .owner = "local"};
  for (int field = 0; field < 4; ++field) {
    std::vector<PackageRecord> packages{Queued("a.py"), Queued("b.py")};
    std::vector<std::string> urls{"obs://b/a.py", "obs://b/b.py"};
    if (field == 0) packages[1].name = "b\0.py"s;
    if (field == 1) urls[1] = "obs://b/\0"s;
    if (field == 2) packages[1].owner = "o\0"s;
    if (field == 3) packages[1].tags = {{"k", "v\0w"s}};
    auto refused = (*store)->EnqueueUploads(group, packages, urls, 9'000'000, 1000);
    ASSERT_FALSE(refused) << field;
    EXPECT_EQ(refused.error().code, ErrorCode::kInternal);
    EXPECT_FALSE(*(*store)->GetGroup("p1", "g1"));
    EXPECT_EQ(*(*store)->CountQueued(), 0u);
  }
  // The same request without the NUL byte is written.
  ASSERT_TRUE((*store)->EnqueueUploads(group, {Queued("a.py"), Queued("b.py")},
                                       {"obs://b/a.py", "obs://b/b.py"}, 9'000'000, 1000));
  EXPECT_EQ(*(*store)->CountQueued(), 2u);
}

}  // namespace
}  // namespace dlipkg
