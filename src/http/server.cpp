// Beast/Asio implementation of http::Server. One coroutine per connection, on one I/O thread;
// RequestHandler::Handle, BlobReader::Read and sendfile(2) run on a separate thread pool because
// they block (on the disk).
// Live connections are tracked so that Stop can close idle ones at once and wait for busy ones.
#include "http/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/sendfile.h>
#include <sys/uio.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dlipkg::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Expected failures (peer gone, timeouts, parse errors) are values, not exceptions.
const auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// A download that must be hashed is copied through two buffers of this size (one being read
// and hashed on the pool while the other is written): large enough that the thread hop per
// chunk is cheap, small enough that a download costs a bounded 2 MiB per connection.
constexpr std::size_t kStreamChunkBytes = 1 << 20;
// A download sent straight from a file (sendfile): at most this much per call, and this much
// held back until the reader confirms the file is still the verified one.
constexpr std::int64_t kSendfileMaxBytes = 4 << 20;
constexpr std::int64_t kConfirmTailBytes = 64 << 10;
constexpr std::size_t kFirstReadBytes = 16 << 10;
// Room above the header limit in the read buffer, so that Beast's own header limit (with its
// clearer error) normally fires first.
constexpr std::size_t kFramingSlackBytes = 1 << 10;
// After an error response the client may still be sending its body; reading (and dropping)
// some of it before closing keeps the kernel from answering with a reset that would destroy
// the response we just sent.
constexpr std::size_t kLingerMaxBytes = 4 << 20;
constexpr std::chrono::milliseconds kLingerMaxTime = 1s;
// Running out of descriptors must not turn the accept loop into a busy loop.
constexpr std::chrono::milliseconds kAcceptRetryDelay = 50ms;
// How often Stop reports handlers that keep it waiting past the grace period.
constexpr std::chrono::milliseconds kDrainReport = 5s;

std::mt19937_64 SeededEngine() {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), device(),
                     device(), device(), device(), device()};
  return std::mt19937_64(seed);
}

// 128 random bits as 32 lower-case hex characters. One engine per thread: no locking, and
// ids from different threads do not collide in practice.
std::string NewRequestId() {
  thread_local std::mt19937_64 engine = SeededEngine();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    const std::uint64_t bits = engine();
    for (int i = 0; i < 16; ++i) id[half * 16 + i] = kHex[(bits >> (60 - 4 * i)) & 0xf];
  }
  return id;
}

// A request id a client or proxy sent is kept, so one id follows the request through every
// log; only a short one of plain characters, since it is echoed in headers, bodies and logs.
std::string RequestIdFor(const bhttp::fields& fields) {
  const auto it = fields.find("X-Request-Id");
  if (it == fields.end()) return NewRequestId();
  const std::string_view id = it->value();
  const bool sane =
      !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
               c == ':';
      });
  return sane ? std::string(id) : NewRequestId();
}

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string port = std::to_string(endpoint.port());
  if (address.is_v6()) return "[" + address.to_string() + "]:" + port;
  return address.to_string() + ":" + port;
}

std::string PeerAddress(const tcp::socket& socket) {
  boost::system::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  auto address = endpoint.address();
  // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; logs and policies want a.b.c.d.
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  return address.to_string();
}

long long MillisecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

bool IsHttpError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

bool HasLineBreak(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// The server owns framing (Content-Length, Connection); a handler header that contradicted it
// or carried a line break would corrupt the connection, so those are dropped.
void SetResponseHeaders(bhttp::fields& fields, const api::Response& response,
                        const std::string& request_id) {
  fields.set(bhttp::field::server, "dlipkg");
  fields.set("X-Request-Id", request_id);
  if (!response.content_type.empty() && !HasLineBreak(response.content_type))
    fields.set(bhttp::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) {
    if (name.empty() || HasLineBreak(name) || HasLineBreak(value) ||
        beast::iequals(name, "Content-Length") || beast::iequals(name, "Transfer-Encoding") ||
        beast::iequals(name, "Connection")) {
      spdlog::warn("request {}: dropping response header '{}' the server cannot send", request_id,
                   HasLineBreak(name) ? std::string("<invalid>") : name);
      continue;
    }
    fields.insert(name, value);
  }
}

// The most a connection buffers of what it has not parsed yet. A whole header must fit, and a
// chunk-size line, chunk extension or trailer may be no longer; body bytes pass through it.
std::size_t ReadBufferLimit(const ServerOptions& options) {
  return std::max(options.max_header_bytes, kFirstReadBytes) + kFramingSlackBytes;
}

std::string_view Trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// RFC 9112 §3.2, §6.1, §6.3: framing the server will not guess at. Any Transfer-Encoding but
// exactly one "chunked" (or any on HTTP/1.0) would leave the body to be parsed as the next
// request; a missing (HTTP/1.1) or repeated Host makes the target ambiguous. "" when sound.
std::string FramingProblem(const bhttp::request_header<>& header) {
  const auto encodings = header.count(bhttp::field::transfer_encoding);
  if (encodings > 0 && header.version() < 11)
    return "Transfer-Encoding is not allowed in an HTTP/1.0 request";
  if (encodings > 1 ||
      (encodings == 1 &&
       !beast::iequals(Trimmed(header[bhttp::field::transfer_encoding]), "chunked")))
    return "Transfer-Encoding must be exactly 'chunked'";
  const auto hosts = header.count(bhttp::field::host);
  if (hosts > 1) return "more than one Host header";
  if (hosts == 0 && header.version() >= 11) return "Host header missing";
  return {};
}

// RFC 9112 §3.2.2: a server must accept a target in absolute form ("http://host/path?query");
// the API sees the same origin form ("/path?query") either way.
std::string OriginForm(std::string_view target) {
  if (target.starts_with('/')) return std::string(target);
  const auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return std::string(target);
  const auto scheme = target.substr(0, scheme_end);
  if (!beast::iequals(scheme, "http") && !beast::iequals(scheme, "https"))
    return std::string(target);
  const auto path = target.find_first_of("/?", scheme_end + 3);
  if (path == std::string_view::npos) return "/";
  if (target[path] == '?') return "/" + std::string(target.substr(path));
  return std::string(target.substr(path));
}

// Runs a reader call, turning an exception into an error (it must cost one download only).
template <typename Call>
auto CallReader(Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInternal, std::string("reader threw: ") + e.what());
  } catch (...) {
    return Fail(ErrorCode::kInternal, "reader threw a non-standard exception");
  }
}

Result<std::size_t> ReadChunk(BlobReader& reader, std::span<char> buffer) {
  return CallReader([&] { return reader.Read(buffer); });
}

