// S3 XML replies as AWS, MinIO and Swift's s3api write them (namespaces, declarations,
// entities, elements in any order), read through Boost.PropertyTree.
#include "adapters/s3/s3_xml.hpp"

#include <gtest/gtest.h>

namespace dlipkg {
namespace {

constexpr char kListObjectsV2[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix>pre/tmp/</Prefix>
  <KeyCount>2</KeyCount>
  <MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents>
    <Key>pre/tmp/0123456789abcdef</Key>
    <LastModified>2026-11-28T10:11:12.000Z</LastModified>
    <ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag>
    <Size>857</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <LastModified>2026-11-29T01:02:03.000Z</LastModified>
    <Key>pre/tmp/a&amp;b</Key>
    <Size>0</Size>
  </Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <ContinuationToken>prev</ContinuationToken>
</ListBucketResult>)";

constexpr char kListMultipartUploads[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>pre/tmp/ffff</NextKeyMarker>
  <NextUploadIdMarker>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</NextUploadIdMarker>
  <MaxUploads>3</MaxUploads>
  <IsTruncated>false</IsTruncated>
  <Upload>
    <Key>pre/tmp/ffff</Key>
    <UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
    <Initiator><ID>arn:aws:iam::111122223333:user/some-user</ID><DisplayName>u</DisplayName></Initiator>
    <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner>
    <StorageClass>STANDARD</StorageClass>
    <Initiated>2026-11-26T19:24:17.000Z</Initiated>
  </Upload>
</ListMultipartUploadsResult>)";

constexpr char kInitiate[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket>
  <Key>pre/tmp/0123</Key>
  <UploadId>2~iCw_lDY8VoNMuBJD8iiJsM2FQ0wVeHM</UploadId>
</InitiateMultipartUploadResult>)";

constexpr char kError[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>SignatureDoesNotMatch</Code>
  <Message>The request signature we calculated does not match the signature you provided.</Message>
  <AWSAccessKeyId>AKIAEXAMPLE</AWSAccessKeyId>
  <RequestId>4442587FB7D0A2F9</RequestId>
</Error>)";

TEST(S3XmlTest, ListObjectsV2) {
  auto page = ParseListObjects(kListObjectsV2);
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "pre/tmp/0123456789abcdef");
  EXPECT_EQ(page->objects[0].last_modified, "2026-11-28T10:11:12.000Z");
  EXPECT_EQ(page->objects[1].key, "pre/tmp/a&b");  // entity decoded, order of children free
  EXPECT_EQ(page->objects[1].last_modified, "2026-11-29T01:02:03.000Z");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3XmlTest, EmptyLastListingPage) {
  auto page = ParseListObjects(
      "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
      "</ListBucketResult>");
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_TRUE(page->objects.empty());
  EXPECT_FALSE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "");
}

TEST(S3XmlTest, ListMultipartUploads) {
  auto page = ParseListUploads(kListMultipartUploads);
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->uploads.size(), 1u);
  EXPECT_EQ(page->uploads[0].key, "pre/tmp/ffff");
  EXPECT_EQ(page->uploads[0].upload_id,
            "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
  EXPECT_EQ(page->uploads[0].initiated, "2026-11-26T19:24:17.000Z");
  EXPECT_FALSE(page->truncated);
  EXPECT_EQ(page->next_key_marker, "pre/tmp/ffff");
}

TEST(S3XmlTest, InitiateMultipartUploadResult) {
  auto id = ParseUploadId(kInitiate);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(*id, "2~iCw_lDY8VoNMuBJD8iiJsM2FQ0wVeHM");
  EXPECT_FALSE(
      ParseUploadId("<InitiateMultipartUploadResult><UploadId></UploadId>"
                    "</InitiateMultipartUploadResult>"));
}

TEST(S3XmlTest, ErrorCode) {
  EXPECT_EQ(S3ErrorCode(kError), "SignatureDoesNotMatch");
  EXPECT_EQ(S3ErrorCode("<Error><Code>SlowDown</Code></Error>"), "SlowDown");
  // Not an error document, or a code that is not a short word: nothing is taken.
  EXPECT_EQ(S3ErrorCode(kInitiate), "");
  EXPECT_EQ(S3ErrorCode("<Error><Code>no such thing &lt;script&gt;</Code></Error>"), "");
  EXPECT_EQ(S3ErrorCode("plain text <Code>X</Code>"), "");
}

TEST(S3XmlTest, WrongOrBrokenDocumentsAreErrorsNamingNoContent) {
  EXPECT_FALSE(ParseListObjects(kListMultipartUploads));  // another reply's root
  EXPECT_FALSE(ParseListUploads(kListObjectsV2));
  const auto broken = ParseListObjects("<ListBucketResult><Contents><Key>secret-key</Key>");
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().message.find("secret-key"), std::string::npos);
  EXPECT_FALSE(ParseUploadId(""));
}

}  // namespace
}  // namespace dlipkg
