#include <gtest/gtest.h>

#include "domain/names.hpp"
#include "domain/records.hpp"

namespace dlipkg {
namespace {

TEST(ProjectId, AcceptsLettersAndDigitsUpTo64) {
  EXPECT_TRUE(ParseProjectId("p1"));
  EXPECT_TRUE(ParseProjectId(std::string(64, 'a')));
  EXPECT_FALSE(ParseProjectId(""));
  EXPECT_FALSE(ParseProjectId(std::string(65, 'a')));
  EXPECT_FALSE(ParseProjectId("p-1"));
  EXPECT_FALSE(ParseProjectId("p%31"));
}

TEST(GroupName, TrimsThenValidates) {
  EXPECT_EQ(*ParseGroupName(" gatk"), "gatk");
  EXPECT_EQ(*ParseGroupName("a.b_c-9"), "a.b_c-9");
  EXPECT_FALSE(ParseGroupName("   "));
  EXPECT_FALSE(ParseGroupName("a/b"));
  EXPECT_FALSE(ParseGroupName("a b"));
  EXPECT_FALSE(ParseGroupName(std::string(65, 'g')));
  EXPECT_EQ(ParseGroupName("a/b").error().code, ErrorCode::kBadRequest);
  EXPECT_NE(ParseGroupName("a/b").error().message.find("group"), std::string::npos);
}

TEST(ResourceName, Rules) {
  for (const char* ok : {"a.py", "lib-1.0_x!.jar", "a b.py", "a b+c~d.py", "p%41ct.py",
                         "\xE6\x95\xB0\xE6\x8D\xAE.py", "owner", "x"})
    EXPECT_TRUE(ParseResourceName(ok)) << ok;
  for (const char* bad : {"", ".", "..", ".hidden", "dir/sub.py", "a\\b", " a.py", "a.py ", "a\tb",
                          "a:b", "a*b", "\xff.py", "\xC0\xAF.py", "a\xE3\x80\x80.py"})
    EXPECT_FALSE(ParseResourceName(bad)) << bad;
  EXPECT_TRUE(ParseResourceName(std::string(128, 'n')));
  EXPECT_FALSE(ParseResourceName(std::string(129, 'n')));
  // Issue 15: invisible, format and bidi-control characters, private use, noncharacters and
  // fillers, so that two names that look the same cannot coexist.
  for (const char* invisible :
       {"a\xC2\xAD.py" /* U+00AD soft hyphen */, "a\xE2\x80\x8B.py" /* U+200B ZWSP */,
        "a\xE2\x80\x8D.py" /* U+200D ZWJ */, "a\xE2\x81\xA0.py" /* U+2060 word joiner */,
        "a\xE2\x81\xA6.py" /* U+2066 LRI */, "a\xE2\x80\xAE.py" /* U+202E RLO */,
        "a\xE2\x80\xA8.py" /* U+2028 Zl */, "a\xE2\x80\xA9.py" /* U+2029 Zp */,
        "a\xEE\x80\x80.py" /* U+E000 Co */, "a\xEF\xB7\x90.py" /* U+FDD0 nonchar */,
        "a\xEF\xBF\xBE.py" /* U+FFFE */, "a\xE3\x85\xA4.py" /* U+3164 Hangul filler */,
        "a\xEF\xBE\xA0.py" /* U+FFA0 */, "a\xE1\x85\x9F.py" /* U+115F */,
        "a\xF3\xA0\x80\x81.py" /* U+E0001 language tag */,
        "a\xEF\xB8\x8F.py" /* U+FE0F variation selector */})
    EXPECT_FALSE(ParseResourceName(invisible)) << invisible;
  EXPECT_TRUE(ParseResourceName("caf\xC3\xA9.py"));  // U+00E9: a letter like any other
  // 128 characters, not bytes: 128 three-byte characters are fine.
  std::string wide;
  for (int i = 0; i < 128; ++i) wide += "\xE6\x95\xB0";
  EXPECT_TRUE(ParseResourceName(wide));
}

TEST(OwnerName, Rules) {
  EXPECT_TRUE(ParseOwnerName("alice"));
  EXPECT_TRUE(ParseOwnerName("a_b-c"));
  EXPECT_FALSE(ParseOwnerName("bob"));
  EXPECT_FALSE(ParseOwnerName("1alice"));
  EXPECT_FALSE(ParseOwnerName(std::string(33, 'a')));
  EXPECT_FALSE(ParseOwnerName("ali ce"));
}

TEST(Tags, Rules) {
  EXPECT_TRUE(ValidateTags({{"team", "data eng"}, {"k:1", ""}, {"\xE9\x83\xA8", "v@x+y"}}));
  EXPECT_FALSE(ValidateTags({{"", "v"}}));
  EXPECT_FALSE(ValidateTags({{"_sys_x", "v"}}));
  EXPECT_FALSE(ValidateTags({{"k", " v"}}));
  EXPECT_FALSE(ValidateTags({{"k", "a/b"}}));
  EXPECT_FALSE(ValidateTags({{"k", "1"}, {"k", "2"}}));
  EXPECT_FALSE(ValidateTags({{std::string(129, 'k'), "v"}}));
  EXPECT_FALSE(ValidateTags({{"k", std::string(256, 'v')}}));
  std::vector<Tag> many;
  for (int i = 0; i < 21; ++i) many.push_back({"k" + std::to_string(i), "v"});
  EXPECT_FALSE(ValidateTags(many));
  many.pop_back();
  EXPECT_TRUE(ValidateTags(many));
}

TEST(PercentDecode, OnceAndStrict) {
  EXPECT_EQ(*PercentDecode("a%20b%2Bc~d.py"), "a b+c~d.py");
  EXPECT_EQ(*PercentDecode("p%2541ct.py"), "p%41ct.py");
  EXPECT_EQ(*PercentDecode("%E6%95%B0"), "\xE6\x95\xB0");
  EXPECT_FALSE(PercentDecode("%"));
  EXPECT_FALSE(PercentDecode("%4"));
  EXPECT_FALSE(PercentDecode("%zz"));
}

TEST(ResourceNameFromUrl, LastSegmentDecoded) {
  EXPECT_EQ(*ResourceNameFromUrl("https://bucket.obs.region.example.com/dir/a.py"), "a.py");
  EXPECT_EQ(*ResourceNameFromUrl("http://h/x/a%20b.py?versionId=3#frag"), "a b.py");
  EXPECT_EQ(*ResourceNameFromUrl("obs://bucket/key/%E6%95%B0.py"), "\xE6\x95\xB0.py");
  EXPECT_EQ(*ResourceNameFromUrl("file:///srv/pkgs/lib.jar"), "lib.jar");
  EXPECT_FALSE(ResourceNameFromUrl("http://h/dir/"));
  EXPECT_FALSE(ResourceNameFromUrl("http://h"));
  EXPECT_FALSE(ResourceNameFromUrl("http://h/%2E%2E"));
  EXPECT_FALSE(ResourceNameFromUrl("http://h/a%2Fb.py"));
  EXPECT_FALSE(ResourceNameFromUrl("http://h/a%zz.py"));
  auto error = ResourceNameFromUrl("http://h/x/..");
  ASSERT_FALSE(error);
  EXPECT_NE(error.error().message.find("http://h/x/.."), std::string::npos);
}

TEST(Kinds, SpelledExactly) {
  EXPECT_EQ(ToString(PackageKind::kPyFile), "pyFile");
  EXPECT_EQ(ToString(PackageKind::kModelFile), "modelFile");
  EXPECT_EQ(*ParseKind("jar"), PackageKind::kJar);
  EXPECT_FALSE(ParseKind("JAR"));
  EXPECT_FALSE(ParseKind("pyfile"));
  EXPECT_EQ(*ParseStatus("UPLOADING"), PackageStatus::kUploading);
}

TEST(RollUp, UploadingThenFailedThenReady) {
  PackageRecord ready, failed, uploading;
  failed.status = PackageStatus::kFailed;
  uploading.status = PackageStatus::kUploading;
  EXPECT_EQ(RollUpStatus({}), PackageStatus::kReady);
  EXPECT_EQ(RollUpStatus({ready, failed}), PackageStatus::kFailed);
  EXPECT_EQ(RollUpStatus({failed, uploading, ready}), PackageStatus::kUploading);
}

}  // namespace
}  // namespace dlipkg