// One pool step of a sendfile download: the reader's ConfirmUnchanged first when `confirm`
// (the last bytes are next), then one sendfile(2) call on the non-blocking socket.
struct SendfileStep {
  Result<void> same;
  ssize_t sent = 0;
  int err = 0;
};

SendfileStep RunSendfileStep(BlobReader& reader, bool confirm, int out, int in, off_t& offset,
                             std::size_t count) {
  SendfileStep step;
  if (confirm) step.same = CallReader([&] { return reader.ConfirmUnchanged(); });
  if (!step.same) return step;
  step.sent = ::sendfile(out, in, &offset, count);
  if (step.sent < 0) step.err = errno;
  return step;
}

// A small download whose bytes are all in the page cache: read here, on the I/O thread, with
// preadv2(RWF_NOWAIT), which never waits for the disk, then the reader's ConfirmUnchanged (one
// fstat) as before the last bytes of any download. nullopt when any byte would have to come
// from the disk (or the file system cannot tell): the pool reads it as before.
std::optional<Result<std::size_t>> ReadIfInMemory(BlobReader& reader, FileRegion region,
                                                  std::span<char> into) {
  if (region.length < 0 || static_cast<std::uint64_t>(region.length) > into.size())
    return std::nullopt;
  iovec part{into.data(), static_cast<std::size_t>(region.length)};
  const ssize_t n = ::preadv2(region.fd, &part, 1, region.offset, RWF_NOWAIT);
  if (n != region.length) return std::nullopt;  // EAGAIN (not in memory), EOPNOTSUPP, short
  if (auto same = CallReader([&] { return reader.ConfirmUnchanged(); }); !same)
    return std::unexpected(same.error());
  return static_cast<std::size_t>(n);
}

class Session;

// Everything the sessions share: options, handler, pool, the live-session registry.
class ServerCore {
 public:
  ServerCore(ServerOptions options, api::RequestHandler& handler)
      : options_(std::move(options)),
        handler_(handler),
        ios_(MakeContexts(std::max(1, options_.io_threads))),
        acceptor_(ios_.front()->get_executor()) {
    for (auto& io : ios_) works_.push_back(asio::make_work_guard(*io));
  }
  ~ServerCore() { Stop(); }

  Result<std::string> Bind();
  Result<std::string> Start();
  void Stop();

  const ServerOptions& options() const { return options_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  asio::thread_pool::executor_type pool_executor() { return pool_->get_executor(); }

  // Runs the handler; a throwing handler is a bug that must cost one request, not the process.
  api::Response Invoke(const api::Request& request);
  // handler.BodyModeFor; a throwing one buffers.
  api::BodyMode BodyModeFor(std::string_view method, std::string_view target);
  // handler.HandleIfQuick; a throwing handler costs this request (as in Invoke).
  std::optional<api::Response> InvokeIfQuick(const api::Request& request);
  // handler.Reject, with a bare 500 should Reject itself fail.
  api::Response SafeReject(ErrorCode code, std::string message, const std::string& request_id);
  // Called by ~Session.
  void Forget(std::uint64_t session_id);

 private:
  asio::awaitable<void> AcceptLoop();
  void StartSession(tcp::socket socket);
  std::vector<std::shared_ptr<Session>> LiveSessions();
  bool WaitForSessions(std::chrono::milliseconds limit);
  static void RunIo(asio::io_context& io);
  // One context per I/O thread, each run by that thread alone: a connection's work never
  // contends with another thread's for the context's locks, and needs no strand.
  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int count);

  const ServerOptions options_;
  api::RequestHandler& handler_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;
  std::string bound_;  // "host:port" once bound

  // Declared before ios_ and pool_: handlers destroyed with them may still end sessions.
  std::mutex mutex_;
  std::condition_variable drained_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions_;
  std::uint64_t next_session_id_ = 0;
  std::uint64_t refused_connections_ = 0;

  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> works_;
  std::size_t next_io_ = 0;  // the context of the next accepted connection (accept loop only)
  tcp::acceptor acceptor_;   // on the first context: the accept loop and Stop both touch it
  std::optional<asio::thread_pool> pool_;
  std::vector<std::thread> io_threads_;
};

