#include "elastic/supervisor.h"

#include <signal.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "elastic/child_process.h"

namespace agave::elastic {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
// How long a job asked to stop may take to checkpoint before the grace periods start: a
// paper-scale checkpoint of a big job takes tens of seconds; Slurm's KillWait is 30 s by default.
constexpr std::chrono::seconds kStopAllowance{300};

volatile std::sig_atomic_t g_signal = 0;     // the stop signal not yet passed on
volatile std::sig_atomic_t g_signalled = 0;  // any stop signal arrived

void on_stop_signal(int sig) {
  g_signal = sig;
  g_signalled = 1;
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) throw std::runtime_error(path.string() + ": cannot write");
}

std::optional<int> read_exit_code(const fs::path& path) {
  const auto text = read_file(path);
  if (!text) return std::nullopt;
  try {
    return std::stoi(*text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Every report in `dir`, agreed on; nullopt when there is none. Reports are written atomically,
// so only their final names count (a rank killed mid-write leaves a temporary file, which must
// not vote); a report that still does not parse means failure all the same.
std::optional<FailureReport> read_failures(const fs::path& dir) {
  std::vector<FailureReport> reports;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!is_failure_file_name(entry.path().filename().string())) continue;
    const auto text = read_file(entry.path());
    if (!text) continue;
    try {
      reports.push_back(parse_failure_report(*text));
    } catch (const std::exception& e) {
      FailureReport unreadable;
      unreadable.line = e.what();
      reports.push_back(unreadable);
    }
  }
  if (reports.empty()) return std::nullopt;
  return agreed_failure(reports);
}

bool has_reports(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (is_failure_file_name(entry.path().filename().string())) return true;
  }
  return false;
}

// The hosts a failure names: those of its ranks under the placement, and hosts named directly
// (hostnames, where the hostfile may give addresses).
std::set<std::string> hosts_to_exclude(const FailureReport& f, const std::vector<Host>& placement) {
  std::set<std::string> out;
  for (int r : f.ranks) {
    const auto host = host_of_rank(placement, r);
    if (!host.empty()) out.insert(host);
  }
  for (const auto& h : placement) {
    for (const auto& named : f.hosts)
      if (named == h.name) out.insert(h.name);
  }
  return out;
}

int slots_of(const std::vector<Host>& hosts) {
  int n = 0;
  for (const auto& h : hosts) n += h.slots;
  return n;
}

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

void forward_stop_signals() {
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) std::signal(sig, on_stop_signal);
}

bool stop_signalled() { return g_signalled != 0; }

int job_exit_code(bool failure_reported, std::optional<int> agreed, int mpirun_code) {
  if (failure_reported) return 1;
  if (agreed) return *agreed;
  return mpirun_code == 2 ? 2 : 1;
}

const char* cause_name(FailureCause c) {
  switch (c) {
    case FailureCause::kPeerLost:
      return "peer_lost";
    case FailureCause::kJobFailed:
      return "job_failed";
    case FailureCause::kDiscoveryFailed:
      return "discovery_failed";
    default:
      return "mpirun_failed";
  }
}

FailureCause failure_cause(bool failure_reported, bool agreed_code) {
  if (failure_reported) return FailureCause::kPeerLost;
  return agreed_code ? FailureCause::kJobFailed : FailureCause::kMpirunFailed;
}

bool passes_through(int code) { return code == 0 || code == 2 || code == 75; }

std::string describe(const FailureReport& f) {
  std::string who;
  for (size_t i = 0; i < f.ranks.size(); ++i) {
    who += (who.empty() ? "" : ", ") + std::string("rank ") + std::to_string(f.ranks[i]);
    if (i < f.hosts.size()) who += " (" + f.hosts[i] + ")";
  }
  std::string out = (who.empty() ? std::string("a peer") : who) + " did not answer";
  if (!f.collective.empty()) out += " in " + f.collective;
  if (f.step >= 0 && f.collective.find(" at step ") == std::string::npos) {
    out += " at step " + std::to_string(f.step);
  }
  return out;
}

