// The client subcommands, each from parsed options to an exit status (exit_status.hpp). They
// print results on stdout, progress and errors on stderr ("dlipkg: ..."), and never a secret.
// Used by client::Main; each runs on the calling thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "client/dli_client.hpp"
#include "client/exit_status.hpp"
#include "client/options.hpp"

namespace dlipkg::client {

ExitStatus RunPush(DliClient& dli, const ClientOptions& options);
ExitStatus RunList(DliClient& dli, const ClientOptions& options);
ExitStatus RunShow(DliClient& dli, const ClientOptions& options);
ExitStatus RunGet(DliClient& dli, const ClientOptions& options);
ExitStatus RunRemove(DliClient& dli, const ClientOptions& options);
ExitStatus RunChown(DliClient& dli, const ClientOptions& options);
ExitStatus RunWait(DliClient& dli, const ClientOptions& options);
ExitStatus RunSparkArgs(DliClient& dli, const ClientOptions& options);
// Needs no server.
ExitStatus RunCompletion(const ClientOptions& options);
ExitStatus RunConfigure(const ClientOptions& options, const GetEnv& env);

// "team=data" -> {"team", "data"}; nullopt without '=' or with an empty key.
std::optional<std::pair<std::string, std::string>> ParseTag(const std::string& text);
// "90", "90s", "30m", "2h", "1d" -> seconds; nullopt otherwise (or not positive).
std::optional<std::int64_t> ParseDuration(const std::string& text);

// Prints "dlipkg: <message>" on stderr and returns the failure's status.
ExitStatus Report(const Failure& failure);

}  // namespace dlipkg::client
