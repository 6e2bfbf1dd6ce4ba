#include "adapters/s3/object_stores.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include "adapters/common/percent_encoding.hpp"
#include "domain/names.hpp"

namespace dlipkg {
namespace {

namespace json = boost::json;

constexpr std::string_view kAnyBucket = "*";
constexpr std::size_t kMaxFileBytes = 1 << 20;
constexpr std::string_view kKnownKeys[] = {"name",       "endpoint",   "region",  "addressing",
                                           "access_key", "secret_key", "buckets", "obs_domains"};

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower;
}

// "b=2&a=1&flag" -> "a=1&b=2&flag=": decoded once, re-encoded, sorted by name then value.
std::optional<std::string> CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.empty()) continue;
    const auto eq = param.find('=');
    const auto name = PercentDecode(param.substr(0, eq));
    const auto value =
        PercentDecode(eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1));
    if (!name || !value) return std::nullopt;
    params.emplace_back(SigV4Encode(*name, false), SigV4Encode(*value, false));
  }
  std::ranges::sort(params);
  std::string canonical;
  for (const auto& [name, value] : params) {
    if (!canonical.empty()) canonical += '&';
    canonical += name + "=" + value;
  }
  return canonical;
}

// S3's rules for bucket names that work in both addressing styles.
bool IsValidBucket(std::string_view bucket) {
  return bucket.size() >= 3 && bucket.size() <= 63 && std::isalnum(bucket.front()) &&
         std::isalnum(bucket.back()) && bucket.find("..") == std::string_view::npos &&
         std::ranges::all_of(bucket, [](unsigned char c) {
           return std::islower(c) || std::isdigit(c) || c == '.' || c == '-';
         });
}

bool ServesBucket(const ObjectStore& store, std::string_view bucket) {
  return std::ranges::any_of(store.buckets, [&](const std::string& served) {
    return served == kAnyBucket || served == bucket;
  });
}

bool IsHostName(std::string_view host) {
  return !host.empty() && host.front() != '.' && host.front() != '-' &&
         std::ranges::all_of(host, [](unsigned char c) {
           return std::isalnum(c) || c == '-' || c == '.' || c == '_';
         });
}

bool IsIpLiteral(std::string_view host) {
  return host.starts_with('[') ||
         std::ranges::all_of(host, [](unsigned char c) { return std::isdigit(c) || c == '.'; });
}

struct Endpoint {
  std::string scheme;
  std::string host;  // "[v6]" keeps its brackets
  std::string port;  // empty: the scheme's default
};

// "scheme://host[:port][/]" and nothing else: the endpoint is a place, not a URL to fetch.
std::optional<Endpoint> ParseEndpoint(std::string_view text) {
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  Endpoint endpoint{Lower(text.substr(0, sep)), {}, {}};
  if (endpoint.scheme != "http" && endpoint.scheme != "https") return std::nullopt;
  std::string_view authority = text.substr(sep + 3);
  if (authority.ends_with('/')) authority.remove_suffix(1);
  std::string_view port;
  const auto bracket = authority.rfind(']');
  const auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    port = authority.substr(colon + 1);
    authority = authority.substr(0, colon);
    unsigned number = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (ec != std::errc() || end != port.data() + port.size() || number == 0 || number > 65535)
      return std::nullopt;
  }
  const auto v6_char = [](unsigned char c) { return std::isxdigit(c) || c == ':' || c == '.'; };
  const bool v6 = authority.size() > 2 && authority.front() == '[' && authority.back() == ']' &&
                  std::ranges::all_of(authority.substr(1, authority.size() - 2), v6_char);
  if (!v6 && !IsHostName(authority)) return std::nullopt;
  endpoint.host = Lower(authority);
  endpoint.port = std::string(port);
  return endpoint;
}

// Host names and regions compare case-insensitively: kept in lower case once.
ObjectStore Normalized(ObjectStore store) {
  for (std::string& domain : store.obs_domains) domain = Lower(domain);
  store.region = Lower(store.region);
  return store;
}

std::unexpected<Error> BadStore(const ObjectStore& store, std::size_t index, std::string_view why) {
  return Fail(ErrorCode::kBadRequest, "object stores: store " + std::to_string(index + 1) +
                                          (store.name.empty() ? "" : " ('" + store.name + "')") +
                                          ": " + std::string(why));
}

