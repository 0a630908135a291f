#include "elastic/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace agave::elastic {
namespace {

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// argv and the environment as exec wants them: pointers into strings that outlive the exec.
struct ExecArgs {
  std::vector<std::string> env;  // KEY=VALUE
  std::vector<char*> argv, envp;
};

// This process's environment with `overrides` set, and `argv`; made before fork, because the
// child of a process with threads (the metrics exposer's) may only make async-signal-safe calls,
// and setenv in the parent would race those threads' getenv.
ExecArgs exec_args(const std::vector<std::string>& argv,
                   const std::vector<std::pair<std::string, std::string>>& overrides) {
  ExecArgs e;
  for (char** v = environ; *v != nullptr; ++v) {
    const std::string entry(*v);
    const std::string key = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& o : overrides) overridden = overridden || o.first == key;
    if (!overridden) e.env.push_back(entry);
  }
  for (const auto& [key, value] : overrides) e.env.push_back(key + "=" + value);
  for (const auto& a : argv) e.argv.push_back(const_cast<char*>(a.c_str()));
  e.argv.push_back(nullptr);
  for (auto& v : e.env) e.envp.push_back(v.data());
  e.envp.push_back(nullptr);
  return e;
}

// `stdout_fd` >= 0: the child's standard output.
pid_t start(const std::vector<std::string>& argv,
            const std::vector<std::pair<std::string, std::string>>& environment, int stdout_fd) {
  if (argv.empty()) throw std::runtime_error("no command to start");
  ExecArgs e = exec_args(argv, environment);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {  // only async-signal-safe calls from here to exec
    setpgid(0, 0);
    if (stdout_fd >= 0) dup2(stdout_fd, STDOUT_FILENO);
    execvpe(e.argv[0], e.argv.data(), e.envp.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also here: no signal may reach the group before the child sets it
  return pid;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::vector<std::pair<std::string, std::string>>& environment)
    : pid_(start(argv, environment, -1)) {}

ChildProcess::~ChildProcess() {
  if (status_) return;
  signal(SIGKILL);
  // bound: SIGKILLed just above; the kernel reaps it at once.
  waitpid(pid_, nullptr, 0);
}

std::optional<int> ChildProcess::poll() {
  if (status_) return status_;
  int status = 0;
  // bound: WNOHANG, never blocks.
  if (waitpid(pid_, &status, WNOHANG) == pid_) status_ = exit_code_of(status);
  return status_;
}

void ChildProcess::signal(int sig) {
  if (status_) return;
  // The group: mpirun's local ranks go with it even when mpirun itself is stuck.
  kill(-pid_, sig);
  kill(pid_, sig);
}

void ChildProcess::signal_leader(int sig) {
  if (!status_) kill(pid_, sig);
}

std::string output_of(const std::string& command, double timeout_seconds) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = start({"/bin/sh", "-c", command}, {}, fds[1]);
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::string out;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  int status = 0;
  bool ended = false;
  while (!ended) {
    char buf[4096];
    ssize_t n = 0;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    // bound: WNOHANG, polled until the deadline below.
    ended = waitpid(pid, &status, WNOHANG) == pid;
    if (!ended && std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      // bound: SIGKILLed just above.
      waitpid(pid, &status, 0);
      close(fds[0]);
      throw std::runtime_error("'" + command + "' did not finish within " +
                               std::to_string(static_cast<int>(timeout_seconds)) + " s");
    }
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (char buf[4096];;) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (exit_code_of(status) != 0) {
    throw std::runtime_error("'" + command + "' exited " + std::to_string(exit_code_of(status)));
  }
  return out;
}

}  // namespace agave::elastic