// One connection: a keep-alive loop of read request, run handler, write response.
// All of its members are used on its I/O thread only (its context has no other).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerCore& core, tcp::socket socket, std::uint64_t id)
      : core_(core),
        id_(id),
        remote_(PeerAddress(socket)),
        executor_(socket.get_executor()),
        stream_(std::move(socket)) {}
  ~Session() { core_.Forget(id_); }

  static asio::awaitable<void> Run(std::shared_ptr<Session> self);
  const asio::any_io_executor& executor() const { return executor_; }

  // From any thread. Closes the connection if it is waiting for a request (or always, when
  // forced); a busy connection finishes its response and closes afterwards on its own.
  void RequestClose(bool force);

 private:
  struct Exchange {
    std::string request_id;
    std::string method = "-";
    std::string target = "-";
    unsigned version = 11;
    bool keep_alive = false;
    bool head_only = false;
    SteadyClock::time_point started;
  };
  struct Written {
    bool ok = false;
    int status = 0;
    std::uint64_t body_bytes = 0;
    bool close = false;  // the body ends with the connection
  };

  using Parser = bhttp::request_parser<bhttp::string_body>;
  using StreamedMessage = bhttp::response<bhttp::buffer_body>;

  asio::awaitable<void> Serve();
  using BufferedParser = Parser;
  using StreamParser = bhttp::request_parser<bhttp::buffer_body>;
  class StreamedBody;

  // Waits for the first byte of the next request; false when the connection is over.
  asio::awaitable<bool> AwaitRequest(beast::flat_buffer& buffer, bool first_request);
  // Reads one request; a request whose body the handler streams is returned once its header is
  // in, with `streamed` set.
  asio::awaitable<bool> ReadRequest(beast::flat_buffer& buffer, Parser& parser,
                                    beast::error_code& ec, bool& streamed, std::string& refusal);
  asio::awaitable<bool> SendContinue(const BufferedParser& parser, beast::error_code& ec);
  // Answers (where an answer is still possible) a request that could not be read whole.
  asio::awaitable<void> RejectReadFailure(const beast::error_code& ec, const std::string& refusal,
                                          bool header_done, Exchange exchange);
  // Runs the handler (RunHandler) and writes its answer; false when the connection is over.
  asio::awaitable<bool> Respond(bhttp::request<bhttp::string_body> message, Exchange exchange);
  // A request whose body the handler streams (BodyMode::kStream); its header is in `parser`.
  // False when the connection must not be reused.
  asio::awaitable<bool> ServeStreamed(beast::flat_buffer& buffer, BufferedParser&& parser,
                                      Exchange exchange);
  // Reads body bytes into `out` until it is full or the body ends; run on the I/O thread for a
  // handler thread waiting in StreamedBody::Read.
  asio::awaitable<Result<std::size_t>> ReadBodyInto(beast::flat_buffer& buffer,
                                                    StreamParser& parser, std::span<char> out);
  // The same for a body of known length (`left` bytes still to come): the bytes already in
  // `buffer` first, then straight from the socket into `out`, in reads as large as `out`.
  asio::awaitable<Result<std::size_t>> ReadLengthBodyInto(beast::flat_buffer& buffer,
                                                          std::uint64_t& left, std::span<char> out);
  // Quick requests (RequestHandler::IsQuick) on this I/O thread, everything else on the pool.
  asio::awaitable<api::Response> RunHandler(const api::Request& request);
  asio::awaitable<void> RejectAndClose(ErrorCode code, std::string message, Exchange exchange);
  asio::awaitable<Written> Write(api::Response response, const Exchange& exchange);
  asio::awaitable<Written> WriteStreamed(api::Response& response, int status,
                                         const Exchange& exchange);
  // The body of a streamed answer whose header is written: chunks from the pool, then the end.
  // `size` nullopt: unknown, the stream's end (a read of 0 bytes) is the body's end.
  asio::awaitable<Written> StreamBody(BlobReader& reader, std::optional<std::uint64_t> size,
                                      int status, StreamedMessage& message,
                                      bhttp::response_serializer<bhttp::buffer_body>& serializer,
                                      const Exchange& exchange);
  // The body straight from a file region (sendfile), the reader's ConfirmUnchanged before the
  // last kConfirmTailBytes.
  asio::awaitable<Written> SendRegion(BlobReader& reader, FileRegion region, int status,
                                      const Exchange& exchange);
  // Waits until the socket can take more bytes; false on error or after read_timeout.
  asio::awaitable<bool> AwaitWritable();
  asio::awaitable<Result<std::size_t>> ReadOnPool(BlobReader& reader, std::span<char> into);
  asio::awaitable<beast::error_code> WriteChunk(
      StreamedMessage& message, bhttp::response_serializer<bhttp::buffer_body>& serializer,
      std::span<char> chunk);
  asio::awaitable<void> LingeringClose();
  api::Request ToApiRequest(const bhttp::request_header<>& header, std::string request_id);
  void LogAccess(const Exchange& exchange, const Written& written) const;
  void Observe(std::string_view route, const Exchange& exchange, const Written& written) const;
  void CloseSocket();
  // Whether bytes of a request wait unread on the socket: at shutdown, a request the client
  // has sent is still answered (and the connection then closed), not cut off unanswered.
  bool RequestArrived();

  ServerCore& core_;
  const std::uint64_t id_;
  const std::string remote_;
  const asio::any_io_executor executor_;
  beast::tcp_stream stream_;
  bool idle_ = false;  // waiting for the first byte of a request: safe to close at shutdown
};

asio::awaitable<void> Session::Run(std::shared_ptr<Session> self) {
  try {
    co_await self->Serve();
  } catch (const std::exception& e) {
    spdlog::debug("connection from {} dropped: {}", self->remote_, e.what());
  } catch (...) {
    spdlog::debug("connection from {} dropped: non-standard exception", self->remote_);
  }
  self->CloseSocket();
}

void Session::RequestClose(bool force) {
  asio::post(executor_, [self = shared_from_this(), force] {
    if (force || (self->idle_ && !self->RequestArrived())) self->CloseSocket();
  });
}

bool Session::RequestArrived() {
  beast::error_code ec;
  return stream_.socket().available(ec) > 0 && !ec;
}

void Session::CloseSocket() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
}

asio::awaitable<void> Session::Serve() {
  const ServerOptions& options = core_.options();
  // Bounded, so that no framing line (request line, header, chunk size, chunk extension,
  // trailer) sent without its line ending can make it grow: the read fails at the limit.
  beast::flat_buffer buffer(ReadBufferLimit(options));
  bool first_request = true;
  for (;;) {
    if (core_.stopping() && !(first_request && RequestArrived())) co_return;
    if (buffer.size() == 0 && !co_await AwaitRequest(buffer, first_request)) co_return;
    first_request = false;

    Exchange exchange;
    exchange.started = SteadyClock::now();
    Parser parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
        options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    // The body limit is set once the header tells whether the body is buffered or streamed.
    parser.body_limit(boost::none);
    beast::error_code ec;
    bool streamed = false;
    std::string refusal;
    const bool complete = co_await ReadRequest(buffer, parser, ec, streamed, refusal);
    if (parser.is_header_done()) {
      exchange.method = std::string(parser.get().method_string());
      exchange.target = std::string(parser.get().target());
      exchange.version = parser.get().version();
    }
    if (complete && streamed) {
      if (!co_await ServeStreamed(buffer, std::move(parser), std::move(exchange))) co_return;
      continue;
    }
    if (!complete) {
      co_await RejectReadFailure(ec, refusal, parser.is_header_done(), std::move(exchange));
      co_return;
    }
    if (!co_await Respond(parser.release(), std::move(exchange))) co_return;
  }
}

asio::awaitable<bool> Session::AwaitRequest(beast::flat_buffer& buffer, bool first_request) {
  const ServerOptions& options = core_.options();
  // A new connection gets read_timeout to start talking; a kept-alive one idle_timeout.
  idle_ = true;
  stream_.expires_after(first_request ? options.read_timeout : options.idle_timeout);
  auto [ec, n] = co_await stream_.async_read_some(buffer.prepare(kFirstReadBytes), kNoThrow);
  idle_ = false;
  if (ec) co_return false;  // peer closed, idle timeout, or shutdown: nobody waits for an answer
  buffer.commit(n);
  co_return true;
}

asio::awaitable<bool> Session::Respond(bhttp::request<bhttp::string_body> message,
                                       Exchange exchange) {
  exchange.request_id = RequestIdFor(message);
  exchange.keep_alive = message.keep_alive();
  exchange.head_only = message.method() == bhttp::verb::head;
  api::Request request = ToApiRequest(message.base(), exchange.request_id);
  request.body = std::move(message.body());
  api::Response response = co_await RunHandler(request);

  // A response finished during shutdown tells the client not to reuse the connection.
  exchange.keep_alive = exchange.keep_alive && !core_.stopping();
  if (!response.log_note.empty())
    spdlog::warn("request {} failed: {}", exchange.request_id, response.log_note);
  const std::string_view route = response.route.empty() ? "unmatched" : response.route;
  const Written written = co_await Write(std::move(response), exchange);
  LogAccess(exchange, written);
  Observe(route, exchange, written);
  co_return written.ok && !written.close && exchange.keep_alive;
}

