// agave_trainer: trains every run of a config (or sweep) on the ranks of an MPI job.
//   mpirun -np N agave_trainer [--dry-run] [--print-config] [--set key=value]... CONFIG
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/communicator.h"
#include "cluster/mpi_runtime.h"
#include "data/convert.h"
#include "data/errors.h"
#include "launcher/config.h"
#include "launcher/config_error.h"
#include "launcher/sweep_plan.h"
#include "launcher/torch_threads.h"
#include "monitoring/progress_bar.h"
#include "monitoring/sweep_summary.h"
#include "trainer/sharded_checkpoint.h"
#include "trainer/trainer.h"

namespace {

using namespace agave;

// The launcher's rank, known before MPI_Init so config errors print once, not once per rank.
int launcher_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (const char* s = std::getenv(v)) return std::atoi(s);
  }
  return 0;
}

std::string rank_prefix() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (!init || fin) return "";
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return "rank " + std::to_string(rank) + ": ";
}

void abort_job(int code) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Abort(MPI_COMM_WORLD, code);
}

// Exit code after a requested stop (SIGTERM, SIGUSR1) with a checkpoint written: the job is
// incomplete and resumes from that checkpoint when started again (EX_TEMPFAIL).
constexpr int kStoppedExit = 75;

extern "C" void on_stop_signal(int) {
  // Only a flag: the ranks agree on it at the next step, checkpoint and exit together.
  agave::trainer::Trainer::stop_requested().store(true);
}

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

