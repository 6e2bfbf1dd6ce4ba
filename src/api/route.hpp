// What a route of the server's one table (api/routes.cpp) is, and what its handler gets: the
// services (ApiContext), the decoded request target with the path parameters, and who asked.
// Used by the router (api/router.hpp), ResourcesApi and every handler file (api/*_handlers.cpp).
// Plain values; a Route table is constant, so it is read from many threads at once.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http_types.hpp"
#include "api/json_codec.hpp"
#include "core/package_service.hpp"
#include "core/url_grants.hpp"
#include "domain/error.hpp"
#include "domain/values.hpp"
#include "ports/authenticator.hpp"
#include "ports/body_checksum.hpp"
#include "ports/metrics.hpp"
#include "ports/readiness_probe.hpp"
#include "ports/text_rules.hpp"

namespace dlipkg::api {

// Direct uploads, downloads and presigned URLs (api/transfer_handlers.cpp).
struct TransferOptions {
  std::int64_t max_object_bytes = 5LL << 30;  // --max-object-size, for direct uploads
  // Scheme and authority of presigned URLs ("https://dlipkg.example.com"); "" takes the
  // request's Host header over http.
  std::string public_url;
  // XXH3-128 of a direct upload's body for a client that sends X-Want-Xxh3 (answered in
  // X-Content-Xxh3); empty: not offered, and the request header is ignored.
  NewBodyChecksum new_checksum;
};

// A part GET /readyz asks whether it can serve ("metadata store", "blob store").
struct ReadinessCheck {
  std::string name;
  ReadinessProbe* probe = nullptr;  // null: not checked
};

struct ApiOptions {
  std::string default_owner = "local";  // owner of what unauthenticated requests create
  std::vector<Module> modules;          // built-in modules shown by the list
  // Only without an authenticator: serve non-loopback peers too (--insecure-no-auth), and say
  // so in /healthz.
  bool insecure_no_auth = false;
  // Reads from the store are quick (a local SQLite file), so routes that only read it may run
  // on the I/O threads. Not for a networked store, whose reads can wait for a timeout.
  bool quick_reads = false;
  // Opening a blob is quick (open(2) and fstat(2) in a local directory), so downloads, whose
  // handlers only open the blob, may run on the I/O threads too when quick_reads also holds.
  // Not for S3 blobs, whose open is a request over the network.
  bool quick_blob_opens = false;
  TransferOptions transfer;
  // GET /metrics renders this (null: instrumentation off, /metrics answers 404); with a
  // metrics_token the request must carry "Authorization: Bearer <token>".
  Metrics* metrics = nullptr;
  std::string metrics_token;
  std::vector<ReadinessCheck> readiness;  // GET /readyz
  // Resource names and tags are refused or brought to NFC by these before the domain's rules
  // (docs/api.md, "Names"); null: names are taken as written (unit tests of other rules).
  const TextRules* text_rules = nullptr;
};

// Everything a handler may use. Lives as long as the ResourcesApi that owns it.
struct ApiContext {
  PackageService& service;
  const ApiOptions& options;
  Authenticator* authenticator;  // null: no authentication configured
  UrlGrants* grants;             // null: no presigned URLs (they answer kNotSupported)
};

// The request target, split once: raw path segments and the decoded query.
struct Target {
  std::vector<std::string_view> segments;         // raw segments after the leading '/'
  std::multimap<std::string, std::string> query;  // names and values percent-decoded
};

// One routed request, as its handler sees it.
struct Call {
  const Request& request;
  const Target& target;
  // {name} -> the raw (still percent-encoded) segment, for the route's own pattern.
  std::vector<std::pair<std::string_view, std::string_view>> params;
  std::optional<ProjectId> project;  // the {project_id}, parsed before the route's access check
  std::string user;  // who asked: the authenticated user or the default owner; "" if public
  // A streamed body's payload hash that an AK/SK signature covered: the body must have it.
  std::optional<Sha256Hex> signed_payload_sha256;

  // The project of an Access::kProject route (Admit has parsed it before any handler runs).
  const ProjectId& Project() const { return *project; }

  // The raw segment of a path parameter of the route's pattern ("" if the pattern has none of
  // that name, which the route-table test rules out for every handler).
  std::string_view Param(std::string_view name) const;
  // The first value of a query parameter, decoded.
  std::optional<std::string> Query(const std::string& name) const;
};

// Who may call a route. Checked by ResourcesApi before the handler runs (and before a 405, so a
// stranger learns nothing about a project's routes).
enum class Access {
  kPublic,              // anyone: no credentials, no loopback rule (/healthz)
  kProject,             // the pattern has {project_id}: the peer is admitted and the request
                        // authenticated for that project; Call::user is who asked
  kProjectOrPresigned,  // as kProject, or a valid presigned URL for the package (Call::user
                        // is then ""); an invalid presigned URL is 403, never retried as kProject
};

// How long a route's handler may keep its thread, which decides where the HTTP layer runs it
// (RequestHandler::IsQuick): waking a pool thread and coming back costs more than a quick read.
enum class Work {
  kInstant,    // no I/O at all (/healthz): on the connection's I/O thread
  kStoreRead,  // a read or two from the metadata store: on the I/O thread when the store is
               // local (ApiOptions::quick_reads), on the handler pool otherwise
  kBlobOpen,   // a store read, then a blob opened (not read): on the I/O thread when both stores
               // are local (quick_reads and quick_blob_opens); the HTTP layer reads the bytes
  kBlocking,   // sources, disk, writes: always on the handler pool
};

using RouteHandler = Result<Response> (*)(const ApiContext& context, const Call& call);

struct Route {
  std::string_view method;   // "GET" (which also answers HEAD), "POST", "PUT", "DELETE"
  std::string_view pattern;  // "/v2.0/{project_id}/resources/{resource_name}"
  RouteHandler handler;
  std::string_view handler_name;  // for tests, docs and the closing note
  Access access;
  Work work;
  BodyMode body = BodyMode::kBuffer;  // kStream: the handler pulls Request::body_stream
};

// A 200 JSON answer, and an answer with no body and no Content-Type (DELETE).
Response JsonResponse(std::string body);
Response EmptyResponse();

}  // namespace dlipkg::api
