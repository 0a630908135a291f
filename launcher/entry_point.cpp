#include "launcher/entry_point.h"

#include <mpi.h>

#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <iostream>

#include "io/errors.h"

namespace agave::launcher {
namespace {

bool mpi_is_up() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

// The first of the launcher's variables that is set, else `fallback`.
int first_set(std::initializer_list<const char*> names, int fallback) {
  for (const char* v : names) {
    if (const char* s = std::getenv(v)) return std::atoi(s);
  }
  return fallback;
}

}  // namespace

int launcher_rank() {
  return first_set({"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}, 0);
}

int launcher_local_rank() {
  return first_set(
      {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK", "SLURM_LOCALID"}, 0);
}

int launcher_world_size() {
  return first_set({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}, 1);
}

std::string rank_prefix() {
  if (!mpi_is_up()) return "";
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return "rank " + std::to_string(rank) + ": ";
}

void abort_job(ExitCode c) {
  if (mpi_is_up()) MPI_Abort(MPI_COMM_WORLD, code(c));
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (launcher_rank() == 0) app.exit(e);
    return e.get_exit_code() == 0 ? code(ExitCode::kOk) : code(ExitCode::kUserError);
  }
  return std::nullopt;
}

int guarded_main(const char* program, const std::function<int()>& body) {
  ExitCode exit = ExitCode::kFailed;
  try {
    return body();
  } catch (const io::BadDataError& e) {
    // Malformed or corrupt data (a field out of bounds, a checksum mismatch): the user's to
    // fix, as for a bad config.
    std::cerr << program << ": error: " << rank_prefix() << e.what() << std::endl;
    exit = ExitCode::kUserError;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << rank_prefix() << e.what() << std::endl;
  }
  abort_job(exit);
  return code(exit);
}

void end_job_on_timeout(const std::string& program, const std::string& line) {
  std::cerr << program << ": error: " << line << std::endl;
  abort_job(ExitCode::kFailed);
  std::_Exit(code(ExitCode::kFailed));
}

}  // namespace agave::launcher
