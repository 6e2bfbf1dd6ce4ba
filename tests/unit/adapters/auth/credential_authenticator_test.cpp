// CredentialAuthenticator on real signatures: the signing guide's test vector end to end, every way of
// tampering with a signed request, the 15-minute window at its edges, tokens and their expiry,
// and project isolation (the user's projects, X-Project-Id).
#include "adapters/auth/credential_authenticator.hpp"

#include <gtest/gtest.h>

#include "adapters/auth/sdk_hmac_signature.hpp"
#include "testing/settable_clock.hpp"

namespace dlipkg {
namespace {

constexpr std::string_view kCredentials = R"({"users": [
  {"name": "alice", "projects": ["p1"],
   "access_keys": [{"ak": "AKALICE", "sk": "sk-alice-secret"}],
   "tokens": [{"token": "tok-alice", "expires_at": "2024-01-01T00:10:00Z"}]},
  {"name": "bobby", "projects": ["p2"], "tokens": [{"token": "tok-bobby"}]},
  {"name": "vector", "projects": ["77b6a44cba5143ab91d13ab9a8ff44fd"],
   "access_keys": [{"ak": "QTWAOYTTINDUT2QVKYUC",
                    "sk": "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"}]}
]})";

constexpr std::int64_t kSignedAtMs = 1704067200000;  // 2024-01-01T00:00:00Z
constexpr std::string_view kSignedAt = "20240101T000000Z";

// A request as the Python SDK puts it on the wire, and the signer that signs it.
struct WireRequest {
  std::string method = "POST";
  std::string target = "/v2.0/p1/resources/pyfiles";
  std::vector<std::pair<std::string, std::string>> headers = {
      {"User-Agent", "huaweicloud-usdk-python/3.0"},
      {"Content-Type", "application/json"},
      {"X-Project-Id", "p1"},
      {"Host", "127.0.0.1:8080"},
      {"X-Sdk-Date", std::string(kSignedAt)}};
  std::string body = R"({"paths": ["http://src/a.py"], "group": "g"})";
  std::string project = "p1";

  AuthRequest View() const { return AuthRequest{method, target, &headers, body, project}; }
  std::string& Header(std::string_view name) {
    for (auto& [key, value] : headers)
      if (key == name) return value;
    return headers.emplace_back(std::string(name), "").second;
  }
  // Signs the headers listed (lower case, in order) as an SDK does.
  void Sign(std::string_view ak, std::string_view sk,
            std::vector<std::string> names = {"content-type", "host", "user-agent", "x-project-id",
                                              "x-sdk-date"}) {
    CanonicalRequestParts parts{
        .method = method, .raw_target = target, .payload_hash = PayloadHash(body)};
    std::string joined;
    for (const auto& name : names) {
      for (const auto& [key, value] : headers)
        if (std::equal(key.begin(), key.end(), name.begin(), name.end(),
                       [](char a, char b) { return std::tolower(a) == b; }))
          parts.headers.emplace_back(name, value);
      joined += (joined.empty() ? "" : ";") + name;
    }
    for (const auto& [key, value] : headers)
      if (key == "X-Sdk-Content-Sha256") parts.payload_hash = value;
    const auto signature =
        HmacSha256Hex(sk, StringToSign(Header("X-Sdk-Date"), *CanonicalRequest(parts)));
    Header("Authorization") = "SDK-HMAC-SHA256 Access=" + std::string(ak) +
                              ", SignedHeaders=" + joined + ", Signature=" + signature;
  }
};

class CredentialAuthenticatorTest : public ::testing::Test {
 protected:
  CredentialAuthenticatorTest() : store_(*ParseCredentials(kCredentials)), auth_(store_, clock_) {
    clock_.SetNowMs(kSignedAtMs);
  }

  Result<Identity> Check(const WireRequest& request) { return auth_.Authenticate(request.View()); }
  void ExpectRejected(const WireRequest& request, ErrorCode code, std::string_view message_has) {
    auto identity = Check(request);
    ASSERT_FALSE(identity) << "accepted as " << identity->user;
    EXPECT_EQ(identity.error().code, code) << identity.error().message;
    EXPECT_NE(identity.error().message.find(message_has), std::string::npos)
        << identity.error().message;
    for (const char* secret : {"sk-alice-secret", "tok-alice", "tok-bobby", "MFyfvK41"})
      EXPECT_EQ(identity.error().message.find(secret), std::string::npos) << secret;
  }
  WireRequest Signed() {
    WireRequest request;
    request.Sign("AKALICE", "sk-alice-secret");
    return request;
  }

