// agave_trainer: trains every run of a config (or sweep) on the ranks of an MPI job.
//   mpirun -np N agave_trainer [--dry-run] [--print-config] [--set key=value]... CONFIG
// The job itself is launcher/job.h; exit codes are launcher/exit_code.h.
#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>
#include <string>

#include "cluster/mpi_runtime.h"
#include "launcher/config_error.h"
#include "launcher/entry_point.h"
#include "launcher/failure_file.h"
#include "launcher/job.h"
#include "version/version.h"

namespace {

using namespace agave::launcher;

// `key=value` as a bare argument (Hydra's habit) is what --set is for: one hint line naming it.
void hint_at_set(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool set_value = i > 1 && std::string(argv[i - 1]) == "--set";
    if (!set_value && arg.find('=') != std::string::npos && arg.rfind("-", 0) != 0) {
      std::cerr << "agave_trainer: hint: config keys are set with --set " << arg << std::endl;
      return;
    }
  }
}

std::optional<int> parse_arguments(int argc, char** argv, JobRequest& r) {
  CLI::App app{"agave_trainer: train AGAVE (VAE + conditional PixelCNN++) on an MPI job"};
  app.set_version_flag("--version", agave::version::describe("agave_trainer"));
  app.add_option("config", r.config_file, "YAML config (run, data, model, ..., sweep)")->required();
  app.add_option("--set", r.overrides, "override a key, e.g. --set loss.lambda=4 (repeatable)");
  int64_t steps = 0;
  app.add_option("--steps", steps,
                 "train N steps in all: --set train.steps=N, which scales the phases to N "
                 "(a quick trial)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--dry-run", r.dry_run, "print which ranks train which runs, and train nothing");
  app.add_flag("--print-config", r.print_config, "print the fully resolved config and exit");
  app.add_option("--resume", r.resume,
                 "auto: continue from the newest complete checkpoint of each run (default); "
                 "never: start fresh; or a checkpoint folder")
      ->capture_default_str();
  app.add_flag("--allow-config-change", r.allow_config_change,
               "continue a run although this config changes what it trained (loss, model, data, "
               "optimizer, earlier phases); the change is recorded in config_history.jsonl");
  app.add_option("--sweep-point", r.sweep_point,
                 "train only sweep point I (run I of --dry-run) on all ranks of the job; for "
                 "Slurm job arrays")
      ->check(CLI::NonNegativeNumber);
  const auto code = parse_command_line(app, argc, argv);
  if (code && *code != 0 && launcher_rank() == 0) hint_at_set(argc, argv);
  // Last, so it wins over a --set train.steps.
  if (steps > 0) r.overrides.push_back("train.steps=" + std::to_string(steps));
  return code;
}

// Everything that can be wrong with the config and the arguments is found before MPI starts or
// any file is written: one line on the launcher's rank 0, exit code 2.
int run(int argc, char** argv) {
  // Before anything slow: a preemption signal that arrives early must not kill the rank.
  install_stop_signals();
  JobRequest request;
  if (const auto code = parse_arguments(argc, argv, request)) return *code;
  Job job;
  try {
    job = load_job(request);
  } catch (const RankConfigError& e) {
    std::cerr << "agave_trainer: error: rank " << launcher_rank() << ": " << e.what() << "\n";
    return code(ExitCode::kUserError);
  } catch (const std::exception& e) {  // ConfigError, invalid_argument
    if (launcher_rank() == 0) std::cerr << "agave_trainer: error: " << e.what() << "\n";
    return code(ExitCode::kUserError);
  }
  if (launcher_rank() == 0) {
    for (const auto& note : job.sweep.notes()) std::cerr << "agave_trainer: " << note << "\n";
  }
  if (request.print_config) {
    if (launcher_rank() == 0) std::cout << resolved_configs(job.sweep);
    return code(ExitCode::kOk);
  }
  // Before MPI starts: its start-up collectives are bounded by the same timeout.
  agave::cluster::set_timeout_handler([](const std::string& line) {
    record_failure(line);
    end_job_on_timeout("agave_trainer", line);
  });
  agave::cluster::MpiRuntime mpi(&argc, &argv, job.sweep.first().config.cluster.timeout_seconds);
  const ExitCode exit = run_job(mpi, request, job);
  if (mpi.placement().world_rank == 0) record_exit_code(exit);
  return code(exit);
}

}  // namespace

int main(int argc, char** argv) {
  return guarded_main("agave_trainer", [&] { return run(argc, argv); });
}
