// The unpaginated listing written while it is read (api/listing_stream.hpp) must be byte for
// byte the answer EncodeListing gives for the whole listing, over several batches; paged
// listings carry a cursor that continues them.

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <set>
#include <string>

#include "api/json_codec.hpp"
#include "api/resources_api.hpp"
#include "core/blob_keeper.hpp"
#include "core/worker_pool.hpp"
#include "testing/fakes.hpp"
#include "testing/settable_clock.hpp"

namespace dlipkg::api {
namespace {

namespace json = boost::json;

struct FakeCore {
  testing::FakeMetadataStore metadata;
  testing::FakeJobQueue jobs{metadata};
  testing::FakeBlobStore blobs;
  testing::FakeFetcher fetcher;
  testing::SettableClock clock;
  testing::RecordingEventSink events;
  BlobKeeper keeper{metadata, blobs, clock, events, "test"};
  WorkerPool pool{1};
  PackageService service{ServicePorts{metadata, jobs, blobs, fetcher, clock, keeper, pool, events}};
};

PackageRecord Package(const std::string& group, const std::string& name, PackageKind kind) {
  return PackageRecord{.project = "p1",
                       .group = group,
                       .name = name,
                       .kind = kind,
                       .sha256 = std::string(64, 'a'),
                       .size = 3,
                       .underlying_name = "u_" + name,
                       .owner = "alice",
                       .create_time = 1'700'000'000'000,
                       .update_time = 1'700'000'000'001,
                       .tags = {{"team", group.empty() ? "none" : "x"}}};
}

class ListingStreamTest : public ::testing::Test {
 protected:
  // More ungrouped packages and groups than one batch of the walk holds, and an empty group.
  void SetUp() override {
    std::vector<PackageRecord> ungrouped;
    for (int i = 0; i < 1100; ++i)
      ungrouped.push_back(Package("", "u" + std::to_string(i) + ".txt", PackageKind::kFile));
    ASSERT_TRUE(core_.metadata.PutUngrouped(ungrouped));
    for (int g = 0; g < 250; ++g) {
      const std::string name = "g" + std::to_string(1000 + g);
      GroupRecord group{.project = "p1", .name = name, .owner = "bob", .create_time = 5};
      std::vector<PackageRecord> packages;
      for (int i = 0; i < g % 3; ++i)
        packages.push_back(Package(name, "p" + std::to_string(i) + (i ? ".jar" : ".py"),
                                   i ? PackageKind::kJar : PackageKind::kPyFile));
      ASSERT_TRUE(core_.metadata.ReplaceGroup(group, packages));
    }
  }

  // Reads the whole stream in small pieces, as the HTTP layer would in larger ones.
  static std::string Drain(BlobReader& reader) {
    std::string out;
    char buffer[4093];
    for (;;) {
      auto n = reader.Read(std::span<char>(buffer, sizeof buffer));
      EXPECT_TRUE(n) << n.error().message;
      if (!n || *n == 0) return out;
      out.append(buffer, *n);
    }
  }

  Response Get(const std::string& target) {
    return api_.Handle(Request{.method = "GET", .target = target, .remote_address = "127.0.0.1"});
  }

