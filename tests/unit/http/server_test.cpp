// Tests of http::Server over real loopback TCP (127.0.0.1, port 0) with a scripted handler.
// Clients are Beast streams driven by their own io_context, every operation under a deadline,
// so a server bug shows up as a failed assertion rather than a hung test.
#include "http/server.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "testing/temp_dir.hpp"

namespace dlipkg::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kClientDeadline = 5s;
constexpr std::int64_t kStreamSize = 5 << 20;

char PatternByte(std::int64_t offset) { return static_cast<char>((offset * 31 + 7) % 251); }

std::string Pattern(std::int64_t size) {
  std::string out(static_cast<std::size_t>(size), '\0');
  for (std::int64_t i = 0; i < size; ++i) out[static_cast<std::size_t>(i)] = PatternByte(i);
  return out;
}

// A package download: a known pattern, optionally failing part-way.
class PatternReader : public BlobReader {
 public:
  PatternReader(std::int64_t size, std::int64_t fail_at, std::atomic<std::size_t>& largest_read,
                bool size_known = true)
      : size_(size), fail_at_(fail_at), largest_read_(largest_read), size_known_(size_known) {}
  std::int64_t Size() const override { return size_known_ ? size_ : -1; }
  Result<void> Seek(std::int64_t) override { return Fail(ErrorCode::kInternal, "not used"); }
  Result<std::size_t> Read(std::span<char> buffer) override {
    std::size_t seen = largest_read_.load();
    while (buffer.size() > seen && !largest_read_.compare_exchange_weak(seen, buffer.size())) {
    }
    if (fail_at_ >= 0 && offset_ >= fail_at_) return Fail(ErrorCode::kInternal, "disk on fire");
    const auto n = static_cast<std::size_t>(
        std::min<std::int64_t>(static_cast<std::int64_t>(buffer.size()), size_ - offset_));
    for (std::size_t i = 0; i < n; ++i)
      buffer[i] = PatternByte(offset_ + static_cast<std::int64_t>(i));
    offset_ += static_cast<std::int64_t>(n);
    return n;
  }

 private:
  std::int64_t size_;
  std::int64_t fail_at_;
  std::int64_t offset_ = 0;
  std::atomic<std::size_t>& largest_read_;
  bool size_known_;
};

// A blob file as the directory store serves a verified one: a region of its descriptor for the
// HTTP layer to send by itself, and Read for when it reads through the reader. Records which
// threads called Read, and how often ConfirmUnchanged was asked (it fails when told to).
struct FileReads {
  std::mutex mutex;
  std::set<std::thread::id> read_threads;
  int confirms = 0;
  bool altered = false;  // ConfirmUnchanged fails: the file changed since it was verified
};

class FileReader : public BlobReader {
 public:
  FileReader(const std::string& path, FileReads& reads)
      : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), reads_(reads) {
    size_ = fd_ >= 0 ? ::lseek(fd_, 0, SEEK_END) : 0;
  }
  ~FileReader() override {
    if (fd_ >= 0) ::close(fd_);
  }
  std::int64_t Size() const override { return size_; }
  Result<void> Seek(std::int64_t) override { return Fail(ErrorCode::kInternal, "not used"); }
  Result<std::size_t> Read(std::span<char> buffer) override {
    {
      std::lock_guard lock(reads_.mutex);
      reads_.read_threads.insert(std::this_thread::get_id());
    }
    const ssize_t n = ::pread(fd_, buffer.data(), buffer.size(), offset_);
    if (n < 0) return Fail(ErrorCode::kInternal, "read failed");
    offset_ += n;
    return static_cast<std::size_t>(n);
  }
  std::optional<FileRegion> Region() override { return FileRegion{fd_, 0, size_}; }
  Result<void> ConfirmUnchanged() override {
    std::lock_guard lock(reads_.mutex);
    ++reads_.confirms;
    if (reads_.altered) return Fail(ErrorCode::kCorrupted, "the stored file changed");
    return {};
  }

 private:
  int fd_;
  std::int64_t size_ = 0;
  std::int64_t offset_ = 0;
  FileReads& reads_;
};

std::string QueryValue(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return "";
  const std::string needle = std::string(key) + "=";
  auto pos = target.find(needle, q);
  if (pos == std::string_view::npos) return "";
  pos += needle.size();
  return std::string(target.substr(pos, target.find('&', pos) - pos));
}

const char* CodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadRequest:
      return "kBadRequest";
    case ErrorCode::kBodyTooLarge:
      return "kBodyTooLarge";
    case ErrorCode::kInternal:
      return "kInternal";
    default:
      return "other";
  }
}