// Reads one request into parser; false with ec set when it could not, or with `refusal` set
// when its header frames it in a way the server will not guess at. A request whose body the
// handler streams is returned once its header is in (and found sound), with `streamed` set.
asio::awaitable<bool> Session::ReadRequest(beast::flat_buffer& buffer, BufferedParser& parser,
                                           beast::error_code& ec, bool& streamed,
                                           std::string& refusal) {
  // One deadline for the whole request, so a client trickling bytes is cut off all the same.
  stream_.expires_after(core_.options().read_timeout);
  std::tie(ec, std::ignore) = co_await bhttp::async_read_header(stream_, buffer, parser, kNoThrow);
  if (ec) co_return false;
  refusal = FramingProblem(parser.get());
  if (!refusal.empty()) co_return false;
  if (parser.is_done()) co_return true;
  const auto& header = parser.get();
  if (core_.BodyModeFor(header.method_string(), OriginForm(header.target())) ==
      api::BodyMode::kStream) {
    streamed = true;
    co_return true;
  }
  // Beast checks a Content-Length against the limit when the header ends, so a buffered body's
  // announced length is checked here; a chunked one is checked as its chunks arrive.
  const auto max_body = static_cast<std::uint64_t>(core_.options().max_body_bytes);
  parser.body_limit(max_body);
  if (const auto length = parser.content_length(); length && *length > max_body) {
    ec = bhttp::error::body_limit;
    co_return false;
  }
  if (!co_await SendContinue(parser, ec)) co_return false;
  std::tie(ec, std::ignore) = co_await bhttp::async_read(stream_, buffer, parser, kNoThrow);
  co_return !ec;
}

// Clients that ask (curl does for larger bodies) would otherwise wait a second or more.
asio::awaitable<bool> Session::SendContinue(const BufferedParser& parser, beast::error_code& ec) {
  const auto& header = parser.get();
  if (header.version() >= 11 && beast::iequals(header[bhttp::field::expect], "100-continue")) {
    bhttp::response<bhttp::empty_body> go_on{bhttp::status::continue_, header.version()};
    std::tie(ec, std::ignore) = co_await bhttp::async_write(stream_, go_on, kNoThrow);
    if (ec) co_return false;
  }
  co_return true;
}

// Quick reads run here, on the connection's I/O thread: the hop to the pool and back would cost
// more than they do. Everything that may block long goes to the pool.
asio::awaitable<api::Response> Session::RunHandler(const api::Request& request) {
  if (auto quick = core_.InvokeIfQuick(request)) co_return std::move(*quick);
  co_return co_await asio::co_spawn(
      core_.pool_executor(),
      [&]() -> asio::awaitable<api::Response> { co_return core_.Invoke(request); },
      asio::use_awaitable);
}

// The handler thread's view of a streamed body. The session's I/O thread reads the socket into one
// buffer while the handler hashes and writes the bytes of the other, so receiving overlaps the
// handler's work; at most one buffer is read ahead, so a slow disk still slows the client down
// (TCP backpressure) instead of filling memory: 2 x kReadAheadBytes per streamed request.
class Session::StreamedBody final : public api::RequestBody {
 public:
  StreamedBody(Session& session, beast::flat_buffer& buffer, StreamParser& parser)
      : session_(session), buffer_(buffer), parser_(parser) {
    if (auto length = parser_.content_length()) length_ = *length;
    // Beast's parser reads a body through its own buffer, capped at the header limit (about
    // 17 KiB per read: 65,000 reads for 1 GiB); a body of known length is read around it.
    if (length_ && !parser_.chunked()) left_ = *length_;
  }
  std::optional<std::uint64_t> Length() const override { return length_; }
  // The handler read the body to its end.
  bool finished() const { return finished_; }
  // Every byte of a body of known length was read from the connection (read ahead or not), so
  // the connection is at the next request. Read on the I/O thread once Settle returned.
  bool all_read() const { return left_ && *left_ == 0; }

  Result<std::size_t> Read(std::span<char> out) override {
    auto lent = Lend(out);
    if (!lent) return std::unexpected(lent.error());
    if (!lent->empty()) std::memcpy(out.data(), lent->data(), lent->size());
    return lent->size();
  }

  // Lends what was read ahead, without copying it: valid until the next call, which may start
  // filling the same buffer again.
  Result<std::span<const char>> Lend(std::span<char> scratch) override {
    if (scratch.empty() || finished_) return std::span<const char>();
    if (ready_.empty() && !Refill()) {
      if (failed_) return Fail(ErrorCode::kBadRequest, "the request body could not be read");
      return std::span<const char>();
    }
    const std::span<const char> lent = ready_.first(std::min(scratch.size(), ready_.size()));
    ready_ = ready_.subspan(lent.size());
    return lent;
  }

  // Called on the handler's thread once the handler returned: a read-ahead still running (the
  // handler stopped reading early) is cancelled and waited for, so that nothing touches the
  // parser or the buffers once the session goes on.
  void Settle() {
    if (!pending_.valid()) return;
    asio::post(session_.executor(), [&session = session_] { session.stream_.cancel(); });
    (void)pending_.get();
  }

 private:
  static constexpr std::size_t kReadAheadBytes = 1 << 20;

  // Takes the bytes read ahead into ready_ and starts reading the next buffer; false at the
  // body's end or on a failure (failed_).
  bool Refill() {
    if (failed_ || ended_) {
      finished_ = !failed_;
      return false;
    }
    if (!pending_.valid()) {
      front_.resize(kReadAheadBytes);
      back_.resize(kReadAheadBytes);
      StartFill();
    }
    Result<std::size_t> got = pending_.get();  // bounded: every socket wait has the read timeout
    if (!got) {
      failed_ = true;
      return false;
    }
    std::swap(front_, back_);
    ready_ = std::span<const char>(front_.data(), *got);
    // ReadBodyInto fills its buffer unless the body ended.
    if (*got < back_.size())
      ended_ = true;
    else
      StartFill();
    if (*got == 0) finished_ = true;
    return *got > 0;
  }

