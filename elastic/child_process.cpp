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

// After fork, in the child: only async-signal-safe calls, then exec.
[[noreturn]] void exec_child(const std::vector<std::string>& argv, int stdout_fd) {
  setpgid(0, 0);
  if (stdout_fd >= 0) dup2(stdout_fd, STDOUT_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  _exit(127);
}

pid_t start(const std::vector<std::string>& argv, int stdout_fd) {
  if (argv.empty()) throw std::runtime_error("no command to start");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) exec_child(argv, stdout_fd);
  setpgid(pid, pid);  // also here: no signal may reach the group before the child sets it
  return pid;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::vector<std::pair<std::string, std::string>>& environment) {
  // The supervisor is single-threaded: setting its own environment before fork is safe.
  for (const auto& [key, value] : environment) setenv(key.c_str(), value.c_str(), 1);
  pid_ = start(argv, -1);
  for (const auto& [key, value] : environment) unsetenv(key.c_str());
}

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
  const pid_t pid = start({"/bin/sh", "-c", command}, fds[1]);
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
