// CurlFetcher against a real HTTP server on 127.0.0.1 (a small Python script started per suite)
// and against real files. The only waiting test is the stall, bounded by a 1 s stall timeout.
#include "adapters/sources/curl_fetcher.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "testing/temp_dir.hpp"

extern char** environ;

namespace dlipkg {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr char kServerScript[] = R"PY(
import os, sys, time, urllib.parse
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

FILES = os.path.join(sys.argv[1], "files")
sys.path.insert(0, sys.argv[2])  # tests/testing: the tests' one SigV4 checker
import sigv4

S3_KEYS = {"test:tester": "testing"}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def headers_only(self, headers):
        self.send_response(200)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def s3_error(self, status, code, headers=()):
        body = "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>%s</Code>" \
               "<Message>test</Message></Error>" % code
        self.reply(status, body.encode(), [("Content-Type", "application/xml"), *headers])

    # SigV4 checked as a strict S3 server checks it (tests/testing/sigv4.py): a client that
    # signs a non-canonical URL fails here as it would against a real store.
    def s3_signature_error(self, path, query):
        return sigv4.check(self.command, path, query, self.headers, S3_KEYS)

    # Buckets "pkgs" (path-style, or virtual-hosted as pkgs.<host>) and "moved" (always 301).
    # A found object's body is "<Host header>|<decoded path>", so tests see what arrived.
    def fake_s3(self, path, query):
        error = self.s3_signature_error(path, query)
        if error:
            return self.s3_error(*error)
        if path.startswith("/moved/"):
            return self.s3_error(301, "PermanentRedirect", [("Location", "http://elsewhere/")])
        decoded = urllib.parse.unquote(path)
        if decoded.endswith("/missing.txt"):
            return self.s3_error(404, "NoSuchKey")
        self.reply(200, ("%s|%s" % (self.headers["Host"], decoded)).encode())

    def do_GET(self):
        path, _, query = self.path.partition("?")
        port = self.server.server_address[1]
        host = self.headers.get("Host", "")
        if path.startswith(("/pkgs/", "/moved/")) or host.startswith("pkgs."):
            return self.fake_s3(path, query)
        if path == "/slow-headers":
            time.sleep(30)
            return
        if path.startswith("/ok/"):
            try:
                with open(os.path.join(FILES, os.path.basename(path)), "rb") as f:
                    return self.reply(200, f.read())
            except OSError:
                return self.reply(404, b"no such file")
        if path.startswith("/status/"):
            return self.reply(int(path[len("/status/"):]), b"an error page " * 100)
        if path == "/redirect-same":
            return self.reply(302, b"moved", [("Location", "/ok/a.txt")])
        if path == "/redirect-other":
            return self.reply(302, b"moved", [("Location", "http://localhost:%d/ok/a.txt" % port)])
        if path == "/redirect-loop":
            return self.reply(302, b"again", [("Location", "/redirect-loop")])
        if path == "/lying":  # says 10 bytes, sends 1 MiB
            self.headers_only([("Content-Length", "10")])
            self.wfile.write(b"y" * (1 << 20))
            self.close_connection = True
            return
        if path == "/no-length":  # the body ends when the connection closes
            self.headers_only([("Connection", "close")])
            self.wfile.write(b"z" * (1 << 20))
            self.close_connection = True
            return
        if path == "/endless":
            self.headers_only([("Transfer-Encoding", "chunked")])
            chunk = b"e" * 65536
            try:
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass
            self.close_connection = True
            return
        if path == "/stall":
            self.headers_only([("Content-Length", "100")])
            time.sleep(30)
            return
        if path == "/trickle":  # one byte every 0.2 s: never silent, hopelessly slow
            self.headers_only([("Content-Length", "1000")])
            try:
                for _ in range(150):
                    self.wfile.write(b"t")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            self.close_connection = True
            return
        self.reply(404, b"unknown test path")

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
)PY";

constexpr char kSmallBody[] = "hello from a\n";
constexpr std::int64_t kSmallLimit = 64 * 1024;