  void StartFill() {
    auto promise = std::make_shared<std::promise<Result<std::size_t>>>();
    pending_ = promise->get_future();
    // The I/O thread is free for it: the session's own coroutine is suspended until the handler
    // returns.
    const std::span<char> into(back_.data(), back_.size());
    asio::co_spawn(session_.executor(),
                   left_ ? session_.ReadLengthBodyInto(buffer_, *left_, into)
                         : session_.ReadBodyInto(buffer_, parser_, into),
                   [promise](std::exception_ptr error, Result<std::size_t> got) {
                     if (error) got = Fail(ErrorCode::kBadRequest, "the connection failed");
                     promise->set_value(std::move(got));
                   });
  }

  Session& session_;
  beast::flat_buffer& buffer_;
  StreamParser& parser_;
  std::optional<std::uint64_t> length_;
  std::optional<std::uint64_t> left_;  // a body of known length: bytes not yet read (I/O thread)
  std::vector<char> front_;            // holds ready_
  std::vector<char> back_;             // being filled by the I/O thread while pending_ is valid
  std::span<const char> ready_;        // bytes read and not yet taken by the handler
  std::future<Result<std::size_t>> pending_;
  bool ended_ = false;  // the last fill came back short: the body is all read
  bool failed_ = false;
  bool finished_ = false;
};

asio::awaitable<Result<std::size_t>> Session::ReadBodyInto(beast::flat_buffer& buffer,
                                                           StreamParser& parser,
                                                           std::span<char> out) {
  std::size_t got = 0;
  while (got < out.size() && !parser.is_done()) {
    parser.get().body().data = out.data() + got;
    parser.get().body().size = out.size() - got;
    // Per wait, not per request: a large upload may take long, a stalled one may not.
    stream_.expires_after(core_.options().read_timeout);
    auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer, parser, kNoThrow);
    got = out.size() - parser.get().body().size;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec == beast::error::timeout)
      co_return Fail(ErrorCode::kBadRequest, "the client stopped sending the request body");
    if (ec)
      co_return Fail(ErrorCode::kBadRequest, "the request body was cut short: " + ec.message());
  }
  co_return got;
}

asio::awaitable<Result<std::size_t>> Session::ReadLengthBodyInto(beast::flat_buffer& buffer,
                                                                 std::uint64_t& left,
                                                                 std::span<char> out) {
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), left));
  std::size_t got = asio::buffer_copy(asio::buffer(out.data(), want), buffer.data());
  buffer.consume(got);
  while (got < want) {
    // Per wait, not per request: a large upload may take long, a stalled one may not.
    stream_.expires_after(core_.options().read_timeout);
    auto [ec, n] =
        co_await stream_.async_read_some(asio::buffer(out.data() + got, want - got), kNoThrow);
    got += n;
    if (ec == beast::error::timeout)
      co_return Fail(ErrorCode::kBadRequest, "the client stopped sending the request body");
    if (ec)
      co_return Fail(ErrorCode::kBadRequest, "the request body was cut short: " + ec.message());
  }
  left -= got;
  co_return got;
}

asio::awaitable<bool> Session::ServeStreamed(beast::flat_buffer& buffer, BufferedParser&& parser,
                                             Exchange exchange) {
  beast::error_code ec;
  if (!co_await SendContinue(parser, ec)) co_return false;
  StreamParser body_parser(std::move(parser));
  body_parser.body_limit(boost::none);  // the handler enforces its own object size limit
  exchange.request_id = RequestIdFor(body_parser.get());
  exchange.keep_alive = body_parser.get().keep_alive();
  exchange.head_only = body_parser.get().method() == bhttp::verb::head;
  StreamedBody body(*this, buffer, body_parser);
  api::Request request = ToApiRequest(body_parser.get().base(), exchange.request_id);
  request.body_stream = &body;
  // A streamed handler blocks in body reads, so it always runs on the pool (never quick).
  api::Response response = co_await asio::co_spawn(
      core_.pool_executor(),
      [&]() -> asio::awaitable<api::Response> {
        struct SettleAtExit {
          StreamedBody& body;
          ~SettleAtExit() { body.Settle(); }
        } settle{body};
        co_return core_.Invoke(request);
      },
      asio::use_awaitable);

  // Body bytes left unread (a refused upload) cannot be skipped reliably: close afterwards.
  const bool body_left = !body.finished() && !body.all_read() && !body_parser.is_done();
  exchange.keep_alive = exchange.keep_alive && !core_.stopping() && !body_left;
  if (!response.log_note.empty())
    spdlog::warn("request {} failed: {}", exchange.request_id, response.log_note);
  const std::string_view route = response.route.empty() ? "unmatched" : response.route;
  const Written written = co_await Write(std::move(response), exchange);
  LogAccess(exchange, written);
  Observe(route, exchange, written);
  if (written.ok && body_left) co_await LingeringClose();
  co_return written.ok && !written.close && exchange.keep_alive;
}

asio::awaitable<void> Session::RejectReadFailure(const beast::error_code& ec,
                                                 const std::string& refusal, bool header_done,
                                                 Exchange exchange) {
  const ServerOptions& options = core_.options();
  const std::string header_too_large =
      "request header is larger than " + std::to_string(options.max_header_bytes) + " bytes";
  if (!refusal.empty()) {
    co_await RejectAndClose(ErrorCode::kBadRequest, refusal, std::move(exchange));
  } else if (ec == bhttp::error::body_limit) {
    co_await RejectAndClose(
        ErrorCode::kBodyTooLarge,
        "request body is larger than " + std::to_string(options.max_body_bytes) + " bytes",
        std::move(exchange));
  } else if (ec == bhttp::error::header_limit ||
             (ec == bhttp::error::buffer_overflow && !header_done)) {
    co_await RejectAndClose(ErrorCode::kBadRequest, header_too_large, std::move(exchange));
  } else if (ec == bhttp::error::buffer_overflow) {
    co_await RejectAndClose(ErrorCode::kBadRequest,
                            "chunk framing line (size, extension or trailer) is longer than " +
                                std::to_string(ReadBufferLimit(options)) + " bytes",
                            std::move(exchange));
  } else if (ec == beast::error::timeout) {
    // tcp_stream has already closed the socket, so there is no way left to answer.
    spdlog::debug("connection from {}: request read timed out", remote_);
  } else if (IsHttpError(ec) && ec != bhttp::error::end_of_stream &&
             ec != bhttp::error::partial_message) {
    co_await RejectAndClose(ErrorCode::kBadRequest, "malformed HTTP request: " + ec.message(),
                            std::move(exchange));
  } else {
    spdlog::debug("connection from {} ended while reading a request: {}", remote_, ec.message());
  }
}