Result<void> Validate(const std::vector<ObjectStore>& stores) {
  for (std::size_t i = 0; i < stores.size(); ++i) {
    const ObjectStore& store = stores[i];
    const auto bad = [&](std::string_view why) { return BadStore(store, i, why); };
    if (store.name.empty()) return bad("'name' is required");
    for (std::size_t j = 0; j < i; ++j) {
      if (stores[j].name == store.name) return bad("'name' is used twice");
    }
    const auto endpoint = ParseEndpoint(store.endpoint);
    if (!endpoint) return bad("'endpoint' must be http(s)://host[:port] with no path");
    if (store.addressing == Addressing::kVirtual && IsIpLiteral(endpoint->host))
      return bad("'virtual' addressing needs an endpoint with a host name");
    if (store.region.empty() || !std::ranges::all_of(store.region, [](unsigned char c) {
          return std::isalnum(c) || c == '-' || c == '_';
        }))
      return bad("'region' must be letters, digits, '-' or '_'");
    if (store.access_key.empty() != store.secret_key.empty())
      return bad("'access_key' and 'secret_key' go together");
    if (store.buckets.empty()) return bad("'buckets' must list at least one bucket (or \"*\")");
    for (const std::string& bucket : store.buckets) {
      if (bucket != kAnyBucket && !IsValidBucket(bucket))
        return bad("bucket '" + bucket + "' is not a valid bucket name");
    }
    for (const std::string& domain : store.obs_domains) {
      if (!IsHostName(domain) || domain.find('.') == std::string::npos)
        return bad("obs domain '" + domain + "' is not a domain name");
    }
  }
  return {};
}

// Reads one store's fields from JSON; `index` only words messages.
Result<ObjectStore> StoreFromJson(const json::value& value, std::size_t index) {
  ObjectStore store;
  const auto bad = [&](std::string_view why) { return BadStore(store, index, why); };
  const json::object* object = value.if_object();
  if (object == nullptr) return bad("must be a JSON object");
  if (const auto* name = object->if_contains("name"); name && name->is_string())
    store.name = std::string(name->get_string());
  for (const auto& [key, field] : *object) {
    if (std::ranges::find(kKnownKeys, std::string_view(key)) == std::end(kKnownKeys))
      return bad("unknown key '" + std::string(key) + "'");
  }
  const auto text = [&](std::string_view key, std::string& out) -> Result<void> {
    const json::value* field = object->if_contains(key);
    if (field == nullptr) return {};
    if (!field->is_string()) return bad("'" + std::string(key) + "' must be a string");
    out = std::string(field->get_string());
    return {};
  };
  const auto list = [&](std::string_view key, std::vector<std::string>& out) -> Result<void> {
    const json::value* field = object->if_contains(key);
    if (field == nullptr) return {};
    const json::array* items = field->if_array();
    if (items == nullptr) return bad("'" + std::string(key) + "' must be an array of strings");
    for (const json::value& item : *items) {
      if (!item.is_string()) return bad("'" + std::string(key) + "' must be an array of strings");
      out.emplace_back(item.get_string());
    }
    return {};
  };
  std::string addressing = "path";
  for (auto read : {text("name", store.name), text("endpoint", store.endpoint),
                    text("region", store.region), text("addressing", addressing),
                    text("access_key", store.access_key), text("secret_key", store.secret_key),
                    list("buckets", store.buckets), list("obs_domains", store.obs_domains)}) {
    if (!read) return std::unexpected(read.error());
  }
  if (addressing == "path") {
    store.addressing = Addressing::kPath;
  } else if (addressing == "virtual") {
    store.addressing = Addressing::kVirtual;
  } else {
    return bad("'addressing' must be \"path\" or \"virtual\"");
  }
  return Normalized(std::move(store));
}

}  // namespace

std::string SigV4Encode(std::string_view bytes, bool keep_slash) {
  return PercentEncodeUnreserved(bytes, keep_slash);
}

std::optional<std::string> CanonicalObjectUrl(const ObjectStore& store, std::string_view bucket,
                                              std::string_view raw_key,
                                              std::string_view raw_query) {
  const auto endpoint = ParseEndpoint(store.endpoint);
  const auto key = PercentDecode(raw_key);
  const auto query = CanonicalQuery(raw_query);
  if (!endpoint || !key || !query) return std::nullopt;
  const std::string port = endpoint->port.empty() ? "" : ":" + endpoint->port;
  std::string url = endpoint->scheme + "://";
  std::string path = "/";
  if (store.addressing == Addressing::kVirtual) {
    url += std::string(bucket) + "." + endpoint->host + port;
  } else {
    url += endpoint->host + port;
    path += std::string(bucket) + "/";
  }
  url += SigV4Encode(path + *key, true);
  if (!query->empty()) url += "?" + *query;
  return url;
}

