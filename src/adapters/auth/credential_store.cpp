#include "adapters/auth/credential_store.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <initializer_list>
#include <iterator>
#include <vector>

#include "adapters/common/posix_file.hpp"
#include "adapters/common/sha256.hpp"
#include "adapters/common/utc_time.hpp"
#include "domain/names.hpp"

namespace dlipkg {
namespace {

namespace json = boost::json;

std::unexpected<Error> Invalid(const std::string& message) {
  return Fail(ErrorCode::kBadRequest, message);
}

// A typo such as "expire_at" would otherwise silently make a token immortal: refuse keys the
// format does not have, naming them (a key is never a secret; values are never echoed).
Result<void> OnlyKeys(const json::object& object, std::initializer_list<std::string_view> keys,
                      const std::string& where) {
  for (const auto& entry : object) {
    if (std::find(keys.begin(), keys.end(), entry.key()) == keys.end())
      return Invalid(where + ": unknown key \"" + std::string(entry.key()) + "\"");
  }
  return {};
}

const json::array* OptionalArray(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value ? value->if_array() : nullptr;
}

// A credential value: non-empty, and no white space or control characters, since header values
// are trimmed on the wire and such a key could never match.
Result<std::string> SecretField(const json::object& object, std::string_view key,
                                const std::string& where) {
  const auto* value = object.if_contains(key);
  const auto* text = value ? value->if_string() : nullptr;
  if (!text || text->empty())
    return Invalid(where + "." + std::string(key) + " must be a non-empty string");
  if (std::any_of(text->begin(), text->end(),
                  [](unsigned char c) { return c <= ' ' || c == 0x7f; }))
    return Invalid(where + "." + std::string(key) +
                   " must not contain white space or control characters");
  return std::string(*text);
}

class Loader {
 public:
  Result<void> User(const json::value& value, std::size_t index) {
    std::string where = "users[" + std::to_string(index) + "]";
    const auto* object = value.if_object();
    if (!object) return Invalid(where + " must be an object");
    const auto* name_value = object->if_contains("name");
    const auto* name_text = name_value ? name_value->if_string() : nullptr;
    if (!name_text) return Invalid(where + ".name must be a string");
    // Users are the owners of what they create, so a name must be a valid owner name.
    auto name = ParseOwnerName(*name_text);
    if (!name) return Invalid(where + ".name: " + name.error().message);
    where += " (" + *name + ")";
    if (auto ok = OnlyKeys(*object, {"name", "projects", "access_keys", "tokens"}, where); !ok)
      return ok;
    auto [user, inserted] = credentials_->users.try_emplace(*name);
    if (!inserted) return Invalid(where + ": the name is used by an earlier user");

    for (std::string_view key : {"projects", "access_keys", "tokens"})
      if (object->contains(key) && !OptionalArray(*object, key))
        return Invalid(where + "." + std::string(key) + " must be an array");
    if (const auto* projects = OptionalArray(*object, "projects")) {
      for (std::size_t i = 0; i < projects->size(); ++i) {
        const auto* project = (*projects)[i].if_string();
        if (!project || !ParseProjectId(*project))
          return Invalid(where + ".projects[" + std::to_string(i) +
                         "] must be a project_id of 1-64 letters and digits");
        user->second.projects.emplace(*project);
      }
    }
    if (const auto* keys = OptionalArray(*object, "access_keys")) {
      for (std::size_t i = 0; i < keys->size(); ++i) {
        if (auto ok =
                AccessKey((*keys)[i], where + ".access_keys[" + std::to_string(i) + "]", *name);
            !ok)
          return ok;
      }
    }
    if (const auto* tokens = OptionalArray(*object, "tokens")) {
      for (std::size_t i = 0; i < tokens->size(); ++i) {
        if (auto ok = Token((*tokens)[i], where + ".tokens[" + std::to_string(i) + "]", *name); !ok)
          return ok;
      }
    }
    return {};
  }

  std::shared_ptr<const Credentials> Take() { return std::move(credentials_); }

 private:
  Result<void> AccessKey(const json::value& value, const std::string& where,
                         const std::string& user) {
    const auto* object = value.if_object();
    if (!object) return Invalid(where + " must be an object");
    if (auto ok = OnlyKeys(*object, {"ak", "sk"}, where); !ok) return ok;
    auto ak = SecretField(*object, "ak", where);
    if (!ak) return std::unexpected(ak.error());
    auto sk = SecretField(*object, "sk", where);
    if (!sk) return std::unexpected(sk.error());
    if (!credentials_->access_keys.try_emplace(*ak, Credentials::AccessKey{*sk, user}).second)
      return Invalid(where + ".ak is already used by an earlier access key");
    return {};
  }

