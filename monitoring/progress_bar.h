#pragma once
// A terminal progress bar with rate and ETA. On a TTY (and CI unset) it redraws one line in
// place; otherwise (logs, CI) it prints a plain line every few seconds, so logs stay readable.
// Where a process shows progress (a bar, lines, the launcher's terminal under mpirun) is decided
// in monitoring/progress_output.h.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace agave::monitoring {

class ProgressBar {
 public:
  enum class Mode { kAuto, kBar, kLines };

  // total <= 0: unknown; the bar then shows only the count and rate.
  ProgressBar(std::string label, int64_t total, std::FILE* out = stderr, Mode mode = Mode::kAuto);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Cheap to call often: output is throttled (10 Hz bar, one line per `line_interval`).
  void update(int64_t done);
  // Starts a new stage under another label (the bar line is finished first).
  void restart(std::string label, int64_t total);
  // Prints the final state once; the destructor calls it.
  void finish();
  // What a line printed next must start with so that it takes the bar off the terminal line
  // instead of continuing after it: "\r\033[K" in bar mode until finish(), else "". The next
  // update redraws the bar below that line. The caller writes it in the same write as its line:
  // where stdout and stderr are relayed separately (mpirun), a bar drawn after the line may
  // reach the terminal before it, so every line clears, not only those after a drawn bar.
  std::string clear_prefix();

  bool is_bar() const { return bar_; }
  void set_line_interval(std::chrono::milliseconds d) { line_interval_ = d; }
  // What is counted, e.g. "img": the rate reads "12.5 img/s" (default: "12/s").
  void set_unit(std::string unit) { unit_ = std::move(unit); }
  // The time left as the caller knows it (a run's ETA covers phases and evaluations the rate
  // here cannot see); counts down from now until set again. `approximate` shows it as "~".
  void set_eta(double seconds, bool approximate);
  // "12.3 s", "4 min 05 s", "1 h 02 min".
  static std::string format_duration(double seconds);

 private:
  std::string render(bool final) const;
  void emit(bool final);

  std::string label_;
  int64_t total_;
  std::FILE* out_;
  bool bar_;
  int64_t done_ = 0;
  bool finished_ = false;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
  std::chrono::milliseconds line_interval_{5000};
  std::string unit_;
  double eta_ = -1;  // set_eta's seconds, < 0: from the rate
  bool eta_approximate_ = false;
  std::chrono::steady_clock::time_point eta_at_;
};

}  // namespace agave::monitoring
