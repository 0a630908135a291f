#include "hdf5/header_probe.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "io/errors.h"

extern char** environ;

namespace agave::hdf5 {

namespace fs = std::filesystem;

std::string header_probe_executable() {
  std::error_code ec;
  // An explicit choice is the only one: a misspelt $AGAVE_H5PROBE must not quietly fall back.
  if (const char* env = std::getenv("AGAVE_H5PROBE"); env && *env) {
    return fs::exists(env, ec) ? env : "";
  }
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(self.parent_path() / "agave_h5probe", ec)) {
    return (self.parent_path() / "agave_h5probe").string();
  }
#ifdef AGAVE_H5PROBE_BUILT
  if (fs::exists(AGAVE_H5PROBE_BUILT, ec)) return AGAVE_H5PROBE_BUILT;
#endif
  return "";
}

namespace {

std::chrono::seconds deadline_of(const HeaderProbeOptions& o) {
  if (const char* env = std::getenv("AGAVE_H5PROBE_SECONDS")) {
    const long v = std::strtol(env, nullptr, 10);
    if (v > 0) return std::chrono::seconds(v);
  }
  return o.deadline;
}

// Waits for `pid` until `deadline`; kills it past that. The wait status, or nullopt on timeout.
// A status that cannot be learned is an error about `path`'s probe (fails closed).
std::optional<int> wait_until(pid_t pid, std::chrono::steady_clock::time_point deadline,
                              const std::string& path) {
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);  // bound: polled until `deadline`
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) {
      // Reaped by someone else (SIGCHLD ignored): how the probe ended is unknown, and libhdf5
      // must not read a header nobody vouched for.
      throw io::DataError(path, std::string("cannot learn how the header probe ended (waitpid: ") +
                                    std::strerror(errno) + "); the shard is not opened");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);  // bound: reaps a SIGKILLed child, which cannot refuse
      return std::nullopt;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace

namespace {

// Runs `agave_h5probe [MODE] PATH CAP` and turns its ending into an exception, or returns.
void run_probe(const char* mode, const std::string& path, const HeaderProbeOptions& options) {
  const std::string probe = header_probe_executable();
  if (probe.empty()) {
    throw io::DataError(path,
                        "agave_h5probe was not found (beside this program, $AGAVE_H5PROBE, or "
                        "the build folder): a shard's header is read by libhdf5 in this "
                        "process only after the probe has read it safely; build agave_h5probe");
  }
  // A parent that ignores SIGCHLD hands that to us, and the kernel would then reap the probe
  // before its status can be read: restore the default for this process (it waits for every
  // child it starts).
  struct sigaction current {};
  if (::sigaction(SIGCHLD, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGCHLD, &dfl, nullptr);
  }
  const auto seconds = deadline_of(options);
  const std::string cap = std::to_string(options.memory_bytes);
  std::vector<char*> argv = {const_cast<char*>(probe.c_str())};
  if (mode != nullptr) argv.push_back(const_cast<char*>(mode));
  argv.insert(argv.end(),
              {const_cast<char*>(path.c_str()), const_cast<char*>(cap.c_str()), nullptr});
  // The probe writes its error (if any) to a pipe: this process then throws it without reading
  // the file itself, since the probe's error may come from its memory cap.
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    throw io::DataError(
        path, std::string("cannot make a pipe for the header probe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int err = ::posix_spawn(&pid, probe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  struct CloseAtEnd {
    int fd;
    ~CloseAtEnd() { ::close(fd); }
  } reader{out[0]};
  if (err != 0) {
    throw io::DataError(
        path, "cannot start " + probe + " to read the header safely: " + std::strerror(err));
  }
  const auto status = wait_until(pid, std::chrono::steady_clock::now() + seconds, path);
  if (!status) {
    throw io::BadDataError(path, "libhdf5 did not finish reading the header within " +
                                     std::to_string(seconds.count()) +
                                     " s (in a separate process, which was killed): the file is "
                                     "corrupt or crafted");
  }
  if (WIFSIGNALED(*status)) {
    const int sig = WTERMSIG(*status);
    throw io::BadDataError(path, std::string("libhdf5 crashed reading the header (") +
                                     strsignal(sig) +
                                     ", in a separate process; this one is unharmed): the file is "
                                     "corrupt or crafted");
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) == 0) return;
  std::string message;
  char buf[4096];
  for (ssize_t n; (n = ::read(reader.fd, buf, sizeof(buf))) > 0;) message.append(buf, n);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  switch (WEXITSTATUS(*status)) {
    case kProbeBadData:
      throw io::BadDataError(path, message);
    case kProbeDataError:
      throw io::DataError(path, message);
    default:
      break;
  }
  if (WEXITSTATUS(*status) == kProbeOutOfMemory) {
    throw io::BadDataError(path, "libhdf5 ran out of its " +
                                     std::to_string(options.memory_bytes >> 20) +
                                     " MiB reading the header (in a separate process): the file is "
                                     "corrupt or crafted");
  }
  throw io::DataError(path, probe + " failed with exit code " +
                                std::to_string(WEXITSTATUS(*status)) +
                                (message.empty() ? "" : ": " + message));
}

}  // namespace

void probe_shard_header(const std::string& path, const HeaderProbeOptions& options) {
  run_probe(nullptr, path, options);
}

void probe_dataset_headers(const std::string& path, const HeaderProbeOptions& options) {
  run_probe(kProbeDatasetsMode, path, options);
}

}  // namespace agave::hdf5