  Result<void> Token(const json::value& value, const std::string& where, const std::string& user) {
    const auto* object = value.if_object();
    if (!object) return Invalid(where + " must be an object");
    if (auto ok = OnlyKeys(*object, {"token", "expires_at"}, where); !ok) return ok;
    auto token = SecretField(*object, "token", where);
    if (!token) return std::unexpected(token.error());
    Credentials::Token entry{user, std::nullopt};
    if (const auto* expires = object->if_contains("expires_at"); expires && !expires->is_null()) {
      const auto* text = expires->if_string();
      entry.expires_at_ms = text ? ParseRfc3339Ms(*text) : std::nullopt;
      if (!entry.expires_at_ms)
        return Invalid(where +
                       ".expires_at must be an RFC 3339 time such as "
                       "\"2027-01-01T00:00:00Z\"");
    }
    if (!credentials_->tokens.try_emplace(TokenDigest(*token), std::move(entry)).second)
      return Invalid(where + ".token is already used by an earlier token");
    return {};
  }

  std::shared_ptr<Credentials> credentials_ = std::make_shared<Credentials>();
};

}  // namespace

std::string TokenDigest(std::string_view token) {
  Sha256Hasher hasher;
  hasher.Update(token);
  return hasher.FinishHex();
}

Result<std::shared_ptr<const Credentials>> ParseCredentials(std::string_view text) {
  json::stream_parser parser;
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    // The line only, never the text around it: that text may be a secret.
    const auto line =
        1 + std::count(text.begin(), text.begin() + std::min(used, text.size()), '\n');
    return Invalid("the credential file is not valid JSON (" + ec.message() + " on line " +
                   std::to_string(line) + ")");
  }
  const json::value root = parser.release();
  const auto* top = root.if_object();
  const auto* users_value = top ? top->if_contains("users") : nullptr;
  const auto* users = users_value ? users_value->if_array() : nullptr;
  if (!users) return Invalid("the credential file must be a JSON object with a \"users\" array");
  if (auto ok = OnlyKeys(*top, {"users"}, "the credential file"); !ok)
    return std::unexpected(ok.error());
  Loader loader;
  for (std::size_t i = 0; i < users->size(); ++i) {
    if (auto ok = loader.User((*users)[i], i); !ok) return std::unexpected(ok.error());
  }
  return loader.Take();
}

namespace {

// Far above any real credential file; a bound on what a reload can make the server hold.
constexpr std::int64_t kMaxFileBytes = 16 << 20;

// Opened without blocking and read only when it is a regular file: a FIFO put in its place
// would block the signal thread (and with it shutdown), a directory would fail mid-read.
Result<std::shared_ptr<const Credentials>> LoadFile(const std::filesystem::path& file) {
  auto fd = OpenFd(file, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (!fd)
    return Invalid("cannot open the credential file " + file.string() + ": " +
                   ErrnoText(fd.error()));
  struct stat st {};
  if (::fstat(fd->Get(), &st) != 0)
    return Invalid("cannot read the credential file " + file.string() + ": " + ErrnoText(errno));
  if (!S_ISREG(st.st_mode))
    return Invalid("the credential file " + file.string() + " is not a regular file");
  if (st.st_size > kMaxFileBytes)
    return Invalid("the credential file " + file.string() + " is larger than 16 MiB");
  std::string text;
  std::vector<char> buffer(64 << 10);
  for (;;) {
    auto n = ReadSome(fd->Get(), buffer);
    if (!n)
      return Invalid("cannot read the credential file " + file.string() + ": " +
                     ErrnoText(n.error()));
    if (*n == 0) break;
    if (static_cast<std::int64_t>(text.size() + *n) > kMaxFileBytes)
      return Invalid("the credential file " + file.string() + " is larger than 16 MiB");
    text.append(buffer.data(), *n);
  }
  auto credentials = ParseCredentials(text);
  if (!credentials) return Invalid(file.string() + ": " + credentials.error().message);
  return credentials;
}

}  // namespace

Result<std::unique_ptr<CredentialStore>> CredentialStore::Open(std::filesystem::path file) {
  auto credentials = LoadFile(file);
  if (!credentials) return std::unexpected(credentials.error());
  return std::make_unique<CredentialStore>(std::move(*credentials), std::move(file));
}

CredentialStore::CredentialStore(std::shared_ptr<const Credentials> credentials,
                                 std::filesystem::path file)
    : file_(std::move(file)), current_(std::move(credentials)) {}

Result<std::shared_ptr<const Credentials>> CredentialStore::Reload() {
  if (file_.empty()) return Invalid("this credential store has no file to reload");
  auto credentials = LoadFile(file_);
  if (!credentials) return credentials;
  current_.store(*credentials);
  return credentials;
}

}  // namespace dlipkg