int run(int argc, char** argv) {
  CLI::App app{"agave_trainer: train AGAVE (VAE + conditional PixelCNN++) on an MPI job"};
  std::string config_file;
  std::vector<std::string> overrides;
  bool dry_run = false;
  bool print_config = false;
  std::string resume = "auto";
  int64_t sweep_point = -1;
  app.add_option("config", config_file, "YAML config (run, data, model, ..., sweep)")->required();
  app.add_option("--set", overrides, "override a key, e.g. --set loss.lambda=4 (repeatable)");
  app.add_flag("--dry-run", dry_run, "print which ranks train which runs, and train nothing");
  app.add_flag("--print-config", print_config, "print the fully resolved config and exit");
  app.add_option("--resume", resume,
                 "auto: continue from the newest complete checkpoint of each run (default); "
                 "never: start fresh; or a checkpoint folder")
      ->capture_default_str();
  app.add_option("--sweep-point", sweep_point,
                 "train only sweep point I (run I of --dry-run) on all ranks of the job; for "
                 "Slurm job arrays");
  // Before anything slow: a preemption signal that arrives early must not kill the rank.
  install_stop_signals();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (launcher_rank() == 0) app.exit(e);
    return e.get_exit_code() == 0 ? 0 : launcher::kConfigErrorExit;
  }

  // Everything that can be wrong with the config is found here, before MPI starts or any
  // file is written.
  // A sweep's points are expanded lazily: each rank expands the points it trains (load_sweep
  // validates every value of every axis here all the same).
  launcher::Sweep runs;
  try {
    runs = launcher::load_sweep(config_file, overrides);
    if (sweep_point >= 0) {
      if (sweep_point >= static_cast<int64_t>(runs.size())) {
        if (launcher_rank() == 0) {
          std::cerr << "agave_trainer: error: --sweep-point " << sweep_point << ": " << config_file
                    << " has " << runs.size() << " sweep point(s) (0-" << runs.size() - 1 << ")\n";
        }
        return launcher::kConfigErrorExit;
      }
      launcher::RunSpec only = runs.point(static_cast<size_t>(sweep_point));
      only.config.sweep.ranks_per_run = 0;  // every rank of this job trains the one point
      runs = launcher::Sweep(only);
    }
    if (print_config) {
      const auto all = runs.all();
      if (launcher_rank() == 0) {
        for (const auto& r : all) {
          if (all.size() > 1) std::cout << "--- # run " << r.name << "\n";
          std::cout << launcher::to_yaml_string(r.config);
        }
      }
      return 0;
    }
  } catch (const launcher::ConfigError& e) {
    if (launcher_rank() == 0) std::cerr << "agave_trainer: error: " << e.what() << "\n";
    return launcher::kConfigErrorExit;
  }

  if (resume.empty()) {
    if (launcher_rank() == 0) std::cerr << "agave_trainer: error: --resume: must not be empty\n";
    return launcher::kConfigErrorExit;
  }
  cluster::MpiRuntime mpi(&argc, &argv);
  const auto& where = mpi.placement();
  launcher::configure_torch_threads(runs.first().config.cluster.threads_per_rank, where.local_size);
  launcher::SweepPlan plan;
  try {
    plan = launcher::plan_sweep(runs, where.world_size);
  } catch (const launcher::ConfigError& e) {
    if (where.world_rank == 0) std::cerr << "agave_trainer: error: " << e.what() << "\n";
    return launcher::kConfigErrorExit;
  }
  const int group = plan.group_of(where.world_rank);
  const auto group_comm = mpi.world().split(group, where.world_rank);

  if (dry_run) {
    // Each rank reports what it will do from its own split communicator, so the printed plan
    // is what the ranks really decided, not what rank 0 assumes.
    std::string mine = "rank " + std::to_string(where.world_rank) + " (" + where.hostname +
                       ", local " + std::to_string(where.local_rank) + "/" +
                       std::to_string(where.local_size) + "): group " + std::to_string(group) +
                       " rank " + std::to_string(group_comm->rank()) + "/" +
                       std::to_string(group_comm->size()) + ", runs:";
    std::vector<launcher::RunSpec> all;
    try {
      all = runs.all();
    } catch (const launcher::ConfigError& e) {
      if (where.world_rank == 0) std::cerr << "agave_trainer: error: " << e.what() << "\n";
      return launcher::kConfigErrorExit;
    }
    for (size_t r : plan.groups[group].runs) mine += " " + all[r].name;
    const auto lines = mpi.world().gather(mine);
    if (where.world_rank == 0) {
      std::cout << launcher::describe_plan(plan, all);
      for (const auto& l : lines) std::cout << l << "\n";
      std::cout << "dry run: nothing trained, nothing written\n";
    }
    return 0;
  }

  // Data shards are shared by every run: world rank 0 converts what is missing (under a file
  // lock, so jobs sharing a file system convert once) while the others wait.
  // Points are not expanded here (a sweep over data keys is rare): the first point's data, and
  // each run's own before it trains (below; a no-op when its shards are there).
  auto ensure_data = [](const data::DataOptions& options) {
    std::unique_ptr<monitoring::ProgressBar> bar;
    std::string stage;
    data::ensure_shards(options, [&](const data::Progress& p) {
      if (!bar) {
        bar = std::make_unique<monitoring::ProgressBar>(p.stage, p.total);
      } else if (p.stage != stage) {
        bar->restart(p.stage, p.total);
      }
      stage = p.stage;
      bar->update(p.done);
    });
  };
  if (where.world_rank == 0) ensure_data(runs.first().config.data);
  mpi.world().barrier();

  // One GPU per node-local rank when there are GPUs; NCCL for CUDA tensors, MPI otherwise.
  const auto& cluster_options = runs.first().config.cluster;
  torch::Device device = torch::kCPU;
  if (cluster_options.backend != cluster::Backend::kMpi && torch::cuda::is_available()) {
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(
                                             where.local_rank % torch::cuda::device_count()));
  }
  std::unique_ptr<cluster::Communicator> comm;
  if (device.is_cuda()) {
#if defined(AGAVE_WITH_NCCL)
    comm = cluster::make_nccl_communicator(group_comm->comm(), device.index(),
                                           cluster_options.timeout_seconds);
#endif
  }
  if (!comm) {
    if (cluster_options.backend == cluster::Backend::kNccl) {
      if (where.world_rank == 0) {
        std::cerr << "agave_trainer: error: " << config_file
                  << ": cluster.backend: nccl needs a CUDA build with NCCL and a GPU; this "
                     "build/node has "
                  << (torch::cuda::is_available() ? "no NCCL" : "no GPU") << "\n";
      }
      return launcher::kConfigErrorExit;
    }
    if (device.is_cuda()) {
      // A CUDA LibTorch without NCCL: MPI reduces host tensors only, so train on the host.
      device = torch::kCPU;
    }
    comm = cluster::make_mpi_communicator(group_comm->comm(), cluster_options.timeout_seconds);
  }
  int exit_code = 0;
  for (size_t index : plan.groups[group].runs) {
    launcher::RunSpec spec;
    try {
      spec = runs.point(index);
    } catch (const launcher::ConfigError& e) {
      // Every value was validated on loading; an invalid combination fails this run alike on
      // all of its ranks (the same expansion), and the sweep goes on.
      if (group_comm->rank() == 0) std::cerr << "agave_trainer: error: " << e.what() << std::endl;
      exit_code = std::max(exit_code, launcher::kConfigErrorExit);
      continue;
    }
    const auto& c = spec.config;
    if (index != 0 && c.data.shards != runs.first().config.data.shards) {
      if (group_comm->rank() == 0) ensure_data(c.data);
      group_comm->barrier();
    }
    trainer::TrainerSetup setup;
    setup.run_name = spec.name;
    setup.output_dir = spec.output_dir;
    setup.seed = static_cast<uint64_t>(c.run.seed);
    setup.labels = spec.labels;
    setup.resolved_config = launcher::to_yaml_string(c);
    setup.data = c.data;
    setup.model = c.model;
    setup.loss = c.loss;
    setup.train = c.train;
    setup.eval = c.eval;
    setup.checkpoint = c.checkpoint;
    setup.monitoring = c.monitoring;
    setup.cluster = c.cluster;
    if (group_comm->rank() == 0) {
      std::cout << "agave_trainer: run " << spec.name << " on ranks "
                << plan.groups[group].first_rank << "-"
                << plan.groups[group].first_rank + plan.groups[group].size - 1 << " -> "
                << spec.output_dir << std::endl;
    }
    setup.resume = resume;
    setup.world_rank = where.world_rank;
    setup.device = device;
    trainer::TrainResult result;
    const std::string failed_file = spec.output_dir + "/failed.json";
    if (group_comm->rank() == 0) std::filesystem::remove(failed_file);
    // Failures that every rank of the run meets alike (the same checkpoint files, the same
    // agreed non-finite decision) end this run only: a sweep reports it and goes on. Anything
    // else may have left a rank behind in a collective and ends the job (main).
    std::string failure;
    int failure_exit = 1;
    try {
      result = trainer::Trainer(setup, *comm).run();
    } catch (const trainer::CheckpointError& e) {
      failure = e.what();
      failure_exit = launcher::kConfigErrorExit;
    } catch (const trainer::NonFiniteError& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      if (group_comm->rank() == 0) {
        std::cerr << "agave_trainer: error: " << failure << std::endl;
        if (runs.size() > 1) {
          std::filesystem::create_directories(spec.output_dir);
          std::ofstream(failed_file)
              << nlohmann::json{{"run", spec.name}, {"error", failure}}.dump() << "\n";
          std::cerr << "agave_trainer: run " << spec.name
                    << " failed; the sweep goes on with the next run" << std::endl;
        }
      }
      exit_code = std::max(exit_code, failure_exit);
      continue;
    }
    if (result.stopped) {
      // Checkpointed on request (preemption, time limit): the job script requeues on this code.
      if (where.world_rank == 0) {
        std::cerr << "agave_trainer: stopped on request after a checkpoint; exit " << kStoppedExit
                  << " (requeue to continue)" << std::endl;
      }
      comm.reset();
      return kStoppedExit;
    }
  }
  comm.reset();
  mpi.world().barrier();
  if (where.world_rank == 0 && runs.size() > 1) {
    // The sweep's table: one row per run from its summary.json, also as <sweep>/sweep.csv.
    const std::string sweep_dir =
        runs.first().config.run.output_dir + "/" + runs.first().config.run.name;
    const auto rows = monitoring::write_sweep_summary(sweep_dir);
    std::printf("\n%-44s %8s %6s %6s %10s %10s %10s\n", "run", "lambda", "aux", "bins", "elbo bpd",
                "iw bpd", "kl bpd");
    for (const auto& r : rows) {
      std::printf("%-44s %8s %6s %6s %10.4f %10.4f %10.4f\n", r.run.c_str(), r.lambda.c_str(),
                  r.aux_resolution.c_str(), r.color_bins.c_str(), r.test_elbo_bpd, r.test_iw_bpd,
                  r.test_kl_bpd);
    }
    for (const auto& [run_name, error] : monitoring::read_failed_runs(sweep_dir)) {
      std::printf("%-44s FAILED: %s\n", run_name.c_str(), error.c_str());
    }
    std::printf("sweep summary: %s/sweep.csv\n", sweep_dir.c_str());
  }
  return exit_code;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const agave::data::BadDataError& e) {
    // Malformed or corrupt data (a shard out of bounds, a checksum mismatch): the user's to fix,
    // exit code 2 as for a bad config. Other ranks may wait in a collective: end the job.
    std::cerr << "agave_trainer: error: " << rank_prefix() << e.what() << std::endl;
    abort_job(agave::launcher::kConfigErrorExit);
    return agave::launcher::kConfigErrorExit;
  } catch (const std::exception& e) {
    std::cerr << "agave_trainer: error: " << rank_prefix() << e.what() << std::endl;
    // Other ranks may be waiting in a collective for this one: end the whole job now.
    abort_job(1);
    return 1;
  }
}
