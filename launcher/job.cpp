#include "launcher/job.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint/sharded_checkpoint.h"
#include "cluster/activity.h"
#include "cluster/job_channel.h"
#include "data/convert.h"
#include "io/atomic_file.h"
#include "launcher/config_diff.h"
#include "launcher/config_error.h"
#include "launcher/data_source.h"
#include "launcher/host_allocator.h"
#include "launcher/metrics_port.h"
#include "launcher/run_lock.h"
#include "launcher/sweep_plan.h"
#include "launcher/torch_threads.h"
#include "monitoring/metrics_exporter.h"
#include "monitoring/progress_bar.h"
#include "trainer/parallel_pretraining.h"
#include "trainer/run_labels.h"
#include "trainer/stop_request.h"
#include "trainer/trainer.h"
#include "version/version.h"

namespace agave::launcher {
namespace {

// A stop that came while rank 0 converted data: the conversion is abandoned (its temporary
// files removed) and the job exits 75 before training.
struct ConversionStopped {};

extern "C" void on_stop_signal(int) {
  // Only a flag: the ranks agree on it at the next step, checkpoint and exit together.
  agave::trainer::stop_requested().store(true);
}

// Each rank reports what it will do from its own split communicator, so the printed plan is
// what the ranks really decided, not what rank 0 assumes.
void print_dry_run(const cluster::MpiRuntime& mpi, const SweepPlan& plan, int group,
                   const cluster::MpiGroup& group_comm, const std::vector<RunSpec>& runs) {
  // Every rank checks every run, so that all of them fail alike before the gather.
  for (const auto& g : plan.groups) {
    for (size_t r : g.runs) require_pretraining_halves(runs[r], g.size);
  }
  const auto& where = mpi.placement();
  std::string mine = "rank " + std::to_string(where.world_rank) + " (" + where.hostname +
                     ", local " + std::to_string(where.local_rank) + "/" +
                     std::to_string(where.local_size) + "): group " + std::to_string(group) +
                     " rank " + std::to_string(group_comm.rank()) + "/" +
                     std::to_string(group_comm.size()) + ", runs:";
  for (size_t r : plan.groups[group].runs) {
    mine += " " + runs[r].name;
    if (runs[r].config.train.pretrain != trainer::PretrainSchedule::kParallel) continue;
    std::string halves;
    for (const auto half : trainer::halves_of_rank(group_comm.rank(), group_comm.size(),
                                                   runs[r].config.train.pretrain_vae_ranks)) {
      halves += std::string(halves.empty() ? "" : " then ") + trainer::half_name(half);
    }
    mine += " (" + halves + " first)";
  }
  const auto lines = mpi.world().gather(mine);
  if (where.world_rank == 0) {
    std::cout << describe_plan(plan, runs);
    for (const auto& g : plan.groups) {
      for (size_t r : g.runs) {
        if (runs[r].config.train.pretrain != trainer::PretrainSchedule::kParallel) continue;
        std::cout << "run " << runs[r].name << ": "
                  << trainer::describe_parallel_pretraining(runs[r].config.train, g.first_rank,
                                                            g.size)
                  << "\n";
      }
    }
    for (const auto& l : lines) std::cout << l << "\n";
    std::cout << "dry run: nothing trained, nothing written\n";
  }
}

// Converts `d`'s source into its shards unless they are there (under a file lock shared with
// other jobs, waited for at most `timeout` seconds), drawing a progress bar. False when a stop
// request came first: the conversion (or the wait for the lock) is abandoned.
bool convert_if_missing(const data::DataOptions& d, double timeout) {
  cluster::ActivityScope named("data conversion");
  std::unique_ptr<monitoring::ProgressBar> bar;
  std::string stage;
  try {
    data::ensure_shards(
        d,
        [&](const data::Progress& p) {
          if (trainer::stop_requested().load()) throw ConversionStopped{};
          if (!bar) {
            bar = std::make_unique<monitoring::ProgressBar>(p.stage, p.total);
          } else if (p.stage != stage) {
            bar->restart(p.stage, p.total);
          }
          stage = p.stage;
          bar->update(p.done);
        },
        timeout);
  } catch (const ConversionStopped&) {
    return false;
  }
  return true;
}

// Data shards are shared by every run: world rank 0 converts what is missing (under a file
// lock, so jobs sharing a file system convert once) while the others wait.
// Returns false when a stop request came first (on any rank): nothing is trained then.
// Points are not all expanded here (a sweep over data keys is rare): the first point's data,
// and each run's own before it trains (a no-op when its shards are there).
bool ensure_data(const cluster::MpiRuntime& mpi, cluster::JobChannel& channel,
                 const std::vector<data::DataOptions>& sets, double timeout) {
  if (mpi.placement().world_rank == 0) {
    std::set<std::string> done;
    for (const auto& d : sets) {
      if (!done.insert(d.shards).second) continue;
      if (!convert_if_missing(d, timeout)) break;
    }
  }
  // Conversion may take minutes: the others wait for as long as rank 0 answers probes.
  const auto agreed =
      channel.agree_max({trainer::stop_requested().load() ? 1 : 0}, "data-ready agreement");
  return agreed[0] == 0;
}

trainer::TrainerSetup setup_for(const RunSpec& spec, int local_rank) {
  const auto& c = spec.config;
  trainer::TrainerSetup setup;
  setup.run_name = spec.name;
  setup.output_dir = spec.output_dir;
  setup.seed = static_cast<uint64_t>(c.run.seed);
  setup.labels = spec.labels;
  setup.resolved_config = to_yaml_string(c);
  setup.config_drift = config_drift;
  setup.data = c.data;
  setup.model = c.model;
  setup.loss = c.loss;
  setup.train = c.train;
  setup.eval = c.eval;
  setup.checkpoint = c.checkpoint;
  setup.monitoring = c.monitoring;
  // Sweep groups (and every-rank exporters) on one node must not compete for one port: each
  // process serves port + its node-local rank.
  if (setup.monitoring.port != 0) setup.monitoring.port += local_rank;
  setup.cluster = c.cluster;
  return setup;
}

// kRefused: another job holds the run folder; nothing of this job's may write into it.
enum class RunEnd { kDone, kFailed, kConfigFailed, kRefused, kStopped };

// Trains one run on this group. Failures that every rank of the run meets alike (the same
// checkpoint files, the same agreed non-finite decision) end this run only: a sweep reports it
// in <run>/failed.json and goes on. Anything else may have left a rank behind in a collective
// and ends the job (main).
RunEnd train_run(trainer::TrainerSetup setup, cluster::Communicator& comm,
                 const trainer::HalfCommunicator& half_comm, bool in_sweep) {
  const std::string run_name = setup.run_name, output_dir = setup.output_dir;
  const std::string failed_file = output_dir + "/failed.json";
  const bool lead = comm.rank() == 0;
  // The run's rank 0 holds the run folder (and an explicit checkpoint folder) for the run's
  // lifetime; every rank learns whether it got them.
  std::vector<std::unique_ptr<RunLock>> locks;
  std::string refused;
  if (lead) {
    try {
      locks.push_back(std::make_unique<RunLock>(output_dir));
      if (!setup.checkpoint.dir.empty()) {
        locks.push_back(std::make_unique<RunLock>(setup.checkpoint.dir));
      }
    } catch (const RunLockError& e) {
      refused = e.what();
    }
  }
  {
    cluster::ActivityScope named("run lock decision");
    refused = comm.all_gather_string(refused).front();
  }
  if (!refused.empty()) {
    if (lead) std::cerr << "agave_trainer: error: run " << run_name << ": " << refused << std::endl;
    return RunEnd::kRefused;  // not ours to write failed.json into
  }
  if (lead) std::filesystem::remove(failed_file);
  std::string failure;
  RunEnd end = RunEnd::kFailed;
  try {
    const auto result =
        setup.train.pretrain == trainer::PretrainSchedule::kParallel
            ? trainer::train_with_parallel_pretraining(std::move(setup), comm, half_comm)
            : trainer::Trainer(std::move(setup), comm).run();
    return result.stopped ? RunEnd::kStopped : RunEnd::kDone;
  } catch (const trainer::ConfigDriftError& e) {
    // Refused before anything of the run was written: not a failed run of the sweep either.
    if (lead) std::cerr << ("agave_trainer: error: run " + run_name + ": " + e.what() + "\n");
    return RunEnd::kConfigFailed;
  } catch (const checkpoint::CheckpointError& e) {
    failure = e.what();
    end = RunEnd::kConfigFailed;
  } catch (const trainer::NonFiniteError& e) {
    failure = e.what();
  }
  if (lead) {
    // Each line in one write: mpirun interleaves this rank's stdout and stderr by write, and a
    // line written in pieces could be cut by the next run's stdout line.
    std::cerr << ("agave_trainer: error: " + failure + "\n") << std::flush;
    if (in_sweep) {
      std::filesystem::create_directories(output_dir);
      io::write_file_atomically(
          failed_file, nlohmann::json{{"run", run_name}, {"error", failure}}.dump() + "\n");
      std::cerr << ("agave_trainer: run " + run_name +
                    " failed; the sweep goes on with the next run\n")
                << std::flush;
    }
  }
  return end;
}

struct GroupOutcome {
  ExitCode exit_code = ExitCode::kOk;
  bool stopped = false;  // a run checkpointed on request, or the job agreed to stop
  bool refused = false;  // a run folder was held by another job
};

// The two halves of a group's ranks for parallel pretraining (trainer/parallel_pretraining.h):
// split from the group when a run first asks and kept for the group's later runs; one rank
// trains both halves on the group's communicator.
class PretrainingHalves {
 public:
  PretrainingHalves(const cluster::MpiRuntime& mpi, const cluster::MpiGroup& group,
                    cluster::Communicator& group_comm, const cluster::ClusterOptions& options,
                    std::string config_file)
      : mpi_(mpi),
        group_(group),
        group_comm_(group_comm),
        options_(options),
        config_file_(std::move(config_file)) {}

