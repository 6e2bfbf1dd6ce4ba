#include "adapters/sources/curl_fetcher.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>
#include <vector>

#include "adapters/common/posix_file.hpp"
#include "adapters/s3/failure_class.hpp"
#include "adapters/s3/s3_request.hpp"
#include "adapters/s3/s3_xml.hpp"
#include "adapters/sources/source_policy.hpp"

namespace dlipkg {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kBufferBytes = 256 * 1024;
// Enough of an object store's XML error to find its <Code>.
constexpr std::size_t kMaxErrorBody = 4096;
constexpr std::size_t kMaxShownUrl = 2048;
constexpr char kProtocols[] = "http,https";
constexpr char kSupportedSchemes[] = "supported: http, https, file, obs, s3";
constexpr char kUserAgent[] = "dlipkg/0.1";

// A URL as curl parsed it. Requests go out through this same handle (CURLOPT_CURLU), so the
// host the policy judged is the host curl connects to: no second parser to disagree.
struct ParsedUrl {
  UrlHandle handle{};
  std::string scheme{};  // lower case
  std::string host{};
  std::string port{};  // the scheme's default when the URL names none
};

// What one transfer's callbacks share with the code that started it.
struct Transfer {
  CURL* easy = nullptr;
  const AddressPolicy* addresses = nullptr;
  ByteSink* sink = nullptr;
  std::int64_t max_bytes = 0;
  std::string host{};  // of the URL being requested: what allow_sources host names are matched to
  bool host_trusted = false;  // an object store's endpoint, named by the operator
  std::int64_t written = 0;
  bool size_announced = false;   // ByteSink::ExpectSize called (or the length is unknown)
  bool address_refused = false;  // some address was refused by the policy...
  bool address_denied = false;   // ...(some by the deny list)...
  bool address_allowed = false;  // ...and whether another one was tried all the same
  bool body_discarded = false;   // a non-2xx body was cut off before it could reach the sink
  bool keep_error_body = false;  // an object store's: its XML names the cause
  std::string error_body{};
  bool too_large = false;
  SteadyClock::time_point first_byte_deadline{};
  bool response_started = false;
  bool first_byte_timed_out = false;
  std::optional<Error> sink_error{};  // from Write, or from Cancelled while waiting
};

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower;
}

// Lower-case scheme, or empty when the URL does not start with one.
std::string SchemeOf(std::string_view url) {
  const auto colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0 ||
      !std::isalpha(static_cast<unsigned char>(url[0])))
    return {};
  const auto scheme = url.substr(0, colon);
  const bool valid = std::ranges::all_of(
      scheme, [](unsigned char c) { return std::isalnum(c) || c == '+' || c == '-' || c == '.'; });
  return valid ? Lower(scheme) : std::string();
}

// The URL as messages show it: without credentials or control characters, bounded in length.
// Lenient on purpose ("http:/user:pw@host" parses too): it must redact URLs curl rejects as well.
std::string ShownUrl(std::string_view url) {
  std::string shown(url.substr(0, kMaxShownUrl));
  const auto start = SchemeOf(url).empty() ? std::string::npos
                                           : shown.find_first_not_of("/\\", shown.find(':') + 1);
  if (start != std::string::npos) {
    const auto authority_end = shown.find_first_of("/?#\\", start);
    const auto at = shown.rfind('@', authority_end);
    if (at != std::string::npos && at >= start) shown.erase(start, at + 1 - start);
  }
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (url.size() > kMaxShownUrl) shown += "...";
  return shown;
}

std::unexpected<Error> SourceFail(ErrorCode code, std::string_view shown, std::string_view cause,
                                  bool retryable = false) {
  return Fail(code, "Cannot fetch '" + std::string(shown) + "': " + std::string(cause) + ".",
              retryable);
}

std::unexpected<Error> TooLarge(std::string_view shown, std::int64_t max_bytes) {
  return SourceFail(ErrorCode::kSourceUnavailable, shown,
                    "object larger than the limit of " + std::to_string(max_bytes) + " bytes");
}

