#include "client/progress.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

namespace dlipkg::client {

std::string FormatBytes(std::int64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string FormatRate(double bytes_per_second) {
  return FormatBytes(static_cast<std::int64_t>(std::max(0.0, bytes_per_second))) + "/s";
}

std::string FormatEta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto total = static_cast<std::int64_t>(std::ceil(seconds));
  const auto h = total / 3600, m = total / 60 % 60, s = total % 60;
  return h > 0 ? fmt::format("{}:{:02}:{:02}", h, m, s) : fmt::format("{}:{:02}", m, s);
}

std::string ProgressLine(std::string_view name, std::int64_t done, std::int64_t total,
                         double elapsed_s, std::size_t width) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0;
  std::string tail = total >= 0 ? fmt::format("{} / {}  {}", FormatBytes(done), FormatBytes(total),
                                              FormatRate(rate))
                                : fmt::format("{}  {}", FormatBytes(done), FormatRate(rate));
  if (total >= 0) {
    const double eta = done >= total ? 0 : rate > 0 ? static_cast<double>(total - done) / rate : -1;
    tail += "  ETA " + FormatEta(eta);
  }
  // Name (at most 24 columns), bar of what is left, the figures.
  std::string shown(name.substr(0, 24));
  if (name.size() > 24) shown.replace(21, 3, "...");
  const std::size_t fixed = shown.size() + 2 + 2 + 2 + tail.size();
  std::string line = shown + "  ";
  if (total >= 0 && width > fixed + 10) {
    const std::size_t bar = std::min<std::size_t>(width - fixed, 40);
    const auto filled =
        total == 0
            ? bar
            : static_cast<std::size_t>(static_cast<double>(bar) * std::min(done, total) / total);
    line += "[" + std::string(filled, '=') + std::string(bar - filled, ' ') + "]  ";
  }
  return line + tail;
}

ProgressBar::ProgressBar(std::FILE* out, std::string name, std::int64_t total)
    : out_(out), name_(std::move(name)), total_(total), start_(std::chrono::steady_clock::now()) {}

void ProgressBar::Update(std::int64_t done) {
  if (out_ == nullptr) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw(done);
}

void ProgressBar::Finish(std::int64_t done) {
  if (out_ == nullptr) return;
  Draw(done);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void ProgressBar::Draw(std::int64_t done) {
  drawn_ = true;
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
  // "\r" back to the line start, "\x1b[K" clears what a longer previous line left.
  std::fprintf(out_, "\r%s\x1b[K", ProgressLine(name_, done, total_, elapsed.count()).c_str());
  std::fflush(out_);
}

}  // namespace dlipkg::client
