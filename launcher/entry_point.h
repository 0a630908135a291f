#pragma once
// What every agave executable's `main` shares: which rank this process is before MPI starts,
// ending the whole MPI job from one rank, command-line errors, and the one policy that turns an
// exception into one line on stderr and an exit code (launcher/exit_code.h).
#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>

#include "launcher/exit_code.h"

namespace agave::launcher {

// The launcher's rank (Open MPI, PMI, PMIx or Slurm environment), known before MPI_Init so an
// argument or config error prints once, not once per rank; 0 outside a launcher.
int launcher_rank();
// The same launcher's node-local rank (0 outside one) and world size (1 outside one).
int launcher_local_rank();
int launcher_world_size();

// "rank N: " once MPI is up (and not finalized), else "".
std::string rank_prefix();

// MPI_Abort on the world when MPI is up: other ranks may be waiting in a collective for this
// one, and only an abort ends them. A no-op before MPI_Init and after MPI_Finalize.
void abort_job(ExitCode code);

// Parses the command line; an exit code when there is nothing more to do: --help and --version
// (0, printed on the launcher's rank 0), an argument error (kUserError, one line).
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// Runs `body` as `program`'s main: its return value is the exit code; an escaping exception is
// one line "<program>: error: [rank N: ]<what>" and ends the MPI job (if any) with
// kUserError for bad data (io::BadDataError) and kFailed for anything else.
int guarded_main(const char* program, const std::function<int()>& body);

// A collective (or a job-wide agreement) missed its deadline: one line, then the whole job ends
// here with kFailed. Unwinding instead would join threads still blocked in MPI and never get to
// an abort. For cluster::set_timeout_handler.
[[noreturn]] void end_job_on_timeout(const std::string& program, const std::string& line);

}  // namespace agave::launcher