std::optional<std::string> UrlPart(CURLU* url, CURLUPart part, unsigned flags = 0) {
  char* text = nullptr;
  if (curl_url_get(url, part, &text, flags) != CURLUE_OK) return std::nullopt;
  std::string value(text);
  curl_free(text);
  return value;
}

// Reads the parts the policy needs from a URL curl accepted; refuses credentials.
Result<ParsedUrl> Describe(UrlHandle handle, std::string_view shown) {
  CURLU* h = handle.get();
  if (UrlPart(h, CURLUPART_USER) || UrlPart(h, CURLUPART_PASSWORD) || UrlPart(h, CURLUPART_OPTIONS))
    return SourceFail(ErrorCode::kBadRequest, shown, "credentials in the URL are not accepted");
  ParsedUrl parsed{.handle = nullptr,
                   .scheme = Lower(UrlPart(h, CURLUPART_SCHEME).value_or("")),
                   .host = UrlPart(h, CURLUPART_HOST).value_or(""),
                   .port = UrlPart(h, CURLUPART_PORT, CURLU_DEFAULT_PORT).value_or("")};
  parsed.handle = std::move(handle);
  return parsed;
}

// Parses `url`, absolute or (with `base`) relative to base's URL.
Result<ParsedUrl> ParseUrl(std::string_view url, std::string_view shown,
                           const ParsedUrl* base = nullptr) {
  UrlHandle handle(base != nullptr ? curl_url_dup(base->handle.get()) : curl_url());
  if (!handle) return Fail(ErrorCode::kInternal, "out of memory parsing a URL");
  const std::string terminated(url);
  if (terminated.find('\0') != std::string::npos ||
      curl_url_set(handle.get(), CURLUPART_URL, terminated.c_str(), 0) != CURLUE_OK)
    return SourceFail(ErrorCode::kBadRequest, shown, "not a valid URL");
  return Describe(std::move(handle), shown);
}

bool SameOrigin(const ParsedUrl& a, const ParsedUrl& b) {
  return a.scheme == b.scheme && Lower(a.host) == Lower(b.host) && a.port == b.port;
}

std::optional<IpAddress> AddressOf(const curl_sockaddr& address) {
  if (address.family == AF_INET && address.addrlen >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, &address.addr, sizeof in);
    return IpAddressFromBytes(std::span(reinterpret_cast<const std::uint8_t*>(&in.sin_addr), 4));
  }
  if (address.family == AF_INET6 && address.addrlen >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, &address.addr, sizeof in6);  // curl's storage is large enough for this
    return IpAddressFromBytes(std::span(reinterpret_cast<const std::uint8_t*>(&in6.sin6_addr), 16));
  }
  return std::nullopt;
}