asio::awaitable<void> Session::RejectAndClose(ErrorCode code, std::string message,
                                              Exchange exchange) {
  exchange.request_id = NewRequestId();
  exchange.keep_alive = false;
  spdlog::debug("request {} from {} rejected: {}", exchange.request_id, remote_, message);
  const Written written =
      co_await Write(core_.SafeReject(code, std::move(message), exchange.request_id), exchange);
  LogAccess(exchange, written);
  Observe("rejected", exchange, written);
  if (written.ok) co_await LingeringClose();
}

asio::awaitable<void> Session::LingeringClose() {
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  stream_.expires_after(
      std::min<std::chrono::milliseconds>(core_.options().read_timeout, kLingerMaxTime));
  std::vector<char> sink(16 << 10);
  for (std::size_t drained = 0; drained < kLingerMaxBytes;) {
    auto [read_ec, n] = co_await stream_.async_read_some(asio::buffer(sink), kNoThrow);
    if (read_ec) break;
    drained += n;
  }
}

asio::awaitable<Session::Written> Session::Write(api::Response response, const Exchange& exchange) {
  int status = response.status;
  // 1xx cannot be a final response; anything outside 200-999 is a handler bug.
  if (status < 200 || status > 999) {
    spdlog::error("request {}: handler returned invalid status {}", exchange.request_id, status);
    response = core_.SafeReject(ErrorCode::kInternal, "internal error", exchange.request_id);
    status = (response.status >= 200 && response.status <= 999) ? response.status : 500;
  }
  if (response.stream) co_return co_await WriteStreamed(response, status, exchange);

  bhttp::response<bhttp::string_body> message;
  message.version(exchange.version);
  message.result(static_cast<unsigned>(status));
  SetResponseHeaders(message.base(), response, exchange.request_id);
  message.keep_alive(exchange.keep_alive);
  if (status != 204 && status != 304) message.body() = std::move(response.body);
  message.prepare_payload();  // Content-Length from the body (none for 204/304)
  const std::uint64_t body_bytes = exchange.head_only ? 0 : message.body().size();
  if (exchange.head_only) message.body().clear();  // Content-Length stays, as HEAD requires

  stream_.expires_after(core_.options().read_timeout);
  auto [ec, n] = co_await bhttp::async_write(stream_, message, kNoThrow);
  if (ec) spdlog::debug("request {}: write failed: {}", exchange.request_id, ec.message());
  co_return Written{!ec, status, ec ? 0 : body_bytes};
}

asio::awaitable<Session::Written> Session::WriteStreamed(api::Response& response, int status,
                                                         const Exchange& exchange) {
  BlobReader& reader = *response.stream;
  // A negative size is unknown until the stream ends (a listing written while it is read):
  // sent chunked, or to HTTP/1.0 clients until the connection closes.
  const std::int64_t signed_size = reader.Size();
  const bool sized = signed_size >= 0;
  const bool chunked = !sized && exchange.version >= 11;
  const auto size = static_cast<std::uint64_t>(sized ? signed_size : 0);
  const auto write_timeout = core_.options().read_timeout;

  StreamedMessage message;
  message.version(exchange.version);
  message.result(static_cast<unsigned>(status));
  SetResponseHeaders(message.base(), response, exchange.request_id);
  message.keep_alive(exchange.keep_alive && (sized || chunked));
  if (sized)
    message.content_length(size);
  else if (chunked)
    message.chunked(true);
  message.body().data = nullptr;
  message.body().more = true;
  bhttp::response_serializer<bhttp::buffer_body> serializer{message};

  stream_.expires_after(write_timeout);
  auto [header_ec, header_n] = co_await bhttp::async_write_header(stream_, serializer, kNoThrow);
  if (header_ec) co_return Written{false, status, 0};
  if (exchange.head_only) co_return Written{true, status, 0, !message.keep_alive()};

  co_return co_await StreamBody(reader, sized ? std::optional(size) : std::nullopt, status, message,
                                serializer, exchange);
}

asio::awaitable<Session::Written> Session::StreamBody(
    BlobReader& reader, std::optional<std::uint64_t> size, int status, StreamedMessage& message,
    bhttp::response_serializer<bhttp::buffer_body>& serializer, const Exchange& exchange) {
  const auto region = reader.Region();
  const bool whole_file =
      size && region && region->fd >= 0 && static_cast<std::uint64_t>(region->length) == *size;
  if (whole_file && *size > static_cast<std::uint64_t>(kConfirmTailBytes)) {
    spdlog::debug("request {}: {} bytes sent from the file", exchange.request_id, *size);
    co_return co_await SendRegion(reader, *region, status, exchange);
  }
  using namespace asio::experimental::awaitable_operators;
  // Two buffers: the pool reads (and hashes) the next chunk while this one is written.
  const auto chunk_bytes = static_cast<std::size_t>(
      size ? std::min<std::uint64_t>(kStreamChunkBytes, *size) : kStreamChunkBytes);
  std::vector<char> current(chunk_bytes), next(chunk_bytes);
  const auto want = [&](std::uint64_t from) {
    return static_cast<std::size_t>(size ? std::min<std::uint64_t>(chunk_bytes, *size - from)
                                         : chunk_bytes);
  };
  std::uint64_t sent = 0;
  // No co_await inside ?: or std::tie: GCC 12 may destroy such temporaries twice.
  Result<std::size_t> got = 0;
  // A small file (one Read) already in memory needs no hop to the pool at all.
  std::optional<Result<std::size_t>> in_memory;
  if (whole_file && *size > 0) in_memory = ReadIfInMemory(reader, *region, current);
  if (in_memory)
    got = std::move(*in_memory);
  else if (!size || *size > 0)
    got = co_await ReadOnPool(reader, {current.data(), want(0)});
  while (!size || sent < *size) {
    if (got && *got == 0 && !size) break;  // the end of a stream of unknown size
    if (!got || *got == 0) {
      // The status line is already on the wire: closing without the end of the body (the
      // Content-Length not reached, or no last chunk) is the only honest way to signal it.
      spdlog::error("request {}: body stream {} after {} bytes; closing the connection",
                    exchange.request_id,
                    got ? "ended early" : "failed (" + got.error().message + ")", sent);
      co_return Written{false, status, sent};
    }
    const std::span<char> chunk(current.data(), *got);
    const std::uint64_t after = sent + *got;
    beast::error_code ec;
    if (!size || after < *size) {
      auto both = co_await (WriteChunk(message, serializer, chunk) &&
                            ReadOnPool(reader, {next.data(), want(after)}));
      ec = std::get<0>(both);
      got = std::move(std::get<1>(both));
    } else {
      ec = co_await WriteChunk(message, serializer, chunk);
    }
    if (ec) co_return Written{false, status, sent};
    sent = after;
    current.swap(next);
  }
  message.body().data = nullptr;
  message.body().size = 0;
  message.body().more = false;
  stream_.expires_after(core_.options().read_timeout);
  auto [ec, n] = co_await bhttp::async_write(stream_, serializer, kNoThrow);
  co_return Written{!ec, status, sent, !message.keep_alive()};
}

