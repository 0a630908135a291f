// Progress bars and lines, and where they show: the one decision (monitoring/progress_output.h)
// from what a process sees of terminals, its launcher's included.
#include "monitoring/progress_bar.h"

#include <gtest/gtest.h>

#include "monitoring/progress_output.h"

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

// A rank under mpirun at a terminal: its stderr a pipe, mpirun's the terminal, in the foreground.
TerminalFacts rank_under_mpirun_at_a_terminal() {
  TerminalFacts t;
  t.tty_opens = true;
  t.foreground = true;
  t.launcher_stderr_is_the_tty = true;
  return t;
}

TEST(DecideProgress, TheModeSetsItOutsideAuto) {
  const auto t = rank_under_mpirun_at_a_terminal();
  EXPECT_EQ(decide_progress(ProgressMode::kOff, t, true), ProgressShow::kNone);
  EXPECT_EQ(decide_progress(ProgressMode::kPlain, t, true), ProgressShow::kLines);
  EXPECT_EQ(decide_progress(ProgressMode::kBar, TerminalFacts(), false),
            ProgressShow::kBarOnStderr);
}

TEST(DecideProgress, AutoDrawsOnTheTerminalOfAPlainRun) {
  TerminalFacts t;
  t.stderr_is_tty = true;
  EXPECT_EQ(decide_progress(ProgressMode::kAuto, t, true), ProgressShow::kBarOnStderr);
}

TEST(DecideProgress, AutoUnderMpirunDrawsOnTheLaunchersTerminalFromTheJobsRankZeroOnly) {
  const auto t = rank_under_mpirun_at_a_terminal();
  EXPECT_EQ(decide_progress(ProgressMode::kAuto, t, true), ProgressShow::kBarOnTty);
  EXPECT_EQ(decide_progress(ProgressMode::kAuto, t, false), ProgressShow::kLines);
}

TEST(DecideProgress, AutoPrintsLinesWhereNoOneWatchesATerminal) {
  auto t = rank_under_mpirun_at_a_terminal();
  t.ci = true;  // CI logs
  EXPECT_EQ(decide_progress(ProgressMode::kAuto, t, true), ProgressShow::kLines);
  t = rank_under_mpirun_at_a_terminal();
  t.foreground = false;  // mpirun ... &
  EXPECT_EQ(decide_progress(ProgressMode::kAuto, t, true), ProgressShow::kLines);
  t = rank_under_mpirun_at_a_terminal();
  t.launcher_stderr_is_the_tty = false;  // mpirun ... > log 2>&1, or not under mpirun
  EXPECT_EQ(decide_progress(ProgressMode::kAuto, t, true), ProgressShow::kLines);
  // Slurm (sbatch, srun): no controlling terminal at all.
  EXPECT_EQ(decide_progress(ProgressMode::kAuto, TerminalFacts(), true), ProgressShow::kLines);
}

// Run by ctest, whose output is a pipe: whatever terminal the developer has, no bar.
TEST(ProbeTerminal, ATestsOutputIsNoTerminal) {
  EXPECT_FALSE(probe_terminal().launcher_stderr_is_the_tty);
}

TEST(ProgressOutput, LinesPrintPlainLinesAndNoneNothing) {
  std::FILE* f = std::tmpfile();
  {
    ProgressOutput lines(ProgressShow::kLines, f);
    EXPECT_FALSE(lines.draws_bar());
    auto bar = lines.start("[run] eval step 10", 100);
    ASSERT_TRUE(bar);
    bar->set_unit("img");
    bar->update(50);  // within the line interval: nothing yet
    bar->finish();
    EXPECT_FALSE(ProgressOutput(ProgressShow::kNone, f).start("x", 1));
  }
  const std::string out = drain(f);
  std::fclose(f);
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  EXPECT_EQ(out.rfind("[run] eval step 10 50/100 ( 50%) ", 0), 0u) << out;
  EXPECT_NE(out.find(" img/s, took "), std::string::npos) << out;
}

TEST(ProgressOutput, BarsRedrawInPlaceOnTheirStream) {
  std::FILE* f = std::tmpfile();
  {
    ProgressOutput tty(ProgressShow::kBarOnTty, f);
    EXPECT_TRUE(tty.draws_bar());
    auto bar = tty.start("train", 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    bar->update(5);
  }
  const std::string out = drain(f);
  std::fclose(f);
  EXPECT_NE(out.find("\rtrain ["), std::string::npos) << out;
}

// A run's ETA covers what the bar's own rate cannot see (phases to come, evaluations).
TEST(ProgressBar, ShowsTheEtaItIsGivenCountingDown) {
  std::FILE* f = std::tmpfile();
  {
    ProgressBar bar("train", 600, f, ProgressBar::Mode::kLines);
    bar.set_line_interval(std::chrono::milliseconds(0));
    bar.set_eta(125, true);
    bar.update(200);
    bar.set_eta(3720, false);
    bar.update(300);
  }
  const std::string out = drain(f);
  std::fclose(f);
  EXPECT_NE(out.find("200/600 ( 33%) "), std::string::npos) << out;
  EXPECT_NE(out.find(", ETA ~2 min 0"), std::string::npos) << out;  // 2 min 05 s or 04 s
  EXPECT_NE(out.find(", ETA 1 h 0"), std::string::npos) << out;
}

TEST(ProgressBar, RateWithAUnitKeepsADecimalWhenSmall) {
  std::FILE* f = std::tmpfile();
  {
    ProgressBar bar("eval", 10, f, ProgressBar::Mode::kLines);
    bar.set_unit("img");
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    bar.update(1);
  }
  const std::string out = drain(f);
  std::fclose(f);
  EXPECT_NE(out.find(" img/s, took "), std::string::npos) << out;
  EXPECT_EQ(out.find(" 0/s"), std::string::npos) << out;
}

}  // namespace
}  // namespace agave::monitoring