// CURLOPT_OPENSOCKETFUNCTION: runs for every address curl is about to connect to, so the policy
// judges the real peer, after resolution. Refusing makes curl try the next address or fail.
curl_socket_t OnOpenSocket(void* context, curlsocktype purpose, curl_sockaddr* address) {
  auto& transfer = *static_cast<Transfer*>(context);
  const auto ip = AddressOf(*address);
  const auto verdict = ip ? transfer.addresses->Judge(transfer.host, *ip, transfer.host_trusted)
                          : AddressVerdict::kRestricted;
  if (purpose != CURLSOCKTYPE_IPCXN || verdict != AddressVerdict::kAllowed) {
    transfer.address_refused = true;
    transfer.address_denied |= verdict == AddressVerdict::kDenied;
    return CURL_SOCKET_BAD;
  }
  transfer.address_allowed = true;
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// CURLOPT_WRITEFUNCTION. Only a 2xx body is package bytes; anything else aborts the transfer
// before a byte reaches the sink. Returning less than `count` aborts it.
std::size_t OnBody(char* data, std::size_t, std::size_t count, void* context) {
  auto& transfer = *static_cast<Transfer*>(context);
  long status = 0;
  curl_easy_getinfo(transfer.easy, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    const std::size_t room = kMaxErrorBody - transfer.error_body.size();
    if (transfer.keep_error_body && room > 0) {
      transfer.error_body.append(data, std::min(count, room));
      if (count <= room) return count;
    }
    transfer.body_discarded = true;
    return 0;
  }
  // Counted here as well as by CURLOPT_MAXFILESIZE: a source may omit or lie about its length.
  if (static_cast<std::int64_t>(count) > transfer.max_bytes - transfer.written) {
    transfer.too_large = true;
    return 0;
  }
  if (transfer.written == 0 && !transfer.size_announced) {
    transfer.size_announced = true;
    curl_off_t length = -1;
    if (curl_easy_getinfo(transfer.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
        length >= 0)
      transfer.sink->ExpectSize(static_cast<std::int64_t>(length));
  }
  if (auto written = transfer.sink->Write({data, count}); !written) {
    transfer.sink_error = std::move(written.error());
    return 0;
  }
  transfer.written += static_cast<std::int64_t>(count);
  return count;
}

// CURLOPT_HEADERFUNCTION: any header line, the status line included, is the first byte.
std::size_t OnHeader(char*, std::size_t, std::size_t count, void* context) {
  static_cast<Transfer*>(context)->response_started = true;
  return count;
}

// CURLOPT_XFERINFOFUNCTION: called about once a second even when nothing arrives, which is the
// resolution of the first-byte timeout. Non-zero aborts the transfer.
int OnProgress(void* context, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& transfer = *static_cast<Transfer*>(context);
  if (auto cancelled = transfer.sink->Cancelled()) {
    transfer.sink_error = std::move(cancelled);
    return 1;
  }
  if (transfer.response_started || SteadyClock::now() < transfer.first_byte_deadline) return 0;
  transfer.first_byte_timed_out = true;
  return 1;
}

CURLcode SetOptions(CURL* easy, Transfer& transfer, const SourcePolicy& policy) {
  using std::chrono::ceil;
  using std::chrono::seconds;
  const long stall_seconds = std::max<long>(1, ceil<seconds>(policy.stall_timeout).count());
  CURLcode result = CURLE_OK;
  const auto check = [&result](CURLcode code) {
    if (result == CURLE_OK) result = code;
  };
  check(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L));
  check(curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, kProtocols));
  check(curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, kProtocols));
  check(curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L));  // redirects are judged below
  check(curl_easy_setopt(easy, CURLOPT_FAILONERROR, 0L));
  check(curl_easy_setopt(easy, CURLOPT_PROXY, ""));  // the policy must see the real peer
  check(curl_easy_setopt(easy, CURLOPT_USERAGENT, kUserAgent));
  check(curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(policy.connect_timeout.count())));
  check(
      curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT,
                       static_cast<long>(std::max<std::int64_t>(1, policy.low_speed_bytes_per_s))));
  check(curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, stall_seconds));
  check(curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                         static_cast<curl_off_t>(policy.max_object_bytes)));
  check(curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, static_cast<long>(kBufferBytes)));
  check(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody));
  check(curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer));
  check(curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &OnOpenSocket));
  check(curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, &transfer));
  check(curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeader));
  check(curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer));
  check(curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &OnProgress));
  check(curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &transfer));
  check(curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L));
  return result;
}

// The class (retry or not) is the shared policy's; the error code is the fetcher's: a URL curl
// cannot parse is the client's mistake, any other failure leaves the source unavailable.
std::unexpected<Error> CurlFailure(CURLcode code, std::string_view shown) {
  const TransportFailure failure = ClassifyTransport(code);
  const ErrorCode error =
      code == CURLE_URL_MALFORMAT ? ErrorCode::kBadRequest : ErrorCode::kSourceUnavailable;
  // A fetch cut by the low-speed limit also ends as a timeout: the message says both.
  const std::string cause = code == CURLE_OPERATION_TIMEDOUT
                                ? "timed out or slower than the server's low-speed limit"
                                : Lower(failure.cause);
  return SourceFail(error, shown, cause, failure.failure == FailureClass::kRetry);
}

