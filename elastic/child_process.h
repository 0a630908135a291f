#pragma once
// One child command in a process group of its own (mpirun and what it starts locally), watched
// without blocking and ended by its PID: SIGTERM, then SIGKILL.
#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace agave::elastic {

class ChildProcess {
 public:
  // Starts argv[0] (searched in PATH) with `environment` added to this process's. Throws
  // std::runtime_error when it cannot start.
  ChildProcess(const std::vector<std::string>& argv,
               const std::vector<std::pair<std::string, std::string>>& environment);
  ~ChildProcess();  // SIGKILLs the group if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The exit code (128 + signal when signalled) once it has ended; never blocks.
  std::optional<int> poll();
  // Signals the child's process group.
  void signal(int sig);
  // Signals the child alone (mpirun passes SIGTERM and SIGUSR1 on to its ranks).
  void signal_leader(int sig);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Runs `command` with /bin/sh -c and returns its standard output; throws std::runtime_error
// when it does not exit 0 within `timeout_seconds` (then it is killed).
std::string output_of(const std::string& command, double timeout_seconds);

}  // namespace agave::elastic
