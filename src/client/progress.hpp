// Progress bars of the client (push, get, wait) on stderr, in the style of `mc cp`: name, bar,
// bytes done of total, rate, ETA. The formatting functions are pure (unit-tested); a
// ProgressBar redraws one line at most ~10 times a second. One ProgressBar per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace dlipkg::client {

// 1536 -> "1.5 KiB", 0 -> "0 B", 300 MiB -> "300.0 MiB".
std::string FormatBytes(std::int64_t bytes);
// bytes per second -> "12.3 MiB/s".
std::string FormatRate(double bytes_per_second);
// seconds -> "0:07", "12:05", "1:02:03"; negative or unknown -> "--:--".
std::string FormatEta(double seconds);
// One line: "a.py  [=========>          ]  1.5 MiB / 3.0 MiB  1.2 MiB/s  ETA 0:02", `width`
// columns at most (the name is shortened to fit). total < 0: size unknown, no bar or ETA.
std::string ProgressLine(std::string_view name, std::int64_t done, std::int64_t total,
                         double elapsed_s, std::size_t width = 80);

class ProgressBar {
 public:
  // `out` null: draws nothing (stderr is not a terminal, or --quiet).
  ProgressBar(std::FILE* out, std::string name, std::int64_t total);
  void Update(std::int64_t done);
  // Draws the final state and ends the line.
  void Finish(std::int64_t done);

 private:
  void Draw(std::int64_t done);

  std::FILE* out_;
  std::string name_;
  std::int64_t total_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  bool drawn_ = false;
};

}  // namespace dlipkg::client