  // Every rank of the group asks for the same split at the same point (a run's start), so a
  // run whose split differs from the last run's splits again.
  cluster::Communicator& operator()(trainer::PretrainHalf mine, int64_t vae_ranks) {
    if (group_.size() == 1) return group_comm_;
    if (!comm_ || vae_ranks != vae_ranks_) {
      comm_.reset();
      vae_ranks_ = vae_ranks;
      split_ = group_.split(static_cast<int>(mine), group_.rank());
      torch::Device device = torch::kCPU;
      comm_ = make_communicator(mpi_, *split_, options_, config_file_, device);
    }
    return *comm_;
  }

 private:
  const cluster::MpiRuntime& mpi_;
  const cluster::MpiGroup& group_;
  cluster::Communicator& group_comm_;
  const cluster::ClusterOptions options_;
  const std::string config_file_;
  int64_t vae_ranks_ = 0;
  std::unique_ptr<cluster::MpiGroup> split_;
  std::unique_ptr<cluster::Communicator> comm_;  // before split_ in destruction
};

// Trains this group's runs of the sweep in turn.
GroupOutcome train_group(const Sweep& sweep, const SweepPlan& plan, int group,
                         const cluster::MpiGroup& group_comm, cluster::Communicator& comm,
                         const trainer::HalfCommunicator& half_comm, const Job& job,
                         const cluster::ProcessPlacement& where, const torch::Device& device,
                         double timeout) {
  GroupOutcome out;
  const auto& first = sweep.first().config;
  for (size_t index : plan.groups[group].runs) {
    RunSpec spec;
    try {
      spec = sweep.point(index);
      require_pretraining_halves(spec, group_comm.size());
    } catch (const ConfigError& e) {
      // Every value was validated on loading; an invalid combination fails this run alike on
      // all of its ranks (the same expansion), and the sweep goes on.
      if (group_comm.rank() == 0) std::cerr << "agave_trainer: error: " << e.what() << std::endl;
      out.exit_code = worse(out.exit_code, ExitCode::kUserError);
      continue;
    }
    // A stop that reached any rank of the job (relayed by the channel) ends the sweep here too.
    if (trainer::agree_on_stop(comm)) {
      out.stopped = true;
      break;
    }
    if (spec.config.data.shards != first.data.shards) {
      // A stop during the conversion leaves the shards missing; the run's own stop agreement
      // (before its first step) then ends it.
      if (group_comm.rank() == 0) convert_if_missing(spec.config.data, timeout);
      cluster::ActivityScope named("data ready");
      comm.barrier_while_alive("rank 0's data conversion for run " + spec.name);
    }
    if (group_comm.rank() == 0) {
      std::cout << "agave_trainer: run " << spec.name << " on ranks "
                << plan.groups[group].first_rank << "-"
                << plan.groups[group].first_rank + plan.groups[group].size - 1 << " -> "
                << spec.output_dir << std::endl;
    }
    auto setup = setup_for(spec, where.local_rank);
    setup.resume = job.resume;
    setup.allow_config_change = job.allow_config_change;
    setup.faults = job.faults;
    setup.world_rank = where.world_rank;
    setup.device = device;
    const auto end = train_run(std::move(setup), comm, half_comm, sweep.size() > 1);
    if (end == RunEnd::kStopped) {
      out.stopped = true;
      break;
    }
    if (end == RunEnd::kFailed) out.exit_code = worse(out.exit_code, ExitCode::kFailed);
    if (end == RunEnd::kConfigFailed || end == RunEnd::kRefused) {
      out.exit_code = worse(out.exit_code, ExitCode::kUserError);
    }
    if (end == RunEnd::kRefused) out.refused = true;
  }
  return out;
}

// The last line of a stopped job, for a person at a terminal as much as for a job script.
void say_stopped(const std::string& when) {
  std::cerr << ("agave_trainer: stopped on request " + when + "; exit " +
                std::to_string(code(ExitCode::kStopped)) +
                ": run the same command again to continue (the Slurm scripts requeue)\n")
            << std::flush;
}

}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

void keep_only_point(Sweep& sweep, int64_t point, const std::string& config_file) {
  if (point >= static_cast<int64_t>(sweep.size())) {
    throw ConfigError("--sweep-point " + std::to_string(point) + ": " + config_file + " has " +
                      std::to_string(sweep.size()) + " sweep point(s) (0-" +
                      std::to_string(sweep.size() - 1) + ")");
  }
  RunSpec only = sweep.point(static_cast<size_t>(point));
  only.config.sweep.ranks_per_run = 0;
  sweep = Sweep(only, sweep.notes());
}

// Both halves of a parallel pretraining have ranks, and each splits the run's global batch over
// its own.
void require_pretraining_halves(const RunSpec& spec, int ranks) {
  const auto& train = spec.config.train;
  if (train.pretrain != trainer::PretrainSchedule::kParallel) return;
  for (const auto half : {trainer::PretrainHalf::kVae, trainer::PretrainHalf::kPixelCnn}) {
    std::pair<int, int> range;
    try {
      range = trainer::half_ranks(half, ranks, train.pretrain_vae_ranks);
    } catch (const std::invalid_argument& e) {
      throw ConfigError("run " + spec.name + ": " + e.what());
    }
    const auto [first, last] = range;
    if (train.batch_size % (last - first + 1) != 0) {
      throw ConfigError(
          "run " + spec.name + ": train.pretrain: parallel gives " + trainer::half_name(half) +
          " " + std::to_string(last - first + 1) + " of the run's " + std::to_string(ranks) +
          " ranks, which do not divide train.batch_size = " + std::to_string(train.batch_size));
    }
  }
}

// One GPU per node-local rank when there are GPUs; NCCL for CUDA tensors, MPI otherwise.
// Throws ConfigError when cluster.backend asks for NCCL that this build or node lacks.
std::unique_ptr<cluster::Communicator> make_communicator(const cluster::MpiRuntime& mpi,
                                                         const cluster::MpiGroup& group_comm,
                                                         const cluster::ClusterOptions& options,
                                                         const std::string& config_file,
                                                         torch::Device& device) {
  const auto& where = mpi.placement();
  device = torch::kCPU;
  if (options.backend != cluster::Backend::kMpi && torch::cuda::is_available()) {
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(
                                             where.local_rank % torch::cuda::device_count()));
  }
#if defined(AGAVE_WITH_NCCL)
  if (device.is_cuda()) {
    return cluster::make_nccl_communicator(group_comm.comm(), device.index(),
                                           options.timeout_seconds);
  }
#endif
  if (options.backend == cluster::Backend::kNccl) {
    throw ConfigError(config_file +
                      ": cluster.backend: nccl needs a CUDA build with NCCL and a GPU; this " +
                      "build/node has " + (torch::cuda::is_available() ? "no NCCL" : "no GPU"));
  }
  // A CUDA LibTorch without NCCL: MPI reduces host tensors only, so train on the host.
  device = torch::kCPU;
  return cluster::make_mpi_communicator(group_comm.comm(), options.timeout_seconds);
}

