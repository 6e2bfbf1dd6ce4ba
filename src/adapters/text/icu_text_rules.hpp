// TextRules over ICU (Debian libicu-dev): the general category of each code point from ICU's
// character database and NFC from its Normalizer2. Used by the composition root for the API;
// the Unicode version is that of the ICU the binary links (72: Unicode 15.0).
// Stateless apart from ICU's own immutable data; thread-safe.
#pragma once

#include "ports/text_rules.hpp"

namespace dlipkg {

class IcuTextRules final : public TextRules {
 public:
  Result<std::string> Canonical(std::string_view text, std::string_view what) const override;
};

}  // namespace dlipkg
