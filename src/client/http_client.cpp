#include "client/http_client.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "adapters/auth/sdk_hmac_signature.hpp"
#include "adapters/common/utc_time.hpp"

namespace dlipkg::client {
namespace {

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower;
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "http://h:1/x" -> "h:1".
std::string Authority(std::string_view endpoint) {
  endpoint.remove_prefix(endpoint.find("://") + 3);
  return std::string(endpoint.substr(0, endpoint.find('/')));
}

bool IsConnectFailure(CURLcode code) {
  return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
         code == CURLE_COULDNT_RESOLVE_PROXY;
}

bool IsTransient(CURLcode code) {
  return IsConnectFailure(code) || code == CURLE_OPERATION_TIMEDOUT || code == CURLE_SEND_ERROR ||
         code == CURLE_RECV_ERROR || code == CURLE_GOT_NOTHING || code == CURLE_PARTIAL_FILE;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

std::string HttpResponse::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers)
    if (name == lower_name) return value;
  return "";
}

// The state one attempt's callbacks share.
struct HttpClient::Attempt {
  const HttpRequest* request = nullptr;
  HttpResponse response;
  CURL* curl = nullptr;
  std::int64_t upload_offset = 0;
  std::int64_t sunk = 0;  // bytes handed to the sink
  bool body_too_large = false;
  bool sink_refused = false;
  int read_errno = 0;
  CURLcode code = CURLE_OK;
};

namespace {

std::size_t OnHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto& response = static_cast<HttpClient::Attempt*>(user)->response;
  std::string_view line(data, size * count);
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    auto value = line.substr(colon + 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front())))
      value.remove_prefix(1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
      value.remove_suffix(1);
    response.headers.emplace_back(Lower(line.substr(0, colon)), std::string(value));
  } else if (line.starts_with("HTTP/")) {
    response.headers.clear();  // a new response (after 100 Continue)
  }
  return size * count;
}

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto& attempt = *static_cast<HttpClient::Attempt*>(user);
  const std::size_t bytes = size * count;
  long status = 0;
  curl_easy_getinfo(attempt.curl, CURLINFO_RESPONSE_CODE, &status);
  if (attempt.request->sink && status >= 200 && status < 300) {
    if (!attempt.request->sink(std::span<const char>(data, bytes))) {
      attempt.sink_refused = true;
      return CURL_WRITEFUNC_ERROR;
    }
    attempt.sunk += static_cast<std::int64_t>(bytes);
    return bytes;
  }
  if (attempt.response.body.size() + bytes > HttpClient::kMaxBodyBytes) {
    attempt.body_too_large = true;
    return CURL_WRITEFUNC_ERROR;
  }
  attempt.response.body.append(data, bytes);
  return bytes;
}

std::size_t OnRead(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto& attempt = *static_cast<HttpClient::Attempt*>(user);
  const auto left = attempt.request->upload_size - attempt.upload_offset;
  const auto want = static_cast<std::size_t>(std::min<std::int64_t>(left, size * count));
  if (want == 0) return 0;
  ssize_t got;
  do {
    got = ::pread(attempt.request->upload_fd, buffer, want, attempt.upload_offset);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) {
    // A file that shrank while being sent, or a read error: abort rather than send less.
    attempt.read_errno = got < 0 ? errno : EIO;
    return CURL_READFUNC_ABORT;
  }
  if (attempt.request->upload_observer)
    attempt.request->upload_observer(attempt.upload_offset,
                                     std::span<const char>(buffer, static_cast<std::size_t>(got)));
  attempt.upload_offset += got;
  return static_cast<std::size_t>(got);
}

int OnSeek(void* user, curl_off_t offset, int origin) {
  auto& attempt = *static_cast<HttpClient::Attempt*>(user);
  if (origin != SEEK_SET || offset < 0 || offset > attempt.request->upload_size)
    return CURL_SEEKFUNC_CANTSEEK;
  attempt.upload_offset = offset;
  return CURL_SEEKFUNC_OK;
}

int OnProgress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
               curl_off_t ulnow) {
  auto& attempt = *static_cast<HttpClient::Attempt*>(user);
  const auto& request = *attempt.request;
  if (!request.progress) return 0;
  if (request.upload_fd >= 0)
    request.progress(ulnow, request.upload_size);
  else if (request.sink)
    request.progress(dlnow, dltotal > 0 ? dltotal : -1);
  return 0;
}

}  // namespace

