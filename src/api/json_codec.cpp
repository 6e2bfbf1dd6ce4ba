#include "api/json_codec.hpp"

#include <optional>
#include <set>
#include <vector>

#include <algorithm>
#include <charconv>

#include <boost/json.hpp>

namespace json = boost::json;

namespace dlipkg {

// value_from customisation for the records (found by ADL in namespace dlipkg).
void tag_invoke(json::value_from_tag, json::value& out, const Tag& tag) {
  out = json::object{{"key", tag.key}, {"value", tag.value}};
}

void tag_invoke(json::value_from_tag, json::value& out, const PackageRecord& p) {
  json::object o{
      {"create_time", p.create_time},
      {"update_time", p.update_time},
      {"resource_type", ToString(p.kind)},
      {"resource_name", p.name},
      {"status", ToString(p.status)},
      {"underlying_name", p.underlying_name},
      {"owner", p.owner},
      {"is_async", p.is_async},
      {"size", p.size},
      {"sha256", p.sha256},
      {"tags", json::value_from(p.tags)},
  };
  if (!p.group.empty()) o["group_name"] = p.group;
  if (p.status == PackageStatus::kFailed) o["status_reason"] = p.status_reason;
  // Extensions while an asynchronous upload runs: why its last attempt failed, and how far the
  // current one got (docs/api.md).
  if (p.status == PackageStatus::kUploading && !p.status_reason.empty())
    o["status_reason"] = p.status_reason;
  if (p.status == PackageStatus::kUploading && p.progress) {
    o["bytes_fetched"] = p.progress->bytes_fetched;
    if (p.progress->expected_bytes >= 0)
      o["expected_size"] = p.progress->expected_bytes;
    else
      o["expected_size"] = nullptr;
    o["attempt"] = p.progress->attempt;
  }
  out = std::move(o);
}

}  // namespace dlipkg

namespace dlipkg::api {
namespace {

// The first key that appears twice in one object of `text`, which must be valid JSON (Boost.JSON
// keeps the last of duplicate keys silently, and two readers of one body could then disagree
// on what it says). Keys are compared decoded, so "a" and "\u0061" are the same key.
std::optional<std::string> DuplicateKey(std::string_view text) {
  std::vector<std::optional<std::set<std::string>>> open;  // nullopt: an array
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{') open.emplace_back(std::set<std::string>{});
    if (c == '[') open.emplace_back(std::nullopt);
    if ((c == '}' || c == ']') && !open.empty()) open.pop_back();
    if (c != '"') continue;
    std::size_t end = i + 1;
    while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
    const std::string_view literal = text.substr(i, end + 1 - i);
    i = end;
    std::size_t next = text.find_first_not_of(" \t\r\n", end + 1);
    if (next == std::string_view::npos || text[next] != ':' || open.empty() || !open.back())
      continue;
    std::error_code ec;
    const json::value key = json::parse(literal, ec);
    if (ec || !key.is_string()) continue;
    std::string decoded(key.as_string());
    if (!open.back()->insert(decoded).second) return decoded;
  }
  return std::nullopt;
}

Result<json::object> ParseObject(std::string_view body) {
  json::parse_options options;
  options.max_depth = 32;  // deeper nesting is never a valid request; refuse it cheaply
  std::error_code ec;
  json::value value = json::parse(body, ec, {}, options);
  if (ec)
    return Fail(ErrorCode::kBadRequest,
                "The request body is not valid JSON: " + ec.message() + ".");
  if (auto duplicate = DuplicateKey(body))
    return Fail(ErrorCode::kBadRequest, "The request body has the key '" +
                                            duplicate->substr(0, 80) +
                                            "' more than once in one object.");
  if (!value.is_object())
    return Fail(ErrorCode::kBadRequest, "The request body must be a JSON object.");
  return std::move(value.as_object());
}

std::unexpected<Error> BadField(std::string_view field, std::string_view problem) {
  return Fail(ErrorCode::kBadRequest, std::string(field) + " " + std::string(problem) + ".");
}

// A string field; absent or null gives nullopt.
Result<std::optional<std::string>> OptionalString(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) return BadField(key, "must be a string");
  return std::string(v->as_string());
}

Result<std::string> RequiredString(const json::object& o, std::string_view key) {
  auto value = OptionalString(o, key);
  if (!value) return std::unexpected(value.error());
  if (!*value) return BadField(key, "is mandatory");
  return std::move(**value);
}

Result<std::vector<std::string>> Paths(const json::object& o) {
  const auto* v = o.if_contains("paths");
  if (!v || v->is_null()) return BadField("paths", "is mandatory");
  if (!v->is_array()) return BadField("paths", "must be an array of strings");
  const auto& array = v->as_array();
  if (array.empty()) return BadField("paths", "must not be empty");
  if (array.size() > kMaxPathsPerRequest)
    return BadField("paths",
                    "has " + std::to_string(array.size()) + " entries; at most 100 are allowed");
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < array.size(); ++i) {
    if (!array[i].is_string())
      return BadField("paths[" + std::to_string(i) + "]", "must be a string");
    paths.emplace_back(array[i].as_string());
  }
  return paths;
}