Job load_job(const JobRequest& request) {
  Job job;
  // A sweep's points are expanded lazily: each rank expands the points it trains (load_sweep
  // validates every value of every axis, and the run folders they name, all the same).
  job.sweep = load_sweep(request.config_file, request.overrides);
  if (request.sweep_point >= 0)
    keep_only_point(job.sweep, request.sweep_point, request.config_file);
  job.resume = checkpoint::ResumeRequest::parse(request.resume);
  // A folder that is not there is as often a misspelt keyword as a wrong path: say both now,
  // before MPI starts, rather than "no complete checkpoint there" from inside the job.
  if (job.resume.mode == checkpoint::ResumeRequest::Mode::kFolder &&
      !std::filesystem::exists(job.resume.folder)) {
    throw ConfigError("--resume " + job.resume.folder +
                      ": no such folder; expected auto, never or a checkpoint folder");
  }
  job.allow_config_change = request.allow_config_change;
  job.faults = trainer::fault_hooks_from_environment();
  // Every rank checks, like any config error, so the job fails with one line and code 2
  // instead of rank 0 failing alone in the conversion with the others waiting for it.
  if (!request.print_config && !request.dry_run) {
    require_data_source(job.sweep.first().config.data, request.config_file);
    require_free_metrics_port(job.sweep, request.config_file);
  }
  return job;
}