asio::awaitable<Result<std::size_t>> Session::ReadOnPool(BlobReader& reader, std::span<char> into) {
  co_return co_await asio::co_spawn(
      core_.pool_executor(),
      [&reader, into]() -> asio::awaitable<Result<std::size_t>> {
        co_return ReadChunk(reader, into);
      },
      asio::use_awaitable);
}

asio::awaitable<beast::error_code> Session::WriteChunk(
    StreamedMessage& message, bhttp::response_serializer<bhttp::buffer_body>& serializer,
    std::span<char> chunk) {
  message.body().data = chunk.data();
  message.body().size = chunk.size();
  message.body().more = true;
  stream_.expires_after(core_.options().read_timeout);  // per chunk: slow but moving is fine
  auto [ec, n] = co_await bhttp::async_write(stream_, serializer, kNoThrow);
  if (ec == bhttp::error::need_buffer) ec = {};
  co_return ec;
}

asio::awaitable<Session::Written> Session::SendRegion(BlobReader& reader, FileRegion region,
                                                      int status, const Exchange& exchange) {
  auto& socket = stream_.socket();
  boost::system::error_code mode_ec;
  socket.native_non_blocking(true, mode_ec);  // a slow client must not hold a pool thread
  if (mode_ec) co_return Written{false, status, 0};
  const auto size = static_cast<std::uint64_t>(region.length);
  const std::uint64_t tail = std::min<std::uint64_t>(kConfirmTailBytes, size);
  off_t offset = region.offset;
  std::uint64_t sent = 0;
  bool confirmed = false;
  while (sent < size) {
    const bool confirm = !confirmed && size - sent <= tail;
    const std::uint64_t allowed = confirmed || confirm ? size - sent : size - sent - tail;
    const auto count = static_cast<std::size_t>(
        std::min<std::uint64_t>(allowed, static_cast<std::uint64_t>(kSendfileMaxBytes)));
    // On the pool: sendfile reads the file, which may wait for the disk (a cold range).
    const SendfileStep step = co_await asio::co_spawn(
        core_.pool_executor(),
        [&reader, confirm, out = socket.native_handle(), in = region.fd, &offset,
         count]() -> asio::awaitable<SendfileStep> {
          co_return RunSendfileStep(reader, confirm, out, in, offset, count);
        },
        asio::use_awaitable);
    if (!step.same) {
      spdlog::error("request {}: {} after {} of {} bytes; closing the connection",
                    exchange.request_id, step.same.error().message, sent, size);
      co_return Written{false, status, sent};
    }
    confirmed = confirmed || confirm;
    if (step.sent > 0) {
      sent += static_cast<std::uint64_t>(step.sent);
      continue;
    }
    if (step.sent < 0 && (step.err == EINTR || step.err == EAGAIN || step.err == EWOULDBLOCK)) {
      if (step.err == EINTR || co_await AwaitWritable()) continue;
      co_return Written{false, status, sent};
    }
    spdlog::error("request {}: sendfile {} after {} of {} bytes; closing the connection",
                  exchange.request_id,
                  step.sent == 0 ? std::string("found the file short")
                                 : std::error_code(step.err, std::generic_category()).message(),
                  sent, size);
    co_return Written{false, status, sent};
  }
  co_return Written{true, status, sent};
}

asio::awaitable<bool> Session::AwaitWritable() {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(executor_, core_.options().read_timeout);
  auto which = co_await (stream_.socket().async_wait(tcp::socket::wait_write, kNoThrow) ||
                         timer.async_wait(kNoThrow));
  co_return which.index() == 0 && !std::get<0>(std::get<0>(which));
}

api::Request Session::ToApiRequest(const bhttp::request_header<>& header, std::string request_id) {
  api::Request request;
  request.method = std::string(header.method_string());
  request.target = OriginForm(header.target());
  for (const auto& field : header)
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  request.remote_address = remote_;
  request.request_id = std::move(request_id);
  return request;
}

void Session::LogAccess(const Exchange& exchange, const Written& written) const {
  // Header values and bodies stay out: they carry tokens and user data.
  spdlog::info("access id={} remote={} method={} target={} status={} bytes={} ms={}{}",
               exchange.request_id, remote_, exchange.method, exchange.target, written.status,
               written.body_bytes, MillisecondsSince(exchange.started),
               written.ok ? "" : " aborted=true");
}

void Session::Observe(std::string_view route, const Exchange& exchange,
                      const Written& written) const {
  Metrics* metrics = core_.options().metrics;
  if (metrics == nullptr) return;
  metrics->ObserveRequest(RequestSample{
      .route = route,
      .method = exchange.method,
      .status = written.status,
      .seconds = std::chrono::duration<double>(SteadyClock::now() - exchange.started).count(),
      .bytes_sent = written.body_bytes});
}

Result<std::string> ServerCore::Bind() {
  if (!bound_.empty()) return bound_;
  const std::string wanted = options_.host + ":" + std::to_string(options_.port);
  boost::system::error_code ec;
  tcp::resolver resolver(*ios_.front());
  const auto endpoints =
      resolver.resolve(options_.host, std::to_string(options_.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty())
    return Fail(ErrorCode::kInternal, "cannot resolve listen address " + wanted + ": " +
                                          (ec ? ec.message() : std::string("no address")));
  const tcp::endpoint endpoint = *endpoints.begin();
  const auto fail = [&](const char* step) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return Fail(ErrorCode::kInternal,
                "cannot listen on " + wanted + ": " + step + ": " + ec.message());
  };
  if (acceptor_.open(endpoint.protocol(), ec)) return fail("open");
  // Lets a restarted server bind while old connections sit in TIME_WAIT.
  if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec)) return fail("option");
  if (acceptor_.bind(endpoint, ec)) return fail("bind");
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen");
  const auto local = acceptor_.local_endpoint(ec);
  if (ec) return fail("local address");
  bound_ = FormatEndpoint(local);
  // Clients may connect from now on; the kernel queues them until Start, which says
  // "listening": tools wait for that line, and a start that fails in between never shows it.
  return bound_;
}