// is_async: a boolean, or the strings "true"/"false" that public examples send.
Result<bool> IsAsync(const json::object& o) {
  const auto* v = o.if_contains("is_async");
  if (!v || v->is_null()) return false;
  if (v->is_bool()) return v->as_bool();
  if (v->is_string() && (v->as_string() == "true" || v->as_string() == "false"))
    return v->as_string() == "true";
  return BadField("is_async", "must be true or false");
}

Result<std::vector<Tag>> Tags(const json::object& o) {
  const auto* v = o.if_contains("tags");
  if (!v || v->is_null()) return std::vector<Tag>{};
  if (!v->is_array()) return BadField("tags", "must be an array of {\"key\", \"value\"} objects");
  std::vector<Tag> tags;
  for (std::size_t i = 0; i < v->as_array().size(); ++i) {
    const auto& item = v->as_array()[i];
    const std::string field = "tags[" + std::to_string(i) + "]";
    if (!item.is_object()) return BadField(field, "must be an object with key and value");
    auto key = RequiredString(item.as_object(), "key");
    if (!key) return BadField(field + ".key", "must be a string");
    auto value = OptionalString(item.as_object(), "value");
    if (!value) return BadField(field + ".value", "must be a string");
    tags.push_back(Tag{*key, value->value_or("")});
  }
  return tags;
}

json::array Names(const std::vector<PackageRecord>& packages) {
  json::array names;
  for (const auto& p : packages) names.emplace_back(p.name);
  return names;
}

// The keys every group-shaped answer has (3.1, 3.2, list). A group is_async when any of its
// packages was uploaded asynchronously.
json::object GroupObject(const GroupRecord& group) {
  const bool is_async = std::any_of(group.packages.begin(), group.packages.end(),
                                    [](const PackageRecord& p) { return p.is_async; });
  return json::object{
      {"group_name", group.name},
      {"status", ToString(RollUpStatus(group.packages))},
      {"resources", Names(group.packages)},
      {"details", json::value_from(group.packages)},
      {"create_time", group.create_time},
      {"update_time", group.update_time},
      {"is_async", is_async},
      {"owner", group.owner},
  };
}

}  // namespace

Result<std::vector<Module>> DecodeModules(std::string_view text) {
  std::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec) return Fail(ErrorCode::kBadRequest, "modules: not valid JSON: " + ec.message() + ".");
  if (!value.is_array()) return BadField("modules", "must be an array of objects");
  std::vector<Module> modules;
  for (std::size_t i = 0; i < value.as_array().size(); ++i) {
    const auto& item = value.as_array()[i];
    const std::string field = "modules[" + std::to_string(i) + "]";
    if (!item.is_object()) return BadField(field, "must be an object");
    const auto& o = item.as_object();
    auto name = RequiredString(o, "module_name");
    auto type = RequiredString(o, "module_type");
    auto description = OptionalString(o, "description");
    if (!name || !type || !description)
      return BadField(field, "needs module_name and module_type strings");
    if (!ParseKind(*type)) return BadField(field + ".module_type", "must be a package kind");
    Module module{*name, *type, description->value_or(""), {}};
    const auto* resources = o.if_contains("resources");
    if (resources && !resources->is_array())
      return BadField(field + ".resources", "must be an array");
    for (const auto& r : resources ? resources->as_array() : json::array{}) {
      if (!r.is_string()) return BadField(field + ".resources", "must hold strings");
      module.resources.emplace_back(r.as_string());
    }
    modules.push_back(std::move(module));
  }
  return modules;
}

