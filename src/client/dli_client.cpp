#include "client/dli_client.hpp"

#include "adapters/auth/sdk_hmac_signature.hpp"

namespace dlipkg::client {
namespace json = boost::json;
namespace {

std::string WithGroup(std::string target, const std::string& group, char joiner = '?') {
  if (!group.empty()) target += std::string(1, joiner) + "group=" + Encode(group);
  return target;
}

json::array Tags(const std::vector<std::pair<std::string, std::string>>& tags) {
  json::array array;
  for (const auto& [key, value] : tags)
    array.push_back(json::object{{"key", key}, {"value", value}});
  return array;
}

}  // namespace

std::string Encode(std::string_view text) { return SdkUrlEncode(text); }

Failure DliClient::FailureOf(const HttpResponse& response) {
  std::string code, message;
  json::error_code ec;
  const auto body = json::parse(response.body, ec);
  if (!ec && body.is_object()) {
    if (const auto* c = body.as_object().if_contains("error_code"); c && c->is_string())
      code = c->as_string().c_str();
    if (const auto* m = body.as_object().if_contains("error_msg"); m && m->is_string())
      message = m->as_string().c_str();
  }
  const long status = response.status;
  std::string text =
      code.empty() ? "the server answered HTTP " + std::to_string(status) : code + ": " + message;
  if (code == "APIGW.0101")
    return {ExitStatus::kFailed, text +
                                     " (this server does not offer the route; is it older "
                                     "than this client?)"};
  if (status == 401 || status == 403) return {ExitStatus::kAuth, text};
  if (status == 404) return {ExitStatus::kNotFound, text};
  if (status >= 500 || status < 400) return {ExitStatus::kServer, text};
  return {ExitStatus::kFailed, text};
}

std::string DliClient::Base() const { return "/v2.0/" + Encode(http_.connection().project); }

Outcome<HttpResponse> DliClient::Call(const HttpRequest& request) {
  auto response = http_.Send(request);
  if (!response) return std::unexpected(Failure{ExitStatus::kServer, response.error()});
  if (response->status >= 300) return std::unexpected(FailureOf(*response));
  return std::move(*response);
}

Outcome<json::object> DliClient::CallForObject(const HttpRequest& request) {
  auto response = Call(request);
  if (!response) return std::unexpected(response.error());
  return ObjectOf(*response);
}

Outcome<json::object> DliClient::ObjectOf(const HttpResponse& response) {
  json::error_code ec;
  auto body = json::parse(response.body, ec);
  if (ec || !body.is_object())
    return std::unexpected(
        Failure{ExitStatus::kServer, "the server's answer is not a JSON object"});
  return std::move(body.as_object());
}

Outcome<json::object> DliClient::List(const std::string& kind, const std::string& tags) {
  std::string query;
  if (!kind.empty()) query += "kind=" + Encode(kind);
  if (!tags.empty()) query += (query.empty() ? "" : "&") + std::string("tags=") + Encode(tags);
  return CallForObject({.target = Base() + "/resources" + (query.empty() ? "" : "?" + query),
                        .retry = RetryPolicy::kIdempotent});
}

Outcome<json::object> DliClient::Show(const std::string& name, const std::string& group) {
  return CallForObject({.target = WithGroup(Base() + "/resources/" + Encode(name), group),
                        .retry = RetryPolicy::kIdempotent});
}

Outcome<void> DliClient::Delete(const std::string& name, const std::string& group) {
  auto response =
      Call({.method = "DELETE", .target = WithGroup(Base() + "/resources/" + Encode(name), group)});
  if (!response) return std::unexpected(response.error());
  return {};
}

Outcome<void> DliClient::ChangeOwner(const std::string& user, const std::string& group,
                                     const std::string& name) {
  json::object body{{"new_owner", user}};
  if (!group.empty()) body["group_name"] = group;
  if (!name.empty()) body["resource_name"] = name;
  auto response = Call({.method = "PUT",
                        .target = Base() + "/resources/owner",
                        .body = json::serialize(body),
                        .retry = RetryPolicy::kIdempotent});
  if (!response) return std::unexpected(response.error());
  return {};
}

Outcome<json::object> DliClient::UploadPaths(const UploadPathsRequest& request) {
  json::array paths;
  for (const auto& path : request.paths) paths.push_back(json::string(path));
  json::object body{{"paths", std::move(paths)}, {"kind", request.kind}};
  if (!request.group.empty()) body["group"] = request.group;
  if (request.is_async) body["is_async"] = true;
  if (!request.tags.empty()) body["tags"] = Tags(request.tags);
  return CallForObject(
      {.method = "POST", .target = Base() + "/resources", .body = json::serialize(body)});
}

Outcome<StoredContent> DliClient::PutContent(const ContentUpload& upload) {
  std::string target =
      Base() + "/resources/" + Encode(upload.name) + "/content?kind=" + Encode(upload.kind);
  target = WithGroup(std::move(target), upload.group, '&');
  HttpRequest request{.method = "PUT",
                      .target = std::move(target),
                      .upload_fd = upload.fd,
                      .upload_size = upload.size,
                      .upload_sha256 = upload.sha256,
                      .progress = upload.progress,
                      .upload_observer = upload.observer,
                      .retry = RetryPolicy::kIdempotent};
  if (!upload.sha256.empty()) request.headers.emplace_back("X-Content-Sha256", upload.sha256);
  request.headers.emplace_back("X-Want-Xxh3", "1");
  auto response = Call(request);
  if (!response) return std::unexpected(response.error());
  auto package = ObjectOf(*response);
  if (!package) return std::unexpected(package.error());
  return StoredContent{std::move(*package), response->Header("x-content-xxh3")};
}

Outcome<bool> DliClient::HasBlob(const std::string& sha256) {
  auto response = http_.Send({.method = "HEAD",
                              .target = Base() + "/blobs/" + Encode(sha256),
                              .retry = RetryPolicy::kIdempotent});
  if (!response) return std::unexpected(Failure{ExitStatus::kServer, response.error()});
  if (response->status == 404) return false;
  if (response->status >= 300) return std::unexpected(FailureOf(*response));
  return true;
}

Outcome<void> DliClient::PutBlob(const ContentUpload& upload) {
  auto response = Call({.method = "PUT",
                        .target = Base() + "/blobs/" + Encode(upload.sha256),
                        .upload_fd = upload.fd,
                        .upload_size = upload.size,
                        .upload_sha256 = upload.sha256,
                        .progress = upload.progress,
                        .retry = RetryPolicy::kIdempotent});
  if (!response) return std::unexpected(response.error());
  return {};
}

Outcome<json::object> DliClient::Commit(const std::string& group, json::array packages) {
  json::object body{{"group", group}, {"packages", std::move(packages)}};
  // Committing the same list twice leaves the same group: safe to retry.
  return CallForObject({.method = "POST",
                        .target = Base() + "/resources/commit",
                        .body = json::serialize(body),
                        .retry = RetryPolicy::kIdempotent});
}

Outcome<void> DliClient::Download(const std::string& name, const std::string& group,
                                  std::function<bool(std::span<const char>)> sink,
                                  std::function<void(std::int64_t, std::int64_t)> progress) {
  // The file-named route: the server verifies the bytes while they stream, and so does get.
  const std::string path = group.empty() ? Encode(name) : Encode(group) + "/" + Encode(name);
  auto response = Call({.target = Base() + "/files/" + path,
                        .sink = std::move(sink),
                        .progress = std::move(progress),
                        .retry = RetryPolicy::kIdempotent});
  if (!response) return std::unexpected(response.error());
  return {};
}

Outcome<json::array> DliClient::PresignUrls(const std::string& group, std::int64_t expires_in_s) {
  json::object body{{"group", group}, {"expires_in", expires_in_s}};
  auto answer = CallForObject({.method = "POST",
                               .target = Base() + "/resources/urls",
                               .body = json::serialize(body),
                               .retry = RetryPolicy::kIdempotent});
  if (!answer) return std::unexpected(answer.error());
  auto* urls = answer->if_contains("urls");
  if (urls == nullptr || !urls->is_array())
    return std::unexpected(Failure{ExitStatus::kServer, "the server's answer has no \"urls\""});
  return std::move(urls->as_array());
}

}  // namespace dlipkg::client