// The test server process: started once per suite, killed at its end.
class PythonServer {
 public:
  explicit PythonServer(const fs::path& dir) {
    const fs::path script = dir / "server.py";
    std::ofstream(script) << kServerScript;
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    const std::string script_arg = script.string(), dir_arg = dir.string();
    const std::string testing_arg = std::string(DLIPKG_SOURCE_DIR) + "/tests/testing";
    char* argv[] = {const_cast<char*>("python3"), const_cast<char*>(script_arg.c_str()),
                    const_cast<char*>(dir_arg.c_str()), const_cast<char*>(testing_arg.c_str()),
                    nullptr};
    const int spawned = posix_spawnp(&pid_, "python3", &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (spawned != 0) throw std::runtime_error("cannot start python3");
    port_ = ReadPort(out[0]);
    ::close(out[0]);
  }
  ~PythonServer() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }

 private:
  static int ReadPort(int fd) {
    std::string line;
    char c = 0;
    pollfd waiting{fd, POLLIN, 0};
    while (line.find('\n') == std::string::npos) {
      if (::poll(&waiting, 1, 10'000) != 1 || ::read(fd, &c, 1) != 1)
        throw std::runtime_error("the test server did not report its port");
      line += c;
    }
    return std::stoi(line);
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

class RecordingSink final : public ByteSink {
 public:
  Result<void> Write(std::span<const char> bytes) override {
    if (fail_with) return std::unexpected(*fail_with);
    received.append(bytes.data(), bytes.size());
    return {};
  }
  std::optional<Error> Cancelled() const override {
    if (cancel_after && std::chrono::steady_clock::now() >= *cancel_after)
      return Error{ErrorCode::kInternal, "cancelled by the test"};
    return std::nullopt;
  }
  std::string received;
  std::optional<Error> fail_with;
  std::optional<std::chrono::steady_clock::time_point> cancel_after;
};

class CurlFetcherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    dir_->WriteFile("files/a.txt", kSmallBody);
    dir_->WriteFile("files/big.bin", std::string(2 * kSmallLimit, 'b'));
    dir_->WriteFile("files/limit.bin", std::string(kSmallLimit, 'l'));
    server_ = new PythonServer(dir_->path());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }

  static std::string Url(std::string_view path, std::string_view host = "127.0.0.1") {
    return "http://" + std::string(host) + ":" + std::to_string(server_->port()) +
           std::string(path);
  }

  static std::unique_ptr<CurlFetcher> Fetcher(SourcePolicy policy) {
    auto fetcher = CurlFetcher::Create(std::move(policy));
    EXPECT_TRUE(fetcher) << fetcher.error().message;
    return std::move(fetcher.value());
  }
  static std::unique_ptr<CurlFetcher> LoopbackFetcher(std::int64_t max_bytes = kSmallLimit) {
    return Fetcher({.allow_sources = {"127.0.0.1"}, .max_object_bytes = max_bytes});
  }

  // Fetches `url` expecting failure with `code`; also checks that nothing reached the sink.
  static Error ExpectFailure(CurlFetcher& fetcher, const std::string& url, ErrorCode code) {
    RecordingSink sink;
    auto fetched = fetcher.Fetch(url, sink);
    EXPECT_FALSE(fetched) << url;
    if (fetched) return {};
    EXPECT_EQ(fetched.error().code, code) << url << ": " << fetched.error().message;
    EXPECT_EQ(sink.received, "") << url;
    return fetched.error();
  }

  static inline test::TempDir* dir_ = nullptr;
  static inline PythonServer* server_ = nullptr;
};

TEST_F(CurlFetcherTest, AllowedLoopbackSourceIsCopied) {
  RecordingSink sink;
  auto fetched = LoopbackFetcher()->Fetch(Url("/ok/a.txt?version=1"), sink);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(*fetched, static_cast<std::int64_t>(sizeof kSmallBody - 1));
  EXPECT_EQ(sink.received, kSmallBody);
}

TEST_F(CurlFetcherTest, LoopbackIsRefusedByDefault) {
  const Error error = ExpectFailure(*Fetcher({}), Url("/ok/a.txt"), ErrorCode::kBadRequest);
  EXPECT_NE(error.message.find("source address not allowed"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("127.0.0.1"), std::string::npos) << error.message;
}

TEST_F(CurlFetcherTest, OtherSpellingsOfLoopbackAreRefusedToo) {
  auto fetcher = Fetcher({});
  for (const char* host : {"2130706433", "0x7f000001", "127.1", "localhost", "[::1]",
                           "[::ffff:127.0.0.1]", "0.0.0.0"}) {
    const Error error = ExpectFailure(*fetcher, Url("/ok/a.txt", host), ErrorCode::kBadRequest);
    EXPECT_NE(error.message.find("not allowed"), std::string::npos)
        << host << ": " << error.message;
  }
}

// Allowing an address allows connections to it whatever name led there (documented policy).
TEST_F(CurlFetcherTest, AllowedAddressCoversNamesThatResolveToIt) {
  RecordingSink sink;
  auto fetched = LoopbackFetcher()->Fetch(Url("/ok/a.txt", "localhost"), sink);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(sink.received, kSmallBody);
}

TEST_F(CurlFetcherTest, AllowedHostNameCoversOnlyThatName) {
  auto fetcher = Fetcher({.allow_sources = {"LocalHost"}});
  RecordingSink sink;
  auto fetched = fetcher->Fetch(Url("/ok/a.txt", "localhost"), sink);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(sink.received, kSmallBody);
  ExpectFailure(*fetcher, Url("/ok/a.txt"), ErrorCode::kBadRequest);
}

TEST_F(CurlFetcherTest, HttpStatusesAreClassified) {
  auto fetcher = LoopbackFetcher();
  const struct {
    int status;
    const char* cause;
    bool retryable;
  } cases[] = {
      {404, "not found (HTTP 404)", false},
      {410, "not found (HTTP 410)", false},
      {403, "access denied by the source (HTTP 403)", false},
      {401, "access denied by the source (HTTP 401)", false},
      {429, "(HTTP 429)", true},
      {503, "(HTTP 503)", true},
      {500, "(HTTP 500)", true},
      {418, "(HTTP 418)", false},
      {304, "(HTTP 304)", false},
  };
  for (const auto& c : cases) {
    const std::string url = Url("/status/" + std::to_string(c.status));
    const Error error = ExpectFailure(*fetcher, url, ErrorCode::kSourceUnavailable);
    EXPECT_NE(error.message.find(c.cause), std::string::npos) << error.message;
    EXPECT_NE(error.message.find(url), std::string::npos) << error.message;
    EXPECT_EQ(error.retryable, c.retryable) << c.status;
  }
}

TEST_F(CurlFetcherTest, SameHostRedirectIsFollowed) {
  RecordingSink sink;
  auto fetched = LoopbackFetcher()->Fetch(Url("/redirect-same"), sink);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(sink.received, kSmallBody);
}

TEST_F(CurlFetcherTest, RedirectToAnotherHostIsRefused) {
  const Error error =
      ExpectFailure(*LoopbackFetcher(), Url("/redirect-other"), ErrorCode::kBadRequest);
  EXPECT_NE(error.message.find("redirect to another host refused"), std::string::npos);
}

TEST_F(CurlFetcherTest, RedirectsAreBounded) {
  const Error error =
      ExpectFailure(*LoopbackFetcher(), Url("/redirect-loop"), ErrorCode::kBadRequest);
  EXPECT_NE(error.message.find("too many redirects"), std::string::npos) << error.message;
  ExpectFailure(*Fetcher({.allow_sources = {"127.0.0.1"}, .max_redirects = 0}),
                Url("/redirect-same"), ErrorCode::kBadRequest);
}

TEST_F(CurlFetcherTest, ObjectAtTheLimitIsAccepted) {
  RecordingSink sink;
  auto fetched = LoopbackFetcher()->Fetch(Url("/ok/limit.bin"), sink);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(*fetched, kSmallLimit);
}

TEST_F(CurlFetcherTest, ObjectsOverTheLimitAreRefusedHonestOrNot) {
  auto fetcher = LoopbackFetcher();
  for (const char* path : {"/ok/big.bin", "/no-length", "/endless"}) {
    RecordingSink sink;
    auto fetched = fetcher->Fetch(Url(path), sink);
    ASSERT_FALSE(fetched) << path;
    EXPECT_EQ(fetched.error().code, ErrorCode::kSourceUnavailable) << path;
    EXPECT_FALSE(fetched.error().retryable) << path;
    EXPECT_NE(fetched.error().message.find("larger than the limit of 65536 bytes"),
              std::string::npos)
        << fetched.error().message;
    EXPECT_LE(sink.received.size(), static_cast<std::size_t>(kSmallLimit)) << path;
  }
}

// The declared length frames the body: extra bytes after it are never taken as content.
TEST_F(CurlFetcherTest, BytesBeyondTheDeclaredLengthAreIgnored) {
  RecordingSink sink;
  auto fetched = LoopbackFetcher()->Fetch(Url("/lying"), sink);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(sink.received, std::string(10, 'y'));
}

TEST_F(CurlFetcherTest, StalledSourceTimesOut) {
  auto fetcher = Fetcher({.allow_sources = {"127.0.0.1"}, .stall_timeout = milliseconds(1000)});
  const auto start = std::chrono::steady_clock::now();
  RecordingSink sink;
  auto fetched = fetcher->Fetch(Url("/stall"), sink);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().code, ErrorCode::kSourceUnavailable);
  EXPECT_TRUE(fetched.error().retryable);
  EXPECT_NE(fetched.error().message.find("timed out"), std::string::npos)
      << fetched.error().message;
}

// Issue 15, bug 1: a source that is never silent but hopelessly slow held a fetch slot for the
// whole --fetch-timeout; the low-speed limit ends it after one window.
TEST_F(CurlFetcherTest, TricklingSourceFailsTheLowSpeedLimit) {
  auto fetcher = Fetcher({.allow_sources = {"127.0.0.1"},
                          .stall_timeout = milliseconds(1000),
                          .low_speed_bytes_per_s = 100});
  const auto start = std::chrono::steady_clock::now();
  RecordingSink sink;
  auto fetched = fetcher->Fetch(Url("/trickle"), sink);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().code, ErrorCode::kSourceUnavailable);
  EXPECT_TRUE(fetched.error().retryable);
  EXPECT_NE(fetched.error().message.find("low-speed limit"), std::string::npos)
      << fetched.error().message;
}

TEST_F(CurlFetcherTest, LowSpeedLimitMustBePositive) {
  EXPECT_FALSE(CurlFetcher::Create({.low_speed_bytes_per_s = 0}));
}

// Issue 15, bug 2: shutdown must reach a fetch whose source says nothing at all, long before
// any timeout of the source policy.
TEST_F(CurlFetcherTest, CancellationStopsASilentTransfer) {
  auto fetcher = Fetcher({.allow_sources = {"127.0.0.1"}, .stall_timeout = milliseconds(30'000)});
  for (const char* path : {"/stall", "/slow-headers"}) {
    const auto start = std::chrono::steady_clock::now();
    RecordingSink sink;
    sink.cancel_after = start + milliseconds(300);
    auto fetched = fetcher->Fetch(Url(path), sink);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3)) << path;
    ASSERT_FALSE(fetched) << path;
    EXPECT_EQ(fetched.error().message, "cancelled by the test") << path;
  }
}

TEST_F(CurlFetcherTest, SinkErrorIsReturnedUnchanged) {
  RecordingSink sink;
  sink.fail_with = Error{ErrorCode::kInternal, "blob store write failed: No space left on device"};
  auto fetched = LoopbackFetcher()->Fetch(Url("/ok/a.txt"), sink);
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().code, ErrorCode::kInternal);
  EXPECT_EQ(fetched.error().message, sink.fail_with->message);
}

TEST_F(CurlFetcherTest, ClosedPortIsRetryable) {
  // Port 1 on loopback: nothing listens there on a test machine.
  const Error error =
      ExpectFailure(*LoopbackFetcher(), "http://127.0.0.1:1/x", ErrorCode::kSourceUnavailable);
  EXPECT_TRUE(error.retryable);
}

TEST_F(CurlFetcherTest, CredentialsInTheUrlAreRefusedAndNeverShown) {
  auto fetcher = LoopbackFetcher();
  for (const std::string& url :
       {Url("/ok/a.txt", "user:s3cret@127.0.0.1"), Url("/ok/a.txt", "s3cret@127.0.0.1"),
        std::string("http:/user:s3cret@127.0.0.1/ok/a.txt"),
        std::string("http:user:s3cret@127.0.0.1/ok/a.txt")}) {
    const Error error = ExpectFailure(*fetcher, url, ErrorCode::kBadRequest);
    EXPECT_EQ(error.message.find("s3cret"), std::string::npos) << error.message;
  }
}

// A proxy would hide the real peer from the address check, so the environment's is not used.
TEST_F(CurlFetcherTest, ProxyFromTheEnvironmentIsIgnored) {
  ::setenv("http_proxy", "http://127.0.0.1:1", 1);
  RecordingSink sink;
  auto fetched = LoopbackFetcher()->Fetch(Url("/ok/a.txt"), sink);
  ::unsetenv("http_proxy");
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(sink.received, kSmallBody);
}

TEST_F(CurlFetcherTest, UnsupportedSchemesAreNamed) {
  auto fetcher = LoopbackFetcher();
  const struct {
    const char* url;
    const char* named;
  } cases[] = {
      {"ftp://example.com/a.jar", "unsupported scheme 'ftp'"},
      {"gopher://example.com/a.jar", "unsupported scheme 'gopher'"},
      {"obs://bucket/a.jar", "no object store is configured for bucket 'bucket'"},
      {"s3://bucket/a.jar", "no object store is configured for bucket 'bucket'"},
      {"dict://127.0.0.1:11211/stat", "unsupported scheme 'dict'"},
      {"example.com/a.jar", "no scheme"},
      {"", "no scheme"},
  };
  for (const auto& c : cases) {
    const Error error = ExpectFailure(*fetcher, c.url, ErrorCode::kBadRequest);
    EXPECT_NE(error.message.find(c.named), std::string::npos) << error.message;
  }
}

TEST_F(CurlFetcherTest, MalformedUrlsAreBadRequests) {
  auto fetcher = LoopbackFetcher();
  for (const char* url : {"http://", "http://exa mple.com/a", "http://[::1/a", "http://:80/a"})
    ExpectFailure(*fetcher, url, ErrorCode::kBadRequest);
  ExpectFailure(*fetcher, std::string("http://127.0.0.1\0.evil.com/a", 29), ErrorCode::kBadRequest);
}

TEST_F(CurlFetcherTest, BadPolicyIsRefusedAtCreate) {
  EXPECT_FALSE(CurlFetcher::Create({.allow_sources = {"10.0.0.0/40"}}));
  EXPECT_FALSE(CurlFetcher::Create({.allow_file_roots = {"/nonexistent/root"}}));
  EXPECT_FALSE(CurlFetcher::Create({.max_object_bytes = 0}));
  EXPECT_FALSE(CurlFetcher::Create({.max_redirects = -1}));
}

TEST_F(CurlFetcherTest, DenyListWinsOverTheAllowList) {
  const struct {
    std::vector<std::string> deny;
    const char* host;
  } cases[] = {
      {{"127.0.0.0/8"}, "127.0.0.1"},
      {{"127.0.0.1", "::1"}, "localhost"},  // localhost has both addresses
      {{"::ffff:127.0.0.1"}, "127.1"},
  };
  for (const auto& c : cases) {
    auto fetcher = Fetcher({.allow_sources = {"127.0.0.1", "localhost"}, .deny_sources = c.deny});
    const Error error = ExpectFailure(*fetcher, Url("/ok/a.txt", c.host), ErrorCode::kBadRequest);
    EXPECT_NE(error.message.find("an address the server's source policy denies"), std::string::npos)
        << c.host << ": " << error.message;
  }
  auto by_name = Fetcher({.allow_sources = {"localhost"}, .deny_sources = {"LOCALHOST"}});
  const Error error =
      ExpectFailure(*by_name, Url("/ok/a.txt", "localhost"), ErrorCode::kBadRequest);
  EXPECT_NE(error.message.find("source host 'localhost' is denied"), std::string::npos)
      << error.message;
  // A name is judged as spelled: the same address reached as 127.0.0.1 is merely not allowed.
  const Error other = ExpectFailure(*by_name, Url("/ok/a.txt"), ErrorCode::kBadRequest);
  EXPECT_NE(other.message.find("loopback, private or link-local"), std::string::npos)
      << other.message;
  EXPECT_FALSE(CurlFetcher::Create({.deny_sources = {"not a host"}}));
}

TEST_F(CurlFetcherTest, SourceThatNeverAnswersHitsTheFirstByteTimeout) {
  auto fetcher =
      Fetcher({.allow_sources = {"127.0.0.1"}, .first_byte_timeout = milliseconds(1000)});
  const auto start = std::chrono::steady_clock::now();
  const Error error = ExpectFailure(*fetcher, Url("/slow-headers"), ErrorCode::kSourceUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(error.retryable);
  EXPECT_NE(error.message.find("no response within 1000 ms (first-byte timeout)"),
            std::string::npos)
      << error.message;
}

// Once the headers are in, the first-byte timeout is done: a stalled body is the stall timeout's.
TEST_F(CurlFetcherTest, FirstByteTimeoutEndsWithTheHeaders) {
  auto fetcher = Fetcher({.allow_sources = {"127.0.0.1"},
                          .first_byte_timeout = milliseconds(1000),
                          .stall_timeout = milliseconds(2000)});
  const Error error = ExpectFailure(*fetcher, Url("/stall"), ErrorCode::kSourceUnavailable);
  EXPECT_EQ(error.message.find("first-byte"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("timed out"), std::string::npos) << error.message;
}

class ObjectStoreSourceTest : public CurlFetcherTest {
 protected:
  static ObjectStore Store(std::string secret = "testing") {
    return {.name = "fake",
            .endpoint = "http://127.0.0.1:" + std::to_string(server_->port()),
            .access_key = "test:tester",
            .secret_key = std::move(secret),
            .buckets = {"pkgs", "moved"},
            .obs_domains = {"example.com"}};
  }
  // No allow_sources: the store's loopback endpoint is trusted because the operator named it.
  static std::unique_ptr<CurlFetcher> StoreFetcher(ObjectStore store = Store()) {
    return Fetcher({.object_stores = {std::move(store)}, .max_object_bytes = kSmallLimit});
  }
  static std::string Host() { return "127.0.0.1:" + std::to_string(server_->port()); }
};

TEST_F(ObjectStoreSourceTest, FetchesAreSignedOnACanonicalUrl) {
  auto fetcher = StoreFetcher();
  const struct {
    std::string url;
    std::string received;  // what the fake store decoded from the request line
  } cases[] = {
      {"obs://pkgs/a.txt", "/pkgs/a.txt"},
      {"s3://pkgs/dir/with space/a+b~\xc3\xbc.txt", "/pkgs/dir/with space/a+b~\xc3\xbc.txt"},
      {"obs://pkgs/enc%20oded%2B%c3%bc.txt", "/pkgs/enc oded+\xc3\xbc.txt"},
      {"https://pkgs.obs.us-east-1.example.com/x/y.txt", "/pkgs/x/y.txt"},
      {"http://PKGS.obs.us-east-1.example.com./x/%2B.txt", "/pkgs/x/+.txt"},
  };
  for (const auto& c : cases) {
    RecordingSink sink;
    auto fetched = fetcher->Fetch(c.url, sink);
    ASSERT_TRUE(fetched) << c.url << ": " << fetched.error().message;
    EXPECT_EQ(sink.received, Host() + "|" + c.received) << c.url;
  }
}

TEST_F(ObjectStoreSourceTest, VirtualHostedStoresPutTheBucketInTheHost) {
  ObjectStore store = Store();
  store.endpoint = "http://localhost:" + std::to_string(server_->port());
  store.addressing = Addressing::kVirtual;
  RecordingSink sink;
  auto fetched = StoreFetcher(store)->Fetch("obs://pkgs/dir/a b.txt", sink);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(sink.received, "pkgs.localhost:" + std::to_string(server_->port()) + "|/dir/a b.txt");
}

TEST_F(ObjectStoreSourceTest, StoreRefusalsCarryTheStoresReasonAndNoSecret) {
  const struct {
    ObjectStore store;
    std::string url;
    const char* cause;
  } cases[] = {
      {Store("wrong-s3cret"), "obs://pkgs/a.txt",
       "access denied by the object store (HTTP 403 SignatureDoesNotMatch)"},
      // Unsigned, the same request is refused: the signature is what gets it through.
      {Store(""), "obs://pkgs/a.txt", "access denied by the object store (HTTP 403 AccessDenied)"},
      {Store(), "obs://pkgs/dir/missing.txt", "not found (HTTP 404 NoSuchKey)"},
      {Store(), "obs://moved/a.txt", "redirected by the object store (HTTP 301 PermanentRedirect)"},
  };
  for (const auto& c : cases) {
    ObjectStore store = c.store;
    if (store.secret_key.empty()) store.access_key.clear();
    const Error error = ExpectFailure(*StoreFetcher(store), c.url, ErrorCode::kSourceUnavailable);
    EXPECT_NE(error.message.find(c.cause), std::string::npos) << c.url << ": " << error.message;
    EXPECT_NE(error.message.find(c.url), std::string::npos) << error.message;
    EXPECT_EQ(error.message.find("s3cret"), std::string::npos) << error.message;
    EXPECT_EQ(error.message.find("testing"), std::string::npos) << error.message;
  }
}

TEST_F(ObjectStoreSourceTest, TheEndpointIsTrustedForTheStoreOnly) {
  auto fetcher = StoreFetcher();
  ExpectFailure(*fetcher, Url("/ok/a.txt"), ErrorCode::kBadRequest);
  ExpectFailure(*fetcher, Url("/pkgs/a.txt"), ErrorCode::kBadRequest);
  auto denied = Fetcher({.deny_sources = {"127.0.0.1"}, .object_stores = {Store()}});
  const Error error = ExpectFailure(*denied, "obs://pkgs/a.txt", ErrorCode::kBadRequest);
  EXPECT_NE(error.message.find("denies"), std::string::npos) << error.message;
}

// Issue 15: obs:// and s3:// URLs name objects; a query string would be a request to the store
// (?acl, ?uploads, ?versionId=...), signed with the server's keys.
TEST_F(ObjectStoreSourceTest, QueryStringsOfObjectStoreUrlsAreRefused) {
  for (const char* url :
       {"s3://pkgs/a.txt?acl", "obs://pkgs/a.txt?versionId=1", "s3://pkgs/?uploads"}) {
    RecordingSink sink;
    auto fetched = StoreFetcher()->Fetch(url, sink);
    ASSERT_FALSE(fetched) << url;
    EXPECT_EQ(fetched.error().code, ErrorCode::kBadRequest) << url;
    EXPECT_NE(fetched.error().message.find("query string is not allowed"), std::string::npos)
        << fetched.error().message;
  }
}

TEST_F(ObjectStoreSourceTest, UnservedBucketsAndBadKeysAreBadRequests) {
  auto fetcher = StoreFetcher();
  for (const char* url : {"obs://other/a.txt", "obs://pkgs/../other/a.txt", "obs://pkgs/"}) {
    ExpectFailure(*fetcher, url, ErrorCode::kBadRequest);
  }
  EXPECT_FALSE(CurlFetcher::Create({.object_stores = {ObjectStore{.name = "no-endpoint"}}}));
}

class FileSourceTest : public ::testing::Test {
 protected:
  FileSourceTest() {
    dir_.WriteFile("root/a.txt", kSmallBody);
    dir_.WriteFile("root/with space.txt", kSmallBody);
    dir_.WriteFile("root/big.bin", std::string(2 * kSmallLimit, 'b'));
    dir_.WriteFile("outside.txt", "secret");
    fs::create_symlink(dir_.path() / "outside.txt", dir_.path() / "root" / "escape.txt");
    auto fetcher = CurlFetcher::Create(
        {.allow_file_roots = {dir_.path() / "root"}, .max_object_bytes = kSmallLimit});
    EXPECT_TRUE(fetcher) << fetcher.error().message;
    fetcher_ = std::move(fetcher.value());
  }

  std::string FileUrl(const std::string& relative) const {
    return "file://" + dir_.path().string() + "/" + relative;
  }

  Error ExpectFailure(const std::string& url, ErrorCode code) {
    RecordingSink sink;
    auto fetched = fetcher_->Fetch(url, sink);
    EXPECT_FALSE(fetched) << url;
    if (fetched) return {};
    EXPECT_EQ(fetched.error().code, code) << url << ": " << fetched.error().message;
    EXPECT_EQ(sink.received, "");
    return fetched.error();
  }

  test::TempDir dir_;
  std::unique_ptr<CurlFetcher> fetcher_;
};

TEST_F(FileSourceTest, FileBelowAnAllowedRootIsCopied) {
  for (const char* name : {"root/a.txt", "root/with%20space.txt", "root/./a.txt"}) {
    RecordingSink sink;
    auto fetched = fetcher_->Fetch(FileUrl(name), sink);
    ASSERT_TRUE(fetched) << name << ": " << fetched.error().message;
    EXPECT_EQ(sink.received, kSmallBody);
  }
}

TEST_F(FileSourceTest, FilesOutsideTheRootsAreRefused) {
  for (const std::string& url :
       {FileUrl("root/../outside.txt"), FileUrl("root/%2e%2e/outside.txt"),
        FileUrl("root/escape.txt"), FileUrl("root"), std::string("file:///etc/passwd"),
        std::string("file://otherhost") + dir_.path().string() + "/root/a.txt"}) {
    const Error error = ExpectFailure(url, ErrorCode::kBadRequest);
    EXPECT_EQ(error.message.find("secret"), std::string::npos);
  }
  const Error error = ExpectFailure("file:///etc/passwd", ErrorCode::kBadRequest);
  EXPECT_NE(error.message.find("file source not allowed"), std::string::npos) << error.message;
}

// Issue 15, bug 3: a symlink inside the root pointing outside got "not found" when its target
// was missing and "not allowed" when it existed, which told what lies outside. Same answer now.
TEST_F(FileSourceTest, SymlinksOutGetOneAnswerWhetherOrNotTheTargetExists) {
  fs::create_symlink(dir_.path() / "gone.txt", dir_.path() / "root" / "to-nothing.txt");
  const Error existing = ExpectFailure(FileUrl("root/escape.txt"), ErrorCode::kBadRequest);
  const Error missing = ExpectFailure(FileUrl("root/to-nothing.txt"), ErrorCode::kBadRequest);
  EXPECT_EQ(existing.message.substr(existing.message.find("': ")),
            missing.message.substr(missing.message.find("': ")));
}

// Issue 15, bug 3: swapping a directory below the root for a symlink between the check and the
// open let 4 of 300 uploads store a file from outside. A thread swaps root/sub between a real
// directory and a symlink to the outside while it is fetched: never a byte from outside.
TEST_F(FileSourceTest, SwappingADirectoryForASymlinkNeverLeadsOutside) {
  dir_.WriteFile("root/sub/a.txt", "inside");
  dir_.WriteFile("outdir/a.txt", "secret");
  const auto root = dir_.path() / "root";
  fs::create_symlink(dir_.path() / "outdir", root / "link");
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    // root/sub is always there: a real directory and a symlink to the outside, in turn.
    while (!stop)
      ::renameat2(AT_FDCWD, (root / "sub").c_str(), AT_FDCWD, (root / "link").c_str(),
                  RENAME_EXCHANGE);
  });
  int inside = 0;
  for (int i = 0; i < 3000; ++i) {
    RecordingSink sink;
    auto fetched = fetcher_->Fetch(FileUrl("root/sub/a.txt"), sink);
    if (sink.received == "secret") {
      stop = true;
      swapper.join();
      FAIL() << "read a file from outside the root on attempt " << i;
    }
    if (fetched) ++inside;
  }
  stop = true;
  swapper.join();
  std::cout << "fetched from inside the root " << inside << " of 3000 times\n";
  EXPECT_GT(inside, 0) << "the swap never let a fetch through: the race was not exercised";
}

TEST_F(FileSourceTest, NoRootsMeansNoFiles) {
  auto fetcher = CurlFetcher::Create({});
  ASSERT_TRUE(fetcher);
  RecordingSink sink;
  auto fetched = (*fetcher)->Fetch(FileUrl("root/a.txt"), sink);
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().code, ErrorCode::kBadRequest);
}

TEST_F(FileSourceTest, MissingFileBelowARootIsUnavailable) {
  const Error error = ExpectFailure(FileUrl("root/missing.txt"), ErrorCode::kSourceUnavailable);
  EXPECT_NE(error.message.find("not found"), std::string::npos) << error.message;
}

TEST_F(FileSourceTest, SizeLimitHoldsForFiles) {
  const Error error = ExpectFailure(FileUrl("root/big.bin"), ErrorCode::kSourceUnavailable);
  EXPECT_NE(error.message.find("larger than the limit"), std::string::npos) << error.message;
}

}  // namespace
}  // namespace dlipkg
