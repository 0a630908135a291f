#include "monitoring/progress_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

namespace agave::monitoring {
namespace {

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

// Open MPI's mpirun, PMIx launchers (prterun, srun --mpi=pmix) and Hydra (MPICH) set these in
// every rank they start; the rank's parent is then the launcher on its own node.
bool started_by_mpi_launcher() {
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_RANK");
}

// Whether the parent's stderr is this process's controlling terminal (the parent is the same
// user's mpirun, so /proc lets us look). Only a terminal is opened, never blocking.
bool parent_stderr_is_our_terminal() {
  const std::string path = "/proc/" + std::to_string(::getppid()) + "/fd/2";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) return false;
  const int fd = ::open(path.c_str(), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  // Only the controlling terminal of the caller's session answers with that session.
  const bool ours = ::tcgetsid(fd) == ::getsid(0);
  ::close(fd);
  return ours;
}

}  // namespace

TerminalFacts probe_terminal() {
  TerminalFacts t;
  t.stderr_is_tty = ::isatty(STDERR_FILENO) == 1;
  t.ci = env_set("CI");
  const int fd = ::open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return t;  // no controlling terminal: Slurm, cron, nohup under setsid
  t.tty_opens = true;
  const pid_t foreground = ::tcgetpgrp(fd);
  t.foreground =
      foreground > 0 && (foreground == ::getpgrp() || foreground == ::getpgid(::getppid()));
  ::close(fd);
  t.launcher_stderr_is_the_tty = started_by_mpi_launcher() && parent_stderr_is_our_terminal();
  return t;
}

ProgressShow decide_progress(ProgressMode mode, const TerminalFacts& t, bool job_lead) {
  switch (mode) {
    case ProgressMode::kOff:
      return ProgressShow::kNone;
    case ProgressMode::kPlain:
      return ProgressShow::kLines;
    case ProgressMode::kBar:
      return ProgressShow::kBarOnStderr;
    case ProgressMode::kAuto:
      break;
  }
  if (t.ci) return ProgressShow::kLines;
  if (t.stderr_is_tty) return ProgressShow::kBarOnStderr;
  const bool launcher_terminal = t.tty_opens && t.foreground && t.launcher_stderr_is_the_tty;
  return launcher_terminal && job_lead ? ProgressShow::kBarOnTty : ProgressShow::kLines;
}

ProgressOutput::ProgressOutput(ProgressMode mode, bool job_lead)
    : show_(decide_progress(mode, probe_terminal(), job_lead)) {
  if (show_ == ProgressShow::kBarOnTty) {
    out_ = std::fopen("/dev/tty", "we");
    owns_out_ = out_ != nullptr;
    if (!out_) show_ = ProgressShow::kLines;  // gone since the probe: lines are never wrong
  }
  if (!out_) out_ = show_ == ProgressShow::kBarOnStderr ? stderr : stdout;
}

ProgressOutput::ProgressOutput(ProgressShow show, std::FILE* out) : show_(show), out_(out) {
  if (!out_) out_ = show_ == ProgressShow::kLines ? stdout : stderr;
}

ProgressOutput::~ProgressOutput() {
  if (owns_out_) std::fclose(out_);
}

std::unique_ptr<ProgressBar> ProgressOutput::start(std::string label, int64_t total) const {
  if (show_ == ProgressShow::kNone) return nullptr;
  auto bar = std::make_unique<ProgressBar>(
      std::move(label), total, out_,
      draws_bar() ? ProgressBar::Mode::kBar : ProgressBar::Mode::kLines);
  bar->set_line_interval(std::chrono::seconds(kLineSeconds));
  return bar;
}

}  // namespace agave::monitoring
