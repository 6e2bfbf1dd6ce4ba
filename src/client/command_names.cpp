// The client's subcommand names, in a file of their own that needs nothing else of the client:
// the server's configuration parser (app/config.cpp) names them in its did-you-mean, and the
// config fuzz target (tests/fuzz/fuzz_config.cpp) links this file instead of the whole client.
#include <algorithm>
#include <array>

#include "client/cli.hpp"

namespace dlipkg::client {
namespace {

constexpr std::array<std::string_view, 10> kCommands{
    "push", "ls", "show", "get", "rm", "chown", "wait", "spark-args", "completion", "configure"};

}  // namespace

bool IsClientCommand(std::string_view name) {
  return std::ranges::find(kCommands, name) != kCommands.end();
}

std::vector<std::string> ClientCommandNames() { return {kCommands.begin(), kCommands.end()}; }

}  // namespace dlipkg::client
