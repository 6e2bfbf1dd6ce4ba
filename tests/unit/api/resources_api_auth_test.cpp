// Authentication as the API applies it: who is asked, when, what it learns of the request, who
// owns what gets created, the owner-change user check, and the loopback-only rule without
// authentication. The core runs on its in-memory fakes; the authenticator is scripted.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/peer_address.hpp"
#include "api/resources_api.hpp"
#include "unit/api/fake_core.hpp"

namespace dlipkg::api {
namespace {

namespace json = boost::json;

// Accepts requests whose X-Auth-Token names a user; records what it was shown.
class ScriptedAuthenticator final : public Authenticator {
 public:
  Result<Identity> Authenticate(const AuthRequest& request) override {
    ++calls;
    seen_method = request.method;
    seen_target = request.raw_target;
    seen_body = request.body;
    seen_project = request.project;
    for (const auto& [name, value] : *request.headers)
      if (name == "X-Auth-Token") {
        if (value == "forbidden") return Fail(ErrorCode::kForbidden, "not on this project");
        return Identity{value};
      }
    return Fail(ErrorCode::kUnauthenticated, "missing credentials");
  }
  bool UserExists(std::string_view user) override { return user == "alice" || user == "bobby"; }

  int calls = 0;
  std::string seen_method, seen_target, seen_body, seen_project;
};

class ResourcesApiAuthTest : public ::testing::Test {
 protected:
  static Request Make(std::string method, std::string target, std::string body = "",
                      std::string token = "", std::string peer = "127.0.0.1") {
    Request request{.method = std::move(method),
                    .target = std::move(target),
                    .body = std::move(body),
                    .remote_address = std::move(peer),
                    .request_id = "req-1"};
    if (!token.empty()) request.headers.emplace_back("X-Auth-Token", token);
    return request;
  }
  static json::value Body(const Response& response) { return json::parse(response.body); }