Result<TypedUploadRequest> DecodeTypedUpload(std::string_view body) {
  auto o = ParseObject(body);
  if (!o) return std::unexpected(o.error());
  auto paths = Paths(*o);
  if (!paths) return std::unexpected(paths.error());
  auto group = RequiredString(*o, "group");
  if (!group) return std::unexpected(group.error());
  // A typed upload replaces the whole group in one transaction; queueing that is not offered,
  // and dropping the flag would answer as if it had been honoured.
  auto is_async = IsAsync(*o);
  if (!is_async) return std::unexpected(is_async.error());
  if (*is_async)
    return Fail(ErrorCode::kNotSupported,
                "is_async is not offered on typed uploads, which replace the whole group at "
                "once; use POST /v2.0/{project_id}/resources with is_async to merge "
                "packages into the group asynchronously.");
  return TypedUploadRequest{std::move(*paths), std::move(*group)};
}

Result<UploadRequest> DecodeUpload(std::string_view body) {
  auto o = ParseObject(body);
  if (!o) return std::unexpected(o.error());
  UploadRequest request;
  auto paths = Paths(*o);
  if (!paths) return std::unexpected(paths.error());
  request.paths = std::move(*paths);
  auto kind = RequiredString(*o, "kind");
  if (!kind) return std::unexpected(kind.error());
  auto parsed_kind = ParseKind(*kind);
  if (!parsed_kind) return BadField("kind", "must be one of jar, pyFile, file, modelFile");
  request.kind = *parsed_kind;
  auto group = OptionalString(*o, "group");
  if (!group) return std::unexpected(group.error());
  request.group = std::move(*group);
  auto is_async = IsAsync(*o);
  if (!is_async) return std::unexpected(is_async.error());
  request.is_async = *is_async;
  auto tags = Tags(*o);
  if (!tags) return std::unexpected(tags.error());
  request.tags = std::move(*tags);
  return request;
}

Result<OwnerChangeRequest> DecodeOwnerChange(std::string_view body) {
  auto o = ParseObject(body);
  if (!o) return std::unexpected(o.error());
  auto owner = RequiredString(*o, "new_owner");
  if (!owner) return std::unexpected(owner.error());
  auto group = OptionalString(*o, "group_name");
  if (!group) return std::unexpected(group.error());
  auto name = OptionalString(*o, "resource_name");
  if (!name) return std::unexpected(name.error());
  if (!*group && !*name) return BadField("group_name or resource_name", "is mandatory");
  return OwnerChangeRequest{std::move(*owner), std::move(*group), std::move(*name)};
}

std::string EncodeTypedUploadResponse(const GroupRecord& group, PackageKind kind) {
  json::object o = GroupObject(group);
  o["description"] = group.description;
  o["module_name"] = group.name;
  o["module_type"] = ToString(kind);
  return json::serialize(o);
}

std::string EncodeUploadResponse(const UploadResult& result, const std::string& owner,
                                 bool is_async) {
  if (result.group) {
    json::object o = GroupObject(*result.group);
    o["is_async"] = is_async;
    return json::serialize(o);
  }
  // Ungrouped: resource_names (terraform reads it) beside the group keys minus group_name.
  std::int64_t created = INT64_MAX, updated = 0;
  for (const auto& p : result.packages) {
    created = std::min(created, p.create_time);
    updated = std::max(updated, p.update_time);
  }
  if (result.packages.empty()) created = 0;
  json::object o{
      {"resource_names", Names(result.packages)},
      {"status", ToString(RollUpStatus(result.packages))},
      {"resources", Names(result.packages)},
      {"details", json::value_from(result.packages)},
      {"create_time", created},
      {"update_time", updated},
      {"is_async", is_async},
      {"owner", owner},
  };
  return json::serialize(o);
}

std::string EncodePackage(const PackageRecord& package) {
  std::string out;
  AppendPackage(package, out);
  return out;
}

namespace {

json::array ModulesArray(const std::vector<Module>& modules) {
  json::array module_array;
  for (const auto& m : modules) {
    json::array resources;
    for (const auto& r : m.resources) resources.emplace_back(r);
    module_array.emplace_back(json::object{{"module_name", m.name},
                                           {"module_type", m.type},
                                           {"status", "READY"},
                                           {"description", m.description},
                                           {"resources", std::move(resources)},
                                           {"create_time", 0},
                                           {"update_time", 0}});
  }
  return module_array;
}

}  // namespace

std::string EncodeListing(const Listing& listing, const std::vector<Module>& modules) {
  json::array groups;
  for (const auto& g : listing.groups) groups.emplace_back(GroupObject(g));
  json::object o{
      {"resources", json::value_from(listing.ungrouped)},
      {"groups", std::move(groups)},
      {"modules", ModulesArray(modules)},
      {"total", listing.total},
  };
  if (listing.next) o["next_cursor"] = EncodeCursor(*listing.next);
  return json::serialize(o);
}

