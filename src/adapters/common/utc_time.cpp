#include "adapters/common/utc_time.hpp"

#include <chrono>
#include <cstdio>

namespace dlipkg {
namespace {

using namespace std::chrono;

// Exactly `width` ASCII digits at `pos`; advances pos.
std::optional<int> Digits(std::string_view text, std::size_t& pos, std::size_t width) {
  if (pos + width > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += width;
  return value;
}

bool Expect(std::string_view text, std::size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

struct Fields {
  int year, month, day, hour, minute, second;
};

// Calendar fields to epoch ms, rejecting impossible dates ("2023-02-30") and times. Leap
// seconds (":60") are refused: no signer writes them.
std::optional<std::int64_t> ToEpochMs(const Fields& f) {
  const year_month_day date{year{f.year}, month{static_cast<unsigned>(f.month)},
                            day{static_cast<unsigned>(f.day)}};
  if (!date.ok() || f.hour > 23 || f.minute > 59 || f.second > 59) return std::nullopt;
  const auto at = sys_days{date} + hours{f.hour} + minutes{f.minute} + seconds{f.second};
  return duration_cast<milliseconds>(at.time_since_epoch()).count();
}

}  // namespace

std::optional<std::int64_t> ParseRfc3339Ms(std::string_view text) {
  std::size_t pos = 0;
  Fields f{};
  auto year = Digits(text, pos, 4);
  if (!year || !Expect(text, pos, '-')) return std::nullopt;
  auto month = Digits(text, pos, 2);
  if (!month || !Expect(text, pos, '-')) return std::nullopt;
  auto day = Digits(text, pos, 2);
  if (!day || !(Expect(text, pos, 'T') || Expect(text, pos, 't'))) return std::nullopt;
  auto hour = Digits(text, pos, 2);
  if (!hour || !Expect(text, pos, ':')) return std::nullopt;
  auto minute = Digits(text, pos, 2);
  if (!minute || !Expect(text, pos, ':')) return std::nullopt;
  auto second = Digits(text, pos, 2);
  if (!second) return std::nullopt;
  f = Fields{*year, *month, *day, *hour, *minute, *second};
  std::int64_t fraction_ms = 0;
  if (Expect(text, pos, '.')) {
    const std::size_t start = pos;
    std::int64_t scale = 100;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction_ms += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  std::int64_t offset_ms = 0;
  if (Expect(text, pos, 'Z') || Expect(text, pos, 'z')) {
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos++] == '+' ? 1 : -1;
    auto off_hours = Digits(text, pos, 2);
    if (!off_hours || !Expect(text, pos, ':')) return std::nullopt;
    auto off_minutes = Digits(text, pos, 2);
    if (!off_minutes || *off_hours > 23 || *off_minutes > 59) return std::nullopt;
    offset_ms = sign * ((*off_hours * 60 + *off_minutes) * 60'000LL);
  } else {
    return std::nullopt;  // a time without a zone is ambiguous: refuse rather than guess
  }
  if (pos != text.size()) return std::nullopt;
  auto ms = ToEpochMs(f);
  if (!ms) return std::nullopt;
  return *ms + fraction_ms - offset_ms;
}

std::optional<std::int64_t> ParseSdkDateMs(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  std::size_t pos = 0;
  auto year = Digits(text, pos, 4);
  auto month = Digits(text, pos, 2);
  auto day = Digits(text, pos, 2);
  if (!year || !month || !day || !Expect(text, pos, 'T')) return std::nullopt;
  auto hour = Digits(text, pos, 2);
  auto minute = Digits(text, pos, 2);
  auto second = Digits(text, pos, 2);
  if (!hour || !minute || !second || !Expect(text, pos, 'Z')) return std::nullopt;
  return ToEpochMs(Fields{*year, *month, *day, *hour, *minute, *second});
}

namespace {
std::string Format(const char* format, std::int64_t epoch_ms) {
  const sys_time<milliseconds> at{milliseconds{epoch_ms}};
  const auto day_start = floor<days>(at);
  const year_month_day date{day_start};
  const hh_mm_ss time{floor<seconds>(at - day_start)};
  char text[32];
  std::snprintf(text, sizeof text, format, static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return text;
}
}  // namespace

std::string FormatSdkDate(std::int64_t epoch_ms) {
  return Format("%04d%02u%02uT%02d%02d%02dZ", epoch_ms);
}

std::string FormatUtc(std::int64_t epoch_ms) {
  return Format("%04d-%02u-%02uT%02d:%02d:%02dZ", epoch_ms);
}

}  // namespace dlipkg
