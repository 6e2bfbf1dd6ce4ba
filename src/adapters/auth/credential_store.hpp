// Users, their projects, access keys and tokens, loaded from the JSON credential file named by
// `--credentials` (format in README "Authentication"). The app opens it at start and reloads it
// on SIGHUP; CredentialAuthenticator reads snapshots of it on every request.
// Thread-safe: a loaded Credentials is immutable, and a reload swaps the whole snapshot
// atomically, so a request sees either the old store or the new one, never a mix.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "domain/error.hpp"

namespace dlipkg {

struct Credentials {
  struct User {
    std::set<std::string, std::less<>> projects;
  };
  struct AccessKey {
    std::string secret;  // the SK: never logged, never in a message
    std::string user;
  };
  struct Token {
    std::string user;
    std::optional<std::int64_t> expires_at_ms;  // none: never expires
  };

  std::map<std::string, User, std::less<>> users;          // by name
  std::unordered_map<std::string, AccessKey> access_keys;  // by AK
  // By the lower-case hex SHA-256 of the token: looking a token up by its hash means the
  // lookup's timing says nothing about the token, and the snapshot holds no usable token.
  std::unordered_map<std::string, Token> tokens;
};

// Parses and validates the file's text. Errors (kBadRequest) name the user and the field
// ("users[1] (bob): access_keys[0].sk must be a non-empty string"), never a secret's value.
Result<std::shared_ptr<const Credentials>> ParseCredentials(std::string_view json);

// The digest Credentials::tokens is keyed by.
std::string TokenDigest(std::string_view token);

class CredentialStore {
 public:
  // Reads and parses `file`. Errors: kBadRequest (unreadable, not a regular file, over 16 MiB,
  // or invalid as ParseCredentials). Never blocks on a FIFO or a device put in its place.
  static Result<std::unique_ptr<CredentialStore>> Open(std::filesystem::path file);
  // A store over fixed credentials, with no file to reload (tests).
  explicit CredentialStore(std::shared_ptr<const Credentials> credentials,
                           std::filesystem::path file = {});

  std::shared_ptr<const Credentials> Snapshot() const { return current_.load(); }
  // Re-reads the file. On success the new snapshot replaces the old one; on any error the old
  // one stays in force and the error says why. Does not block or throw whatever the path has
  // become (directory, FIFO, device). Call from one thread at a time.
  Result<std::shared_ptr<const Credentials>> Reload();

 private:
  std::filesystem::path file_;
  std::atomic<std::shared_ptr<const Credentials>> current_;
};

}  // namespace dlipkg