// `source` names who answered ("the source", "the object store"); `s3_code` is the <Code> of
// an object store's XML error, shown after the status and used by the classifier.
std::unexpected<Error> StatusFailure(long status, std::string_view shown,
                                     std::string_view source = "the source",
                                     std::string_view s3_code = "") {
  const std::string http = " (HTTP " + std::to_string(status) +
                           (s3_code.empty() ? "" : " " + std::string(s3_code)) + ")";
  const FailureClass failure = ClassifyStatus(status, s3_code);
  const std::string by = " " + std::string(source);
  std::string cause = "unexpected reply from" + by;
  if (failure == FailureClass::kNotFound)
    cause = "not found";
  else if (status == 401 || status == 403)
    cause = "access denied by" + by;
  else if (status == 429)
    cause = "rate limited by" + by;
  else if (failure == FailureClass::kRetry)
    cause = std::string(source) + " failed";
  return SourceFail(ErrorCode::kSourceUnavailable, shown, cause + http,
                    failure == FailureClass::kRetry);
}

bool IsRedirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// One request/response on `url`. Returns the HTTP status once the response is judged clean.
Result<long> Perform(Transfer& transfer, const ParsedUrl& url, const SourcePolicy& policy,
                     SteadyClock::time_point deadline, std::string_view shown) {
  // Redirects share the one deadline of the fetch that started them.
  const auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  if (remaining.count() <= 0)
    return SourceFail(ErrorCode::kSourceUnavailable, shown, "timed out", true);
  // Refused before resolving, so a denied name is reported as such, not as a DNS failure.
  if (transfer.addresses->DeniesHost(url.host))
    return SourceFail(
        ErrorCode::kBadRequest, shown,
        "source host '" + url.host + "' is denied by the server's source policy (--deny-source)");
  transfer.host = url.host;
  transfer.address_refused = transfer.address_denied = transfer.address_allowed = false;
  transfer.size_announced = false;
  transfer.body_discarded = transfer.response_started = transfer.first_byte_timed_out = false;
  transfer.error_body.clear();
  transfer.first_byte_deadline = SteadyClock::now() + policy.first_byte_timeout;
  curl_easy_setopt(transfer.easy, CURLOPT_CURLU, url.handle.get());
  curl_easy_setopt(transfer.easy, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
  const CURLcode code = curl_easy_perform(transfer.easy);
  if (transfer.sink_error) return std::unexpected(*transfer.sink_error);
  if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED)
    return TooLarge(shown, transfer.max_bytes);
  if (transfer.first_byte_timed_out)
    return SourceFail(ErrorCode::kSourceUnavailable, shown,
                      "no response within " + std::to_string(policy.first_byte_timeout.count()) +
                          " ms (first-byte timeout)",
                      true);
  // Only when no address was allowed: otherwise the allowed one's own failure is the cause.
  if (transfer.address_refused && !transfer.address_allowed && code == CURLE_COULDNT_CONNECT)
    return SourceFail(
        ErrorCode::kBadRequest, shown,
        "source address not allowed (host '" + url.host +
            (transfer.address_denied
                 ? "' leads to an address the server's source policy denies: --deny-source)"
                 : "' leads to a loopback, private or link-local address; the server's "
                   "--allow-source would allow it)"));
  if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && transfer.body_discarded))
    return CurlFailure(code, shown);
  long status = 0;
  curl_easy_getinfo(transfer.easy, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

// Read from the Location header rather than CURLINFO_REDIRECT_URL: curl fills the latter only
// when a transfer completes, and the body of a redirect is aborted before it does.
Result<ParsedUrl> RedirectTarget(CURL* easy, const ParsedUrl& from, std::string_view shown) {
  curl_header* location = nullptr;
  if (curl_easy_header(easy, "Location", 0, CURLH_HEADER, -1, &location) != CURLHE_OK)
    return SourceFail(ErrorCode::kSourceUnavailable, shown, "redirect without a location");
  auto next = ParseUrl(location->value, shown, &from);
  if (!next)
    return SourceFail(ErrorCode::kBadRequest, shown, "redirect to an unusable URL refused");
  if (!SameOrigin(*next, from))
    return SourceFail(ErrorCode::kBadRequest, shown, "redirect to another host refused");
  return next;
}

Result<std::int64_t> StreamFile(int fd, ByteSink& sink, std::int64_t max_bytes,
                                std::string_view shown) {
  std::vector<char> buffer(kBufferBytes);
  std::int64_t total = 0;
  for (;;) {
    if (auto cancelled = sink.Cancelled()) return std::unexpected(std::move(*cancelled));
    auto n = ReadSome(fd, buffer);
    if (!n)
      return SourceFail(ErrorCode::kSourceUnavailable, shown,
                        "read failed: " + ErrnoText(n.error()));
    if (*n == 0) return total;
    // The file may grow while it is read: the limit holds for what is read, not what stat said.
    if (static_cast<std::int64_t>(*n) > max_bytes - total) return TooLarge(shown, max_bytes);
    if (auto written = sink.Write({buffer.data(), *n}); !written)
      return std::unexpected(written.error());
    total += static_cast<std::int64_t>(*n);
  }
}

Result<void> ValidateLimits(const SourcePolicy& policy) {
  const auto bad = [](std::string_view what) {
    return Fail(ErrorCode::kBadRequest, "source policy: " + std::string(what));
  };
  if (policy.max_object_bytes <= 0) return bad("max_object_bytes must be positive");
  if (policy.connect_timeout.count() <= 0 || policy.first_byte_timeout.count() <= 0 ||
      policy.stall_timeout.count() <= 0 || policy.total_timeout.count() <= 0)
    return bad("timeouts must be positive");
  if (policy.low_speed_bytes_per_s <= 0 || policy.low_speed_bytes_per_s > (1LL << 31) - 1)
    return bad("the low-speed limit must be 1 to 2147483647 bytes per second");
  if (policy.max_redirects < 0) return bad("max_redirects must not be negative");
  return {};
}

}  // namespace

