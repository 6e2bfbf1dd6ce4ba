// ObjectStores without a network: the object-stores file format, how source URLs pick a store,
// and the canonical URL libcurl's SigV4 signer needs (it signs the URL exactly as given).
#include "adapters/s3/object_stores.hpp"

#include <gtest/gtest.h>

namespace dlipkg {
namespace {

ObjectStore PathStore(std::vector<std::string> buckets = {"*"}) {
  return {.name = "swift",
          .endpoint = "http://127.0.0.1:8080",
          .access_key = "test:tester",
          .secret_key = "testing",
          .buckets = std::move(buckets)};
}

TEST(CanonicalObjectUrl, EncodesEveryByteButUnreservedOnesWithUpperCaseHex) {
  const ObjectStore store = PathStore();
  const struct {
    const char* key;
    const char* path;
  } cases[] = {
      {"a.py", "/pkgs/a.py"},
      {"dir/sub dir/a b.py", "/pkgs/dir/sub%20dir/a%20b.py"},
      {"a+b.py", "/pkgs/a%2Bb.py"},                               // '+' is a plus, never a space
      {"tilde~_-.py", "/pkgs/tilde~_-.py"},                       // unreserved stay as they are
      {"\xc3\xbc/\xe6\x97\xa5.py", "/pkgs/%C3%BC/%E6%97%A5.py"},  // UTF-8, byte by byte
      {"already%20encoded.py", "/pkgs/already%20encoded.py"},     // decoded once, re-encoded
      {"lower%2bhex%3d.py", "/pkgs/lower%2Bhex%3D.py"},
      {"%41%7E%2F.py", "/pkgs/A~/.py"},  // needless escapes undone
      {"%2520.py", "/pkgs/%2520.py"},    // decoded once only
      {"q?#&=:@!$'()*,;.py", "/pkgs/q%3F%23%26%3D%3A%40%21%24%27%28%29%2A%2C%3B.py"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(CanonicalObjectUrl(store, "pkgs", c.key),
              std::string("http://127.0.0.1:8080") + c.path)
        << c.key;
  }
  EXPECT_EQ(CanonicalObjectUrl(store, "pkgs", "bad%zz.py"), std::nullopt);
  EXPECT_EQ(CanonicalObjectUrl(store, "pkgs", "bad%4"), std::nullopt);
}

TEST(CanonicalObjectUrl, QueryIsSortedEncodedAndAlwaysHasEquals) {
  const ObjectStore store = PathStore();
  const struct {
    const char* query;
    const char* canonical;
  } cases[] = {
      {"versionId=3&acl", "?acl=&versionId=3"},
      {"b=2&a=1&a=0", "?a=0&a=1&b=2"},
      {"x=a b+c&&", "?x=a%20b%2Bc"},
      {"k%2fx=%7e", "?k%2Fx=~"},
      {"", ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(CanonicalObjectUrl(store, "pkgs", "a.py", c.query),
              std::string("http://127.0.0.1:8080/pkgs/a.py") + c.canonical)
        << c.query;
  }
  EXPECT_EQ(CanonicalObjectUrl(store, "pkgs", "a.py", "x=%g0"), std::nullopt);
}

TEST(CanonicalObjectUrl, VirtualHostedPutsTheBucketInTheHost) {
  ObjectStore store = PathStore();
  store.endpoint = "https://obs.cn-north-4.myhuaweicloud.com/";
  store.addressing = Addressing::kVirtual;
  EXPECT_EQ(CanonicalObjectUrl(store, "pkgs", "dir/a b.py"),
            "https://pkgs.obs.cn-north-4.myhuaweicloud.com/dir/a%20b.py");
}

TEST(ObjectStores, ObsAndS3UrlsPickTheFirstStoreServingTheBucket) {
  ObjectStore first = PathStore({"pkgs", "models"});
  ObjectStore second = PathStore({"*"});
  second.name = "fallback";
  second.endpoint = "http://10.0.0.5:9000";
  const auto stores = ObjectStores::Create({first, second}).value();
  const struct {
    const char* url;
    const char* store;
    const char* request;
  } cases[] = {
      {"obs://pkgs/dir/a b.py", "swift", "http://127.0.0.1:8080/pkgs/dir/a%20b.py"},
      {"s3://models/m%2B1.bin", "swift", "http://127.0.0.1:8080/models/m%2B1.bin"},
      {"OBS://other-bucket/x.jar?versionId=7#frag", "fallback",
       "http://10.0.0.5:9000/other-bucket/x.jar?versionId=7"},
  };
  for (const auto& c : cases) {
    auto request = stores.Resolve(c.url);
    ASSERT_TRUE(request) << c.url << ": " << request.error().message;
    EXPECT_EQ(request->store->name, c.store) << c.url;
    EXPECT_EQ(request->url, c.request) << c.url;
  }
}

TEST(ObjectStores, UnusableBucketUrlsAreBadRequests) {
  const auto stores = ObjectStores::Create({PathStore({"pkgs"})}).value();
  const struct {
    const char* url;
    const char* cause;
  } cases[] = {
      {"obs://other/a.py", "no object store is configured for bucket 'other'"},
      {"obs://pkgs", "no object key"},
      {"obs://pkgs/", "no object key"},
      {"obs://pkgs/../private/a.py", "'..' segments"},
      {"obs://pkgs/a/%2E%2E/b.py", "'..' segments"},
      {"obs://pkgs/./a.py", "'..' segments"},
      {"obs://pkgs/bad%zz.py", "percent-encoding"},
      {"obs://Bad_Bucket/a.py", "not a valid bucket name"},
      {"obs://-pkgs/a.py", "not a valid bucket name"},
      {"obs://ab/a.py", "not a valid bucket name"},
      {"obs://user:pw@pkgs/a.py", "not a valid bucket name"},
      {"obs:pkgs/a.py", "not a valid URL"},
  };
  for (const auto& c : cases) {
    auto request = stores.Resolve(c.url);
    ASSERT_FALSE(request) << c.url;
    EXPECT_EQ(request.error().code, ErrorCode::kBadRequest) << c.url;
    EXPECT_NE(request.error().message.find(c.cause), std::string::npos)
        << c.url << ": " << request.error().message;
    EXPECT_EQ(request.error().message.find("pw"), std::string::npos) << request.error().message;
  }
  EXPECT_FALSE(ObjectStores::Create({}).value().Resolve("obs://pkgs/a.py"));
}

TEST(ObjectStores, ObsHostNamesGoToTheStoreDeclaringTheirDomainAndRegion) {
  ObjectStore store = PathStore({"pkgs"});
  store.obs_domains = {"myhuaweicloud.com"};
  store.region = "cn-north-4";
  const auto stores = ObjectStores::Create({store}).value();
  auto request =
      stores.ResolveObsHost("pkgs.obs.cn-north-4.MyHuaweiCloud.com", "/dir/a%20b.py", "");
  ASSERT_TRUE(request) << request.error().message;
  ASSERT_TRUE(*request);
  EXPECT_EQ((*request)->url, "http://127.0.0.1:8080/pkgs/dir/a%20b.py");
  // Not a store's: fetched as plain URLs.
  for (const char* host : {"pkgs.obs.eu-west-1.myhuaweicloud.com",    // another region
                           "other.obs.cn-north-4.myhuaweicloud.com",  // bucket not served
                           "pkgs.obs.cn-north-4.example.com",         // undeclared domain
                           "pkgs.cn-north-4.myhuaweicloud.com",       // no "obs" label
                           "obs.cn-north-4.myhuaweicloud.com", "myhuaweicloud.com"}) {
    auto plain = stores.ResolveObsHost(host, "/a.py", "");
    ASSERT_TRUE(plain) << host;
    EXPECT_FALSE(*plain) << host;
  }
  auto bad = stores.ResolveObsHost("pkgs.obs.cn-north-4.myhuaweicloud.com", "/", "");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kBadRequest);
}

TEST(ParseObjectStores, ReadsTheDocumentedFormat) {
  auto stores = ParseObjectStores(R"({"stores": [
      {"name": "obs", "endpoint": "https://obs.cn-north-4.myhuaweicloud.com",
       "region": "CN-North-4", "addressing": "virtual", "access_key": "AK", "secret_key": "SK",
       "buckets": ["pkgs"], "obs_domains": ["MyHuaweiCloud.com"]},
      {"name": "swift", "endpoint": "http://127.0.0.1:8080", "buckets": ["*"]}]})");
  ASSERT_TRUE(stores) << stores.error().message;
  ASSERT_EQ(stores->size(), 2u);
  const ObjectStore& obs = (*stores)[0];
  EXPECT_EQ(obs.region, "cn-north-4");
  EXPECT_EQ(obs.addressing, Addressing::kVirtual);
  EXPECT_EQ(obs.obs_domains, std::vector<std::string>{"myhuaweicloud.com"});
  EXPECT_TRUE(obs.Signed());
  const ObjectStore& swift = (*stores)[1];
  EXPECT_EQ(swift.region, "us-east-1");
  EXPECT_EQ(swift.addressing, Addressing::kPath);
  EXPECT_FALSE(swift.Signed());
}

TEST(ParseObjectStores, TheShippedExampleParses) {
  const auto example =
      std::filesystem::path(DLIPKG_SOURCE_DIR) / "config" / "object-stores.example.json";
  auto stores = LoadObjectStores(example);
  ASSERT_TRUE(stores) << stores.error().message;
  EXPECT_EQ(stores->size(), 2u);
}

TEST(ParseObjectStores, MistakesAreNamedAndSecretsAreNot) {
  const std::string base = R"("name": "s", "endpoint": "http://h:1", "buckets": ["pkgs"])";
  const struct {
    std::string json;
    const char* named;
  } cases[] = {
      {"[", "not valid JSON"},
      {R"({"store": []})", "expected {\"stores\""},
      {R"({"stores": [1]})", "must be a JSON object"},
      {R"({"stores": [{)" + base + R"(, "secret": "hunter2"}]})", "unknown key 'secret'"},
      {R"({"stores": [{"endpoint": "http://h:1", "buckets": ["pkgs"]}]})", "'name' is required"},
      {R"({"stores": [{)" + base + "}, {" + base + "}]}", "used twice"},
      {R"({"stores": [{"name": "s", "endpoint": "ftp://h", "buckets": ["pkgs"]}]})", "'endpoint'"},
      {R"({"stores": [{"name": "s", "endpoint": "http://h:1/path", "buckets": ["pkgs"]}]})",
       "'endpoint'"},
      {R"({"stores": [{"name": "s", "endpoint": "http://u:hunter2@h", "buckets": ["pkgs"]}]})",
       "'endpoint'"},
      {R"({"stores": [{"name": "s", "endpoint": "http://h:99999", "buckets": ["pkgs"]}]})",
       "'endpoint'"},
      {R"({"stores": [{"name": "s", "endpoint": "http://10.0.0.1", "addressing": "virtual",
           "buckets": ["pkgs"]}]})",
       "host name"},
      {R"({"stores": [{)" + base + R"(, "addressing": "vhost"}]})", "'addressing'"},
      {R"({"stores": [{)" + base + R"(, "secret_key": "hunter2"}]})", "go together"},
      {R"({"stores": [{)" + base + R"(, "access_key": 5}]})", "'access_key' must be a string"},
      {R"({"stores": [{"name": "s", "endpoint": "http://h:1"}]})", "'buckets'"},
      {R"({"stores": [{"name": "s", "endpoint": "http://h:1", "buckets": ["No_Such"]}]})",
       "'No_Such'"},
      {R"({"stores": [{)" + base + R"(, "obs_domains": ["com"]}]})", "obs domain 'com'"},
      {R"({"stores": [{)" + base + R"(, "region": "us east"}]})", "'region'"},
  };
  for (const auto& c : cases) {
    auto stores = ParseObjectStores(c.json);
    ASSERT_FALSE(stores) << c.json;
    EXPECT_EQ(stores.error().code, ErrorCode::kBadRequest);
    EXPECT_NE(stores.error().message.find(c.named), std::string::npos)
        << c.json << ": " << stores.error().message;
    EXPECT_EQ(stores.error().message.find("hunter2"), std::string::npos) << stores.error().message;
  }
}

}  // namespace
}  // namespace dlipkg
