// Which arguments of push are URLs and which local files, the kind each gets by default, and
// the checks made before anything is sent.
#include "client/push_plan.hpp"

#include <gtest/gtest.h>

#include "testing/temp_dir.hpp"

namespace dlipkg::client {
namespace {

TEST(PushPlan, KindDefaultsFromTheExtension) {
  for (const char* name : {"a.py", "b.zip", "c.egg", "d-1.0-py3-none-any.whl", "E.PY", "f.Zip"})
    EXPECT_EQ(DefaultKind(name), "pyFile") << name;
  EXPECT_EQ(DefaultKind("udf.jar"), "jar");
  EXPECT_EQ(DefaultKind("UDF.JAR"), "jar");
  for (const char* name : {"model.bin", "conf.json", "py", "archive.tar.gz", "x.jar.txt", "a.pyc"})
    EXPECT_EQ(DefaultKind(name), "file") << name;
}

TEST(PushPlan, RecognisesRemoteSchemesOnly) {
  for (const char* url :
       {"http://h/a.py", "https://h/a.py", "obs://b/k.jar", "s3://b/k", "HTTPS://H/x"})
    EXPECT_TRUE(IsRemoteSource(url)) << url;
  for (const char* local : {"a.py", "./http:/x", "/tmp/s3.py", "file:///tmp/a.py", "ftp://h/a"})
    EXPECT_FALSE(IsRemoteSource(local)) << local;
}

TEST(PushPlan, NamesComeFromTheLastSegment) {
  EXPECT_EQ(PackageNameOf("dir/sub/a.py"), "a.py");
  EXPECT_EQ(PackageNameOf("https://h/x/b.jar?v=1#f"), "b.jar");
  EXPECT_EQ(PackageNameOf("https://h/x/a%20b.py"), "a b.py");
  EXPECT_EQ(PackageNameOf("obs://bucket/k/c.zip"), "c.zip");
  EXPECT_EQ(PackageNameOf("https://host"), "");
}

TEST(PushPlan, PlansLocalFilesAndUrlsInOrder) {
  test::TempDir dir;
  dir.WriteFile("a.py", "print(1)\n");
  dir.WriteFile("lib.jar", std::string(1000, 'j'));
  const auto plan = PlanPush(
      {(dir.path() / "a.py").string(), "https://h/m.bin", (dir.path() / "lib.jar").string()}, "");
  ASSERT_EQ(plan.error, "");
  ASSERT_EQ(plan.items.size(), 3u);
  EXPECT_EQ(plan.items[0].name, "a.py");
  EXPECT_EQ(plan.items[0].kind, "pyFile");
  EXPECT_FALSE(plan.items[0].remote);
  EXPECT_EQ(plan.items[0].size, 9);
  EXPECT_TRUE(plan.items[1].remote);
  EXPECT_EQ(plan.items[1].kind, "file");
  EXPECT_EQ(plan.items[2].kind, "jar");
  EXPECT_EQ(plan.items[2].size, 1000);
  EXPECT_EQ(PlanPush({(dir.path() / "a.py").string()}, "file").items[0].kind, "file");
}

TEST(PushPlan, RefusesBeforeSendingAnything) {
  test::TempDir dir;
  dir.WriteFile("a.py", "x");
  EXPECT_NE(PlanPush({(dir.path() / "missing.py").string()}, "").error, "");
  EXPECT_NE(PlanPush({dir.path().string()}, "").error, "");  // a directory
  EXPECT_NE(PlanPush({(dir.path() / "a.py").string(), "https://h/a.py"}, "").error, "");  // twice
  EXPECT_NE(PlanPush({"https://host"}, "").error, "");                                    // no name
  EXPECT_NE(PlanPush({"https://h/.hidden"}, "").error, "");  // a name the server refuses
}

}  // namespace
}  // namespace dlipkg::client