  testing::SettableClock clock_;
  CredentialStore store_;
  CredentialAuthenticator auth_;
};

TEST_F(CredentialAuthenticatorTest, AcceptsTheSpecTestVectorRequest) {
  clock_.SetNowMs(1573789015000);  // 20191115T033655Z
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/json"},
      {"Host", "service.region.example.com"},
      {"X-Sdk-Date", "20191115T033655Z"},
      {"Authorization",
       "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, "
       "Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"}};
  const AuthRequest request{
      "GET",
      "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-"
      "536f674975c0",
      &headers, "", "77b6a44cba5143ab91d13ab9a8ff44fd"};
  auto identity = auth_.Authenticate(request);
  ASSERT_TRUE(identity) << identity.error().message;
  EXPECT_EQ(identity->user, "vector");
}

TEST_F(CredentialAuthenticatorTest, AcceptsWhatEachSdkSigns) {
  auto python = Signed();
  ASSERT_TRUE(Check(python)) << Check(python).error().message;
  EXPECT_EQ(Check(python)->user, "alice");

  WireRequest node;  // Node.js: no user-agent
  node.Sign("AKALICE", "sk-alice-secret", {"content-type", "host", "x-project-id", "x-sdk-date"});
  EXPECT_TRUE(Check(node));

  WireRequest go;  // Go: neither host nor x-project-id (added after signing)
  go.Sign("AKALICE", "sk-alice-secret", {"content-type", "x-sdk-date"});
  EXPECT_TRUE(Check(go));

  WireRequest minimal;
  minimal.Sign("AKALICE", "sk-alice-secret", {"x-sdk-date"});
  EXPECT_TRUE(Check(minimal));
}

TEST_F(CredentialAuthenticatorTest, AcceptsEncodedNamesQueriesAndASecurityToken) {
  WireRequest request;
  request.method = "GET";
  request.body = "";
  request.target = "/v2.0/p1/resources/%E6%95%B0%E6%8D%AE%20a%2Bb~.py?group=g%201&B=&a=x";
  request.Header("X-Security-Token") = "temporary-token";
  request.Sign("AKALICE", "sk-alice-secret",
               {"content-type", "host", "x-project-id", "x-sdk-date", "x-security-token"});
  auto identity = Check(request);
  ASSERT_TRUE(identity) << identity.error().message;
  request.Header("X-Security-Token") = "another";
  ExpectRejected(request, ErrorCode::kUnauthenticated, "does not match");
}