std::string resolved_configs(const Sweep& sweep) {
  const auto all = sweep.all();
  std::string out;
  for (const auto& r : all) {
    if (all.size() > 1) out += "--- # run " + r.name + "\n";
    out += to_yaml_string(r.config);
  }
  return out;
}

// The paper's three axes that no run of the sweep was given a label for (not in the grid), with
// their configured values: shown once above the table, whose columns are the keys that
// distinguish the runs (a grid axis of one value is a constant too; sweep_table adds those).
std::vector<std::pair<std::string, std::string>> sweep_constants(
    const Config& c, const std::vector<monitoring::SweepRow>& rows) {
  std::set<std::string> swept;
  for (const auto& r : rows)
    for (const auto& [key, value] : r.labels) swept.insert(key);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : trainer::paper_axis_values(c.loss, c.model.aux())) {
    if (!swept.count(key)) out.emplace_back(key, value);
  }
  return out;
}

// The sweep's end on world rank 0, once every group has finished: the table of its runs from
// their summary.json (also <sweep>/sweep.csv) and sweep.png. A plot that cannot be drawn
// (gnuplot missing or failing) costs the picture, not the job: one warning line.
void finish_sweep(const Config& first) {
  const std::string sweep_dir = first.run.output_dir + "/" + first.run.name;
  std::vector<std::pair<std::string, std::string>> unreadable;
  const auto rows =
      monitoring::write_sweep_summary(sweep_dir, io::write_file_atomically, &unreadable);
  std::printf("\n%s", monitoring::sweep_table(rows, sweep_constants(first, rows)).c_str());
  for (const auto& [run_name, error] : monitoring::read_failed_runs(sweep_dir)) {
    std::printf("%-*s FAILED: %s\n", monitoring::kRunColumn, run_name.c_str(), error.c_str());
  }
  for (const auto& [run_name, error] : unreadable) {
    std::printf("%-*s UNREADABLE summary: %s\n", monitoring::kRunColumn, run_name.c_str(),
                error.c_str());
  }
  std::printf("sweep summary: %s/sweep.csv\n", sweep_dir.c_str());
  const std::string png = sweep_dir + "/sweep.png";
  try {
    monitoring::plot_sweep(rows, png, first.run.name);
    std::printf("sweep plot: %s\n", png.c_str());
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "agave_trainer: warning: " << png << " not written: " << e.what() << std::endl;
  }
  std::fflush(stdout);
}

