#pragma once
// agave_elastic's loop: each generation discovers the live hosts, drops those a failure report
// named, picks the rank count, runs the job with mpirun on them and decides from how it ended:
// 0, 2 and 75 pass through (never restarted), anything else is a failure that starts the next
// generation while the restart budget lasts. A thin policy around real mpirun: Open MPI without
// ULFM cannot shrink a job in place, so a restart is a new mpirun.
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "elastic/failure_report.h"
#include "elastic/hosts.h"
#include "elastic/rank_choice.h"

namespace agave::elastic {

inline constexpr const char* kExitFileVariable = "AGAVE_EXIT_FILE";
// The generation a job runs in (1, 2, ...), set for its ranks.
inline constexpr const char* kGenerationVariable = "AGAVE_ELASTIC_GENERATION";

// SIGTERM, SIGINT and SIGUSR1 (a preemption, Ctrl-C) are passed on to mpirun, which passes them
// to the ranks: the job checkpoints and agrees on 75. After one, no generation is restarted.
void forward_stop_signals();
bool stop_signalled();

// One generation's launch.
struct Plan {
  int generation = 1;
  int ranks = 1;
  std::vector<Host> placement;  // the hosts, each with the ranks it runs
};

// Why a generation failed, for the restart counters: a failure report named ranks that did not
// answer (a host lost, a partition); the job agreed on a failure code (an error on every rank);
// mpirun ended without either (it died, or every rank of a host vanished before reporting); the
// host discovery itself failed (its command timed out or printed something unreadable).
enum class FailureCause { kPeerLost, kJobFailed, kMpirunFailed, kDiscoveryFailed };
// "peer_lost", "job_failed", "mpirun_failed", "discovery_failed".
const char* cause_name(FailureCause c);
inline constexpr FailureCause kFailureCauses[] = {FailureCause::kPeerLost, FailureCause::kJobFailed,
                                                  FailureCause::kMpirunFailed,
                                                  FailureCause::kDiscoveryFailed};
FailureCause failure_cause(bool failure_reported, bool agreed_code);

// How a generation ended.
struct GenerationEnd {
  int code = 1;  // the job's agreed code when it wrote one, else derived from mpirun's
  std::optional<FailureReport> failure;
  std::string why;  // "rank 2 (c) did not answer in ... at step 23", "mpirun exited 3"
  FailureCause cause = FailureCause::kMpirunFailed;  // meaningful when code does not pass through
};

// The job's code: a failure report (any: even one the reports do not agree on) means failure (1)
// whatever mpirun says; else the code the job agreed on (the exit file); else mpirun's 2 (a config
// error before MPI) passes, and any other mpirun code means failure: mpirun returns 0, 1 or 139
// when a host is lost.
int job_exit_code(bool failure_reported, std::optional<int> agreed, int mpirun_code);
// 0, 2 and 75: finished, the user's to fix, stopped on request.
bool passes_through(int code);
// "rank 2 (c) did not answer in all-reduce at step 23".
std::string describe(const FailureReport& report);

struct SupervisorOptions {
  RankRange ranks;
  int max_restarts = 3;
  int64_t global_batch = 0;  // 0: any rank count
  std::function<std::vector<Host>()> discover;
  std::function<GenerationEnd(const Plan&)> run;
  // Where the next generation resumes ("step 20", "the start"), for its line.
  std::function<std::string()> resume_point = [] { return std::string("auto"); };
  // Told of each generation as it starts (with the hosts excluded so far) and of each restart
  // as it is decided; either may be empty. For the Prometheus series (elastic_metrics.h).
  std::function<void(const Plan&, size_t excluded_hosts)> on_generation;
  std::function<void(FailureCause)> on_restart;
  double retry_pause_seconds = 2;  // after a failed discovery, so a failing command does not spin
};

// The generation loop; one line a generation on `log`, and one line when it gives up (or, after a
// stop signal, ends with the generation's code, or 75 when it came between generations). A
// failed discovery costs a restart like a failed generation. Returns the exit code of the whole
// supervised job.
int supervise(const SupervisorOptions& options, std::ostream& log);

// Runs one generation with real mpirun: writes the hostfile into `state_dir`, sets
// AGAVE_EXIT_FILE and AGAVE_FAILURE_DIR (there) and AGAVE_ELASTIC_GENERATION for the ranks, and
// once a failure report or an exit code is written, gives mpirun `grace_seconds` to exit, then
// SIGTERM, then SIGKILL after another `grace_seconds` (after a partition it waits for the lost
// host's daemon forever).
GenerationEnd run_with_mpirun(const Plan& plan, const std::vector<std::string>& mpirun,
                              const std::vector<std::string>& command, const std::string& state_dir,
                              double grace_seconds);

}  // namespace agave::elastic
