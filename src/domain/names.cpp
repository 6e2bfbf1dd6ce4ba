#include "domain/names.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <set>

#include "domain/records.hpp"

namespace dlipkg {
namespace {

bool IsAsciiAlnum(char32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Decodes one UTF-8 code point starting at text[i]; advances i. nullopt on invalid UTF-8
// (overlong forms, surrogates, truncation, code points above U+10FFFF).
std::optional<char32_t> NextCodePoint(std::string_view text, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int extra;
  char32_t cp;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    extra = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (i + extra >= text.size()) return std::nullopt;  // truncated sequence
  for (int k = 1; k <= extra; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  i += extra + 1;
  return cp;
}

// Code points that show nothing or change how the rest shows, so that two names that look the
// same could differ: format characters (Unicode category Cf: soft hyphen, zero-width and bidi
// controls, tag characters, ...), line and paragraph separators (Zl, Zp), private use (Co),
// noncharacters, and the fillers that render as blanks. Closed ranges, sorted. Unassigned code
// points (Cn) and NFC equivalence need the Unicode Character Database, which the domain layer
// does not carry: the API applies them first, through the TextRules port (NameForm).
struct CodeRange {
  char32_t first, last;
};
constexpr CodeRange kInvisible[] = {
    {0x00AD, 0x00AD},   {0x034F, 0x034F},   {0x0600, 0x0605},   {0x061C, 0x061C},
    {0x06DD, 0x06DD},   {0x070F, 0x070F},   {0x0890, 0x0891},   {0x08E2, 0x08E2},
    {0x115F, 0x1160},   {0x17B4, 0x17B5},   {0x180B, 0x180F},   {0x200B, 0x200F},
    {0x2028, 0x202E},   {0x2060, 0x206F},   {0x2800, 0x2800},   {0x3164, 0x3164},
    {0xE000, 0xF8FF},   {0xFDD0, 0xFDEF},   {0xFE00, 0xFE0F},   {0xFEFF, 0xFEFF},
    {0xFFA0, 0xFFA0},   {0xFFF0, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
    {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF},
    {0xF0000, 0x10FFFF},
};

bool IsInvisible(char32_t c) {
  if ((c & 0xFFFE) == 0xFFFE) return true;  // U+xFFFE and U+xFFFF of every plane
  return std::ranges::any_of(kInvisible,
                             [c](const CodeRange& r) { return c >= r.first && c <= r.last; });
}

// A non-ASCII code point we accept as a "letter (any language)": everything printable
// outside the C1 controls, the Unicode spaces and separators, and the invisible ones above.
bool IsNonAsciiLetter(char32_t c) {
  if (c < 0xA0) return false;  // C1 controls
  if (c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || c == 0x2028 || c == 0x2029 ||
      c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF)
    return false;
  return !IsInvisible(c);
}

// Checks every code point of `text` against `ascii_extra`; non-ASCII letters always pass.
bool AllCharsAllowed(std::string_view text, std::string_view ascii_extra, bool allow_unicode,
                     std::size_t& count) {
  count = 0;
  for (std::size_t i = 0; i < text.size();) {
    auto cp = NextCodePoint(text, i);
    if (!cp) return false;
    ++count;
    if (*cp < 0x80) {
      if (!IsAsciiAlnum(*cp) && ascii_extra.find(static_cast<char>(*cp)) == std::string_view::npos)
        return false;
    } else if (!allow_unicode || !IsNonAsciiLetter(*cp)) {
      return false;
    }
  }
  return true;
}

std::string Quote(std::string_view text) {
  // Echoes a rejected name back, shortened and with control bytes masked.
  std::string out;
  for (char c : text.substr(0, 80)) out += (static_cast<unsigned char>(c) < 0x20 ? '?' : c);
  if (text.size() > 80) out += "...";
  return out;
}

}  // namespace

std::string_view Trim(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const auto end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::string_view ToString(PackageKind kind) {
  switch (kind) {
    case PackageKind::kJar:
      return "jar";
    case PackageKind::kPyFile:
      return "pyFile";
    case PackageKind::kFile:
      return "file";
    case PackageKind::kModelFile:
      return "modelFile";
  }
  return "file";
}

std::string_view ToString(PackageStatus status) {
  switch (status) {
    case PackageStatus::kUploading:
      return "UPLOADING";
    case PackageStatus::kReady:
      return "READY";
    case PackageStatus::kFailed:
      return "FAILED";
  }
  return "FAILED";
}

std::optional<PackageKind> ParseKind(std::string_view text) {
  for (auto k :
       {PackageKind::kJar, PackageKind::kPyFile, PackageKind::kFile, PackageKind::kModelFile})
    if (ToString(k) == text) return k;
  return std::nullopt;
}

std::optional<PackageStatus> ParseStatus(std::string_view text) {
  for (auto s : {PackageStatus::kUploading, PackageStatus::kReady, PackageStatus::kFailed})
    if (ToString(s) == text) return s;
  return std::nullopt;
}

Result<std::string> ParseProjectId(std::string_view text) {
  std::size_t n = 0;
  if (text.empty() || text.size() > 64 || !AllCharsAllowed(text, "", false, n))
    return Fail(ErrorCode::kBadRequest, "Invalid project_id: use 1-64 letters and digits.");
  return std::string(text);
}

Result<std::string> ParseGroupName(std::string_view text) {
  text = Trim(text);
  std::size_t n = 0;
  if (text.empty() || text.size() > 64 || !AllCharsAllowed(text, "._-", false, n))
    return Fail(ErrorCode::kBadRequest, "Invalid group name '" + Quote(text) +
                                            "': use 1-64 letters, digits, '.', '_' or '-'.");
  return std::string(text);
}

Result<std::string> ParseResourceName(std::string_view text) {
  std::size_t count = 0;
  const bool chars_ok = AllCharsAllowed(text, "_!-.~+% ", true, count);
  if (!chars_ok || count == 0 || count > 128 || text.front() == '.' || text.front() == ' ' ||
      text.back() == ' ')
    return Fail(ErrorCode::kBadRequest,
                "Invalid resource name '" + Quote(text) +
                    "': use 1-128 letters, digits, '_', '!', '-', '.', '~', '+', '%' or spaces, "
                    "not starting with '.' or a space.");
  return std::string(text);
}

Result<std::string> ParseOwnerName(std::string_view text) {
  std::size_t n = 0;
  if (text.size() < 5 || text.size() > 32 || !AllCharsAllowed(text, "_-", false, n) ||
      (text.front() >= '0' && text.front() <= '9'))
    return Fail(ErrorCode::kBadRequest,
                "Invalid owner '" + Quote(text) +
                    "': use 5-32 letters, digits, '_' or '-', not starting with a digit.");
  return std::string(text);
}

Result<void> ValidateTags(const std::vector<Tag>& tags) {
  if (tags.size() > kMaxTagsPerRequest)
    return Fail(ErrorCode::kBadRequest, "Too many tags: at most 20 per request.");
  std::set<std::string> keys;
  for (const auto& tag : tags) {
    std::size_t n = 0;
    const bool key_ok = AllCharsAllowed(tag.key, " _.:+-@", true, n) && n >= 1 && n <= 128 &&
                        Trim(tag.key) == tag.key && !tag.key.starts_with("_sys_");
    if (!key_ok)
      return Fail(ErrorCode::kBadRequest,
                  "Invalid tag key '" + Quote(tag.key) +
                      "': 1-128 letters, digits, spaces or _ . : + - @, no leading or trailing "
                      "space, not starting with _sys_.");
    const bool value_ok =
        AllCharsAllowed(tag.value, " _.:+-@", true, n) && n <= 255 && Trim(tag.value) == tag.value;
    if (!value_ok)
      return Fail(ErrorCode::kBadRequest,
                  "Invalid value for tag '" + Quote(tag.key) +
                      "': 0-255 letters, digits, spaces or _ . : + - @, no leading or trailing "
                      "space.");
    if (!keys.insert(tag.key).second)
      return Fail(ErrorCode::kBadRequest, "Duplicate tag key '" + Quote(tag.key) + "'.");
  }
  return {};
}

std::optional<std::string> PercentDecode(std::string_view text) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;  // "%" or "%4" at the end
    const int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

Result<std::string> ResourceNameFromUrl(std::string_view url, const NameForm& form) {
  std::string_view path = url;
  if (auto cut = path.find_first_of("?#"); cut != std::string_view::npos)
    path = path.substr(0, cut);
  if (auto scheme = path.find("://"); scheme != std::string_view::npos) {
    path.remove_prefix(scheme + 3);
    const auto slash = path.find('/');
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  }
  const auto last = path.rfind('/');
  const std::string_view segment = last == std::string_view::npos ? path : path.substr(last + 1);
  if (segment.empty())
    return Fail(ErrorCode::kBadRequest,
                "Invalid path '" + Quote(url) + "': it must end with an object name.");
  auto decoded = PercentDecode(segment);
  if (!decoded)
    return Fail(ErrorCode::kBadRequest,
                "Invalid path '" + Quote(url) + "': malformed percent-encoding.");
  if (form) {
    auto formed = form(*decoded);
    if (!formed) return std::unexpected(formed.error());
    decoded = std::move(*formed);
  }
  auto name = ParseResourceName(*decoded);
  if (!name)
    return Fail(ErrorCode::kBadRequest,
                "Invalid path '" + Quote(url) + "': " + name.error().message);
  return name;
}

PackageStatus RollUpStatus(const std::vector<PackageRecord>& packages) {
  bool failed = false;
  for (const auto& p : packages) {
    if (p.status == PackageStatus::kUploading) return PackageStatus::kUploading;
    failed = failed || p.status == PackageStatus::kFailed;
  }
  return failed ? PackageStatus::kFailed : PackageStatus::kReady;
}

std::string UnderlyingName(const std::string& sha256, const std::string& name) {
  return sha256.substr(0, 32) + "_" + name;
}

Result<std::string> ParseSha256(std::string_view text, std::string_view what) {
  std::string hex(text);
  for (char& c : hex) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      hex.clear();
      break;
    }
  }
  if (hex.size() != 64)
    return Fail(ErrorCode::kBadRequest,
                std::string(what) + " must be a SHA-256 written as 64 hexadecimal digits.");
  return hex;
}

}  // namespace dlipkg