std::optional<bool> IsRestrictedAddress(const std::string& ip) {
  const auto address = ParseIpAddress(ip);
  if (!address) return std::nullopt;
  return IsRestricted(*address);
}

// Idle transfer handles kept per fetcher, so fetches from the same source reuse its
// connections (no new TCP or TLS handshake per package).
constexpr std::size_t kIdleHandles = 16;

struct CurlFetcher::Impl {
  SourcePolicy policy;
  AddressPolicy addresses;
  FileRoots file_roots;
  ObjectStores stores;
  // Two pools: connections to configured object stores skip the address policy, so a plain
  // URL must never reuse one of theirs ([1]: object stores, [0]: everything else). Each
  // connection in [0] was checked by the policy when it was opened.
  mutable std::mutex idle_mutex;
  mutable std::vector<EasyHandle> idle[2];

  EasyHandle Acquire(bool trusted) const {
    std::lock_guard lock(idle_mutex);
    auto& pool = idle[trusted ? 1 : 0];
    if (pool.empty()) return EasyHandle(curl_easy_init());
    EasyHandle easy = std::move(pool.back());
    pool.pop_back();
    return easy;
  }

  void Release(EasyHandle easy, bool trusted) const {
    if (!easy) return;
    curl_easy_reset(easy.get());  // forgets the options, keeps the connection cache
    std::lock_guard lock(idle_mutex);
    auto& pool = idle[trusted ? 1 : 0];
    if (pool.size() < kIdleHandles) pool.push_back(std::move(easy));
  }

