// Object-storage endpoints the operator declares, and how source URLs resolve against them:
// obs://bucket/key, s3://bucket/key and OBS-style https://bucket.obs.<region>.<domain>/key
// become a canonical request URL on a store's endpoint, ready for libcurl's SigV4 signing.
// Used by CurlFetcher; the app loads the stores from a JSON file. Everything here is pure or
// read-only after construction: safe to share between threads.
//
// The file (`--object-stores FILE`):
//   {"stores": [{"name": "swift",                      unique, for messages
//                "endpoint": "http://127.0.0.1:8080",  scheme://host[:port], http or https
//                "region": "us-east-1",                 default us-east-1
//                "addressing": "path",                  "path" (endpoint/bucket/key) or
//                                                        "virtual" (bucket.endpoint/key)
//                "access_key": "test:tester",           both or neither; neither: unsigned
//                "secret_key": "testing",
//                "buckets": ["pkgs", "*"],              names served by this store, "*": any
//                "obs_domains": ["myhuaweicloud.com"]}]} optional
// obs:// and s3:// take the first store whose buckets match. An http(s) URL whose host is
// <bucket>.obs.<region>.<domain> goes to the first store declaring that domain, with that region
// and a matching bucket; any other URL is fetched as a plain, unsigned URL.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/error.hpp"

namespace dlipkg {

enum class Addressing { kPath, kVirtual };

struct ObjectStore {
  std::string name;
  std::string endpoint;  // scheme://host[:port], no path
  std::string region = "us-east-1";
  Addressing addressing = Addressing::kPath;
  std::string access_key{};  // may contain ':' (Swift's "account:user")
  std::string secret_key{};  // never shown in a message or a log
  std::vector<std::string> buckets{};
  std::vector<std::string> obs_domains{};

  bool Signed() const { return !access_key.empty(); }
};

// Parses the JSON text of an object-stores file; validates every entry (unknown keys refused,
// so a typo is not silently ignored). Errors: kBadRequest naming the store and the field, never
// a key's value.
Result<std::vector<ObjectStore>> ParseObjectStores(std::string_view json);
// Reads and parses the file. Errors: kBadRequest (unreadable, or as ParseObjectStores).
Result<std::vector<ObjectStore>> LoadObjectStores(const std::filesystem::path& file);

// SigV4's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ (and '/' when `keep_slash`) as %XX
// with upper-case hex. Also what makes a value survive CanonicalObjectUrl's one decoding intact.
std::string SigV4Encode(std::string_view bytes, bool keep_slash);

// The URL a SigV4-signed GET of `raw_key` in `bucket` on `store` must use. libcurl 7.88 signs
// the URL exactly as given, so it must already be canonical: the key and the query, as spelled in
// the source URL, are percent-decoded once, then every byte outside A-Z a-z 0-9 - . _ ~ (and '/'
// in the path) is encoded with upper-case hex; query parameters are sorted by name then value and
// always carry '='. nullopt: a malformed percent escape.
std::optional<std::string> CanonicalObjectUrl(const ObjectStore& store, std::string_view bucket,
                                              std::string_view raw_key,
                                              std::string_view raw_query = {});

// A source URL resolved to a store.
struct StoreRequest {
  const ObjectStore* store = nullptr;  // points into the ObjectStores it came from
  std::string url;                     // canonical, on the store's endpoint
};

class ObjectStores {
 public:
  // Validates each store (as ParseObjectStores does, for stores built in code).
  static Result<ObjectStores> Create(std::vector<ObjectStore> stores);
  ObjectStores(ObjectStores&&) = default;
  ObjectStores& operator=(ObjectStores&&) = default;

  // obs://bucket/key or s3://bucket/key (scheme case-insensitive). Errors (the message is the
  // cause alone; the caller names the URL): kBadRequest for a malformed URL, a bad bucket name, a
  // key that is empty or has '.' or '..' segments, or no store serving the bucket.
  Result<StoreRequest> Resolve(std::string_view url) const;
  // The first store serving `bucket`. Errors: kBadRequest (not a valid bucket name, or no store
  // serves it), worded as Resolve's.
  Result<const ObjectStore*> StoreForBucket(std::string_view bucket) const;
  // An http(s) URL already split by a URL parser: its host, its path and query as spelled.
  // nullopt when the host is not an OBS-style name of a declared store (a plain URL then).
  // Errors: as Resolve, for a URL that is a store's but unusable.
  Result<std::optional<StoreRequest>> ResolveObsHost(std::string_view host,
                                                     std::string_view raw_path,
                                                     std::string_view raw_query) const;
  bool Empty() const { return stores_.empty(); }

 private:
  explicit ObjectStores(std::vector<ObjectStore> stores) : stores_(std::move(stores)) {}
  static Result<StoreRequest> Request(const ObjectStore& store, std::string_view bucket,
                                      std::string_view raw_key, std::string_view raw_query);

  std::vector<ObjectStore> stores_;
};

}  // namespace dlipkg
