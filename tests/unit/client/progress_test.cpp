// The progress line of push and get: sizes, rates, ETA and the bar, at fixed inputs.
#include "client/progress.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace dlipkg::client {
namespace {

TEST(Progress, FormatsBytesInBinaryUnits) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(300LL << 20), "300.0 MiB");
  EXPECT_EQ(FormatBytes(5LL << 30), "5.0 GiB");
  EXPECT_EQ(FormatRate(2.5 * (1 << 20)), "2.5 MiB/s");
}

TEST(Progress, FormatsEta) {
  EXPECT_EQ(FormatEta(0), "0:00");
  EXPECT_EQ(FormatEta(6.2), "0:07");
  EXPECT_EQ(FormatEta(725), "12:05");
  EXPECT_EQ(FormatEta(3723), "1:02:03");
  EXPECT_EQ(FormatEta(-1), "--:--");
  EXPECT_EQ(FormatEta(std::nan("")), "--:--");
}

TEST(Progress, LineHasBarBytesRateAndEta) {
  // Half of 4 MiB in 2 s: 1 MiB/s, 2 s left.
  const auto line = ProgressLine("a.py", 2 << 20, 4 << 20, 2.0, 80);
  EXPECT_EQ(line.find("a.py  ["), 0u) << line;
  EXPECT_NE(line.find("2.0 MiB / 4.0 MiB  1.0 MiB/s  ETA 0:02"), std::string::npos) << line;
  const auto open = line.find('['), close = line.find(']');
  const auto bar = line.substr(open + 1, close - open - 1);
  EXPECT_EQ(std::count(bar.begin(), bar.end(), '='), static_cast<long>(bar.size() / 2)) << line;
  EXPECT_LE(line.size(), 80u);
}

TEST(Progress, LineFitsItsWidthAndShortensLongNames) {
  const auto line = ProgressLine(std::string(60, 'n') + ".py", 0, 100, 0.0, 60);
  EXPECT_LE(line.size(), 60u) << line;
  EXPECT_NE(line.find("..."), std::string::npos);
  EXPECT_NE(line.find("ETA --:--"), std::string::npos) << line;  // no rate yet
  const auto done = ProgressLine("x", 100, 100, 1.0, 80);
  EXPECT_NE(done.find("[" + std::string(done.find(']') - done.find('[') - 1, '=') + "]"),
            std::string::npos)
      << done;
  EXPECT_NE(done.find("ETA 0:00"), std::string::npos);
  const auto unknown = ProgressLine("x", 2048, -1, 1.0, 80);
  EXPECT_EQ(unknown.find('['), std::string::npos);
  EXPECT_EQ(unknown.find("ETA"), std::string::npos);
  EXPECT_NE(unknown.find("2.0 KiB  2.0 KiB/s"), std::string::npos) << unknown;
}

}  // namespace
}  // namespace dlipkg::client
