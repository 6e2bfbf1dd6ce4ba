#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "api/error_table.hpp"
#include "api/json_codec.hpp"

namespace dlipkg::api {
namespace {

namespace json = boost::json;

TEST(ErrorTable, EveryCodeMapsToSpecStatusAndCode) {
  const std::map<ErrorCode, std::pair<int, std::string>> expected{
      {ErrorCode::kBadRequest, {400, "DLI.0001"}},
      {ErrorCode::kBodyTooLarge, {413, "DLI.0001"}},
      {ErrorCode::kSourceUnavailable, {400, "DLI.0012"}},
      {ErrorCode::kNotFound, {404, "DLI.0002"}},
      {ErrorCode::kUnknownUser, {400, "DLI.0002"}},
      {ErrorCode::kNotSupported, {400, "DLI.0007"}},
      {ErrorCode::kQuotaExceeded, {400, "DLI.1028"}},
      {ErrorCode::kUnauthenticated, {401, "APIGW.0301"}},
      {ErrorCode::kForbidden, {403, "APIGW.0302"}},
      {ErrorCode::kNoRoute, {404, "APIGW.0101"}},
      {ErrorCode::kMethodNotAllowed, {405, "APIGW.0101"}},
      {ErrorCode::kBusy, {429, "APIGW.0308"}},
      {ErrorCode::kInternal, {500, "DLI.0999"}},
      {ErrorCode::kCorrupted, {500, "DLI.0999"}},
      {ErrorCode::kRangeNotSatisfiable, {416, "DLI.0001"}},
      {ErrorCode::kShuttingDown, {503, "DLI.0999"}},
  };
  ASSERT_EQ(std::size(kAllErrorCodes), expected.size());
  for (ErrorCode code : kAllErrorCodes) {
    const auto mapping = MapError(code);
    ASSERT_TRUE(expected.contains(code));
    EXPECT_EQ(mapping.http_status, expected.at(code).first);
    EXPECT_EQ(mapping.error_code, expected.at(code).second);
    const Response response = ErrorResponse(Error{code, "why"}, "rid");
    EXPECT_EQ(response.status, mapping.http_status);
    const auto body = json::parse(response.body).as_object();
    EXPECT_EQ(body.at("error_code").as_string(), mapping.error_code);
    EXPECT_EQ(body.at("error_msg").as_string(), "why");
    EXPECT_EQ(body.at("request_id").as_string(), "rid");
    EXPECT_EQ(response.log_note, mapping.http_status >= 500 ? "why" : "");
  }
}

template <class T>
std::string ErrorOf(const Result<T>& r) {
  return r ? "" : r.error().message;
}

// Issue 15: a repeated key was silently resolved to its last value; now 400 naming the key.
TEST(DecodeRequests, DuplicateKeysAreRefusedByName) {
  EXPECT_EQ(ErrorOf(DecodeTypedUpload(R"({"paths":["http://h/a.py"],"group":"g","group":"h"})")),
            "The request body has the key 'group' more than once in one object.");
  EXPECT_EQ(ErrorOf(DecodeUpload(R"({"kind":"file","paths":[],"\u006bind":"jar"})")),
            "The request body has the key 'kind' more than once in one object.");
  EXPECT_EQ(ErrorOf(DecodeUpload(R"({"kind":"file","paths":["http://h/a.py"],"tags":[{"key":"k",)"
                                 R"("value":"v","key":"x"}]})")),
            "The request body has the key 'key' more than once in one object.");
  EXPECT_EQ(ErrorOf(DecodeOwnerChange(R"({"new_owner":"alice1","new_owner":"bobby1"})")),
            "The request body has the key 'new_owner' more than once in one object.");
  // The same key in different objects, and keys spelled inside strings, are fine.
  EXPECT_TRUE(DecodeUpload(R"({"kind":"file","paths":["http://h/\"kind\":.py"],)"
                           R"("tags":[{"key":"a","value":"1"},{"key":"b","value":"2"}]})"));
}

TEST(DecodeTypedUpload, NamesTheBadField) {
  EXPECT_NE(ErrorOf(DecodeTypedUpload("{")).find("not valid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf(DecodeTypedUpload("[]")).find("JSON object"), std::string::npos);
  EXPECT_EQ(ErrorOf(DecodeTypedUpload(R"({"group":"g"})")), "paths is mandatory.");
  EXPECT_EQ(ErrorOf(DecodeTypedUpload(R"({"paths":"x","group":"g"})")),
            "paths must be an array of strings.");
  EXPECT_EQ(ErrorOf(DecodeTypedUpload(R"({"paths":["a",1],"group":"g"})")),
            "paths[1] must be a string.");
  EXPECT_EQ(ErrorOf(DecodeTypedUpload(R"({"paths":[],"group":"g"})")), "paths must not be empty.");
  EXPECT_EQ(ErrorOf(DecodeTypedUpload(R"({"paths":["a"]})")), "group is mandatory.");
  EXPECT_EQ(ErrorOf(DecodeTypedUpload(R"({"paths":["a"],"group":1})")), "group must be a string.");
  std::string many = R"({"group":"g","paths":[)";
  for (int i = 0; i < 101; ++i) many += std::string(i ? "," : "") + "\"u\"";
  EXPECT_EQ(ErrorOf(DecodeTypedUpload(many + "]}")),
            "paths has 101 entries; at most 100 are allowed.");
  EXPECT_NE(ErrorOf(DecodeTypedUpload(std::string(10000, '[') + std::string(10000, ']')))
                .find("not valid JSON"),
            std::string::npos);
  // Separators with or without spaces, unknown keys ignored.
  auto ok = DecodeTypedUpload(R"({ "paths" : [ "u1", "u2" ] , "group" : "g", "x": {"y": 1} })");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->paths, (std::vector<std::string>{"u1", "u2"}));
  EXPECT_EQ(ok->group, "g");
}

TEST(DecodeUpload, KindAsyncTags) {
  auto r = DecodeUpload(R"({"paths":["u"],"kind":"jar","is_async":"true",
                            "tags":[{"key":"k","value":"v"}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, PackageKind::kJar);
  EXPECT_TRUE(r->is_async);
  EXPECT_FALSE(r->group);
  EXPECT_EQ(r->tags, (std::vector<Tag>{{"k", "v"}}));
  EXPECT_FALSE(DecodeUpload(R"({"paths":["u"],"kind":"jar","is_async":"false"})")->is_async);
  EXPECT_EQ(DecodeUpload(R"({"paths":["u"]})").error().message, "kind is mandatory.");
  EXPECT_NE(DecodeUpload(R"({"paths":["u"],"kind":"exe"})").error().message.find("kind"),
            std::string::npos);
  EXPECT_EQ(DecodeUpload(R"({"paths":["u"],"kind":"jar","is_async":"yes"})").error().message,
            "is_async must be true or false.");
  EXPECT_EQ(DecodeUpload(R"({"paths":["u"],"kind":"jar","tags":[{"value":"v"}]})").error().message,
            "tags[0].key must be a string.");
}

TEST(DecodeOwnerChange, NeedsOwnerAndATarget) {
  EXPECT_EQ(DecodeOwnerChange(R"({"group_name":"g"})").error().message, "new_owner is mandatory.");
  EXPECT_FALSE(DecodeOwnerChange(R"({"new_owner":"alice"})"));
  auto r = DecodeOwnerChange(R"({"new_owner":"alice","resource_name":"a.py"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->resource_name, "a.py");
  EXPECT_FALSE(r->group_name);
}

PackageRecord Package(const std::string& name) {
  return PackageRecord{.project = "p1",
                       .group = "g",
                       .name = name,
                       .kind = PackageKind::kPyFile,
                       .status = PackageStatus::kReady,
                       .sha256 = std::string(64, 'a'),
                       .size = 10,
                       .underlying_name = "u_" + name,
                       .owner = "local",
                       .create_time = 1700000000000,
                       .update_time = 1700000000001};
}

std::set<std::string> Keys(const json::object& o) {
  std::set<std::string> keys;
  for (const auto& kv : o) keys.insert(std::string(kv.key()));
  return keys;
}

TEST(Encode, TypedUploadExactKeysAndTypes) {
  GroupRecord group{.project = "p1",
                    .name = "g",
                    .owner = "local",
                    .description = "",
                    .create_time = 1700000000000,
                    .update_time = 1700000000005,
                    .packages = {Package("a.py"), Package("b.py")}};
  const auto o = json::parse(EncodeTypedUploadResponse(group, PackageKind::kPyFile)).as_object();
  EXPECT_EQ(Keys(o), (std::set<std::string>{"group_name", "status", "resources", "details",
                                            "create_time", "update_time", "is_async", "owner",
                                            "description", "module_name", "module_type"}));
  EXPECT_TRUE(o.at("create_time").is_int64());
  EXPECT_EQ(o.at("create_time").as_int64(), 1700000000000);
  EXPECT_TRUE(o.at("is_async").is_bool());
  EXPECT_EQ(o.at("status").as_string(), "READY");
  EXPECT_EQ(o.at("module_type").as_string(), "pyFile");
  EXPECT_EQ(o.at("resources").as_array(), (json::array{"a.py", "b.py"}));
  const auto& detail = o.at("details").as_array().at(0).as_object();
  for (const char* key : {"create_time", "update_time", "resource_type", "resource_name", "status",
                          "underlying_name", "is_async", "owner", "size", "sha256"})
    EXPECT_TRUE(detail.contains(key)) << key;
  EXPECT_TRUE(detail.at("update_time").is_int64());
  EXPECT_TRUE(detail.at("is_async").is_bool());
  EXPECT_TRUE(detail.at("tags").is_array());
  EXPECT_FALSE(detail.contains("status_reason"));
}

TEST(Encode, ListingAndUngroupedAndFailed) {
  Listing listing;
  listing.total = 1;
  auto failed = Package("x.py");
  failed.group = "";
  failed.status = PackageStatus::kFailed;
  failed.status_reason = "not found";
  listing.ungrouped.push_back(failed);
  const auto o = json::parse(EncodeListing(listing, {})).as_object();
  EXPECT_EQ(Keys(o), (std::set<std::string>{"resources", "groups", "modules", "total"}));
  EXPECT_TRUE(o.at("groups").as_array().empty());
  EXPECT_TRUE(o.at("modules").is_array());
  EXPECT_EQ(o.at("total").as_int64(), 1);
  EXPECT_EQ(o.at("resources").as_array().at(0).as_object().at("status_reason").as_string(),
            "not found");

  UploadResult result;
  result.packages = {failed};
  const auto u = json::parse(EncodeUploadResponse(result, "local", true)).as_object();
  EXPECT_EQ(u.at("resource_names").as_array(), (json::array{"x.py"}));
  EXPECT_FALSE(u.contains("group_name"));
  EXPECT_TRUE(u.at("is_async").as_bool());
  EXPECT_EQ(json::parse(EncodeOwnerChanged()), json::parse(R"({"is_success":true,"message":""})"));
}

// EncodePackage and EncodeGroup write their JSON directly (the listing and show are sent most);
// their bytes must stay those of the value-built answers (EncodeListing builds its pages from
// Boost.JSON values), over every optional key, every kind and status, and strings that need
// escaping.
TEST(Encode, DirectlyWrittenPackagesAndGroupsAreTheValueBuiltBytes) {
  const std::string awkward =
      "q\"uo\\te\x01\n\t\x7f caf\xc3\xa9 \xe6\x97\xa5/" + std::string(40, '"');
  std::vector<PackageRecord> packages;
  for (const auto kind :
       {PackageKind::kJar, PackageKind::kPyFile, PackageKind::kFile, PackageKind::kModelFile}) {
    for (const auto status :
         {PackageStatus::kReady, PackageStatus::kFailed, PackageStatus::kUploading}) {
      PackageRecord p{.project = "p1",
                      .group = packages.size() % 2 ? "" : "g" + awkward,
                      .name = "n" + std::to_string(packages.size()) + awkward,
                      .kind = kind,
                      .status = status,
                      .sha256 = packages.size() % 3 ? std::string(64, 'a') : "",
                      .size = static_cast<std::int64_t>(packages.size()) * 1'000'000'007,
                      .underlying_name = "u" + awkward,
                      .owner = packages.size() % 2 ? "" : "o" + awkward,
                      .create_time = -1,
                      .update_time = INT64_MAX,
                      .is_async = packages.size() % 2 == 0,
                      .status_reason = packages.size() % 4 ? "why" + awkward : ""};
      if (packages.size() % 3 != 1) p.tags = {{"k", awkward}, {awkward, ""}};
      if (packages.size() % 3 != 2)
        p.progress = PackageRecord::Progress{
            .bytes_fetched = 5, .expected_bytes = packages.size() % 2 ? -1 : 9, .attempt = 2};
      packages.push_back(std::move(p));
    }
  }
  for (const auto& p : packages) {
    Listing listing;
    listing.ungrouped = {p};
    EXPECT_EQ(EncodeListing(listing, {}),
              R"({"resources":[)" + EncodePackage(p) + R"(],"groups":[],"modules":[],"total":0})")
        << p.name;
  }
  std::vector<GroupRecord> groups{GroupRecord{.project = "p1", .name = "empty"},
                                  GroupRecord{.project = "p1",
                                              .name = "g" + awkward,
                                              .owner = "o" + awkward,
                                              .description = awkward,
                                              .create_time = 1,
                                              .update_time = 2,
                                              .packages = packages}};
  for (const auto& p : packages)
    groups.push_back({.project = "p1", .name = "one", .packages = {p}});
  for (const auto& g : groups) {
    Listing listing;
    listing.groups = {g};
    std::string appended = "x";
    AppendGroup(g, appended);
    EXPECT_EQ(EncodeListing(listing, {}),
              R"({"resources":[],"groups":[)" + appended.substr(1) + R"(],"modules":[],"total":0})")
        << g.name;
    EXPECT_EQ(appended.substr(1), EncodeGroup(g));
  }
}

}  // namespace
}  // namespace dlipkg::api

namespace dlipkg::api {
namespace {

TEST(DecodeModules, ReadsTheListAndNamesBadEntries) {
  auto ok = DecodeModules(R"([{"module_name":"sys.datasource.css","module_type":"jar",
                              "description":"CSS","resources":["a.jar","b.jar"]}])");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ((*ok)[0].resources, (std::vector<std::string>{"a.jar", "b.jar"}));
  EXPECT_TRUE(DecodeModules("[]")->empty());
  EXPECT_EQ(DecodeModules(R"([{"module_name":"m","module_type":"exe"}])").error().message,
            "modules[0].module_type must be a package kind.");
  EXPECT_FALSE(DecodeModules(R"({"module_name":"m"})"));
  EXPECT_FALSE(DecodeModules(R"([{"module_type":"jar"}])"));
}

}  // namespace
}  // namespace dlipkg::api