  // `store`: the object store the URL is on (signed when it has keys), or null for a plain URL.
  Result<std::int64_t> FetchHttp(ParsedUrl url, std::string_view shown, ByteSink& sink,
                                 const ObjectStore* store) const;
  Result<std::int64_t> FetchFromStore(const StoreRequest& request, std::string_view shown,
                                      ByteSink& sink) const;
  Result<std::int64_t> FetchFile(const ParsedUrl& url, std::string_view shown,
                                 ByteSink& sink) const;
};

Result<std::int64_t> CurlFetcher::Impl::FetchHttp(ParsedUrl url, std::string_view shown,
                                                  ByteSink& sink, const ObjectStore* store) const {
  const bool trusted = store != nullptr;
  struct Returned {  // the handle goes back to the pool on every way out
    const Impl& impl;
    EasyHandle handle;
    bool trusted;
    ~Returned() { impl.Release(std::move(handle), trusted); }
  } returned{*this, Acquire(trusted), trusted};
  EasyHandle& easy = returned.handle;
  if (!easy) return Fail(ErrorCode::kInternal, "cannot start a transfer");
  Transfer transfer{.easy = easy.get(),
                    .addresses = &addresses,
                    .sink = &sink,
                    .max_bytes = policy.max_object_bytes,
                    .host_trusted = store != nullptr,
                    .keep_error_body = store != nullptr};
  HeaderList headers;
  CURLcode configured = SetOptions(easy.get(), transfer, policy);
  if (configured == CURLE_OK && store != nullptr && store->Signed()) {
    headers.reset(curl_slist_append(nullptr, kUnsignedPayloadHeader));
    configured = headers ? SetSigning(easy.get(), *store, headers.get()) : CURLE_OUT_OF_MEMORY;
  }
  if (configured != CURLE_OK) return Fail(ErrorCode::kInternal, "cannot configure a transfer");
  const auto deadline = SteadyClock::now() + policy.total_timeout;
  for (int redirects = 0;; ++redirects) {
    auto status = Perform(transfer, url, policy, deadline, shown);
    if (!status) return std::unexpected(status.error());
    if (*status >= 200 && *status <= 299) return transfer.written;
    if (store != nullptr) {
      // A store redirects to another region's endpoint: a configuration problem, not a hop to
      // take (the signature would be for the wrong host and region).
      const std::string code = S3ErrorCode(transfer.error_body);
      if (IsRedirect(*status))
        return SourceFail(ErrorCode::kSourceUnavailable, shown,
                          "redirected by the object store (HTTP " + std::to_string(*status) +
                              (code.empty() ? "" : " " + code) +
                              "): check the store's endpoint and region");
      return StatusFailure(*status, shown, "the object store", code);
    }
    if (!IsRedirect(*status)) return StatusFailure(*status, shown);
    if (redirects == policy.max_redirects)
      return SourceFail(ErrorCode::kBadRequest, shown,
                        "too many redirects (limit " + std::to_string(policy.max_redirects) + ")");
    auto next = RedirectTarget(easy.get(), url, shown);
    if (!next) return std::unexpected(next.error());
    url = std::move(*next);
  }
}

Result<std::int64_t> CurlFetcher::Impl::FetchFromStore(const StoreRequest& request,
                                                       std::string_view shown,
                                                       ByteSink& sink) const {
  auto url = ParseUrl(request.url, shown);
  if (!url) return std::unexpected(url.error());
  return FetchHttp(std::move(*url), shown, sink, request.store);
}

