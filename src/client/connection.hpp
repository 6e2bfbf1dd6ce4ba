// Where the client connects and how it proves who it is: endpoint, project and credentials
// (AK/SK or a token), taken from the command line, then DLIPKG_* environment variables, then a
// profile in ~/.config/dlipkg/client.toml (written by `dlipkg configure`). A profile file
// readable by anyone but its owner is refused, as ssh refuses such a key. Used by every client
// subcommand; pure apart from reading and writing the profile file; thread-compatible.
#pragma once

#include <expected>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace dlipkg::client {

struct Connection {
  std::string endpoint;  // "http://127.0.0.1:8080", no trailing '/'
  std::string project;
  std::string access_key;  // with secret_key: requests are signed SDK-HMAC-SHA256
  std::string secret_key;  // never printed
  std::string token;       // otherwise X-Auth-Token; neither: no credentials (loopback server)
};

// What the command line gave; unset fields fall back to the environment, then the profile.
struct ConnectionFlags {
  std::optional<std::string> endpoint, project, access_key, secret_key, token, profile;
};

// Environment lookup, injected so tests need not touch the real environment.
using GetEnv = std::function<std::optional<std::string>(const char*)>;
std::optional<std::string> RealGetEnv(const char* name);

// $XDG_CONFIG_HOME/dlipkg/client.toml, or $HOME/.config/dlipkg/client.toml.
std::filesystem::path DefaultProfileFile(const GetEnv& env);

// A message when the file's mode lets its group or others read or write it; nullopt when only
// the owner may. The message names the file and the chmod that fixes it, never its contents.
std::optional<std::string> ProfilePermissionProblem(const std::filesystem::path& file);

// The profile `name` of `file`. A missing file or profile is an empty Connection unless
// `required` (the user named the profile). Errors: unreadable, bad TOML, unknown key, readable
// by others.
std::expected<Connection, std::string> ReadProfile(const std::filesystem::path& file,
                                                   const std::string& name, bool required);

// Flags, then environment (DLIPKG_ENDPOINT, DLIPKG_PROJECT, DLIPKG_AK, DLIPKG_SK,
// DLIPKG_TOKEN, DLIPKG_PROFILE), then the profile file. Fails when the endpoint or project is
// missing, when only one of AK and SK is set, or when the profile cannot be used.
std::expected<Connection, std::string> ResolveConnection(const ConnectionFlags& flags,
                                                         const GetEnv& env,
                                                         const std::filesystem::path& file);

// Writes (or replaces) profile `name`, keeping the file's other profiles; the file is created
// with mode 0600 (and its directory 0700) and replaced atomically.
std::expected<void, std::string> WriteProfile(const std::filesystem::path& file,
                                              const std::string& name,
                                              const Connection& connection);

}  // namespace dlipkg::client
