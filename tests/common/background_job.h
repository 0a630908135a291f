#pragma once
// A job started in the background, as an operator would start it, so a test can act on it
// while it runs (kill -STOP a rank, send SIGUSR1, start a second job) and time how it ends.
// Its output goes to <dir>/log; whatever the test's outcome, the destructor kills what is left.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace agave::testing {

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The pid of the child of `parent` whose environment says it is MPI rank `rank`, or -1.
inline int rank_pid(int parent, int rank) {
  namespace fs = std::filesystem;
  const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_text(e.path() / "stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2 || ppid != parent) {
      continue;
    }
    const std::string env = read_text(e.path() / "environ");
    for (size_t p = 0; p < env.size(); p = env.find('\0', p) + 1) {
      if (env.compare(p, want.size() + 1, want + '\0') == 0) return std::stoi(name);
      if (env.find('\0', p) == std::string::npos) break;
    }
  }
  return -1;
}

class BackgroundJob {
 public:
  using Clock = std::chrono::steady_clock;

  // Runs `command` (stdout and stderr to <dir>/log) with `ranks` MPI ranks to reap at the end.
  BackgroundJob(std::filesystem::path dir, const std::string& command, int ranks)
      : d_(std::move(dir)), ranks_(ranks) {
    std::filesystem::create_directories(d_);
    const std::string job = "(" + command + " > " + (d_ / "log").string() + " 2>&1 & echo $! > " +
                            (d_ / "pid").string() + "; wait $!; echo $? > " + (d_ / "rc").string() +
                            ") &";
    if (std::system(job.c_str()) != 0) return;
    for (int i = 0; i < 200 && pid() < 0; ++i) sleep_ms(50);
  }
  ~BackgroundJob() {
    if (done() || pid() < 0) return;
    for (int r = 0; r < ranks_; ++r) {
      if (const int p = rank_pid(pid(), r); p > 0) ::kill(p, SIGKILL);
    }
    ::kill(pid(), SIGKILL);
  }
  BackgroundJob(const BackgroundJob&) = delete;
  BackgroundJob& operator=(const BackgroundJob&) = delete;

  int pid() const {
    const std::string s = read_text(d_ / "pid");
    return s.empty() ? -1 : std::stoi(s);
  }
  int rank(int r) const { return pid() < 0 ? -1 : rank_pid(pid(), r); }
  bool done() const { return !read_text(d_ / "rc").empty(); }
  int code() const { return done() ? std::stoi(read_text(d_ / "rc")) : -1; }
  std::string log() const { return read_text(d_ / "log"); }

  // True once every piece is in the log, false after `seconds` or when the job ended without.
  bool wait_for_log(const std::vector<std::string>& pieces, double seconds) const {
    const auto t0 = Clock::now();
    while (since(t0) < seconds) {
      const std::string text = log();
      bool all = true;
      for (const auto& p : pieces) all = all && text.find(p) != std::string::npos;
      if (all) return true;
      if (done()) return false;
      sleep_ms(50);
    }
    return false;
  }
  // Seconds until the job ended (or `seconds` when it still runs).
  double wait_done(double seconds) const {
    const auto t0 = Clock::now();
    while (!done() && since(t0) < seconds) sleep_ms(50);
    return since(t0);
  }

  static double since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

 private:
  static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

  std::filesystem::path d_;
  int ranks_;
};

}  // namespace agave::testing
