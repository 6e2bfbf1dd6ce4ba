// Helpers the subcommands share: reading fields of the server's JSON objects, a plain-text table
// for stdout, and whether stderr gets progress output. Internal to src/client; pure apart from
// isatty; thread-compatible.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "client/options.hpp"

namespace dlipkg::client {

std::string Str(const boost::json::object& object, std::string_view key);
std::int64_t Int(const boost::json::object& object, std::string_view key,
                 std::int64_t fallback = -1);

// Columns padded to their widest cell, two spaces apart; the first row is the heading.
std::string Table(const std::vector<std::vector<std::string>>& rows);

// Epoch milliseconds -> "2026-11-29 11:48:03" (UTC); "-" for none.
std::string FormatTime(std::int64_t epoch_ms);

// stderr when progress should be drawn (a terminal, or --progress; never with --quiet), else null.
std::FILE* ProgressStream(const ClientOptions& options);

}  // namespace dlipkg::client