int supervise(const SupervisorOptions& o, std::ostream& log) {
  std::set<std::string> excluded;
  std::string previous = "first start";
  int restarts = 0;
  // One more failure: true while the restart budget lasts, else the line that ends the job.
  auto may_restart = [&](int generation, FailureCause cause, const std::string& why) {
    previous = "generation " + std::to_string(generation) + " failed: " + why;
    if (restarts == o.max_restarts) {
      log << "agave_elastic: error: restart budget of " << o.max_restarts << " spent; generation "
          << generation << " failed: " << why << std::endl;
      return false;
    }
    ++restarts;
    if (o.on_restart) o.on_restart(cause);
    return true;
  };
  // A stop asked for between generations (a preemption during discovery): no new mpirun; the
  // newest complete checkpoint is where the job goes on, as after a stop during one.
  auto stopped_before = [&](int generation) {
    log << "agave_elastic: stopped by a signal before generation " << generation
        << " started; started again, the job resumes from its newest complete checkpoint"
        << std::endl;
    return 75;
  };
  for (int generation = 1;; ++generation) {
    if (stop_signalled()) return stopped_before(generation);
    std::vector<Host> hosts;
    try {
      hosts = without(o.discover(), excluded);
    } catch (const std::exception& e) {
      const std::string why = std::string("host discovery failed: ") + e.what();
      if (!may_restart(generation, FailureCause::kDiscoveryFailed, why)) return 1;
      log << "agave_elastic: generation " << generation << ": " << why << "; trying again"
          << std::endl;
      std::this_thread::sleep_for(std::chrono::duration<double>(o.retry_pause_seconds));
      continue;
    }
    if (stop_signalled()) return stopped_before(generation);
    const std::string excluded_note = excluded.empty() ? "" : " (excluded: " + join(excluded) + ")";
    const auto ranks = choose_ranks(o.ranks, slots_of(hosts), o.global_batch);
    if (!ranks) {
      log << "agave_elastic: error: generation " << generation << ": live hosts " << names(hosts)
          << excluded_note << " hold " << slots_of(hosts) << " slot(s): no rank count in "
          << o.ranks.min << ".." << o.ranks.max << " that divides the global batch "
          << o.global_batch << "; giving up after " << restarts
          << " restart(s); previous: " << previous << std::endl;
      return 1;
    }
    Plan plan{generation, *ranks, place(hosts, *ranks)};
    log << "agave_elastic: generation " << generation << ": hosts " << names(plan.placement)
        << excluded_note << ", " << *ranks << " rank(s), resuming from " << o.resume_point()
        << "; previous: " << previous << std::endl;
    if (o.on_generation) o.on_generation(plan, excluded.size());
    const GenerationEnd end = o.run(plan);
    if (passes_through(end.code)) return end.code;
    if (stop_signalled()) {
      log << "agave_elastic: error: stopped by a signal; generation " << generation
          << " ended: " << end.why << std::endl;
      return end.code;
    }
    if (end.failure) {
      for (const auto& h : hosts_to_exclude(*end.failure, plan.placement)) excluded.insert(h);
    }
    if (!may_restart(generation, end.cause, end.why)) return 1;
  }
}

GenerationEnd run_with_mpirun(const Plan& plan, const std::vector<std::string>& mpirun,
                              const std::vector<std::string>& command, const std::string& state_dir,
                              double grace_seconds) {
  const fs::path dir(state_dir);
  const std::string g = std::to_string(plan.generation);
  const fs::path hosts = dir / ("hostfile-" + g), exit_file = dir / ("exit-" + g),
                 failures = dir / ("failures-" + g);
  fs::remove(exit_file);
  fs::remove_all(failures);
  fs::create_directories(failures);
  write_file(hosts, hostfile(plan.placement));
  std::vector<std::string> argv = mpirun;
  for (const std::string& a :
       {std::string("--hostfile"), hosts.string(), std::string("-np"), std::to_string(plan.ranks),
        std::string("-x"), std::string(kExitFileVariable), std::string("-x"),
        std::string(kFailureDirVariable), std::string("-x"), std::string(kGenerationVariable)})
    argv.push_back(a);
  argv.insert(argv.end(), command.begin(), command.end());
  ChildProcess job(argv, {{kExitFileVariable, exit_file.string()},
                          {kFailureDirVariable, failures.string()},
                          {kGenerationVariable, g}});
  const auto grace = std::chrono::duration<double>(grace_seconds);
  std::optional<Clock::time_point> told;  // when the job first wrote how it ended
  bool terminated = false;
  std::optional<int> mpirun_code;
  while (!(mpirun_code = job.poll())) {
    if (const int sig = g_signal) {
      g_signal = 0;
      job.signal_leader(sig);
      // The ranks now checkpoint and agree on 75; should none ever say so (a rank cut off),
      // the grace periods still end mpirun, kStopAllowance later.
      if (!told) told = Clock::now() + kStopAllowance;
    }
    if (!told && (has_reports(failures) || fs::exists(exit_file))) told = Clock::now();
    if (told && !terminated && Clock::now() > *told + grace) {
      job.signal(SIGTERM);
      terminated = true;
    }
    if (told && Clock::now() > *told + 2 * grace) job.signal(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // What mpirun started locally and left behind (it was killed, or its ranks outlived it).
  kill(-job.pid(), SIGKILL);
  GenerationEnd end;
  end.failure = read_failures(failures);
  const auto agreed = read_exit_code(exit_file);
  end.code = job_exit_code(end.failure.has_value(), agreed, *mpirun_code);
  end.cause = failure_cause(end.failure.has_value(), agreed.has_value());
  end.why = end.failure ? describe(*end.failure)
                        : "mpirun exited " + std::to_string(*mpirun_code) +
                              (fs::exists(exit_file) ? "" : " without an agreed exit code");
  return end;
}

}  // namespace agave::elastic