  FakeCore core_;
  ScriptedAuthenticator auth_;
  ResourcesApi api_{core_.service, ApiOptions{}, &auth_};
};

constexpr const char* kUpload = R"({"paths": ["http://src/a.py"], "group": "g"})";

TEST_F(ResourcesApiAuthTest, TheAuthenticatedUserOwnsWhatTheRequestCreates) {
  const auto response = api_.Handle(Make("POST", "/v2.0/p1/resources/pyfiles", kUpload, "alice"));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Body(response).at("owner"), "alice");
  EXPECT_EQ(Body(response).at("details").at(0).at("owner"), "alice");
  EXPECT_EQ(auth_.seen_method, "POST");
  EXPECT_EQ(auth_.seen_target, "/v2.0/p1/resources/pyfiles");
  EXPECT_EQ(auth_.seen_body, kUpload);
  EXPECT_EQ(auth_.seen_project, "p1");
}

TEST_F(ResourcesApiAuthTest, NothingHappensForAnUnauthenticatedRequest) {
  const auto response = api_.Handle(Make("POST", "/v2.0/p1/resources/pyfiles", kUpload));
  EXPECT_EQ(response.status, 401);
  EXPECT_EQ(Body(response).at("error_code"), "APIGW.0301");
  EXPECT_EQ(Body(response).at("request_id"), "req-1");
  EXPECT_EQ(core_.blobs.Count(), 0u);
  const auto forbidden = api_.Handle(Make("GET", "/v2.0/p1/resources", "", "forbidden"));
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(Body(forbidden).at("error_code"), "APIGW.0302");
  // Authentication comes before the route's own checks, so nothing leaks to a stranger.
  EXPECT_EQ(api_.Handle(Make("DELETE", "/v2.0/p1/resources/nope.py")).status, 401);
  EXPECT_EQ(api_.Handle(Make("PATCH", "/v2.0/p1/resources")).status, 401);
}

// Issue 15: a bad resource name in the path is 400 as it is without authentication, not 401.
TEST_F(ResourcesApiAuthTest, ABadResourceNameInThePathIs400WhateverTheCredentials) {
  for (const char* target :
       {"/v2.0/p1/resources/a%zz.py", "/v2.0/p1/resources/a'b.py", "/v2.0/p1/resources/a^b.py",
        "/v2.0/p1/resources/a%7Cb.py", "/v2.0/p1/resources/a%.py/content"}) {
    const auto response = api_.Handle(Make("GET", target));
    EXPECT_EQ(response.status, 400) << target << ": " << response.body;
  }
}

TEST_F(ResourcesApiAuthTest, HealthzNeedsNoCredentials) {
  const auto response = api_.Handle(Make("GET", "/healthz", "", "", "10.1.2.3"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"status":"ok"})");
  EXPECT_EQ(auth_.calls, 0);
}

TEST_F(ResourcesApiAuthTest, AnOwnerChangeMustNameAKnownUser) {
  ASSERT_EQ(api_.Handle(Make("POST", "/v2.0/p1/resources/pyfiles", kUpload, "alice")).status, 200);
  const auto unknown = api_.Handle(Make("PUT", "/v2.0/p1/resources/owner",
                                        R"({"new_owner": "mallory", "group_name": "g"})", "alice"));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(Body(unknown).at("error_code"), "DLI.0002");
  EXPECT_EQ(Body(unknown).at("error_msg"), "No such user. userName:mallory.");
  const auto known = api_.Handle(Make("PUT", "/v2.0/p1/resources/owner",
                                      R"({"new_owner": "bobby", "group_name": "g"})", "alice"));
  EXPECT_EQ(known.status, 200) << known.body;
  const auto invalid = api_.Handle(
      Make("PUT", "/v2.0/p1/resources/owner", R"({"new_owner": "x", "group_name": "g"})", "alice"));
  EXPECT_EQ(Body(invalid).at("error_code"), "DLI.0001");
}

TEST(ResourcesApiNoAuth, ServesLoopbackPeersAsTheDefaultOwnerIgnoringCredentials) {
  FakeCore core;
  ResourcesApi api{core.service, ApiOptions{.default_owner = "local"}};

  Request request{.method = "POST",
                  .target = "/v2.0/p1/resources/pyfiles",
                  .body = kUpload,
                  .remote_address = "::ffff:127.0.0.1"};
  request.headers.emplace_back("Authorization", "SDK-HMAC-SHA256 Access=x, garbage");
  // A POST a cross-site form could send (no type, or a form's) is refused, and does nothing.
  for (const char* type : {"", "text/plain", "Application/X-WWW-Form-Urlencoded; charset=x"}) {
    Request form = request;
    if (*type) form.headers.emplace_back("Content-Type", type);
    const auto refused = api.Handle(form);
    EXPECT_EQ(refused.status, 400) << type;
    EXPECT_NE(json::parse(refused.body).at("error_msg").as_string().find("application/json"),
              std::string::npos);
  }
  request.headers.emplace_back("Content-Type", "application/json");
  const auto created = api.Handle(request);
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(json::parse(created.body).at("owner"), "local");
  // Without a list of users, any valid owner name goes.
  request.method = "PUT";
  request.target = "/v2.0/p1/resources/owner";
  request.body = R"({"new_owner": "anyone", "group_name": "g"})";
  EXPECT_EQ(api.Handle(request).status, 200);

  request.method = "GET";
  request.target = "/v2.0/p1/resources";
  for (const char* peer : {"10.0.0.7", "192.168.1.2", "::2", "", "8.8.8.8"}) {
    request.remote_address = peer;
    const auto refused = api.Handle(request);
    EXPECT_EQ(refused.status, 403) << peer;
    EXPECT_EQ(json::parse(refused.body).at("error_code"), "APIGW.0302");
  }
  request.target = "/healthz";
  EXPECT_EQ(api.Handle(request).body, R"({"status":"ok"})");
}

TEST(ResourcesApiNoAuth, InsecureModeServesEveryPeerAndSaysSoInHealthz) {
  FakeCore core;
  ResourcesApi api{core.service, ApiOptions{.insecure_no_auth = true}};
  const Request list{.method = "GET", .target = "/v2.0/p1/resources", .remote_address = "10.0.0.7"};
  EXPECT_EQ(api.Handle(list).status, 200);
  const Request health{.method = "GET", .target = "/healthz", .remote_address = "127.0.0.1"};
  EXPECT_EQ(api.Handle(health).body, R"({"status":"ok","auth":"disabled"})");
}

TEST(PeerAddress, KnowsLoopback) {
  for (const char* yes : {"127.0.0.1", "127.255.0.9", "::1", "[::1]", "localhost",
                          "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"})
    EXPECT_TRUE(IsLoopback(yes)) << yes;
  for (const char* no : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "::ffff:10.0.0.1", "",
                         "localhost.example.com", "127.1", "2130706433", "[::2]"})
    EXPECT_FALSE(IsLoopback(no)) << no;
}

}  // namespace
}  // namespace dlipkg::api
