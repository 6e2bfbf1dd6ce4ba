// The client's HTTP transport (libcurl): one connection kept alive across calls, every request
// signed SDK-HMAC-SHA256 with the server's own signer (adapters/auth) or carrying X-Auth-Token,
// bodies from memory or streamed from a file descriptor, 2xx response bodies optionally
// streamed to a sink, progress callbacks, and bounded retries with backoff. Used by DliClient.
// One HttpClient per thread.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/connection.hpp"

namespace dlipkg::client {

// When a failed attempt may be sent again.
enum class RetryPolicy {
  kConnectOnly,  // only when the connection could not be made (nothing reached the server)
  kIdempotent,   // also after timeouts, resets and 502/503/504 (GET, PUT of content, ...)
};

struct HttpRequest {
  std::string method = "GET";
  std::string target;  // path and query, already percent-encoded: "/v2.0/p1/resources?kind=jar"
  std::string body;    // sent unless upload_fd >= 0
  std::string content_type = "application/json";
  int upload_fd = -1;            // streamed from offset 0 (and again from 0 on a retry)
  std::int64_t upload_size = 0;  // bytes of upload_fd to send
  std::string upload_sha256;     // hex SHA-256 of those bytes: signed as the payload hash
  std::vector<std::pair<std::string, std::string>> headers;  // sent, not signed
  // Receives a 2xx response body instead of HttpResponse::body; false aborts the transfer.
  std::function<bool(std::span<const char>)> sink;
  // (bytes sent or received, total or -1), called often; the caller throttles drawing.
  std::function<void(std::int64_t, std::int64_t)> progress;
  // Sees every upload byte as it is read, with its offset (an attempt starts again at 0), so
  // a caller can hash the file in the same pass that sends it.
  std::function<void(std::int64_t, std::span<const char>)> upload_observer;
  RetryPolicy retry = RetryPolicy::kConnectOnly;
};

struct HttpResponse {
  long status = 0;
  std::string body;  // at most kMaxBodyBytes (error bodies, JSON answers)
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  std::string Header(std::string_view lower_name) const;
};

class HttpClient {
 public:
  static constexpr std::size_t kMaxBodyBytes = 256u << 20;
  static constexpr int kMaxAttempts = 4;

  explicit HttpClient(Connection connection);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const Connection& connection() const { return connection_; }

  struct Attempt;  // one try's state, shared with libcurl's callbacks

  // The response (any status), or a transport failure's message after the retries. Messages
  // name the endpoint and the cause, never a credential.
  std::expected<HttpResponse, std::string> Send(const HttpRequest& request);

 private:
  std::expected<HttpResponse, std::string> SendOnce(const HttpRequest& request, Attempt& attempt);
  std::vector<std::string> Headers(const HttpRequest& request) const;
  static bool ShouldRetry(const HttpRequest& request, const Attempt& attempt, bool answered);

  Connection connection_;
  std::string host_;  // the endpoint's authority, sent and signed as Host
  void* curl_;        // CURL*, kept for its connection cache
};

}  // namespace dlipkg::client