Result<std::vector<ObjectStore>> ParseObjectStores(std::string_view text) {
  boost::system::error_code ec;
  const json::value root = json::parse(text, ec);
  if (ec)
    return Fail(ErrorCode::kBadRequest, "object stores: not valid JSON (" + ec.message() + ")");
  const json::object* object = root.if_object();
  const json::value* list = object != nullptr ? object->if_contains("stores") : nullptr;
  if (list == nullptr || !list->is_array())
    return Fail(ErrorCode::kBadRequest, "object stores: expected {\"stores\": [...]}");
  std::vector<ObjectStore> stores;
  for (const json::value& item : list->get_array()) {
    auto store = StoreFromJson(item, stores.size());
    if (!store) return std::unexpected(store.error());
    stores.push_back(std::move(*store));
  }
  if (auto valid = Validate(stores); !valid) return std::unexpected(valid.error());
  return stores;
}

Result<std::vector<ObjectStore>> LoadObjectStores(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf()) || text.view().size() > kMaxFileBytes)
    return Fail(ErrorCode::kBadRequest,
                "object stores: cannot read '" + file.string() + "' (missing, or over 1 MiB)");
  return ParseObjectStores(text.view());
}

Result<ObjectStores> ObjectStores::Create(std::vector<ObjectStore> stores) {
  for (ObjectStore& store : stores) store = Normalized(std::move(store));
  if (auto valid = Validate(stores); !valid) return std::unexpected(valid.error());
  return ObjectStores(std::move(stores));
}

Result<StoreRequest> ObjectStores::Request(const ObjectStore& store, std::string_view bucket,
                                           std::string_view raw_key, std::string_view raw_query) {
  const auto key = PercentDecode(raw_key);
  if (!key) return Fail(ErrorCode::kBadRequest, "malformed percent-encoding in the object key");
  if (key->empty()) return Fail(ErrorCode::kBadRequest, "no object key after the bucket");
  // Path-style requests put the key after the bucket: a ".." segment would be resolved by
  // the URL parser or the store into another bucket. S3 keys rarely hold them; refuse all.
  for (std::string_view rest = *key; !rest.empty();) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment == "." || segment == "..")
      return Fail(ErrorCode::kBadRequest, "object keys with '.' or '..' segments are not accepted");
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  auto url = CanonicalObjectUrl(store, bucket, raw_key, raw_query);
  if (!url) return Fail(ErrorCode::kBadRequest, "malformed percent-encoding in the query");
  return StoreRequest{.store = &store, .url = std::move(*url)};
}

Result<StoreRequest> ObjectStores::Resolve(std::string_view url) const {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos)
    return Fail(ErrorCode::kBadRequest, "not a valid URL (expected obs://bucket/key)");
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find('#'));
  const auto question = rest.find('?');
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : rest.substr(question + 1);
  rest = rest.substr(0, question);
  const auto slash = rest.find('/');
  const std::string_view bucket = rest.substr(0, slash);
  const std::string_view key =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  auto store = StoreForBucket(bucket);
  if (!store) return std::unexpected(store.error());
  return Request(**store, bucket, key, query);
}

Result<const ObjectStore*> ObjectStores::StoreForBucket(std::string_view bucket) const {
  // Not echoed: a malformed "bucket" may be credentials ("user:pw@bucket").
  if (!IsValidBucket(bucket))
    return Fail(ErrorCode::kBadRequest,
                "not a valid bucket name (3-63 lower-case letters, digits, '.' and '-')");
  const auto store = std::ranges::find_if(
      stores_, [&](const ObjectStore& candidate) { return ServesBucket(candidate, bucket); });
  if (store == stores_.end())
    return Fail(ErrorCode::kBadRequest,
                "no object store is configured for bucket '" + std::string(bucket) + "'");
  return &*store;
}

Result<std::optional<StoreRequest>> ObjectStores::ResolveObsHost(std::string_view host,
                                                                 std::string_view raw_path,
                                                                 std::string_view raw_query) const {
  std::string name = Lower(host);
  if (name.ends_with('.')) name.pop_back();
  for (const ObjectStore& store : stores_) {
    for (const std::string& domain : store.obs_domains) {
      // <bucket>.obs.<region>.<domain>
      if (!name.ends_with("." + domain)) continue;
      const std::string_view prefix =
          std::string_view(name).substr(0, name.size() - domain.size() - 1);
      const auto dot = prefix.rfind('.');
      if (dot == std::string_view::npos || prefix.substr(dot + 1) != store.region) continue;
      const std::string_view head = prefix.substr(0, dot);
      if (!head.ends_with(".obs")) continue;
      const std::string_view bucket = head.substr(0, head.size() - 4);
      if (!IsValidBucket(bucket) || !ServesBucket(store, bucket)) continue;
      std::string_view key = raw_path;
      if (key.starts_with('/')) key.remove_prefix(1);
      auto request = Request(store, bucket, key, raw_query);
      if (!request) return std::unexpected(request.error());
      return std::optional(std::move(*request));
    }
  }
  return std::optional<StoreRequest>();
}

}  // namespace dlipkg
