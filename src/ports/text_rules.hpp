// The Unicode rules for names that need the Unicode Character Database, which the domain layer
// does not carry: which code points are refused as invisible or unassigned, and the one
// normalization form (NFC) names are stored and compared in. Used by the API before it parses
// resource names and tags (domain/names.hpp then checks the character classes and lengths).
// Pure, no I/O; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "domain/error.hpp"

namespace dlipkg {

class TextRules {
 public:
  virtual ~TextRules() = default;
  // `text` in Normalization Form C, so that a name typed decomposed ("cafe" + U+0301) and
  // composed (U+00E9) is one name. kBadRequest, naming `what` ("resource name", "tag key") and
  // the code point as U+XXXX but never echoing the text, when `text` is not valid UTF-8 or holds
  // a code point that shows nothing or is not yet a character: a control (Cc), a format or
  // bidi control (Cf), private use (Co), unassigned (Cn, noncharacters included), a line or
  // paragraph separator (Zl, Zp), or a blank filler (U+115F, U+1160, U+3164, U+FFA0, U+2800).
  virtual Result<std::string> Canonical(std::string_view text, std::string_view what) const = 0;
};

}  // namespace dlipkg