TEST_F(CredentialAuthenticatorTest, RejectsEveryTampering) {
  const std::vector<std::pair<std::string, std::function<void(WireRequest&)>>> tamperings = {
      {"method", [](WireRequest& r) { r.method = "PUT"; }},
      {"path", [](WireRequest& r) { r.target = "/v2.0/p1/resources/jars"; }},
      {"query", [](WireRequest& r) { r.target += "?kind=jar"; }},
      {"signed header", [](WireRequest& r) { r.Header("Content-Type") = "text/plain"; }},
      {"signed user-agent", [](WireRequest& r) { r.Header("User-Agent") = "curl/8"; }},
      {"host", [](WireRequest& r) { r.Header("Host") = "127.0.0.1:8081"; }},
      {"body", [](WireRequest& r) { r.body = R"({"paths": ["http://src/b.py"], "group": "g"})"; }},
      {"body re-serialised",
       [](WireRequest& r) { r.body = R"({"paths":["http://src/a.py"],"group":"g"})"; }},
      {"date", [](WireRequest& r) { r.Header("X-Sdk-Date") = "20240101T000001Z"; }},
      {"AK",
       [](WireRequest& r) {  // another user's valid AK: the SK no longer fits
         auto& a = r.Header("Authorization");
         a.replace(a.find("AKALICE"), 7, "QTWAOYTTINDUT2QVKYUC");
       }},
      {"signature",
       [](WireRequest& r) {
         auto& a = r.Header("Authorization");
         a.back() = a.back() == '0' ? '1' : '0';
       }},
      {"unsigned payload claimed",
       [](WireRequest& r) { r.Header("X-Sdk-Content-Sha256") = "UNSIGNED-PAYLOAD"; }},
  };
  for (const auto& [what, tamper] : tamperings) {
    auto request = Signed();
    tamper(request);
    SCOPED_TRACE(what);
    auto identity = Check(request);
    ASSERT_FALSE(identity);
    EXPECT_EQ(identity.error().code, ErrorCode::kUnauthenticated) << identity.error().message;
    EXPECT_NE(identity.error().message.find("does not match"), std::string::npos)
        << identity.error().message;
  }
}

TEST_F(CredentialAuthenticatorTest, AMismatchShowsTheServersCanonicalRequestWithoutSecrets) {
  auto request = Signed();
  request.Header("X-Security-Token") = "temporary-secret";
  request.Sign("AKALICE", "sk-alice-secret", {"x-sdk-date", "x-security-token"});
  request.body = "{}";
  ExpectRejected(request, ErrorCode::kUnauthenticated,
                 "POST|/v2.0/p1/resources/pyfiles/||x-sdk-date:20240101T000000Z|"
                 "x-security-token:***||x-sdk-date;x-security-token|" +
                     PayloadHash("{}"));
  EXPECT_EQ(Check(request).error().message.find("temporary-secret"), std::string::npos);
}

TEST_F(CredentialAuthenticatorTest, UnsignedPayloadLeavesTheBodyOutOfTheSignature) {
  WireRequest request;
  request.Header("X-Sdk-Content-Sha256") = "UNSIGNED-PAYLOAD";
  request.Sign("AKALICE", "sk-alice-secret");
  ASSERT_TRUE(Check(request));
  request.body = "anything";
  EXPECT_TRUE(Check(request));
}

TEST_F(CredentialAuthenticatorTest, AcceptsFifteenMinutesOfSkewEitherWayAndNoMore) {
  const auto request = Signed();
  constexpr std::int64_t kFifteenMinutes = 15 * 60 * 1000;
  for (const std::int64_t offset : {-kFifteenMinutes, kFifteenMinutes, std::int64_t{0}}) {
    clock_.SetNowMs(kSignedAtMs + offset);
    EXPECT_TRUE(Check(request)) << offset;
  }
  for (const std::int64_t offset : {-kFifteenMinutes - 1, kFifteenMinutes + 1}) {
    clock_.SetNowMs(kSignedAtMs + offset);
    ExpectRejected(request, ErrorCode::kUnauthenticated, "more than 15 minutes");
  }
}

TEST_F(CredentialAuthenticatorTest, RejectsMalformedSignedRequests) {
  auto no_date = Signed();
  no_date.Sign("AKALICE", "sk-alice-secret", {"content-type", "host"});
  ExpectRejected(no_date, ErrorCode::kUnauthenticated, "must include x-sdk-date");

  auto missing = Signed();
  missing.Sign("AKALICE", "sk-alice-secret", {"x-sdk-date", "x-missing"});
  ExpectRejected(missing, ErrorCode::kUnauthenticated, "'x-missing' is missing");

  auto repeated = Signed();
  repeated.headers.emplace_back("content-type", "text/plain");
  ExpectRejected(repeated, ErrorCode::kUnauthenticated, "'content-type' is repeated");

  auto bad_date = Signed();
  bad_date.Header("X-Sdk-Date") = "2024-01-01T00:00:00Z";
  bad_date.Sign("AKALICE", "sk-alice-secret");
  ExpectRejected(bad_date, ErrorCode::kUnauthenticated, "YYYYMMDDTHHMMSSZ");

  // Issue 15: an unknown AK and a bad signature get the same answer, word for word.
  auto unknown_ak = Signed();
  unknown_ak.Sign("AKNOBODY", "sk-alice-secret");
  ExpectRejected(unknown_ak, ErrorCode::kUnauthenticated, "does not match");
  auto bad_secret = Signed();
  bad_secret.Sign("AKALICE", "sk-wrong-secret");
  const auto unknown_answer = Check(unknown_ak), bad_answer = Check(bad_secret);
  ASSERT_FALSE(unknown_answer);
  ASSERT_FALSE(bad_answer);
  EXPECT_EQ(unknown_answer.error().message, bad_answer.error().message);

  auto garbled = Signed();
  garbled.Header("Authorization") = "SDK-HMAC-SHA256 Access=AKALICE";
  ExpectRejected(garbled, ErrorCode::kUnauthenticated, "Malformed Authorization");

  auto bad_escape = Signed();
  bad_escape.target = "/v2.0/p1/resources/a%zz";
  ExpectRejected(bad_escape, ErrorCode::kUnauthenticated, "percent-encoding");

  auto two = Signed();
  two.headers.emplace_back("authorization", two.Header("Authorization"));
  ExpectRejected(two, ErrorCode::kUnauthenticated, "more than one");

  auto basic = WireRequest();
  basic.Header("Authorization") = "Basic YWxpY2U6eA==";
  ExpectRejected(basic, ErrorCode::kUnauthenticated, "Unsupported Authorization scheme");

  ExpectRejected(WireRequest(), ErrorCode::kUnauthenticated, "missing credentials");
}

TEST_F(CredentialAuthenticatorTest, TokensWorkUntilTheyExpire) {
  WireRequest request;
  request.Header("X-Auth-Token") = "tok-alice";
  clock_.SetNowMs(kSignedAtMs + 10 * 60 * 1000 - 1);
  auto identity = Check(request);
  ASSERT_TRUE(identity) << identity.error().message;
  EXPECT_EQ(identity->user, "alice");
  clock_.SetNowMs(kSignedAtMs + 10 * 60 * 1000);
  ExpectRejected(request, ErrorCode::kUnauthenticated, "expired at 2024-01-01T00:10:00Z");

  request.Header("X-Auth-Token") = "tok-nobody";
  ExpectRejected(request, ErrorCode::kUnauthenticated, "token is not valid");

  WireRequest forever;  // a token without expires_at
  forever.project = "p2";
  forever.Header("X-Project-Id") = "p2";
  forever.Header("X-Auth-Token") = "tok-bobby";
  clock_.SetNowMs(4102444800000);  // 2100
  EXPECT_TRUE(Check(forever));
}

TEST_F(CredentialAuthenticatorTest, AUserIsForbiddenOnAnotherProject) {
  WireRequest request;  // bobby's token, for p2, on p1
  request.Header("X-Auth-Token") = "tok-bobby";
  request.Header("X-Project-Id") = "p1";
  ExpectRejected(request, ErrorCode::kForbidden, "User bobby may not use project p1");

  auto signed_elsewhere = Signed();  // alice signs for p2, which she may not use
  signed_elsewhere.project = "p2";
  signed_elsewhere.target = "/v2.0/p2/resources/pyfiles";
  signed_elsewhere.Header("X-Project-Id") = "p2";
  signed_elsewhere.Sign("AKALICE", "sk-alice-secret");
  ExpectRejected(signed_elsewhere, ErrorCode::kForbidden, "may not use project p2");
}

TEST_F(CredentialAuthenticatorTest, AnXProjectIdOtherThanThePathsIsForbidden) {
  WireRequest request;
  request.Header("X-Auth-Token") = "tok-alice";
  request.Header("X-Project-Id") = "p2";
  clock_.SetNowMs(kSignedAtMs);
  ExpectRejected(request, ErrorCode::kForbidden, "X-Project-Id 'p2' differs");

  auto signed_request = Signed();
  signed_request.Header("X-Project-Id") = "p9";
  signed_request.Sign("AKALICE", "sk-alice-secret");
  ExpectRejected(signed_request, ErrorCode::kForbidden, "differs from the project");

  WireRequest without;  // no X-Project-Id at all is fine
  without.headers.erase(without.headers.begin() + 2);
  without.Header("X-Auth-Token") = "tok-alice";
  EXPECT_TRUE(Check(without));
}

TEST_F(CredentialAuthenticatorTest, KnowsItsUsers) {
  EXPECT_TRUE(auth_.UserExists("alice"));
  EXPECT_TRUE(auth_.UserExists("bobby"));
  EXPECT_FALSE(auth_.UserExists("carol"));
  EXPECT_FALSE(auth_.UserExists(""));
}

}  // namespace
}  // namespace dlipkg
