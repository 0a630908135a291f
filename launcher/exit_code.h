#pragma once
// What agave's executables return, in one place: job scripts, Slurm's requeue logic and users'
// shells rely on these numbers (docs/faults.md). agave_h5probe's codes are a protocol between it
// and its parent only (hdf5/header_probe.h).
namespace agave::launcher {

enum class ExitCode : int {
  kOk = 0,
  // A run failed or the job ended on an error; the line before says which and why.
  kFailed = 1,
  // The user's to fix, found before anything was overwritten: a bad config or argument,
  // malformed data, a checkpoint that does not fit, a run folder another job holds.
  kUserError = 2,
  // Stopped on request (SIGTERM, SIGUSR1) after a checkpoint: the job is incomplete and
  // resumes from there when started again (EX_TEMPFAIL; the Slurm scripts requeue on it).
  kStopped = 75,
};

constexpr int code(ExitCode c) { return static_cast<int>(c); }

// The code a job with several outcomes reports: a run the user must fix outranks a failed one,
// so a sweep with both says "fix the config" first.
constexpr ExitCode worse(ExitCode a, ExitCode b) { return code(a) >= code(b) ? a : b; }

}  // namespace agave::launcher
