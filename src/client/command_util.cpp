#include "client/command_util.hpp"

#include <unistd.h>

#include <algorithm>

#include "adapters/common/utc_time.hpp"

namespace dlipkg::client {

std::string Str(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr) return "";
  if (value->is_string()) return std::string(value->as_string());
  if (value->is_null()) return "";
  return boost::json::serialize(*value);
}

std::int64_t Int(const boost::json::object& object, std::string_view key, std::int64_t fallback) {
  const auto* value = object.if_contains(key);
  if (value == nullptr) return fallback;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64()) return static_cast<std::int64_t>(value->as_uint64());
  return fallback;
}

std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string text;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    text += line + "\n";
  }
  return text;
}

std::string FormatTime(std::int64_t epoch_ms) {
  if (epoch_ms < 0) return "-";
  auto text = FormatUtc(epoch_ms);  // 2026-11-29T11:48:03Z
  text[10] = ' ';
  text.pop_back();
  return text;
}

std::FILE* ProgressStream(const ClientOptions& options) {
  if (options.quiet) return nullptr;
  if (options.progress || ::isatty(STDERR_FILENO)) return stderr;
  return nullptr;
}

}  // namespace dlipkg::client
