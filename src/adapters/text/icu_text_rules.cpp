#include "adapters/text/icu_text_rules.hpp"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace dlipkg {
namespace {

// Code points that are letters by category (Lo) yet render as nothing: the Hangul fillers and
// the blank Braille pattern, all used to forge names that look empty or like another.
constexpr std::array<UChar32, 5> kFillers = {0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800};

// Why a code point is refused, or nullptr when it may appear in a name.
const char* RefusalReason(UChar32 c) {
  if (std::find(kFillers.begin(), kFillers.end(), c) != kFillers.end()) return "a blank filler";
  switch (u_charType(c)) {
    case U_CONTROL_CHAR:
      return "a control character";
    case U_FORMAT_CHAR:
      return "an invisible format or bidi control character";
    case U_PRIVATE_USE_CHAR:
      return "a private-use character";
    case U_UNASSIGNED:  // also the noncharacters U+FDD0..U+FDEF and U+xFFFE, U+xFFFF
      return "an unassigned code point";
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
      return "a line or paragraph separator";
    default:
      return nullptr;
  }
}

Error Refusal(std::string_view what, UChar32 c, const char* reason) {
  char code[16];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(c));
  return Error{ErrorCode::kBadRequest,
               "Invalid " + std::string(what) + ": it contains " + code + ", " + reason + "."};
}

}  // namespace

Result<std::string> IcuTextRules::Canonical(std::string_view text, std::string_view what) const {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const auto length = static_cast<int32_t>(text.size());
  if (text.size() > 4096)  // far above any name limit; keeps the work per request bounded
    return Fail(ErrorCode::kBadRequest, "Invalid " + std::string(what) + ": it is too long.");
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U8_NEXT(bytes, i, length, c);  // c < 0: ill-formed (overlong, surrogate, truncated)
    if (c < 0) return Fail(ErrorCode::kBadRequest, "Invalid " + std::string(what) + ": not UTF-8.");
    if (const char* reason = RefusalReason(c)) return std::unexpected(Refusal(what, c, reason));
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) return Fail(ErrorCode::kInternal, "Unicode normalization is unavailable.");
  const auto source = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), length));
  if (nfc->isNormalized(source, status) && U_SUCCESS(status)) return std::string(text);
  status = U_ZERO_ERROR;
  const icu::UnicodeString composed = nfc->normalize(source, status);
  if (U_FAILURE(status)) return Fail(ErrorCode::kInternal, "Unicode normalization failed.");
  std::string out;
  composed.toUTF8String(out);
  return out;
}

}  // namespace dlipkg
