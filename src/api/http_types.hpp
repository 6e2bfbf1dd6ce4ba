// Transport-neutral request and response passed between the HTTP layer and the API layer.
// The HTTP layer fills a Request from the wire and writes the Response back; the API layer
// never sees Beast types. Plain values, one owner at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ports/blob_store.hpp"
#include "ports/byte_source.hpp"

namespace dlipkg::api {

// How the HTTP layer hands a request's body to the handler.
enum class BodyMode {
  kBuffer,  // read whole (up to the server's body limit) before Handle is called
  kStream,  // Handle is called after the header; it pulls the body through Request::body_stream
};

// A request body the handler pulls while the HTTP layer reads it off the connection: a Read
// blocks until bytes arrive (backpressure: nothing is read ahead of the handler) and fails with
// kBadRequest when the client disconnects, stalls past the read timeout or breaks the framing.
// No size limit here: the handler enforces its own. Used by one handler thread.
class RequestBody : public ByteSource {
 public:
  // The Content-Length the client announced; nullopt for a chunked body.
  virtual std::optional<std::uint64_t> Length() const = 0;
};

struct Request {
  std::string method;  // upper case, as received ("GET", "POST", ...)
  std::string target;  // raw request target: path and query, still percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;                                          // raw bytes (kBuffer)
  RequestBody* body_stream = nullptr;                        // the body, for kStream only
  std::string remote_address;                                // peer IP, without port
  std::string request_id;                                    // also sent back as X-Request-Id

  // First header with this name (case-insensitive), value trimmed.
  std::optional<std::string_view> Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json;charset=UTF-8";  // "" for no Content-Type
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // When set, the body is streamed from it (a package download, a whole listing) instead of
  // `body`; a stream whose Size() is negative (unknown) is sent chunked.
  std::unique_ptr<BlobReader> stream;
  // The route table pattern that answered ("" when no route matched), for /metrics labels:
  // a bounded set, unlike raw paths. Points at the constant route table.
  std::string_view route;
  // Why a request failed on the server's side (storage down, a bug), for the operator's log;
  // "" otherwise. Never holds a secret.
  std::string log_note;
};

// What the HTTP layer calls for each request. Handle blocks (store, disk, network), so the
// HTTP layer calls it off the I/O threads; it must be safe to call from many threads at once.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual Response Handle(const Request& request) = 0;
  // Whether a request's body is buffered or streamed, from its method and raw target. Called
  // on the I/O threads once the header is in: must not block.
  virtual BodyMode BodyModeFor(std::string_view method, std::string_view target) const {
    return BodyMode::kBuffer;
  }
  // Whether Handle answers this request quickly without blocking for long (a read from a
  // local store), so the HTTP layer may run it on the connection's own thread: waking a pool
  // thread and coming back costs more than such a request itself.
  virtual bool IsQuick(const Request& request) const {
    (void)request;
    return false;
  }
  // Handle's answer when the request IsQuick, nullopt otherwise (the HTTP layer then calls
  // Handle off the I/O thread). A handler may override it to look at the request once only.
  virtual std::optional<Response> HandleIfQuick(const Request& request) {
    if (!IsQuick(request)) return std::nullopt;
    return Handle(request);
  }
  // The response for a request the HTTP layer rejected itself (body or header too large,
  // unparseable request) so that every error body comes from the API's one error table;
  // `request_id` is the one sent back as X-Request-Id.
  virtual Response Reject(ErrorCode code, std::string message, const std::string& request_id) = 0;
};

}  // namespace dlipkg::api