void record_exit_code(ExitCode exit) {
  const char* file = std::getenv("AGAVE_EXIT_FILE");
  if (file == nullptr || *file == '\0') return;
  try {
    io::write_file_atomically(file, std::to_string(code(exit)) + "\n");
  } catch (const std::exception& e) {
    std::cerr << "agave_trainer: warning: AGAVE_EXIT_FILE: " << e.what() << std::endl;
  }
}

ExitCode run_job(const cluster::MpiRuntime& mpi, const JobRequest& request, const Job& job) {
  const Sweep& sweep = job.sweep;
  const Config& first = sweep.first().config;
  const auto& where = mpi.placement();
  // The communicator's worker, the job channel's service thread and the training thread all
  // call MPI at once.
  if (mpi.thread_level() < MPI_THREAD_MULTIPLE) {
    if (where.world_rank == 0) {
      std::cerr << "agave_trainer: error: this MPI grants thread level " << mpi.thread_level()
                << " but agave_trainer needs MPI_THREAD_MULTIPLE (" << MPI_THREAD_MULTIPLE
                << "); use an MPI built with thread support (Open MPI: the default)" << std::endl;
    }
    return ExitCode::kFailed;
  }
  const double timeout = first.cluster.timeout_seconds;
  cluster::JobChannel channel(MPI_COMM_WORLD, trainer::stop_requested(), timeout);
  if (where.world_rank == 0) std::cout << version::describe("agave_trainer") << std::endl;
  const auto threads = configure_torch_threads(first.cluster.threads_per_rank, where.local_size);
  std::cout << "agave_trainer: " << describe(threads, where.hostname, where.world_rank)
            << std::endl;
  // Once for the job: the ranks are bound alike.
  if (where.world_rank == 0 && !binding_warning(threads).empty()) {
    std::cerr << "agave_trainer: " << binding_warning(threads) << std::endl;
  }
  const auto allocator = reuse_freed_tensor_memory();
  if (where.world_rank == 0) std::cout << "agave_trainer: " << allocator << std::endl;
  SweepPlan plan;
  std::unique_ptr<cluster::Communicator> comm;
  torch::Device device = torch::kCPU;
  int group = 0;
  std::unique_ptr<cluster::MpiGroup> group_comm;
  try {
    plan = plan_sweep(sweep, where.world_size);
    group = plan.group_of(where.world_rank);
    group_comm = mpi.world().split(group, where.world_rank);
    if (request.dry_run) {
      print_dry_run(mpi, plan, group, *group_comm, sweep.all());
      return ExitCode::kOk;
    }
    if (!ensure_data(mpi, channel, {first.data}, timeout)) {
      if (where.world_rank == 0) {
        say_stopped("before training");
      }
      return ExitCode::kStopped;
    }
    comm = make_communicator(mpi, *group_comm, first.cluster, request.config_file, device);
  } catch (const ConfigError& e) {
    if (where.world_rank == 0) std::cerr << "agave_trainer: error: " << e.what() << "\n";
    return ExitCode::kUserError;
  }
  // Prometheus finds this job's exporters there whatever ports they take (docs/metrics.md).
  monitoring::write_targets_into(first.run.output_dir + "/prometheus_targets");
  auto halves = std::make_unique<PretrainingHalves>(mpi, *group_comm, *comm, first.cluster,
                                                    request.config_file);
  const auto outcome = train_group(sweep, plan, group, *group_comm, *comm, std::ref(*halves), job,
                                   mpi.placement(), device, timeout);
  halves.reset();
  comm.reset();
  // Every group's outcome, on every rank: a stop anywhere makes the job exit 75 (checkpointed,
  // requeue), so the job script requeues whatever a group left unfinished.
  const auto agreed =
      channel.agree_max({outcome.stopped ? 1 : 0, code(outcome.exit_code), outcome.refused ? 1 : 0},
                        "end-of-job agreement");
  if (agreed[0] > 0) {
    if (where.world_rank == 0) {
      say_stopped("after a checkpoint");
    }
    return ExitCode::kStopped;
  }
  if (where.world_rank == 0 && sweep.size() > 1) {
    if (agreed[2] > 0) {
      std::cerr << "agave_trainer: the sweep table is left as it is: another job holds a run of "
                   "this sweep"
                << std::endl;
    } else {
      finish_sweep(first);
    }
  }
  return static_cast<ExitCode>(agreed[1]);
}

}  // namespace agave::launcher
