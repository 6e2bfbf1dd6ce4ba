// Every route that takes a package name or a tag puts it through the API's TextRules before the
// domain's rules: a stand-in form (upper-case X written as x, '~' refused) shows which routes
// store, find and compare names in the form and which refuse with DLI.0001, storing nothing.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/resources_api.hpp"
#include "unit/api/fake_core.hpp"

namespace dlipkg::api {
namespace {

namespace json = boost::json;

// Like NFC, maps two spellings to one; like the invisible characters, refuses one.
class XFoldingRules final : public TextRules {
 public:
  Result<std::string> Canonical(std::string_view text, std::string_view what) const override {
    if (text.find('~') != std::string_view::npos)
      return Fail(ErrorCode::kBadRequest, "Invalid " + std::string(what) + ": it contains U+007E.");
    std::string out(text);
    for (char& c : out) c = c == 'X' ? 'x' : c;
    return out;
  }
};

class NameFormsTest : public ::testing::Test {
 protected:
  Response Call(std::string method, std::string target, std::string body = "") {
    Request request{.method = std::move(method),
                    .target = std::move(target),
                    .body = std::move(body),
                    .remote_address = "127.0.0.1",
                    .request_id = "rid"};
    request.headers.emplace_back("Content-Type", "application/json");
    return api_.Handle(request);
  }
  static json::value Json(const Response& r) { return json::parse(r.body); }
  std::int64_t Total() {
    return Json(Call("GET", "/v2.0/p1/resources?limit=1000")).at("total").as_int64();
  }
  void ExpectRefused(const Response& r) {
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(Json(r).at("error_code").as_string(), "DLI.0001") << r.body;
    EXPECT_NE(r.body.find("U+007E"), std::string::npos) << r.body;
  }

  FakeCore core_;
  XFoldingRules rules_;
  ResourcesApi api_{core_.service, ApiOptions{.text_rules = &rules_}};
};

TEST_F(NameFormsTest, SourceNamesAreStoredInTheFormAndFoundInEitherSpelling) {
  core_.fetcher.Serve("http://src/aX.py", "one");
  core_.fetcher.Serve("http://src/ax.py", "two");
  auto r = Call(
      "POST", "/v2.0/p1/resources",
      R"({"paths": ["http://src/aX.py"], "kind": "file", "tags": [{"key": "kX", "value": "vX"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r).at("resource_names").as_array()[0].as_string(), "ax.py");
  r = Call("POST", "/v2.0/p1/resources", R"({"paths": ["http://src/ax.py"], "kind": "file"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Total(), 1);
  for (const char* spelling : {"aX.py", "ax.py"}) {
    r = Call("GET", std::string("/v2.0/p1/resources/") + spelling);
    ASSERT_EQ(r.status, 200) << spelling << r.body;
    EXPECT_EQ(Json(r).at("resource_name").as_string(), "ax.py");
  }
  // Two spellings in one request are one name twice.
  r = Call("POST", "/v2.0/p1/resources/pyfiles",
           R"({"paths": ["http://src/aX.py", "http://src/ax.py"], "group": "g"})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(
      Call("PUT", "/v2.0/p1/resources/owner", R"({"new_owner": "carol", "resource_name": "aX.py"})")
          .status,
      200);
  EXPECT_EQ(Json(Call("GET", "/v2.0/p1/resources/ax.py")).at("owner").as_string(), "carol");
  EXPECT_EQ(Call("DELETE", "/v2.0/p1/resources/aX.py").status, 200);
  EXPECT_EQ(Total(), 0);
}

TEST_F(NameFormsTest, TagsAndListFiltersAreInTheForm) {
  core_.fetcher.Serve("http://src/aX.py", "one");
  auto r = Call(
      "POST", "/v2.0/p1/resources",
      R"({"paths": ["http://src/aX.py"], "kind": "file", "tags": [{"key": "kX", "value": "vX"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto shown = Json(Call("GET", "/v2.0/p1/resources/ax.py"));
  EXPECT_EQ(shown.at("tags").as_array()[0].at("key").as_string(), "kx");
  EXPECT_EQ(shown.at("tags").as_array()[0].at("value").as_string(), "vx");
  EXPECT_EQ(Json(Call("GET", "/v2.0/p1/resources?limit=10&tags=kX%3DvX")).at("total").as_int64(),
            1);
  EXPECT_EQ(Json(Call("GET", "/v2.0/p1/resources?limit=10&name=aX")).at("total").as_int64(), 1);
  // Keys that differ only in the form are one key twice.
  r = Call(
      "POST", "/v2.0/p1/resources",
      R"({"paths": ["http://src/a.py"], "kind": "file", "tags": [{"key": "kX", "value": "1"}, {"key": "kx", "value": "2"}]})");
  EXPECT_EQ(r.status, 400) << r.body;
}

TEST_F(NameFormsTest, DirectUploadsAndStagedCommitsStoreTheForm) {
  auto r = Call("PUT", "/v2.0/p1/resources/bX.bin/content?kind=file", "direct");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Call("GET", "/v2.0/p1/resources/bx.bin").status, 200);
  const std::string sha = testing::FakeBlobStore::Key("staged");
  ASSERT_EQ(Call("PUT", "/v2.0/p1/blobs/" + sha, "staged").status, 200);
  r = Call("POST", "/v2.0/p1/resources/commit",
           R"({"group": "g", "packages": [{"name": "cX.py", "kind": "pyFile", "sha256": ")" + sha +
               R"("}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Call("GET", "/v2.0/p1/resources/cx.py?group=g").status, 200);
}

TEST_F(NameFormsTest, RefusedNamesAreDli0001AndStoreNothing) {
  core_.fetcher.Serve("http://src/a~b.py", "bytes");
  ExpectRefused(
      Call("POST", "/v2.0/p1/resources", R"({"paths": ["http://src/a~b.py"], "kind": "file"})"));
  ExpectRefused(Call(
      "POST", "/v2.0/p1/resources",
      R"({"paths": ["http://src/a.py"], "kind": "file", "tags": [{"key": "k~", "value": "v"}]})"));
  ExpectRefused(Call("PUT", "/v2.0/p1/resources/a~b.py/content?kind=file", "direct"));
  ExpectRefused(Call("GET", "/v2.0/p1/resources/a~b.py"));
  ExpectRefused(Call("PUT", "/v2.0/p1/resources/owner",
                     R"({"new_owner": "carol", "resource_name": "a~b.py"})"));
  EXPECT_EQ(Total(), 0);
  EXPECT_EQ(core_.blobs.Count(), 0u);
}

}  // namespace
}  // namespace dlipkg::api
