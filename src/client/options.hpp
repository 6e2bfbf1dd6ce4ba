// The parsed command line of a client subcommand: what `dlipkg push|ls|show|get|rm|chown|wait|
// spark-args|completion|configure` was asked to do. Filled by ParseClientCommandLine (cli.hpp),
// read by the subcommands (commands.hpp). Plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client/connection.hpp"

namespace dlipkg::client {

struct ClientOptions {
  std::string command;  // "push", "ls", ...
  ConnectionFlags connection;
  std::vector<std::string> groups;     // --group (spark-args: repeatable; others: at most one)
  std::string kind;                    // --kind
  std::vector<std::string> tags;       // --tag KEY=VALUE, as given
  std::vector<std::string> arguments;  // positional: paths/URLs, names, user, shell
  std::string output;                  // get -o
  std::string format = "args";         // spark-args --format args|conf
  std::int64_t expires_s = 3600;       // spark-args --expires
  double timeout_s = 0;                // wait --timeout; 0: none
  bool replace = false, is_async = false, json = false, quiet = false, progress = false;

  const std::string& group() const {
    static const std::string kNone;
    return groups.empty() ? kNone : groups.front();
  }
};

}  // namespace dlipkg::client
