// The HTTP/1.1 server (Boost.Beast on Asio coroutines) in front of an api::RequestHandler.
// Keep-alive, Content-Length or chunked request bodies, body and header limits (every read
// buffer bounded), strict framing (RFC 9112), a cap on open connections, read and idle timeouts,
// an X-Request-Id on every response, one access-log line per request, graceful shutdown.
// Handlers run on a separate blocking thread pool, except requests the handler calls quick
// (RequestHandler::HandleIfQuick), which run on the connection's I/O thread. Each I/O thread
// runs its own event loop; connections are dealt to them in turn and stay where dealt.
// Start/Stop from one thread; the server runs its own threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "api/http_types.hpp"
#include "domain/error.hpp"
#include "ports/metrics.hpp"

namespace dlipkg::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;                         // 0: pick a free port
  int io_threads = 2;                                // one event loop each
  int handler_threads = 32;                          // blocking pool for handlers
  std::size_t max_body_bytes = 1 << 20;              // over: 413 via RequestHandler::Reject
  std::size_t max_header_bytes = 16 << 10;           // over: 431-equivalent error, then close
  std::size_t max_connections = 1024;                // open at once; beyond it closed at accept
  std::chrono::milliseconds read_timeout{30'000};    // whole request, once its first byte came
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive connection with no request
  std::chrono::milliseconds shutdown_grace{60'000};  // in-flight requests get this long
  // Each answered request is observed here (route, status, duration, bytes); null: none.
  // Must outlive the server.
  Metrics* metrics = nullptr;
};

class Server {
 public:
  Server(ServerOptions options, api::RequestHandler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens without serving yet: connections wait in the kernel's queue until Start.
  // Lets the program claim its port before start-up work that must not run twice (recovery,
  // the sweep). Returns the bound "host:port"; idempotent.
  // Errors: kInternal (cannot bind; the message says the address and why).
  Result<std::string> Bind();
  // Binds (unless Bind did) and starts serving on the server's own threads. Returns the bound
  // "host:port". Errors: those of Bind.
  Result<std::string> Start();
  // Stops accepting, lets in-flight requests finish (up to shutdown_grace), closes idle
  // connections, joins all threads. Idempotent. Connections still busy after the grace are
  // closed, but a handler still running cannot be interrupted: Stop waits for it to return.
  // Not to be called from a handler.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlipkg::http