Result<std::int64_t> CurlFetcher::Impl::FetchFile(const ParsedUrl& url, std::string_view shown,
                                                  ByteSink& sink) const {
  const auto refused = [&] {
    return SourceFail(ErrorCode::kBadRequest, shown,
                      "file source not allowed (not below any of the server's --allow-file-root)");
  };
  const auto not_found = [&] {
    return SourceFail(ErrorCode::kSourceUnavailable, shown, "not found");
  };
  if (!url.host.empty() && Lower(url.host) != "localhost") return refused();
  const auto path = UrlPart(url.handle.get(), CURLUPART_PATH, CURLU_URLDECODE);
  if (!path || path->find('\0') != std::string::npos)
    return SourceFail(ErrorCode::kBadRequest, shown, "not a valid URL");
  // The check and the open are one operation on descriptors: nothing to race (issue 15).
  auto fd = file_roots.Open(*path);
  if (!fd) return fd.error() == FileRefusal::kNotFound ? not_found() : refused();
  struct stat st {};
  if (::fstat(fd->Get(), &st) != 0) return refused();
  if (st.st_size > policy.max_object_bytes) return TooLarge(shown, policy.max_object_bytes);
  sink.ExpectSize(static_cast<std::int64_t>(st.st_size));
  return StreamFile(fd->Get(), sink, policy.max_object_bytes, shown);
}

Result<std::unique_ptr<CurlFetcher>> CurlFetcher::Create(SourcePolicy policy) {
  if (auto ready = InitCurlOnce(); !ready) return std::unexpected(ready.error());
  if (auto valid = ValidateLimits(policy); !valid) return std::unexpected(valid.error());
  auto addresses = AddressPolicy::Create(policy.allow_sources, policy.deny_sources);
  if (!addresses) return std::unexpected(addresses.error());
  auto file_roots = FileRoots::Create(policy.allow_file_roots);
  if (!file_roots) return std::unexpected(file_roots.error());
  auto stores = ObjectStores::Create(policy.object_stores);
  if (!stores) return std::unexpected(stores.error());
  // Built in place: the handle pool's mutex cannot move.
  auto impl = std::unique_ptr<Impl>(new Impl{std::move(policy), std::move(*addresses),
                                             std::move(*file_roots), std::move(*stores)});
  return std::unique_ptr<CurlFetcher>(new CurlFetcher(std::move(impl)));
}

CurlFetcher::CurlFetcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CurlFetcher::~CurlFetcher() = default;

Result<std::int64_t> CurlFetcher::Fetch(std::string_view url, ByteSink& sink) {
  const std::string shown = ShownUrl(url);
  const std::string scheme = SchemeOf(url);
  const auto store_failure = [&](const Error& error) {
    return SourceFail(error.code, shown, error.message, error.retryable);
  };
  if (scheme == "obs" || scheme == "s3") {
    // The rest of such a URL is an object key: a query would be a request to the store.
    if (url.find('?') != std::string_view::npos)
      return SourceFail(ErrorCode::kBadRequest, shown,
                        "a query string is not allowed in an " + scheme + ":// URL");
    auto request = impl_->stores.Resolve(url);
    if (!request) return store_failure(request.error());
    return impl_->FetchFromStore(*request, shown, sink);
  }
  if (scheme != "http" && scheme != "https" && scheme != "file") {
    const std::string named = scheme.empty() ? "no scheme" : "unsupported scheme '" + scheme + "'";
    return SourceFail(ErrorCode::kBadRequest, shown, named + " (" + kSupportedSchemes + ")");
  }
  auto parsed = ParseUrl(url, shown);
  if (!parsed) return std::unexpected(parsed.error());
  if (parsed->scheme == "file") return impl_->FetchFile(*parsed, shown, sink);
  auto request = impl_->stores.ResolveObsHost(
      parsed->host, UrlPart(parsed->handle.get(), CURLUPART_PATH).value_or(""),
      UrlPart(parsed->handle.get(), CURLUPART_QUERY).value_or(""));
  if (!request) return store_failure(request.error());
  if (*request) return impl_->FetchFromStore(**request, shown, sink);
  return impl_->FetchHttp(std::move(*parsed), shown, sink, nullptr);
}

}  // namespace dlipkg