HttpClient::HttpClient(Connection connection)
    : connection_(std::move(connection)), host_(Authority(connection_.endpoint)) {
  static CurlGlobal global;
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

std::vector<std::string> HttpClient::Headers(const HttpRequest& request) const {
  const bool streamed = request.upload_fd >= 0;
  const std::string content_type = streamed ? "application/octet-stream" : request.content_type;
  std::vector<std::string> lines{"Content-Type: " + content_type, "Host: " + host_,
                                 "X-Project-Id: " + connection_.project,
                                 "User-Agent: dlipkg-client/0.1", "Expect:"};
  for (const auto& [name, value] : request.headers) lines.push_back(name + ": " + value);
  if (!connection_.token.empty() && connection_.access_key.empty()) {
    lines.push_back("X-Auth-Token: " + connection_.token);
  } else if (!connection_.access_key.empty()) {
    const auto date = FormatSdkDate(NowMs());
    const bool unsigned_payload = streamed && request.upload_sha256.empty();
    // The headers the Python SDK signs, minus user-agent; names sorted.
    const CanonicalRequestParts parts{.method = request.method,
                                      .raw_target = request.target,
                                      .headers = {{"content-type", content_type},
                                                  {"host", host_},
                                                  {"x-project-id", connection_.project},
                                                  {"x-sdk-date", date}},
                                      .payload_hash = unsigned_payload
                                                          ? std::string(kUnsignedPayload)
                                                      : streamed ? request.upload_sha256
                                                                 : PayloadHash(request.body)};
    const auto authorization =
        SignSdkRequest(parts, connection_.access_key, connection_.secret_key, date);
    lines.push_back("X-Sdk-Date: " + date);
    // A streamed body's hash is declared up front, so the server verifies the headers before
    // reading the body and the body's SHA-256 once it is in.
    if (streamed) lines.push_back("X-Sdk-Content-Sha256: " + parts.payload_hash);
    lines.push_back("Authorization: " + authorization.value_or(""));
  }
  return lines;
}

std::expected<HttpResponse, std::string> HttpClient::SendOnce(const HttpRequest& request,
                                                              Attempt& attempt) {
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);
  attempt.request = &request;
  attempt.curl = curl;
  const auto url = connection_.endpoint + request.target;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  // A transfer that moves nothing for a minute is dead; large ones may take as long as they need.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &attempt);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &attempt);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &attempt);
  if (request.upload_fd >= 0) {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.upload_size));
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(curl, CURLOPT_READDATA, &attempt);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, OnSeek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &attempt);
    curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (!request.body.empty() || request.method != "DELETE") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
  }
  curl_slist* list = nullptr;
  for (const auto& line : Headers(request)) list = curl_slist_append(list, line.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  const CURLcode code = curl_easy_perform(curl);
  attempt.code = code;
  curl_slist_free_all(list);  // it held the signature
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &attempt.response.status);
  if (code == CURLE_OK) return std::move(attempt.response);
  std::string why = *error ? error : curl_easy_strerror(code);
  if (attempt.read_errno != 0)
    why = "reading the file failed or it changed size while being sent (" +
          std::string(std::strerror(attempt.read_errno)) + ")";
  if (attempt.body_too_large) why = "the answer is larger than the client accepts";
  if (attempt.sink_refused) why = "writing the download failed";
  return std::unexpected(why);
}

// Whether a failed attempt may be sent again: a connection never made always; timeouts,
// resets and 502/503/504 only for idempotent requests; never once a download reached its sink
// (the sink cannot be rewound) or when our own side aborted (file read, sink, size).
bool HttpClient::ShouldRetry(const HttpRequest& request, const Attempt& attempt, bool answered) {
  if (answered) {
    const long status = attempt.response.status;
    return request.retry == RetryPolicy::kIdempotent &&
           (status == 502 || status == 503 || status == 504);
  }
  if (attempt.sunk > 0 || attempt.read_errno != 0 || attempt.sink_refused || attempt.body_too_large)
    return false;
  if (IsConnectFailure(attempt.code)) return true;
  return request.retry == RetryPolicy::kIdempotent && IsTransient(attempt.code);
}

std::expected<HttpResponse, std::string> HttpClient::Send(const HttpRequest& request) {
  std::minstd_rand jitter(std::random_device{}());
  for (int attempt_number = 1;; ++attempt_number) {
    Attempt attempt;
    auto result = SendOnce(request, attempt);
    if (attempt_number == kMaxAttempts || !ShouldRetry(request, attempt, result.has_value())) {
      if (result) return result;
      std::string message = "cannot reach " + connection_.endpoint + ": " + result.error();
      if (attempt_number > 1) message += " (" + std::to_string(attempt_number) + " attempts)";
      return std::unexpected(std::move(message));
    }
    // 0.25 s, 0.5 s, 1 s, each with up to 50% jitter so clients do not retry in step.
    const int base_ms = 250 << (attempt_number - 1);
    std::uniform_int_distribution<int> spread(0, base_ms / 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(base_ms + spread(jitter)));
  }
}

}  // namespace dlipkg::client
