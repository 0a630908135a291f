#include "monitoring/progress_bar.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <thread>

namespace agave::monitoring {
namespace {

std::string drain(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

TEST(ProgressBar, PlainLinesWhenNotATerminal) {
  std::FILE* f = std::tmpfile();
  {
    ProgressBar bar("convert train", 1000, f);  // a file is not a TTY
    EXPECT_FALSE(bar.is_bar());
    bar.set_line_interval(std::chrono::milliseconds(0));
    bar.update(250);
    bar.update(500);
  }
  const std::string out = drain(f);
  std::fclose(f);
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  EXPECT_NE(out.find("convert train 250/1000 ( 25%)"), std::string::npos) << out;
  EXPECT_NE(out.find("ETA"), std::string::npos) << out;
  EXPECT_NE(out.find("500/1000 ( 50%)"), std::string::npos) << out;
  EXPECT_NE(out.find(", took "), std::string::npos) << "finish prints the final line: " << out;
}

TEST(ProgressBar, ThrottlesLines) {
  std::FILE* f = std::tmpfile();
  {
    ProgressBar bar("x", 0, f, ProgressBar::Mode::kLines);
    for (int i = 0; i < 10000; ++i) bar.update(i);
  }
  const std::string out = drain(f);
  std::fclose(f);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST(ProgressBar, BarRedrawsInPlace) {
  std::FILE* f = std::tmpfile();
  {
    ProgressBar bar("inspect", 100, f, ProgressBar::Mode::kBar);
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    bar.update(50);
  }
  const std::string out = drain(f);
  std::fclose(f);
  EXPECT_NE(out.find("\rinspect [###############...............] 50/100"), std::string::npos)
      << out;
  EXPECT_EQ(out.back(), '\n');
}

TEST(ProgressBar, ClearPrefixTakesTheBarOffItsLineAndTheNextUpdateRedrawsIt) {
  std::FILE* f = std::tmpfile();
  ProgressBar bar("train", 100, f, ProgressBar::Mode::kBar);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  bar.update(10);
  const std::string line = bar.clear_prefix() + "a step line\n";
  EXPECT_EQ(line, "\r\033[Ka step line\n");
  std::fputs(line.c_str(), f);
  bar.update(11);  // at once, not 100 ms later
  const std::string out = drain(f);
  EXPECT_NE(out.find("10/100"), std::string::npos) << out;
  EXPECT_NE(out.find("\033[K\r\033[Ka step line\n\rtrain ["), std::string::npos) << out;
  EXPECT_NE(out.find("11/100"), std::string::npos) << out;
  bar.finish();
  EXPECT_EQ(bar.clear_prefix(), "") << "a finished bar ends its own line";
  std::fclose(f);
}

TEST(ProgressBar, ClearPrefixIsEmptyInLineMode) {
  std::FILE* f = std::tmpfile();
  ProgressBar bar("x", 10, f, ProgressBar::Mode::kLines);
  bar.set_line_interval(std::chrono::milliseconds(0));
  bar.update(5);
  EXPECT_EQ(bar.clear_prefix(), "");
  bar.finish();
  std::fclose(f);
}

TEST(ProgressBar, FormatsDurations) {
  EXPECT_EQ(ProgressBar::format_duration(12.34), "12.3 s");
  EXPECT_EQ(ProgressBar::format_duration(245), "4 min 05 s");
  EXPECT_EQ(ProgressBar::format_duration(3720), "1 h 02 min");
}

}  // namespace
}  // namespace agave::monitoring
