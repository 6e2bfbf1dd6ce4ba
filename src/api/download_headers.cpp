#include "api/download_headers.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <vector>

#include "domain/names.hpp"

namespace dlipkg::api {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::optional<std::int64_t> Number(std::string_view text) {
  std::int64_t value = 0;
  const auto* end = text.data() + text.size();
  if (text.empty() || std::from_chars(text.data(), end, value).ptr != end || value < 0)
    return std::nullopt;
  return value;
}

}  // namespace

std::string HttpDate(std::int64_t epoch_ms) {
  using namespace std::chrono;
  const sys_seconds at{seconds(epoch_ms / 1000)};
  const auto day = floor<days>(at);
  const year_month_day ymd{day};
  const hh_mm_ss time{at - day};
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char text[40];
  std::snprintf(text, sizeof text, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                kDays[weekday(day).c_encoding()], static_cast<unsigned>(ymd.day()),
                kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return text;
}

std::string EncodePathSegment(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (IsUnreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string ContentDisposition(std::string_view name) {
  // The quoted fallback keeps printable ASCII only (no quote or backslash): old clients get a
  // usable name, new ones read filename*.
  std::string fallback;
  for (unsigned char c : name)
    fallback += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? static_cast<char>(c) : '_';
  return "attachment; filename=\"" + fallback + "\"; filename*=UTF-8''" + EncodePathSegment(name);
}

std::string ReprDigest(std::string_view sha256_hex) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<unsigned char> bytes;
  for (std::size_t i = 0; i + 1 < sha256_hex.size(); i += 2) {
    unsigned value = 0;
    std::from_chars(sha256_hex.data() + i, sha256_hex.data() + i + 2, value, 16);
    bytes.push_back(static_cast<unsigned char>(value));
  }
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const unsigned n = (bytes[i] << 16) | ((i + 1 < bytes.size() ? bytes[i + 1] : 0) << 8) |
                       (i + 2 < bytes.size() ? bytes[i + 2] : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return "sha-256=:" + out + ":";
}

bool IfNoneMatchHits(std::string_view header, std::string_view etag) {
  for (auto item : Split(header, ',')) {
    item = Trim(item);
    if (item == "*") return true;
    if (item.starts_with("W/")) item.remove_prefix(2);  // If-None-Match compares weakly
    if (item == etag) return true;
  }
  return false;
}

RangeOutcome ParseRange(std::optional<std::string_view> header, std::int64_t size,
                        ByteRange& range) {
  if (!header) return RangeOutcome::kIgnore;
  std::string_view spec = Trim(*header);
  if (!spec.starts_with("bytes=")) return RangeOutcome::kIgnore;
  spec = Trim(spec.substr(6));
  if (spec.find(',') != std::string_view::npos) return RangeOutcome::kIgnore;  // serve it whole
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeOutcome::kIgnore;
  const auto first_text = Trim(spec.substr(0, dash));
  const auto last_text = Trim(spec.substr(dash + 1));
  if (first_text.empty()) {  // suffix: the last N bytes
    const auto suffix = Number(last_text);
    if (!suffix) return RangeOutcome::kIgnore;
    if (*suffix == 0 || size == 0) return RangeOutcome::kUnsatisfiable;
    range.length = std::min(*suffix, size);
    range.first = size - range.length;
    return RangeOutcome::kSatisfiable;
  }
  const auto first = Number(first_text);
  const auto last = last_text.empty() ? first : Number(last_text);
  if (!first || !last || *last < *first) return RangeOutcome::kIgnore;
  if (*first >= size) return RangeOutcome::kUnsatisfiable;
  if (last_text.empty()) {
    range = ByteRange{*first, size - *first};
    return RangeOutcome::kSatisfiable;
  }
  range.first = *first;
  range.length = std::min(*last, size - 1) - *first + 1;
  return RangeOutcome::kSatisfiable;
}

}  // namespace dlipkg::api