// Echoes the request; a few paths script behaviour (meet, gate, throw, stream).
class ScriptedHandler : public api::RequestHandler {
 public:
  bool IsQuick(const api::Request& request) const override {
    return request.target.starts_with("/quick");
  }
  api::Response Handle(const api::Request& request) override {
    const std::string path = request.target.substr(0, request.target.find('?'));
    {
      std::lock_guard lock(mutex_);
      handle_threads_.insert(std::this_thread::get_id());
      ++in_flight_;
      ++handled_;
    }
    changed_.notify_all();
    struct Done {
      ScriptedHandler* self;
      ~Done() {
        std::lock_guard lock(self->mutex_);
        --self->in_flight_;
      }
    } done{this};

    api::Response response;
    if (path == "/meet") {
      // Answers once `n` handlers have run at the same time: proof of parallelism that does
      // not depend on timing. 503 when they never met within the bound.
      const int n = std::stoi(QueryValue(request.target, "n"));
      std::unique_lock lock(mutex_);
      peak_in_flight_ = std::max(peak_in_flight_, in_flight_);
      changed_.notify_all();
      if (!changed_.wait_for(lock, kClientDeadline, [&] { return peak_in_flight_ >= n; })) {
        response.status = 503;
        response.body = "alone";
        return response;
      }
    }
    if (path == "/gate") {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, 5s, [this] { return gate_open_; });
    }
    if (path == "/throw") throw std::runtime_error("handler bug");
    if (path == "/stream" || path == "/broken-stream") {
      response.content_type = "application/octet-stream";
      response.stream = std::make_unique<PatternReader>(
          kStreamSize, path == "/broken-stream" ? (1 << 20) : -1, largest_read_);
      return response;
    }
    if (path == "/quick-file") {  // a download of file_path (quick: on the I/O thread)
      response.content_type = "application/octet-stream";
      response.stream = std::make_unique<FileReader>(file_path, file_reads);
      return response;
    }
    if (path == "/unsized-stream") {  // a listing: its size is known only at its end
      response.stream = std::make_unique<PatternReader>(kStreamSize, -1, largest_read_,
                                                        /*size_known=*/false);
      return response;
    }
    if (path == "/headers") {
      response.content_type.clear();
      response.headers = {
          {"X-Extra", "yes"}, {"X-Evil", "a\r\nSet-Cookie: x=1"}, {"Content-Length", "999"}};
    }
    const auto test_header = request.Header("X-Test");
    response.body = "method=" + request.method + "\ntarget=" + request.target +
                    "\nbody=" + request.body + "\nx-test=" + std::string(test_header.value_or("")) +
                    "\nremote=" + request.remote_address + "\nid=" + request.request_id + "\n";
    return response;
  }

  api::Response Reject(ErrorCode code, std::string message, const std::string& id) override {
    {
      std::lock_guard lock(mutex_);
      reject_threads_.insert(std::this_thread::get_id());
    }
    api::Response response;
    response.status = code == ErrorCode::kBodyTooLarge ? 413
                      : code == ErrorCode::kBadRequest ? 400
                                                       : 500;
    response.body = std::string("reject ") + CodeName(code) + ": " + message + " id=" + id;
    return response;
  }

  bool WaitInFlight(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kClientDeadline, [&] { return in_flight_ >= count; });
  }
  void OpenGate() {
    {
      std::lock_guard lock(mutex_);
      gate_open_ = true;
    }
    changed_.notify_all();
  }
  int handled() {
    std::lock_guard lock(mutex_);
    return handled_;
  }
  std::set<std::thread::id> handle_threads() {
    std::lock_guard lock(mutex_);
    return handle_threads_;
  }
  std::set<std::thread::id> reject_threads() {
    std::lock_guard lock(mutex_);
    return reject_threads_;
  }
  std::size_t largest_read() const { return largest_read_.load(); }

  std::string file_path;  // what /quick-file serves; set before the server starts
  FileReads file_reads;

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int in_flight_ = 0;
  int peak_in_flight_ = 0;  // the most handlers that ran at once (/meet)
  int handled_ = 0;
  bool gate_open_ = false;
  std::set<std::thread::id> handle_threads_;
  std::set<std::thread::id> reject_threads_;
  std::atomic<std::size_t> largest_read_{0};
};

using Reply = bhttp::response<bhttp::string_body>;

// A blocking-style client: each call runs its own io_context until the operation finishes
// or the stream's deadline fires.
class Client {
 public:
  explicit Client(std::uint16_t port) : stream_(io_) {
    stream_.expires_after(kClientDeadline);
    beast::error_code result = asio::error::would_block;
    stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [&](beast::error_code ec) { result = ec; });
    Drive();
    connect_error = result;
  }

  beast::error_code WriteRaw(std::string_view bytes) {
    stream_.expires_after(kClientDeadline);
    beast::error_code result = asio::error::would_block;
    asio::async_write(stream_, asio::buffer(bytes),
                      [&](beast::error_code ec, std::size_t) { result = ec; });
    Drive();
    return result;
  }

  beast::error_code Write(bhttp::request<bhttp::string_body> request) {
    request.prepare_payload();
    stream_.expires_after(kClientDeadline);
    beast::error_code result = asio::error::would_block;
    bhttp::async_write(stream_, request, [&](beast::error_code ec, std::size_t) { result = ec; });
    Drive();
    return result;
  }

  beast::error_code Read(Reply& reply, bool head = false) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    parser.skip(head);
    stream_.expires_after(kClientDeadline);
    beast::error_code result = asio::error::would_block;
    bhttp::async_read(stream_, buffer_, parser,
                      [&](beast::error_code ec, std::size_t) { result = ec; });
    Drive();
    if (!result) reply = parser.release();
    return result;
  }

  // Sends a GET without waiting for its answer.
  beast::error_code SendGet(const std::string& target, bool keep_alive = true) {
    bhttp::request<bhttp::string_body> request{bhttp::verb::get, target, 11};
    request.set(bhttp::field::host, "127.0.0.1");
    request.keep_alive(keep_alive);
    return Write(std::move(request));
  }

  Reply Get(const std::string& target, bool keep_alive = true) {
    EXPECT_FALSE(SendGet(target, keep_alive));
    Reply reply;
    EXPECT_FALSE(Read(reply));
    return reply;
  }

  // How long until the server closed the connection; nullopt if it sent data or the client's
  // own deadline fired first.
  std::optional<std::chrono::milliseconds> TimeUntilClosed() {
    const auto start = SteadyClock::now();
    stream_.expires_after(kClientDeadline);
    char byte = 0;
    beast::error_code result = asio::error::would_block;
    stream_.async_read_some(asio::buffer(&byte, 1),
                            [&](beast::error_code ec, std::size_t) { result = ec; });
    Drive();
    if (!result || result == beast::error::timeout) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
  }

  beast::error_code connect_error;

 private:
  void Drive() {
    io_.restart();
    io_.run();
  }

  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

