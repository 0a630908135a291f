#pragma once
// The job layer of agave_trainer: from a validated sweep to trained runs on the ranks of an MPI
// job. World rank 0 prepares the data while the others wait; the world is cut into groups of
// sweep.ranks_per_run, each training its runs in turn; every rank returns the same exit code,
// agreed over the job channel (docs/faults.md); the sweep's table and plot come last.
// `agave_trainer`'s main is the command line around it; the tests call these parts in process.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/resume.h"
#include "cluster/communicator.h"
#include "cluster/mpi_runtime.h"
#include "cluster/options.h"
#include "launcher/config.h"
#include "launcher/exit_code.h"
#include "monitoring/sweep_summary.h"
#include "trainer/fault_hooks.h"

namespace agave::launcher {

// What the command line asked for.
struct JobRequest {
  std::string config_file;
  std::vector<std::string> overrides;  // --set key=value
  bool dry_run = false;                // print which ranks train which runs, train nothing
  bool print_config = false;           // print the resolved config, train nothing
  std::string resume = "auto";         // checkpoint::ResumeRequest::parse
  int64_t sweep_point = -1;            // >= 0: only this point, on every rank
  bool allow_config_change = false;    // trainer::TrainerSetup::allow_config_change
};

// Everything decided before MPI starts.
struct Job {
  Sweep sweep;
  checkpoint::ResumeRequest resume;
  bool allow_config_change = false;
  std::shared_ptr<trainer::FaultHooks> faults;  // null in real runs
};

// Loads and validates the config, every sweep point, --resume and --sweep-point, and (unless
// only printing) that the data source exists. Throws ConfigError or std::invalid_argument with
// one line; nothing is written. Every rank calls it and fails alike.
Job load_job(const JobRequest& request);

// --print-config: every run's resolved config, a YAML document each.
std::string resolved_configs(const Sweep& sweep);

// --sweep-point I: only run I, trained by every rank of the job. ConfigError when out of range.
void keep_only_point(Sweep& sweep, int64_t point, const std::string& config_file);

// train.pretrain: parallel: both halves of `ranks` have ranks and divide the global batch.
// ConfigError naming the run otherwise.
void require_pretraining_halves(const RunSpec& spec, int ranks);

// The communicator a group trains on: NCCL on this node-local rank's GPU when there are GPUs
// (cluster.backend auto or nccl), MPI over host tensors otherwise; sets `device` to match.
// ConfigError when cluster.backend: nccl cannot be had in this build or on this node.
std::unique_ptr<cluster::Communicator> make_communicator(const cluster::MpiRuntime& mpi,
                                                         const cluster::MpiGroup& group,
                                                         const cluster::ClusterOptions& options,
                                                         const std::string& config_file,
                                                         torch::Device& device);

// The job once MPI is up (collective over the world): data, groups, runs, the agreed exit
// code, the sweep's end. Every rank returns the same code.
ExitCode run_job(const cluster::MpiRuntime& mpi, const JobRequest& request, const Job& job);

// The paper's axes that no run of the sweep was labelled with, with the configured values:
// shown once above the sweep table.
std::vector<std::pair<std::string, std::string>> sweep_constants(
    const Config& c, const std::vector<monitoring::SweepRow>& rows);

// The sweep's end on world rank 0: <sweep>/sweep.csv, the table on stdout (failed and
// unreadable runs named), sweep.png (a plot that cannot be drawn costs a warning line).
void finish_sweep(const Config& first);

// $AGAVE_EXIT_FILE, when set, gets `code` (mpirun signalled itself returns 1, not the ranks'
// code: the Slurm scripts read the file). A file that cannot be written costs a warning line.
void record_exit_code(ExitCode code);

// SIGTERM and SIGUSR1 set trainer::stop_requested(): the ranks agree on it at the next step,
// checkpoint and exit with ExitCode::kStopped.
void install_stop_signals();

}  // namespace agave::launcher
