// The Unicode name rules over ICU: every refused category with a real code point of it, the
// blank fillers, NFC for decomposed Latin, Hangul jamo and stacked combining marks, and names
// already in NFC coming back byte for byte.
#include "adapters/text/icu_text_rules.hpp"

#include <gtest/gtest.h>

namespace dlipkg {
namespace {

// The UTF-8 of one code point, to build names from code points the test can name.
std::string Utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

class IcuTextRulesTest : public ::testing::Test {
 protected:
  Result<std::string> Canonical(const std::string& text) const {
    return rules_.Canonical(text, "resource name");
  }
  // Refused with kBadRequest, and the message names the code point but does not echo it.
  void ExpectRefused(char32_t c, const std::string& why) const {
    const std::string name = "a" + Utf8(c) + "b.py";
    auto result = Canonical(name);
    ASSERT_FALSE(result.has_value()) << why;
    EXPECT_EQ(result.error().code, ErrorCode::kBadRequest) << why;
    char code[16];
    std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(c));
    EXPECT_NE(result.error().message.find(code), std::string::npos) << result.error().message;
    EXPECT_NE(result.error().message.find("Invalid resource name"), std::string::npos);
    EXPECT_EQ(result.error().message.find(Utf8(c)), std::string::npos) << why;
  }
  IcuTextRules rules_;
};

TEST_F(IcuTextRulesTest, FormatAndBidiControlsAreRefused) {  // Cf
  ExpectRefused(0x200B, "zero width space");
  ExpectRefused(0x200D, "zero width joiner");
  ExpectRefused(0x202E, "right-to-left override");
  ExpectRefused(0x2066, "left-to-right isolate");
  ExpectRefused(0xFEFF, "byte order mark");
  ExpectRefused(0x00AD, "soft hyphen");
  ExpectRefused(0xE0041, "tag latin capital letter a");
}

TEST_F(IcuTextRulesTest, PrivateUseIsRefused) {  // Co
  ExpectRefused(0xE000, "first private use");
  ExpectRefused(0xF0000, "plane 15 private use");
}

TEST_F(IcuTextRulesTest, UnassignedCodePointsAreRefused) {  // Cn
  ExpectRefused(0x0378, "unassigned in Greek");
  ExpectRefused(0x2FFFD, "unassigned in plane 2");
  ExpectRefused(0xFDD0, "noncharacter");
  ExpectRefused(0x1FFFF, "noncharacter at the end of plane 1");
}

TEST_F(IcuTextRulesTest, LineAndParagraphSeparatorsAreRefused) {  // Zl, Zp
  ExpectRefused(0x2028, "line separator");
  ExpectRefused(0x2029, "paragraph separator");
}

TEST_F(IcuTextRulesTest, ControlsAreRefused) {  // Cc
  ExpectRefused(0x0007, "bell");
  ExpectRefused(0x0085, "next line");
}

TEST_F(IcuTextRulesTest, BlankFillersAreRefused) {  // Lo or So, yet show nothing
  ExpectRefused(0x3164, "hangul filler");
  ExpectRefused(0x115F, "hangul choseong filler");
  ExpectRefused(0x1160, "hangul jungseong filler");
  ExpectRefused(0xFFA0, "halfwidth hangul filler");
  ExpectRefused(0x2800, "braille pattern blank");
}

TEST_F(IcuTextRulesTest, InvalidUtf8IsRefused) {
  for (const std::string bad : {"a\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
    auto result = Canonical(bad);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kBadRequest);
  }
}

TEST_F(IcuTextRulesTest, DecomposedLatinComesBackComposed) {
  EXPECT_EQ(*Canonical("cafe\xCC\x81.py"), "caf\xC3\xA9.py");  // e + U+0301 -> U+00E9
  EXPECT_EQ(*Canonical("caf\xC3\xA9.py"), "caf\xC3\xA9.py");
  // Å as A + ring above, and as the Angstrom sign (a singleton NFC maps away): both U+00C5.
  EXPECT_EQ(*Canonical("A\xCC\x8A.jar"), "\xC3\x85.jar");
  EXPECT_EQ(*Canonical("\xE2\x84\xAB.jar"), "\xC3\x85.jar");
}

TEST_F(IcuTextRulesTest, HangulJamoComposeIntoSyllables) {
  // U+1100 U+1161 U+11A8 (conjoining jamo) -> U+AC01; U+D55C U+AE00 stays as typed.
  EXPECT_EQ(*Canonical(Utf8(0x1100) + Utf8(0x1161) + Utf8(0x11A8) + ".py"), Utf8(0xAC01) + ".py");
  const std::string hangul = Utf8(0xD55C) + Utf8(0xAE00) + ".py";
  EXPECT_EQ(*Canonical(hangul), hangul);
}

TEST_F(IcuTextRulesTest, CombiningMarksAreReorderedCanonically) {
  // q + dot below (ccc 220) + dot above (ccc 230), typed in either order: one name. With no
  // precomposed form the marks stay combining, ordered by their combining class.
  const std::string below_first = "q" + Utf8(0x0323) + Utf8(0x0307);
  const std::string above_first = "q" + Utf8(0x0307) + Utf8(0x0323);
  EXPECT_EQ(*Canonical(above_first), below_first);
  EXPECT_EQ(*Canonical(below_first), below_first);
  // A combining mark alone stays (it is a mark, not a format character).
  EXPECT_EQ(*Canonical("x" + Utf8(0x0301)), "x" + Utf8(0x0301));
}

TEST_F(IcuTextRulesTest, AsciiAndOtherScriptsPassUnchanged) {
  for (const std::string name : {"main.py", "a b_c-d.e~f+g%h!", "\xE6\x95\xB0\xE6\x8D\xAE.py",
                                 "\xD0\xB4\xD0\xB0\xD0\xBD\xD0\xBD\xD1\x8B\xD0\xB5.jar", ""})
    EXPECT_EQ(*Canonical(name), name);
}

TEST_F(IcuTextRulesTest, AMessageNamesWhatWasRefused) {
  auto result = rules_.Canonical("k" + Utf8(0x200B), "tag key");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message,
            "Invalid tag key: it contains U+200B, an invisible format or bidi control character.");
}

}  // namespace
}  // namespace dlipkg