namespace {

// Writes a package or a group answer straight into a string, for the answers written most
// (show, and the unpaginated listing group by group): the bytes json::serialize gives for
// the value the tag_invoke above and GroupObject build (keys in the same order; Boost.JSON's
// serializer escapes each string), without building that value. codec_test pins the two
// against each other.
class JsonAppender {
 public:
  explicit JsonAppender(std::string& out) : out_(out) {}

  // `key` is a literal needing no escapes; `first` leaves out the comma.
  JsonAppender& Key(std::string_view key, bool first = false) {
    if (!first) out_ += ',';
    out_ += '"';
    out_ += key;
    out_ += "\":";
    return *this;
  }
  void String(std::string_view text) {
    serializer_.reset(text);
    while (!serializer_.done()) {
      const std::size_t at = out_.size();
      out_.resize(at + text.size() + 16);  // room for the quotes and a few escapes
      const std::size_t n = serializer_.read(out_.data() + at, out_.size() - at).size();
      out_.resize(at + n);
    }
  }
  void Int(std::int64_t value) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    out_.append(digits, end);
  }
  void Bool(bool value) { out_ += value ? "true" : "false"; }
  void Raw(std::string_view text) { out_ += text; }

 private:
  std::string& out_;
  json::serializer serializer_;
};

void AppendPackage(JsonAppender& w, const PackageRecord& p) {
  w.Raw("{");
  w.Key("create_time", true).Int(p.create_time);
  w.Key("update_time").Int(p.update_time);
  w.Key("resource_type").String(ToString(p.kind));
  w.Key("resource_name").String(p.name);
  w.Key("status").String(ToString(p.status));
  w.Key("underlying_name").String(p.underlying_name);
  w.Key("owner").String(p.owner);
  w.Key("is_async").Bool(p.is_async);
  w.Key("size").Int(p.size);
  w.Key("sha256").String(p.sha256);
  w.Key("tags").Raw("[");
  for (std::size_t i = 0; i < p.tags.size(); ++i) {
    w.Raw(i == 0 ? "{" : ",{");
    w.Key("key", true).String(p.tags[i].key);
    w.Key("value").String(p.tags[i].value);
    w.Raw("}");
  }
  w.Raw("]");
  if (!p.group.empty()) w.Key("group_name").String(p.group);
  if (p.status == PackageStatus::kFailed ||
      (p.status == PackageStatus::kUploading && !p.status_reason.empty()))
    w.Key("status_reason").String(p.status_reason);
  if (p.status == PackageStatus::kUploading && p.progress) {
    w.Key("bytes_fetched").Int(p.progress->bytes_fetched);
    if (p.progress->expected_bytes >= 0)
      w.Key("expected_size").Int(p.progress->expected_bytes);
    else
      w.Key("expected_size").Raw("null");
    w.Key("attempt").Int(p.progress->attempt);
  }
  w.Raw("}");
}

void AppendGroup(JsonAppender& w, const GroupRecord& group) {
  const bool is_async = std::any_of(group.packages.begin(), group.packages.end(),
                                    [](const PackageRecord& p) { return p.is_async; });
  w.Raw("{");
  w.Key("group_name", true).String(group.name);
  w.Key("status").String(ToString(RollUpStatus(group.packages)));
  w.Key("resources").Raw("[");
  for (std::size_t i = 0; i < group.packages.size(); ++i) {
    if (i > 0) w.Raw(",");
    w.String(group.packages[i].name);
  }
  w.Raw("]");
  w.Key("details").Raw("[");
  for (std::size_t i = 0; i < group.packages.size(); ++i) {
    if (i > 0) w.Raw(",");
    AppendPackage(w, group.packages[i]);
  }
  w.Raw("]");
  w.Key("create_time").Int(group.create_time);
  w.Key("update_time").Int(group.update_time);
  w.Key("is_async").Bool(is_async);
  w.Key("owner").String(group.owner);
  w.Raw("}");
}

}  // namespace

std::string EncodeGroup(const GroupRecord& group) {
  std::string out;
  AppendGroup(group, out);
  return out;
}

void AppendGroup(const GroupRecord& group, std::string& out) {
  JsonAppender w(out);
  AppendGroup(w, group);
}

void AppendPackage(const PackageRecord& package, std::string& out) {
  JsonAppender w(out);
  AppendPackage(w, package);
}

std::string EncodeModules(const std::vector<Module>& modules) {
  return json::serialize(ModulesArray(modules));
}