Result<std::string> ServerCore::Start() {
  if (started_) return Fail(ErrorCode::kInternal, "server already started");
  auto bound = Bind();
  if (!bound) return bound;
  started_ = true;
  pool_.emplace(static_cast<std::size_t>(std::max(1, options_.handler_threads)));
  asio::co_spawn(acceptor_.get_executor(), AcceptLoop(), [](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      spdlog::error("accept loop ended: {}", e.what());
    } catch (...) {
      spdlog::error("accept loop ended: non-standard exception");
    }
  });
  for (auto& io : ios_) io_threads_.emplace_back([&io = *io] { RunIo(io); });
  spdlog::info("listening on {}", bound_);
  return bound_;
}

std::vector<std::unique_ptr<asio::io_context>> ServerCore::MakeContexts(int count) {
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (int i = 0; i < count; ++i) ios.push_back(std::make_unique<asio::io_context>(1));
  return ios;
}

void ServerCore::RunIo(asio::io_context& io) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("I/O thread: unexpected exception: {}", e.what());
    } catch (...) {
      spdlog::error("I/O thread: unexpected non-standard exception");
    }
  }
}

asio::awaitable<void> ServerCore::AcceptLoop() {
  for (;;) {
    // Connections are dealt to the I/O threads in turn; each then stays on its thread.
    asio::io_context& io = *ios_[next_io_];
    next_io_ = (next_io_ + 1) % ios_.size();
    auto [ec, socket] = co_await acceptor_.async_accept(io.get_executor(), kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor_.get_executor(), kAcceptRetryDelay);
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    StartSession(tcp::socket(std::move(socket)));
  }
}

void ServerCore::StartSession(tcp::socket socket) {
  boost::system::error_code ignored;
  // Small JSON answers should leave at once, not wait for Nagle.
  socket.set_option(tcp::no_delay(true), ignored);
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(mutex_);
    // Checked under the lock Stop takes to snapshot the sessions, so none slips past it.
    if (stopping()) return;
    if (sessions_.size() >= options_.max_connections) {
      // Refused at once: closing costs nothing, while a response would need a read first.
      ++refused_connections_;
      if (refused_connections_ == 1 || refused_connections_ % 1000 == 0)
        spdlog::warn("{} connection(s) refused: {} are open, the limit (--max-connections)",
                     refused_connections_, sessions_.size());
      socket.close(ignored);
      return;
    }
    const std::uint64_t id = next_session_id_++;
    session = std::make_shared<Session>(*this, std::move(socket), id);
    sessions_.emplace(id, session);
  }
  asio::co_spawn(session->executor(), Session::Run(session), asio::detached);
}

void ServerCore::Forget(std::uint64_t session_id) {
  std::lock_guard lock(mutex_);
  sessions_.erase(session_id);
  if (sessions_.empty()) drained_.notify_all();
}

std::vector<std::shared_ptr<Session>> ServerCore::LiveSessions() {
  std::vector<std::shared_ptr<Session>> live;
  std::lock_guard lock(mutex_);
  for (const auto& [id, weak] : sessions_)
    if (auto session = weak.lock()) live.push_back(std::move(session));
  return live;  // released by the caller, outside the lock (~Session takes it)
}

bool ServerCore::WaitForSessions(std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  return drained_.wait_for(lock, limit, [this] { return sessions_.empty(); });
}

api::Response ServerCore::Invoke(const api::Request& request) {
  try {
    return handler_.Handle(request);
  } catch (const std::exception& e) {
    spdlog::error("request {}: handler threw: {}", request.request_id, e.what());
  } catch (...) {
    spdlog::error("request {}: handler threw a non-standard exception", request.request_id);
  }
  return SafeReject(ErrorCode::kInternal, "internal error", request.request_id);
}

std::optional<api::Response> ServerCore::InvokeIfQuick(const api::Request& request) {
  try {
    return handler_.HandleIfQuick(request);
  } catch (const std::exception& e) {
    spdlog::error("request {}: handler threw: {}", request.request_id, e.what());
  } catch (...) {
    spdlog::error("request {}: handler threw a non-standard exception", request.request_id);
  }
  return SafeReject(ErrorCode::kInternal, "internal error", request.request_id);
}

api::BodyMode ServerCore::BodyModeFor(std::string_view method, std::string_view target) {
  try {
    return handler_.BodyModeFor(method, target);
  } catch (const std::exception& e) {
    spdlog::error("RequestHandler::BodyModeFor threw: {}", e.what());
  } catch (...) {
    spdlog::error("RequestHandler::BodyModeFor threw a non-standard exception");
  }
  return api::BodyMode::kBuffer;
}

api::Response ServerCore::SafeReject(ErrorCode code, std::string message,
                                     const std::string& request_id) {
  try {
    return handler_.Reject(code, std::move(message), request_id);
  } catch (const std::exception& e) {
    spdlog::error("RequestHandler::Reject threw: {}", e.what());
  } catch (...) {
    spdlog::error("RequestHandler::Reject threw a non-standard exception");
  }
  api::Response fallback;
  fallback.status = 500;
  fallback.content_type.clear();
  return fallback;
}

void ServerCore::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  const auto begun = SteadyClock::now();
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true, std::memory_order_release);
  }
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  for (const auto& session : LiveSessions()) session->RequestClose(/*force=*/false);
  if (!WaitForSessions(options_.shutdown_grace)) {
    const auto left = LiveSessions();
    spdlog::warn("shutdown grace of {} ms is over; closing {} busy connection(s)",
                 options_.shutdown_grace.count(), left.size());
    for (const auto& session : left) session->RequestClose(/*force=*/true);
  }
  // A running handler cannot be interrupted, so its session is waited for. The pool is joined
  // only once no session is left that could still hand it work.
  while (!WaitForSessions(kDrainReport)) {
    spdlog::warn("shutdown: still waiting for {} connection(s) whose handlers are running",
                 LiveSessions().size());
  }
  pool_->join();
  for (auto& work : works_) work.reset();
  for (auto& io : ios_) io->stop();
  for (auto& thread : io_threads_) thread.join();
  io_threads_.clear();
  spdlog::info("server stopped in {} ms", MillisecondsSince(begun));
}

}  // namespace

struct Server::Impl {
  Impl(ServerOptions options, api::RequestHandler& handler) : core(std::move(options), handler) {}
  ServerCore core;
};

Server::Server(ServerOptions options, api::RequestHandler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

Server::~Server() { Stop(); }

Result<std::string> Server::Bind() { return impl_->core.Bind(); }

Result<std::string> Server::Start() { return impl_->core.Start(); }

void Server::Stop() { impl_->core.Stop(); }

}  // namespace dlipkg::http
