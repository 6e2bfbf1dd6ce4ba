// The client's subcommand names and the did-you-mean both command lines use, in a file of their
// own that needs nothing else of the client: the server's configuration parser (app/config.cpp)
// names them in its did-you-mean, and the config fuzz target (tests/fuzz/fuzz_config.cpp)
// links this file instead of the whole client.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "client/cli.hpp"

namespace dlipkg::client {
namespace {

constexpr std::array<std::string_view, 10> kCommands{
    "push", "ls", "show", "get", "rm", "chown", "wait", "spark-args", "completion", "configure"};

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

bool IsClientCommand(std::string_view name) {
  return std::ranges::find(kCommands, name) != kCommands.end();
}

std::vector<std::string> ClientCommandNames() { return {kCommands.begin(), kCommands.end()}; }

std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    const std::size_t distance = EditDistance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (!best.empty() || word.size() < 3) return best;
  // A word cut short ("--data" for "--data-dir") is far in edits but plain to a reader: the one
  // candidate that starts with it.
  std::string only;
  for (const auto& candidate : candidates) {
    if (!candidate.starts_with(word)) continue;
    if (!only.empty()) return "";
    only = candidate;
  }
  return only;
}

}  // namespace dlipkg::client