// Hex of "group NUL name": names never hold a NUL, and hex needs no escaping in a URL.
std::string EncodeCursor(const ListPosition& position) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string raw = position.group + '\0' + position.name;
  std::string token;
  token.reserve(raw.size() * 2);
  for (const unsigned char c : raw) {
    token += kHex[c >> 4];
    token += kHex[c & 0xf];
  }
  return token;
}

std::optional<ListPosition> DecodeCursor(std::string_view token) {
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (token.empty() || token.size() % 2 != 0) return std::nullopt;
  std::string raw;
  for (std::size_t i = 0; i < token.size(); i += 2) {
    const int high = digit(token[i]), low = digit(token[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    raw += static_cast<char>(high * 16 + low);
  }
  const auto nul = raw.find('\0');
  if (nul == std::string::npos || raw.find('\0', nul + 1) != std::string::npos ||
      nul + 1 == raw.size())
    return std::nullopt;
  return ListPosition{raw.substr(0, nul), raw.substr(nul + 1)};
}

std::string EncodeOwnerChanged() {
  return json::serialize(json::object{{"is_success", true}, {"message", ""}});
}

Result<UrlsRequest> DecodeUrlsRequest(std::string_view body) {
  auto o = ParseObject(body);
  if (!o) return std::unexpected(o.error());
  UrlsRequest request;
  auto group = OptionalString(*o, "group");
  if (!group) return std::unexpected(group.error());
  request.group = std::move(*group);
  if (const auto* v = o->if_contains("resource_names"); v && !v->is_null()) {
    if (!v->is_array()) return BadField("resource_names", "must be an array of strings");
    std::vector<std::string> names;
    for (const auto& item : v->as_array()) {
      if (!item.is_string()) return BadField("resource_names", "must be an array of strings");
      names.emplace_back(item.as_string());
    }
    request.resource_names = std::move(names);
  }
  if (const auto* v = o->if_contains("expires_in"); v && !v->is_null()) {
    if (!v->is_int64() || v->as_int64() <= 0)
      return BadField("expires_in", "must be a positive whole number of seconds");
    request.expires_in = v->as_int64();
  }
  if (!request.group && !request.resource_names)
    return BadField("group or resource_names", "is mandatory");
  return request;
}

Result<GroupCommitRequest> DecodeGroupCommit(std::string_view body) {
  auto o = ParseObject(body);
  if (!o) return std::unexpected(o.error());
  auto group_text = RequiredString(*o, "group");
  if (!group_text) return std::unexpected(group_text.error());
  auto group = GroupName::Parse(*group_text);
  if (!group) return std::unexpected(group.error());
  const auto* v = o->if_contains("packages");
  if (!v || !v->is_array() || v->as_array().empty())
    return BadField("packages", "must be a non-empty array of {name, kind, sha256} objects");
  GroupCommitRequest request{std::move(*group), {}};
  for (std::size_t i = 0; i < v->as_array().size(); ++i) {
    const auto& item = v->as_array()[i];
    const std::string field = "packages[" + std::to_string(i) + "]";
    if (!item.is_object()) return BadField(field, "must be an object with name, kind, sha256");
    auto name = RequiredString(item.as_object(), "name");
    auto kind_text = RequiredString(item.as_object(), "kind");
    auto sha = RequiredString(item.as_object(), "sha256");
    if (!name || !kind_text || !sha) return BadField(field, "needs string name, kind and sha256");
    const auto kind = ParseKind(*kind_text);
    if (!kind) return BadField(field + ".kind", "must be one of jar, pyFile, file, modelFile");
    auto valid_name = ResourceName::Parse(*name);
    if (!valid_name) return std::unexpected(valid_name.error());
    auto digest = Sha256Hex::Parse(*sha, field + ".sha256");
    if (!digest) return std::unexpected(digest.error());
    request.packages.push_back(StagedPackage{std::move(*valid_name), *kind, std::move(*digest)});
  }
  return request;
}

std::string EncodeUrls(const std::vector<SignedUrl>& urls) {
  json::array array;
  for (const auto& u : urls)
    array.emplace_back(json::object{{"resource_name", u.grant.package.name},
                                    {"resource_type", ToString(u.grant.package.kind)},
                                    {"group_name", u.grant.package.group},
                                    {"sha256", u.grant.package.sha256},
                                    {"url", u.url},
                                    {"expires_at", u.grant.expires_at_s * 1000}});
  return json::serialize(json::object{{"urls", std::move(array)}});
}

}  // namespace dlipkg::api