bool IsRequestId(const std::string& id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string Header(const Reply& reply, std::string_view name) { return std::string(reply[name]); }

class ServerTest : public ::testing::Test {
 protected:
  ServerOptions Options() {
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 1;
    options.handler_threads = 4;
    options.read_timeout = 2s;
    options.idle_timeout = 5s;
    options.shutdown_grace = 5s;
    return options;
  }

  void StartServer(ServerOptions options) {
    server_ = std::make_unique<Server>(options, handler_);
    auto bound = server_->Start();
    ASSERT_TRUE(bound.has_value()) << bound.error().message;
    bound_ = *bound;
    port_ = static_cast<std::uint16_t>(std::stoi(bound_.substr(bound_.rfind(':') + 1)));
  }

  ScriptedHandler handler_;  // outlives server_
  std::unique_ptr<Server> server_;
  std::string bound_;
  std::uint16_t port_ = 0;
};

TEST_F(ServerTest, StartReportsTheBoundLoopbackAddress) {
  StartServer(Options());
  EXPECT_NE(port_, 0);
  EXPECT_EQ(bound_, "127.0.0.1:" + std::to_string(port_));
}

TEST_F(ServerTest, StartFailsWithInternalWhenThePortIsTaken) {
  StartServer(Options());
  ServerOptions options = Options();
  options.port = port_;
  Server second(options, handler_);
  const auto bound = second.Start();
  ASSERT_FALSE(bound.has_value());
  EXPECT_EQ(bound.error().code, ErrorCode::kInternal);
  EXPECT_NE(bound.error().message.find(std::to_string(port_)), std::string::npos);
}

TEST_F(ServerTest, GetEchoesTheRawTargetAndSetsStandardHeaders) {
  StartServer(Options());
  Client client(port_);
  ASSERT_FALSE(client.connect_error);
  bhttp::request<bhttp::string_body> request{bhttp::verb::get,
                                             "/v2.0/p1/resources/a%20b%2Bc~d.py?group=g", 11};
  request.set(bhttp::field::host, "127.0.0.1");
  request.set("X-Test", "hello");
  ASSERT_FALSE(client.Write(request));
  Reply reply;
  ASSERT_FALSE(client.Read(reply));

  EXPECT_EQ(reply.result_int(), 200u);
  const std::string id = Header(reply, "X-Request-Id");
  EXPECT_TRUE(IsRequestId(id)) << id;
  EXPECT_EQ(reply.body(),
            "method=GET\ntarget=/v2.0/p1/resources/a%20b%2Bc~d.py?group=g\nbody=\n"
            "x-test=hello\nremote=127.0.0.1\nid=" +
                id + "\n");
  EXPECT_EQ(Header(reply, "Server"), "dlipkg");
  EXPECT_EQ(Header(reply, "Content-Type"), "application/json;charset=UTF-8");
  EXPECT_EQ(Header(reply, "Content-Length"), std::to_string(reply.body().size()));
  EXPECT_TRUE(reply.keep_alive());
}

TEST_F(ServerTest, PostBodyRoundTripsWithContentLengthAndChunked) {
  StartServer(Options());
  Client client(port_);
  bhttp::request<bhttp::string_body> request{bhttp::verb::post, "/v2.0/p1/resources", 11};
  request.set(bhttp::field::host, "127.0.0.1");
  request.body() = R"({"paths":["obs://b/x.py"]})";
  ASSERT_FALSE(client.Write(request));
  Reply reply;
  ASSERT_FALSE(client.Read(reply));
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_NE(reply.body().find("method=POST\n"), std::string::npos);
  EXPECT_NE(reply.body().find("\nbody={\"paths\":[\"obs://b/x.py\"]}\n"), std::string::npos);

  ASSERT_FALSE(
      client.WriteRaw("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  ASSERT_FALSE(client.Read(reply));
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_NE(reply.body().find("\nbody=hello world\n"), std::string::npos);
}

TEST_F(ServerTest, KeepAliveServesRequestsOnOneConnectionWithFreshIds) {
  StartServer(Options());
  Client client(port_);
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    bhttp::request<bhttp::string_body> request{bhttp::verb::get, "/ping", 11};
    request.set(bhttp::field::host, "127.0.0.1");
    ASSERT_FALSE(client.Write(request));
    Reply reply;
    ASSERT_FALSE(client.Read(reply)) << "request " << i;
    EXPECT_EQ(reply.result_int(), 200u);
    ids.push_back(Header(reply, "X-Request-Id"));
    EXPECT_TRUE(IsRequestId(ids.back())) << ids.back();
    EXPECT_NE(reply.body().find("\nid=" + ids.back() + "\n"), std::string::npos);
  }
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_EQ(handler_.handled(), 2);
}

// A proxy's or client's id follows the request when it is short and plain; anything else
// (spaces, quotes, overlong) is replaced by one of ours.
TEST_F(ServerTest, SaneIncomingRequestIdIsKeptOthersReplaced) {
  StartServer(Options());
  Client client(port_);
  const std::string kept = "chosen-by_client.1:2";
  for (const std::string& sent :
       {kept, std::string("has space"), std::string(129, 'a'), std::string("quote\"d")}) {
    bhttp::request<bhttp::string_body> request{bhttp::verb::get, "/ping", 11};
    request.set(bhttp::field::host, "127.0.0.1");
    request.set("X-Request-Id", sent);
    ASSERT_FALSE(client.Write(request));
    Reply reply;
    ASSERT_FALSE(client.Read(reply)) << sent;
    const std::string id = Header(reply, "X-Request-Id");
    if (sent == kept) {
      EXPECT_EQ(id, kept);
    } else {
      EXPECT_NE(id, sent);
      EXPECT_TRUE(IsRequestId(id)) << id;
    }
    EXPECT_NE(reply.body().find("\nid=" + id + "\n"), std::string::npos);
  }
}

TEST_F(ServerTest, ConnectionCloseAndHttp10AreHonoured) {
  StartServer(Options());
  {
    Client client(port_);
    const Reply reply = client.Get("/ping", /*keep_alive=*/false);
    EXPECT_EQ(reply.result_int(), 200u);
    EXPECT_FALSE(reply.keep_alive());
    EXPECT_TRUE(client.TimeUntilClosed().has_value());
  }
  {
    Client client(port_);
    ASSERT_FALSE(client.WriteRaw("GET /old HTTP/1.0\r\n\r\n"));
    Reply reply;
    ASSERT_FALSE(client.Read(reply));
    EXPECT_EQ(reply.result_int(), 200u);
    EXPECT_EQ(reply.version(), 10u);
    EXPECT_TRUE(client.TimeUntilClosed().has_value());
  }
}

TEST_F(ServerTest, HandlerHeadersAreAddedButFramingAndLineBreaksAreNot) {
  StartServer(Options());
  Client client(port_);
  const Reply reply = client.Get("/headers");
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_EQ(Header(reply, "X-Extra"), "yes");
  EXPECT_EQ(reply.count("X-Evil"), 0u);
  EXPECT_EQ(reply.count("Set-Cookie"), 0u);
  EXPECT_EQ(reply.count(bhttp::field::content_type), 0u);
  EXPECT_EQ(Header(reply, "Content-Length"), std::to_string(reply.body().size()));
  EXPECT_EQ(client.Get("/ping").result_int(), 200u);  // framing intact
}

TEST_F(ServerTest, BodyOverTheLimitIsRejectedWith413) {
  ServerOptions options = Options();
  options.max_body_bytes = 1024;
  StartServer(options);
  {
    Client client(port_);
    bhttp::request<bhttp::string_body> request{bhttp::verb::post, "/at-limit", 11};
    request.set(bhttp::field::host, "x");
    request.body() = std::string(1024, 'a');
    ASSERT_FALSE(client.Write(request));
    Reply reply;
    ASSERT_FALSE(client.Read(reply));
    EXPECT_EQ(reply.result_int(), 200u);
  }
  {
    // Declared too large: answered from the header alone.
    Client client(port_);
    ASSERT_FALSE(client.WriteRaw("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n"));
    Reply reply;
    ASSERT_FALSE(client.Read(reply));
    EXPECT_EQ(reply.result_int(), 413u);
    EXPECT_EQ(reply.body().rfind("reject kBodyTooLarge", 0), 0u) << reply.body();
    EXPECT_TRUE(IsRequestId(Header(reply, "X-Request-Id")));
    EXPECT_TRUE(reply.body().ends_with(" id=" + Header(reply, "X-Request-Id"))) << reply.body();
    EXPECT_FALSE(reply.keep_alive());
    EXPECT_TRUE(client.TimeUntilClosed().has_value());
  }
  {
    // Chunked: discovered while reading, the whole body already sent.
    Client client(port_);
    std::string chunked = "POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) chunked += "3e8\r\n" + std::string(1000, 'b') + "\r\n";
    chunked += "0\r\n\r\n";
    ASSERT_FALSE(client.WriteRaw(chunked));
    Reply reply;
    ASSERT_FALSE(client.Read(reply));
    EXPECT_EQ(reply.result_int(), 413u);
  }
  EXPECT_EQ(handler_.handled(), 1);
}

TEST_F(ServerTest, HeaderFloodIsRejectedAndTheServerKeepsServing) {
  ServerOptions options = Options();
  options.max_header_bytes = 4096;
  StartServer(options);
  {
    Client client(port_);
    std::string flood = "GET /ping HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 200; ++i)
      flood += "X-Flood-" + std::to_string(i) + ": " + std::string(100, 'f') + "\r\n";
    flood += "\r\n";
    ASSERT_FALSE(client.WriteRaw(flood));
    Reply reply;
    ASSERT_FALSE(client.Read(reply));
    EXPECT_EQ(reply.result_int(), 400u);
    EXPECT_EQ(reply.body().rfind("reject kBadRequest", 0), 0u) << reply.body();
    EXPECT_TRUE(client.TimeUntilClosed().has_value());
  }
  Client next(port_);
  EXPECT_EQ(next.Get("/ping").result_int(), 200u);
  EXPECT_EQ(handler_.handled(), 1);
}

TEST_F(ServerTest, MalformedRequestIsRejectedWith400) {
  StartServer(Options());
  Client client(port_);
  ASSERT_FALSE(client.WriteRaw("THIS IS NOT HTTP\r\n\r\n"));
  Reply reply;
  ASSERT_FALSE(client.Read(reply));
  EXPECT_EQ(reply.result_int(), 400u);
  EXPECT_EQ(reply.body().rfind("reject kBadRequest: malformed HTTP request", 0), 0u)
      << reply.body();
  EXPECT_EQ(handler_.handled(), 0);
}

// Sends `request` and expects a 400 whose body starts with `reason`, then the connection closed.
void ExpectRejected(Client& client, const std::string& request, std::string_view reason) {
  ASSERT_FALSE(client.WriteRaw(request));
  Reply reply;
  ASSERT_FALSE(client.Read(reply)) << "no answer to: " << request.substr(0, 120);
  EXPECT_EQ(reply.result_int(), 400u) << request.substr(0, 120);
  // Beast refuses some framings itself ("malformed HTTP request: ..."): any 400 then.
  EXPECT_EQ(reply.body().rfind("reject kBadRequest: " + std::string(reason), 0), 0u)
      << request.substr(0, 120) << " -> " << reply.body();
  EXPECT_TRUE(client.TimeUntilClosed().has_value()) << request.substr(0, 120);
}

// Issue 15, bug 7: a chunk-size line, chunk extension or trailer without its line ending was
// buffered without limit (1.2 GB from one connection). Each is now refused at the read buffer's
// limit, long before the read timeout, and the server keeps serving.
TEST_F(ServerTest, UnterminatedChunkFramingIsRefusedAtTheBufferLimit) {
  ServerOptions options = Options();
  options.read_timeout = 30s;  // so that only the buffer limit can end these requests in time
  StartServer(options);
  const std::string head = "POST /ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string endless(1 << 20, '1');
  for (const std::string& framing :
       {endless, "5;" + std::string(1 << 20, 'e'),
        "5\r\nhello\r\n0\r\nX-Trailer: " + std::string(1 << 20, 't')}) {
    Client client(port_);
    const auto start = SteadyClock::now();
    // The server may stop reading (and close) before the whole megabyte is written.
    (void)client.WriteRaw(head + framing.substr(0, 40 << 10));
    Reply reply;
    ASSERT_FALSE(client.Read(reply)) << framing.substr(0, 20);
    EXPECT_EQ(reply.result_int(), 400u) << framing.substr(0, 20);
    EXPECT_LT(SteadyClock::now() - start, 3s);
  }
  Client next(port_);
  EXPECT_EQ(next.Get("/ping").result_int(), 200u);
  EXPECT_EQ(handler_.handled(), 1);
}

// The header limit holds whether the header arrives at once or in small pieces.
TEST_F(ServerTest, HeaderLimitHoldsHoweverTheBytesArrive) {
  ServerOptions options = Options();
  options.max_header_bytes = 16 << 10;
  options.read_timeout = 30s;
  StartServer(options);
  std::string header = "GET /ping HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; header.size() < (40 << 10); ++i)
    header += "X-Pad-" + std::to_string(i) + ": " + std::string(200, 'p') + "\r\n";
  header += "\r\n";
  for (std::size_t piece : {header.size(), std::size_t{1000}, std::size_t{100}}) {
    Client client(port_);
    beast::error_code failed;
    for (std::size_t at = 0; at < header.size() && !failed; at += piece)
      failed = client.WriteRaw(std::string_view(header).substr(at, piece));
    Reply reply;
    ASSERT_FALSE(client.Read(reply)) << "pieces of " << piece;
    EXPECT_EQ(reply.result_int(), 400u) << "pieces of " << piece;
    EXPECT_EQ(reply.body().rfind("reject kBadRequest: request header is larger than 16384", 0), 0u)
        << reply.body();
  }
  EXPECT_EQ(handler_.handled(), 0);
}

// RFC 9112 §6.1, §6.3: any Transfer-Encoding but exactly "chunked", or one on HTTP/1.0, was taken
// as an empty body and the body parsed as the next request (desync). Now 400 and close.
TEST_F(ServerTest, TransferEncodingOtherThanChunkedIsRefused) {
  StartServer(Options());
  const std::string body = "5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const char* encoding : {"xchunked", "chunked, chunked", "identity", "gzip, chunked"}) {
    Client client(port_);
    ExpectRejected(client,
                   "POST /ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + std::string(encoding) +
                       "\r\n\r\n" + body,
                   "");
  }
  {
    Client client(port_);
    ExpectRejected(client,
                   "POST /ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n" +
                       body,
                   "");
  }
  {
    Client client(port_);
    ExpectRejected(client, "POST /ping HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + body, "");
  }
  EXPECT_EQ(handler_.handled(), 0);
}

TEST_F(ServerTest, MissingOrRepeatedHostIsRefused) {
  StartServer(Options());
  {
    Client client(port_);
    ExpectRejected(client, "GET /ping HTTP/1.1\r\n\r\n", "Host header missing");
  }
  {
    Client client(port_);
    ExpectRejected(client, "GET /ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                   "more than one Host header");
  }
  EXPECT_EQ(handler_.handled(), 0);
}

TEST_F(ServerTest, AbsoluteFormTargetsReachTheHandlerInOriginForm) {
  StartServer(Options());
  Client client(port_);
  for (const auto& [sent, seen] :
       std::vector<std::pair<std::string, std::string>>{{"http://127.0.0.1/ping?x=1", "/ping?x=1"},
                                                        {"HTTPS://example.com:8443/a/b", "/a/b"},
                                                        {"http://127.0.0.1", "/"},
                                                        {"http://127.0.0.1?q=1", "/?q=1"}}) {
    const Reply reply = client.Get(sent);
    EXPECT_EQ(reply.result_int(), 200u) << sent;
    EXPECT_NE(reply.body().find("target=" + seen + "\n"), std::string::npos)
        << sent << " -> " << reply.body();
  }
}

// Beyond max_connections a new connection is closed at once; the server keeps serving the
// others, and takes new ones again once some close.
TEST_F(ServerTest, ConnectionsBeyondTheCapAreClosedAtOnce) {
  ServerOptions options = Options();
  options.max_connections = 2;
  StartServer(options);
  auto first = std::make_unique<Client>(port_);
  Client second(port_);
  ASSERT_EQ(first->Get("/ping").result_int(), 200u);  // both accepted and registered
  ASSERT_EQ(second.Get("/ping").result_int(), 200u);
  {
    Client third(port_);
    const auto closed_after = third.TimeUntilClosed();
    ASSERT_TRUE(closed_after.has_value());
    EXPECT_LT(*closed_after, 1s);
  }
  EXPECT_EQ(second.Get("/ping").result_int(), 200u);
  first.reset();
  // The server notices the close asynchronously: retry, bounded.
  const auto deadline = SteadyClock::now() + kClientDeadline;
  for (;;) {
    Client again(port_);
    bhttp::request<bhttp::string_body> request{bhttp::verb::get, "/ping", 11};
    request.set(bhttp::field::host, "x");
    Reply reply;
    if (!again.Write(std::move(request)) && !again.Read(reply)) {
      EXPECT_EQ(reply.result_int(), 200u);
      break;
    }
    ASSERT_LT(SteadyClock::now(), deadline) << "no connection taken after one closed";
    std::this_thread::sleep_for(20ms);
  }
}

TEST_F(ServerTest, PartialRequestIsCutOffAfterReadTimeout) {
  ServerOptions options = Options();
  options.read_timeout = 300ms;
  StartServer(options);
  Client client(port_);
  ASSERT_FALSE(client.WriteRaw("GET /ping HTTP/1.1\r\nHost: x\r\n"));
  const auto closed_after = client.TimeUntilClosed();
  ASSERT_TRUE(closed_after.has_value());
  EXPECT_GE(*closed_after, 200ms);
  EXPECT_LT(*closed_after, 2s);
  EXPECT_EQ(handler_.handled(), 0);
}

TEST_F(ServerTest, TricklingClientIsCutOffDespiteProgress) {
  ServerOptions options = Options();
  options.read_timeout = 300ms;
  StartServer(options);
  Client client(port_);
  const std::string request =
      "GET /ping HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(100, 'p');
  const auto start = SteadyClock::now();
  beast::error_code failed;
  for (char byte : request) {
    failed = client.WriteRaw(std::string_view(&byte, 1));
    if (failed) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(failed) << "the server accepted a byte every 50 ms for the whole request";
  EXPECT_LT(SteadyClock::now() - start, 2s);
  EXPECT_EQ(handler_.handled(), 0);
}

TEST_F(ServerTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  ServerOptions options = Options();
  options.idle_timeout = 200ms;
  StartServer(options);
  Client client(port_);
  EXPECT_EQ(client.Get("/ping").result_int(), 200u);
  const auto closed_after = client.TimeUntilClosed();
  ASSERT_TRUE(closed_after.has_value());
  EXPECT_GE(*closed_after, 150ms);
  EXPECT_LT(*closed_after, 2s);
}

TEST_F(ServerTest, HandlersRunOnThePoolNotOnTheIoThread) {
  ServerOptions options = Options();
  options.io_threads = 1;
  options.handler_threads = 4;
  StartServer(options);
  {
    Client client(port_);  // Reject runs on the I/O thread: a way to learn its id
    ASSERT_FALSE(client.WriteRaw("NOT HTTP\r\n\r\n"));
    Reply reply;
    ASSERT_FALSE(client.Read(reply));
  }
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<Client>(port_));
  // Each handler waits until all four run at once: serialised on one I/O thread they would
  // never meet, and each would answer 503.
  for (auto& client : clients) {
    bhttp::request<bhttp::string_body> request{bhttp::verb::get, "/meet?n=4", 11};
    request.set(bhttp::field::host, "x");
    ASSERT_FALSE(client->Write(request));
  }
  for (auto& client : clients) {
    Reply reply;
    ASSERT_FALSE(client->Read(reply));
    EXPECT_EQ(reply.result_int(), 200u) << reply.body();
  }

  const auto io_threads = handler_.reject_threads();
  ASSERT_EQ(io_threads.size(), 1u);
  const auto pool_threads = handler_.handle_threads();
  EXPECT_GE(pool_threads.size(), 2u);
  EXPECT_EQ(pool_threads.count(*io_threads.begin()), 0u);
}

TEST_F(ServerTest, QuickRequestsRunOnTheIoThreadOthersOnThePool) {
  ServerOptions options = Options();
  options.io_threads = 1;
  options.handler_threads = 2;
  StartServer(options);
  {
    Client client(port_);  // Reject runs on the I/O thread: a way to learn its id
    ASSERT_FALSE(client.WriteRaw("NOT HTTP\r\n\r\n"));
    Reply reply;
    ASSERT_FALSE(client.Read(reply));
  }
  const auto io_threads = handler_.reject_threads();
  ASSERT_EQ(io_threads.size(), 1u);
  Client client(port_);
  EXPECT_EQ(client.Get("/quick").result_int(), 200u);
  EXPECT_EQ(handler_.handle_threads(), io_threads);
  EXPECT_EQ(client.Get("/ping").result_int(), 200u);
  const auto all = handler_.handle_threads();
  EXPECT_EQ(all.size(), 2u);  // the I/O thread and a pool thread
}

TEST_F(ServerTest, StreamedResponseArrivesIntactInBoundedChunks) {
  StartServer(Options());
  Client client(port_);
  const Reply reply = client.Get("/stream");
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_EQ(Header(reply, "Content-Length"), std::to_string(kStreamSize));
  EXPECT_EQ(Header(reply, "Content-Type"), "application/octet-stream");
  EXPECT_TRUE(IsRequestId(Header(reply, "X-Request-Id")));
  ASSERT_EQ(reply.body().size(), static_cast<std::size_t>(kStreamSize));
  EXPECT_TRUE(reply.body() == Pattern(kStreamSize)) << "streamed bytes differ from the source";
  EXPECT_LE(handler_.largest_read(), std::size_t{1} << 20);  // two 1 MiB buffers at most
  EXPECT_EQ(client.Get("/ping").result_int(), 200u);         // connection still usable
}

// A small download whose bytes are in the page cache is read and sent on the I/O thread: it
// is answered while the only pool thread is held by another request.
TEST_F(ServerTest, SmallFileInMemoryIsSentWithoutThePool) {
  test::TempDir dir;
  const std::string content = Pattern(10 << 10);
  handler_.file_path = dir.WriteFile("small.bin", content).string();
  {
    std::string warm(content.size(), '\0');  // just written, so in memory; read once anyway
    const int fd = ::open(handler_.file_path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pread(fd, warm.data(), warm.size(), 0), static_cast<ssize_t>(warm.size()));
    ::close(fd);
  }
  ServerOptions options = Options();
  options.handler_threads = 1;
  StartServer(options);
  Client blocker(port_);
  ASSERT_FALSE(blocker.SendGet("/gate"));
  ASSERT_TRUE(handler_.WaitInFlight(1));  // the pool's only thread waits at the gate

  Client client(port_);
  const Reply reply = client.Get("/quick-file");
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_TRUE(reply.body() == content) << "bytes differ from the file";
  {
    std::lock_guard lock(handler_.file_reads.mutex);
    EXPECT_TRUE(handler_.file_reads.read_threads.empty()) << "read through the reader";
    EXPECT_EQ(handler_.file_reads.confirms, 1);  // checked before its bytes went out
  }
  handler_.OpenGate();
  Reply released;
  EXPECT_FALSE(blocker.Read(released));
  EXPECT_EQ(released.result_int(), 200u);
}

// The same download when the file's pages are not in memory: the pool reads it, so a disk
// wait never holds an I/O thread.
TEST_F(ServerTest, SmallFileNotInMemoryIsReadOnThePool) {
  test::TempDir dir;
  const std::string content = Pattern(10 << 10);
  handler_.file_path = dir.WriteFile("cold.bin", content).string();
  const int fd = ::open(handler_.file_path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  // mincore, unlike a read, does not start reading the file back in.
  void* mapped = ::mmap(nullptr, content.size(), PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  std::vector<unsigned char> resident((content.size() + 4095) / 4096);
  ASSERT_EQ(::mincore(mapped, content.size(), resident.data()), 0);
  ::munmap(mapped, content.size());
  ::close(fd);
  ASSERT_EQ(resident[0] & 1, 0) << "the file system kept the dropped pages: this test needs a "
                                   "disk-backed $TMPDIR";
  StartServer(Options());
  Client client(port_);
  const Reply reply = client.Get("/quick-file");
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_TRUE(reply.body() == content) << "bytes differ from the file";
  std::lock_guard lock(handler_.file_reads.mutex);
  EXPECT_EQ(handler_.file_reads.read_threads.size(), 1u);
  const auto io_threads = handler_.handle_threads();  // /quick-file was handled there
  ASSERT_EQ(io_threads.size(), 1u);
  EXPECT_FALSE(handler_.file_reads.read_threads.contains(*io_threads.begin()));
}

// A file altered since it was verified is never sent, even from memory: the connection closes
// before the body.
TEST_F(ServerTest, SmallFileFromMemoryIsConfirmedBeforeItIsSent) {
  test::TempDir dir;
  handler_.file_path = dir.WriteFile("altered.bin", Pattern(10 << 10)).string();
  handler_.file_reads.altered = true;
  StartServer(Options());
  Client client(port_);
  ASSERT_FALSE(client.SendGet("/quick-file"));
  Reply reply;
  EXPECT_TRUE(client.Read(reply));  // the headers came, the body never did
  std::lock_guard lock(handler_.file_reads.mutex);
  EXPECT_GE(handler_.file_reads.confirms, 1);
}

TEST_F(ServerTest, StreamOfUnknownSizeIsSentChunkedAndKeepsTheConnection) {
  StartServer(Options());
  Client client(port_);
  const Reply reply = client.Get("/unsized-stream");
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_EQ(Header(reply, "Transfer-Encoding"), "chunked");
  EXPECT_EQ(Header(reply, "Content-Length"), "");
  ASSERT_EQ(reply.body().size(), static_cast<std::size_t>(kStreamSize));
  EXPECT_TRUE(reply.body() == Pattern(kStreamSize)) << "streamed bytes differ from the source";
  EXPECT_LE(handler_.largest_read(), std::size_t{1} << 20);  // two 1 MiB buffers at most
  EXPECT_EQ(client.Get("/ping").result_int(), 200u);         // connection still usable

  // HTTP/1.0 has no chunks: the body ends with the connection.
  Client old(port_);
  ASSERT_FALSE(old.WriteRaw("GET /unsized-stream HTTP/1.0\r\n\r\n"));
  Reply old_reply;
  ASSERT_FALSE(old.Read(old_reply));
  EXPECT_EQ(Header(old_reply, "Transfer-Encoding"), "");
  EXPECT_TRUE(old_reply.body() == Pattern(kStreamSize));
}

TEST_F(ServerTest, HeadOfAStreamSendsHeadersOnly) {
  StartServer(Options());
  Client client(port_);
  ASSERT_FALSE(client.WriteRaw("HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n"));
  Reply reply;
  ASSERT_FALSE(client.Read(reply, /*head=*/true));
  EXPECT_EQ(Header(reply, "Content-Length"), std::to_string(kStreamSize));
  const Reply full = client.Get("/ping");  // no stray body on the connection
  EXPECT_EQ(full.result_int(), 200u);

  ASSERT_FALSE(client.WriteRaw("HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_FALSE(client.Read(reply, /*head=*/true));
  // The echo says "method=HEAD" where the GET's said "method=GET": one byte longer.
  EXPECT_EQ(Header(reply, "Content-Length"), std::to_string(full.body().size() + 1));
  EXPECT_EQ(client.Get("/ping").result_int(), 200u);
}

TEST_F(ServerTest, StreamFailingMidwayClosesTheConnection) {
  StartServer(Options());
  Client client(port_);
  ASSERT_FALSE(client.SendGet("/broken-stream"));
  Reply reply;
  const auto ec = client.Read(reply);
  EXPECT_TRUE(ec == bhttp::error::partial_message || ec == asio::error::eof ||
              ec == asio::error::connection_reset)
      << ec.message();
}

TEST_F(ServerTest, ThrowingHandlerBecomes500) {
  StartServer(Options());
  Client client(port_);
  const Reply reply = client.Get("/throw");
  EXPECT_EQ(reply.result_int(), 500u);
  // The error body names the same request id as the header.
  EXPECT_EQ(reply.body(), "reject kInternal: internal error id=" + Header(reply, "X-Request-Id"));
  EXPECT_TRUE(IsRequestId(Header(reply, "X-Request-Id")));
  EXPECT_EQ(client.Get("/ping").result_int(), 200u);
}

TEST_F(ServerTest, StopClosesIdleConnectionsAndFinishesInFlightRequests) {
  ServerOptions options = Options();
  options.shutdown_grace = 10s;
  options.idle_timeout = 60s;
  StartServer(options);
  Client idle(port_);
  EXPECT_EQ(idle.Get("/ping").result_int(), 200u);
  Client busy(port_);
  ASSERT_FALSE(busy.SendGet("/gate"));
  ASSERT_TRUE(handler_.WaitInFlight(1));

  std::chrono::milliseconds stop_took{};
  std::thread stopper([&] {
    const auto start = SteadyClock::now();
    server_->Stop();
    stop_took = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
  });
  // The idle connection goes at once, long before its idle timeout or the grace period.
  const auto idle_closed = idle.TimeUntilClosed();
  ASSERT_TRUE(idle_closed.has_value());
  EXPECT_LT(*idle_closed, 2s);

  handler_.OpenGate();
  Reply reply;
  ASSERT_FALSE(busy.Read(reply));
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_NE(reply.body().find("target=/gate\n"), std::string::npos);
  EXPECT_FALSE(reply.keep_alive());
  stopper.join();
  EXPECT_LT(stop_took, 3s);

  Client late(port_);
  EXPECT_TRUE(late.connect_error);
  server_->Stop();  // idempotent
}

TEST_F(ServerTest, StopWithBusyHandlerDeliversTheResponse) {
  StartServer(Options());
  Client idle(port_);
  EXPECT_EQ(idle.Get("/ping").result_int(), 200u);
  Client client(port_);
  ASSERT_FALSE(client.SendGet("/gate"));
  ASSERT_TRUE(handler_.WaitInFlight(1));
  std::thread stopper([&] { server_->Stop(); });
  // The idle connection closing says the stop has begun: only then may the handler finish.
  ASSERT_TRUE(idle.TimeUntilClosed().has_value());
  handler_.OpenGate();
  Reply reply;
  ASSERT_FALSE(client.Read(reply));
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_EQ(Header(reply, "Content-Length"), std::to_string(reply.body().size()));
  stopper.join();
}

TEST_F(ServerTest, StopClosesBusyConnectionsOnceTheGraceIsOver) {
  ServerOptions options = Options();
  options.shutdown_grace = 200ms;
  StartServer(options);
  Client client(port_);
  ASSERT_FALSE(client.SendGet("/gate"));
  ASSERT_TRUE(handler_.WaitInFlight(1));
  std::thread stopper([&] { server_->Stop(); });
  const auto closed_after = client.TimeUntilClosed();
  handler_.OpenGate();  // Stop still waits for the handler itself before joining the pool
  stopper.join();
  ASSERT_TRUE(closed_after.has_value());
  EXPECT_GE(*closed_after, 150ms);
  EXPECT_LT(*closed_after, 2s);
}

TEST_F(ServerTest, ConcurrentClientsOnSeveralIoThreadsGetTheirOwnAnswers) {
  ServerOptions options = Options();
  options.io_threads = 2;
  StartServer(options);
  std::atomic<int> correct{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Client client(port_);
      for (int i = 0; i < 25; ++i) {
        const std::string body = "client-" + std::to_string(t) + "-request-" + std::to_string(i);
        bhttp::request<bhttp::string_body> request{bhttp::verb::post, "/echo", 11};
        request.set(bhttp::field::host, "x");
        request.body() = body;
        Reply reply;
        if (client.Write(request) || client.Read(reply)) return;
        if (reply.body().find("\nbody=" + body + "\n") != std::string::npos) ++correct;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(correct.load(), 8 * 25);
}

TEST_F(ServerTest, StopUnderLoadReturnsAndDeliveredResponsesAreWhole) {
  ServerOptions options = Options();
  options.io_threads = 2;
  StartServer(options);
  std::atomic<int> answered{0};
  std::atomic<int> broken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        Client client(port_);
        if (client.connect_error) return;  // the listener is gone
        const std::string body = std::to_string(t) + "/" + std::to_string(i);
        bhttp::request<bhttp::string_body> request{bhttp::verb::post, "/echo", 11};
        request.set(bhttp::field::host, "x");
        request.body() = body;
        Reply reply;
        if (client.Write(request) || client.Read(reply)) continue;  // cut off by Stop: allowed
        if (reply.result_int() == 200 &&
            reply.body().find("\nbody=" + body + "\n") != std::string::npos)
          ++answered;
        else
          ++broken;
      }
    });
  }
  const auto deadline = SteadyClock::now() + kClientDeadline;
  while (answered.load() < 20 && SteadyClock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_GE(answered.load(), 20);
  const auto start = SteadyClock::now();
  server_->Stop();
  EXPECT_LT(SteadyClock::now() - start, 3s);
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(broken.load(), 0);
}

TEST_F(ServerTest, LogsListeningLineAndAccessLinesWithoutSecrets) {
  std::ostringstream captured;
  // Even when an assertion bails out early, the server must stop writing to `captured`
  // before it goes away.
  struct RestoreLogger {
    std::unique_ptr<Server>& server;
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    ~RestoreLogger() {
      if (server) server->Stop();
      spdlog::set_default_logger(previous);
    }
  } restore{server_};
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  logger->set_pattern("%v");
  spdlog::set_default_logger(logger);

  StartServer(Options());
  {
    Client client(port_);
    bhttp::request<bhttp::string_body> request{bhttp::verb::post, "/v2.0/p1/resources?kind=jar",
                                               11};
    request.set(bhttp::field::host, "x");
    request.set(bhttp::field::authorization, "secret-authorization-value");
    request.set("X-Auth-Token", "secret-token-value");
    request.body() = "secret-body-value";
    ASSERT_FALSE(client.Write(request));
    Reply reply;
    ASSERT_FALSE(client.Read(reply));
    const std::string id = Header(reply, "X-Request-Id");
    server_->Stop();  // the access line is written after the response; Stop joins the writers

    const std::string log = captured.str();
    EXPECT_NE(log.find("listening on " + bound_ + "\n"), std::string::npos) << log;
    const std::string access = "access id=" + id +
                               " remote=127.0.0.1 method=POST target=/v2.0/p1/resources?kind=jar"
                               " status=200 bytes=" +
                               std::to_string(reply.body().size()) + " ms=";
    EXPECT_NE(log.find(access), std::string::npos) << log;
    EXPECT_EQ(log.find("secret-"), std::string::npos) << log;
  }
}

}  // namespace
}  // namespace dlipkg::http
