#include "client/connection.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace dlipkg::client {
namespace {

constexpr const char* kKeys[] = {"endpoint", "project", "ak", "sk", "token"};

std::string Octal(unsigned mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777);
  return text;
}

// The profile table's values into a Connection; an unknown key or a non-string is an error.
std::expected<Connection, std::string> FromTable(const toml::table& table,
                                                 const std::string& where) {
  Connection connection;
  for (const auto& [key, node] : table) {
    const auto* value = node.as_string();
    std::string* slot = key == "endpoint"  ? &connection.endpoint
                        : key == "project" ? &connection.project
                        : key == "ak"      ? &connection.access_key
                        : key == "sk"      ? &connection.secret_key
                        : key == "token"   ? &connection.token
                                           : nullptr;
    if (slot == nullptr)
      return std::unexpected(where + ": unknown key '" + std::string(key.str()) +
                             "' (expected endpoint, project, ak, sk, token)");
    if (value == nullptr)
      return std::unexpected(where + ": '" + std::string(key.str()) + "' must be a string");
    *slot = value->get();
  }
  return connection;
}

}  // namespace

std::optional<std::string> RealGetEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::filesystem::path DefaultProfileFile(const GetEnv& env) {
  if (auto xdg = env("XDG_CONFIG_HOME")) return std::filesystem::path(*xdg) / "dlipkg/client.toml";
  return std::filesystem::path(env("HOME").value_or(".")) / ".config/dlipkg/client.toml";
}

std::optional<std::string> ProfilePermissionProblem(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;  // reading it will say why
  if ((st.st_mode & 077) == 0) return std::nullopt;
  return "the profile file " + file.string() + " may be read by other users (mode " +
         Octal(st.st_mode) + "); it holds secrets, so it is not used. Run: chmod 600 " +
         file.string();
}

std::expected<Connection, std::string> ReadProfile(const std::filesystem::path& file,
                                                   const std::string& name, bool required) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    if (required)
      return std::unexpected("profile '" + name + "' requested, but " + file.string() +
                             " does not exist (write it with `dlipkg configure`)");
    return Connection{};
  }
  if (auto problem = ProfilePermissionProblem(file)) return std::unexpected(*problem);
  toml::table document;
  try {
    document = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    // The parser's description names the line, never a value.
    std::ostringstream where;
    where << e.source().begin;
    return std::unexpected(file.string() + " is not valid TOML (" + where.str() +
                           "): " + std::string(e.description()));
  }
  const auto* table = document[name].as_table();
  if (table == nullptr) {
    if (required || document.contains(name))
      return std::unexpected(file.string() + " has no profile table [" + name + "]");
    return Connection{};
  }
  return FromTable(*table, file.string() + " [" + name + "]");
}

std::expected<Connection, std::string> ResolveConnection(const ConnectionFlags& flags,
                                                         const GetEnv& env,
                                                         const std::filesystem::path& file) {
  const auto env_profile = env("DLIPKG_PROFILE");
  const bool named = flags.profile.has_value() || env_profile.has_value();
  const std::string profile_name = flags.profile.value_or(env_profile.value_or("default"));
  auto profile = ReadProfile(file, profile_name, named);
  if (!profile) return profile;
  Connection result;
  const auto pick = [&](const std::optional<std::string>& flag, const char* variable,
                        const std::string& from_profile) {
    if (flag) return *flag;
    if (auto value = env(variable)) return *value;
    return from_profile;
  };
  result.endpoint = pick(flags.endpoint, "DLIPKG_ENDPOINT", profile->endpoint);
  result.project = pick(flags.project, "DLIPKG_PROJECT", profile->project);
  result.access_key = pick(flags.access_key, "DLIPKG_AK", profile->access_key);
  result.secret_key = pick(flags.secret_key, "DLIPKG_SK", profile->secret_key);
  result.token = pick(flags.token, "DLIPKG_TOKEN", profile->token);
  while (result.endpoint.ends_with('/')) result.endpoint.pop_back();
  if (result.endpoint.empty())
    return std::unexpected(
        "no endpoint: give --endpoint URL, set DLIPKG_ENDPOINT, or run `dlipkg configure`");
  if (!result.endpoint.starts_with("http://") && !result.endpoint.starts_with("https://"))
    return std::unexpected("the endpoint must start with http:// or https://");
  if (result.project.empty())
    return std::unexpected(
        "no project: give --project ID, set DLIPKG_PROJECT, or run `dlipkg configure`");
  if (result.access_key.empty() != result.secret_key.empty())
    return std::unexpected("--ak and --sk go together: give both, or --token, or neither");
  return result;
}

std::expected<void, std::string> WriteProfile(const std::filesystem::path& file,
                                              const std::string& name,
                                              const Connection& connection) {
  toml::table document;
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    if (auto problem = ProfilePermissionProblem(file)) return std::unexpected(*problem);
    try {
      document = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
      return std::unexpected(file.string() + " is not valid TOML; fix or remove it first");
    }
  }
  toml::table profile;
  const std::string* values[] = {&connection.endpoint, &connection.project, &connection.access_key,
                                 &connection.secret_key, &connection.token};
  for (std::size_t i = 0; i < std::size(kKeys); ++i)
    if (!values[i]->empty()) profile.insert(kKeys[i], *values[i]);
  document.insert_or_assign(name, std::move(profile));

  const auto dir = file.parent_path();
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected("cannot create " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  const auto temp = file.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected("cannot write " + temp + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);  // O_CREAT's mode does not apply to a file that already existed
  std::ostringstream text;
  text << "# dlipkg client profiles (dlipkg configure). Keep this file private (mode 0600).\n"
       << document << "\n";
  const auto bytes = text.str();
  const bool written =
      ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) &&
      ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(temp.c_str(), file.c_str()) != 0) {
    ::unlink(temp.c_str());
    return std::unexpected("cannot write " + file.string() + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace dlipkg::client
