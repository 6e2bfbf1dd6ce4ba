// The client's command line: `dlipkg push|ls|show|get|rm|chown|wait|spark-args|completion|
// configure ...` parsed with CLI11 into ClientOptions, and the entry point that runs one.
// app::Main hands every non-`serve` subcommand here. Not thread-safe (one per process).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/options.hpp"

namespace dlipkg::client {

// True for the names above.
bool IsClientCommand(std::string_view name);
// Every client subcommand's name, for the did-you-mean of an unknown command.
std::vector<std::string> ClientCommandNames();
// The closest of `candidates` to a misspelt `word` (edit distance at most a third of its
// length, at least 2), else the only candidate that begins with a `word` of 3 or more
// characters, or "" when none is close. For the did-you-mean of both command lines.
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

struct ParsedCommandLine {
  std::optional<ClientOptions> options;  // nullopt: exit with exit_code (help shown, or usage)
  int exit_code = 0;
};
// `args` without the program name: {"push", "--group", "etl", "a.py"}. Help and usage errors
// are printed here (usage errors exit 2).
ParsedCommandLine ParseClientCommandLine(const std::vector<std::string>& args);

// Runs the subcommand; returns the process exit status (exit_status.hpp).
int Main(int argc, char** argv);

}  // namespace dlipkg::client
