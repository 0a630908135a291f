#pragma once
// Where a process shows progress, decided in one place for every executable: a bar redrawn in
// place on a terminal, plain lines (Slurm .out files, CI logs, pipes), or nothing.
//
// Under mpirun a rank's stderr is a pipe to mpirun even when mpirun runs at a terminal, so the
// terminal is found through the launcher: the job's rank 0 draws on /dev/tty when mpirun's own
// stderr is that terminal and the job is in its foreground (not `mpirun ... &`, not `mpirun ...
// > log 2>&1`). Slurm's tasks have no terminal, so their logs get lines.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "monitoring/options.h"
#include "monitoring/progress_bar.h"

namespace agave::monitoring {

// What a process can see of terminals (probe_terminal() reads them).
struct TerminalFacts {
  bool stderr_is_tty = false;  // this process's own stderr
  bool ci = false;             // CI is set: never redraw in place
  bool tty_opens = false;      // /dev/tty opens: the process has a controlling terminal
  // This process's or its parent's (mpirun's) process group is the terminal's foreground one.
  bool foreground = false;
  // Started by an MPI launcher (Open MPI, PMIx, PMI) whose own stderr is that terminal.
  bool launcher_stderr_is_the_tty = false;
};

TerminalFacts probe_terminal();

enum class ProgressShow {
  kBarOnStderr,  // this process's stderr is the terminal (or monitoring.progress: bar)
  kBarOnTty,     // the launcher's terminal, through /dev/tty
  kLines,        // a plain line every few seconds, on stdout with the other lines
  kNone,         // monitoring.progress: off
};

// The decision. `job_lead`: world rank 0, the one process that may draw on the launcher's
// terminal (every run's rank 0 prints lines; several bars on one terminal would fight).
ProgressShow decide_progress(ProgressMode mode, const TerminalFacts& terminal, bool job_lead);

// The decision made, and the stream it writes to (it owns /dev/tty when it opened it).
class ProgressOutput {
 public:
  ProgressOutput(ProgressMode mode, bool job_lead);  // probes the terminal
  explicit ProgressOutput(ProgressShow show, std::FILE* out = nullptr);
  ~ProgressOutput();
  ProgressOutput(const ProgressOutput&) = delete;
  ProgressOutput& operator=(const ProgressOutput&) = delete;

  ProgressShow show() const { return show_; }
  bool draws_bar() const {
    return show_ == ProgressShow::kBarOnStderr || show_ == ProgressShow::kBarOnTty;
  }
  // A bar or a line printer as decided (null for kNone); it must not outlive this object.
  std::unique_ptr<ProgressBar> start(std::string label, int64_t total) const;

  // Seconds between plain lines: a Slurm log of a long evaluation stays short.
  static constexpr int kLineSeconds = 10;

 private:
  ProgressShow show_;
  std::FILE* out_ = nullptr;
  bool owns_out_ = false;
};

}  // namespace agave::monitoring
