// The DLI resources API as the client calls it: one method per route, JSON in and out
// (Boost.JSON), each failure turned into the exit status and the plain message the user sees
// ("DLI.0002: The package ... does not exist."). Used by the subcommands in commands.cpp.
// One DliClient per thread (it shares its HttpClient's connection).
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "client/exit_status.hpp"
#include "client/http_client.hpp"

namespace dlipkg::client {

struct Failure {
  ExitStatus status = ExitStatus::kFailed;
  std::string message;  // printed after "dlipkg: "; never a credential
};
template <class T>
using Outcome = std::expected<T, Failure>;

struct UploadPathsRequest {
  std::vector<std::string> paths;
  std::string kind;
  std::string group;  // "" = ungrouped
  bool is_async = false;
  std::vector<std::pair<std::string, std::string>> tags;
};

// A local file to upload: streamed from `fd` (owned by the caller).
struct ContentUpload {
  std::string name, kind, group;
  int fd = -1;
  std::int64_t size = 0;
  std::string sha256;  // hex, or "" to send UNSIGNED-PAYLOAD without X-Content-Sha256
  std::function<void(std::int64_t, std::int64_t)> progress;
  std::function<void(std::int64_t, std::span<const char>)> observer;  // HttpRequest's
};

// What a direct upload stored: the package object, and the XXH3-128 (hex) of the bytes the
// server received ("" if it did not say).
struct StoredContent {
  boost::json::object package;
  std::string received_xxh3;
};

class DliClient {
 public:
  explicit DliClient(HttpClient& http) : http_(http) {}

  // GET /resources[?kind=K][&tags=k=v]: the whole listing.
  Outcome<boost::json::object> List(const std::string& kind, const std::string& tags);
  // GET /resources/{name}[?group=G]: the package object.
  Outcome<boost::json::object> Show(const std::string& name, const std::string& group);
  Outcome<void> Delete(const std::string& name, const std::string& group);
  // PUT /resources/owner: the group, a package in it, or an ungrouped package.
  Outcome<void> ChangeOwner(const std::string& user, const std::string& group,
                            const std::string& name);
  // POST /resources: sources for the server to fetch, merged into the group.
  Outcome<boost::json::object> UploadPaths(const UploadPathsRequest& request);
  // PUT /resources/{name}/content?kind=K[&group=G], asking for the received bytes' XXH3-128.
  Outcome<StoredContent> PutContent(const ContentUpload& upload);
  // HEAD /blobs/{sha256}: whether the server holds (and now keeps staged) these bytes.
  Outcome<bool> HasBlob(const std::string& sha256);
  // PUT /blobs/{sha256}: stages the bytes for a commit (`upload.name`, `kind`, `group` unused).
  Outcome<void> PutBlob(const ContentUpload& upload);
  // POST /resources/commit: the group becomes exactly `packages` ({name, kind, sha256}), all or
  // nothing; answers the group object.
  Outcome<boost::json::object> Commit(const std::string& group, boost::json::array packages);
  // GET /files/[{group}/]{name}: the package's bytes into `sink`.
  Outcome<void> Download(const std::string& name, const std::string& group,
                         std::function<bool(std::span<const char>)> sink,
                         std::function<void(std::int64_t, std::int64_t)> progress);
  // POST /resources/urls: presigned URLs of the group's READY packages.
  Outcome<boost::json::array> PresignUrls(const std::string& group, std::int64_t expires_in_s);

  // The Failure an HTTP answer with status >= 300 stands for.
  static Failure FailureOf(const HttpResponse& response);

 private:
  Outcome<HttpResponse> Call(const HttpRequest& request);
  Outcome<boost::json::object> CallForObject(const HttpRequest& request);
  // The JSON object of an answer.
  static Outcome<boost::json::object> ObjectOf(const HttpResponse& response);
  std::string Base() const;

  HttpClient& http_;
};

// Percent-encodes a path segment or query value, keeping only A-Z a-z 0-9 - _ . ~.
std::string Encode(std::string_view text);

}  // namespace dlipkg::client