  FakeCore core_;
  std::vector<Module> modules_{{"sys", "jar", "built in", {"a.jar", "b.jar"}}};
  ResourcesApi api_{core_.service, ApiOptions{.modules = modules_}};
};

TEST_F(ListingStreamTest, TheStreamedListingIsByteForByteTheEncodedOne) {
  for (const std::string query : {"", "?kind=jar", "?tags=team=none", "?kind=modelFile"}) {
    auto response = Get("/v2.0/p1/resources" + query);
    ASSERT_EQ(response.status, 200) << query;
    ASSERT_TRUE(response.stream) << query;
    EXPECT_LT(response.stream->Size(), 0);  // sent chunked
    const std::string streamed = Drain(*response.stream);
    ListQuery list_query{.project = testing::Valid<ProjectId>("p1")};
    if (query == "?kind=jar") list_query.kind = PackageKind::kJar;
    if (query == "?kind=modelFile") list_query.kind = PackageKind::kModelFile;
    if (query == "?tags=team=none") list_query.tags = {{"team", "none"}};
    auto listing = core_.service.List(list_query);
    ASSERT_TRUE(listing);
    EXPECT_EQ(streamed, EncodeListing(*listing, modules_)) << query;
    const auto parsed = json::parse(streamed).as_object();
    const std::size_t want_total = query.empty()                ? 1100 + 249
                                   : query == "?kind=jar"       ? 83
                                   : query == "?kind=modelFile" ? 0
                                                                : 1100;
    EXPECT_EQ(parsed.at("total").to_number<std::size_t>(), want_total) << query;
  }
  const auto all = json::parse(Drain(*Get("/v2.0/p1/resources").stream)).as_object();
  EXPECT_EQ(all.at("resources").as_array().size(), 1100u);
  EXPECT_EQ(all.at("groups").as_array().size(), 250u);  // empty groups too
  EXPECT_EQ(all.at("modules").as_array().size(), 1u);
}

TEST_F(ListingStreamTest, PagesCarryACursorThatContinuesThem) {
  std::vector<std::string> seen;
  std::string target = "/v2.0/p1/resources?kind=jar&limit=30";
  for (int pages = 0; pages < 10; ++pages) {
    const auto response = Get(target);
    ASSERT_EQ(response.status, 200) << response.body;
    const auto page = json::parse(response.body).as_object();
    EXPECT_EQ(page.at("total").to_number<std::size_t>(), 83u);
    for (const auto& g : page.at("groups").as_array())
      for (const auto& name : g.at("resources").as_array())
        seen.push_back(std::string(g.at("group_name").as_string()) + "/" +
                       std::string(name.as_string()));
    if (!page.contains("next_cursor")) break;
    target = "/v2.0/p1/resources?kind=jar&limit=30&cursor=" +
             std::string(page.at("next_cursor").as_string());
  }
  ASSERT_EQ(seen.size(), 83u);  // every jar once, in order
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 83u);
}

TEST_F(ListingStreamTest, BadCursorsAndTooManyTagsAreRefused) {
  for (const std::string query : {"?cursor=zz", "?cursor=6162", "?cursor=", "?cursor=610"}) {
    const auto response = Get("/v2.0/p1/resources" + query);
    EXPECT_EQ(response.status, 400) << query << response.body;
    EXPECT_FALSE(response.stream);
  }
  std::string tags = "?tags=";
  for (int i = 0; i < 17; ++i) tags += "k" + std::to_string(i) + "=v,";
  EXPECT_EQ(Get("/v2.0/p1/resources" + tags).status, 400);
  EXPECT_EQ(EncodeCursor({"g", "a.py"}), "6700612e7079");
  EXPECT_EQ(DecodeCursor(EncodeCursor({"", "x"}))->name, "x");
}

TEST(ResourcesApiQuickReads, OnlyReadsOfALocalStoreRunOnTheIoThreads) {
  FakeCore core;
  ResourcesApi local{core.service, ApiOptions{.quick_reads = true}};
  ResourcesApi networked{core.service, ApiOptions{}};
  const auto quick = [](const ResourcesApi& api, std::string method, std::string target) {
    return api.IsQuick(Request{.method = std::move(method), .target = std::move(target)});
  };
  EXPECT_TRUE(quick(local, "GET", "/healthz"));
  EXPECT_TRUE(quick(local, "GET", "/v2.0/p1/resources/a.py?group=g"));
  EXPECT_TRUE(quick(local, "GET", "/v2.0/p1/resources?limit=10"));
  EXPECT_TRUE(quick(local, "GET", "/v2.0/p1/resources?offset=10&kind=jar"));
  EXPECT_TRUE(quick(local, "GET", "/v2.0/p1/resources"));  // its first batch; the rest: pool
  EXPECT_TRUE(quick(local, "HEAD", "/v2.0/p1/resources/a.py"));
  EXPECT_TRUE(quick(local, "GET", "/v2.0/p1/nothing"));                  // 404 at once
  EXPECT_TRUE(quick(local, "PATCH", "/v2.0/p1/resources"));              // 405 at once
  EXPECT_FALSE(quick(local, "GET", "/v2.0/p1/resources/a.py/content"));  // bytes from disk
  EXPECT_FALSE(quick(local, "PUT", "/v2.0/p1/resources/owner"));
  EXPECT_FALSE(quick(local, "POST", "/v2.0/p1/resources"));
  EXPECT_FALSE(quick(local, "DELETE", "/v2.0/p1/resources/a.py"));
  EXPECT_TRUE(quick(local, "GET", "/console/"));  // embedded files
  EXPECT_FALSE(quick(local, "GET", "/v2.0/p1/files/a.py"));
  EXPECT_FALSE(quick(local, "PUT", "/v2.0/p1/resources/a.py/content"));
  EXPECT_TRUE(quick(networked, "GET", "/healthz"));
  EXPECT_FALSE(quick(networked, "GET", "/v2.0/p1/resources/a.py?group=g"));
  EXPECT_FALSE(quick(networked, "GET", "/v2.0/p1/resources?limit=10"));
}

TEST(ResourcesApiQuickReads, DownloadsRunOnTheIoThreadsOnlyWhenBothStoresAreLocal) {
  FakeCore core;
  ResourcesApi both{core.service, ApiOptions{.quick_reads = true, .quick_blob_opens = true}};
  ResourcesApi s3_blobs{core.service, ApiOptions{.quick_reads = true}};
  ResourcesApi shared_metadata{core.service, ApiOptions{.quick_blob_opens = true}};
  const auto quick = [](const ResourcesApi& api, std::string method, std::string target) {
    return api.IsQuick(Request{.method = std::move(method), .target = std::move(target)});
  };
  for (const char* download :
       {"/v2.0/p1/files/a.py", "/v2.0/p1/files/g/a.py", "/v2.0/p1/resources/a.py/content"}) {
    EXPECT_TRUE(quick(both, "GET", download)) << download;
    EXPECT_TRUE(quick(both, "HEAD", download)) << download;
    EXPECT_FALSE(quick(s3_blobs, "GET", download)) << download;
    EXPECT_FALSE(quick(shared_metadata, "GET", download)) << download;
  }
  // Uploads and the blob checks still wait on the pool.
  EXPECT_FALSE(quick(both, "PUT", "/v2.0/p1/resources/a.py/content"));
  EXPECT_FALSE(quick(both, "GET", "/v2.0/p1/blobs/" + std::string(64, 'a')));
  EXPECT_FALSE(quick(both, "POST", "/v2.0/p1/resources/urls"));
}

// HandleIfQuick, which the HTTP layer calls on its I/O threads, matches the route table once
// for both questions: it answers exactly the requests IsQuick calls quick, as Handle would.
TEST(ResourcesApiQuickReads, HandleIfQuickAnswersTheQuickRequestsAsHandleDoes) {
  FakeCore core;
  ASSERT_TRUE(core.metadata.ReplaceGroup(GroupRecord{.project = "p1", .name = "g", .owner = "bob"},
                                         {Package("g", "a.py", PackageKind::kPyFile)}));
  for (const bool quick_reads : {true, false}) {
    ResourcesApi api{core.service, ApiOptions{.quick_reads = quick_reads}};
    for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/healthz"},
             {"GET", "/v2.0/p1/resources/a.py?group=g"},
             {"GET", "/v2.0/p1/resources/b.py?group=g"},
             {"GET", "/v2.0/p1/resources?limit=10"},
             {"GET", "/v2.0/p1/nothing"},
             {"GET", "no-absolute-path"},
             {"PATCH", "/v2.0/p1/resources"},
             {"DELETE", "/v2.0/p1/resources/a.py?group=g"},
             {"POST", "/v2.0/p1/resources"}}) {
      const Request request{
          .method = method, .target = target, .remote_address = "127.0.0.1", .request_id = "r1"};
      auto answer = api.HandleIfQuick(request);
      ASSERT_EQ(answer.has_value(), api.IsQuick(request)) << method << " " << target;
      if (!answer) continue;
      const Response handled = api.Handle(request);
      EXPECT_EQ(answer->status, handled.status) << method << " " << target;
      EXPECT_EQ(answer->body, handled.body) << method << " " << target;
      EXPECT_EQ(answer->route, handled.route) << method << " " << target;
    }
  }
  // Nothing was deleted: the DELETE above was never answered on the I/O thread.
  auto kept = core.metadata.GetPackage("p1", "g", "a.py");
  ASSERT_TRUE(kept);
  EXPECT_TRUE(kept->has_value());
}

}  // namespace
}  // namespace dlipkg::api
