// agave_elastic: runs `mpirun ... agave_trainer CONFIG` and, when a host is lost, starts it again
// on the live hosts from the newest complete checkpoint (elastic/supervisor.h has the policy).
//   agave_elastic --ranks MIN:MAX --max-restarts N (--hosts FILE | --discover CMD) [--grace S]
//                 [--mpirun "mpirun ARGS"] [--metrics-port P] -- agave_trainer CONFIG [ARGS]
#include <yaml-cpp/yaml.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint/sharded_checkpoint.h"
#include "elastic/child_process.h"
#include "elastic/elastic_metrics.h"
#include "elastic/supervisor.h"
#include "launcher/entry_point.h"
#include "monitoring/metrics_exporter.h"
#include "version/version.h"

namespace {

namespace fs = std::filesystem;
using namespace agave;

struct Arguments {
  std::string ranks;
  int max_restarts = 0;
  std::string hosts_file;
  std::string discover;
  double grace = 10;
  int64_t batch = -1;
  std::string mpirun = "mpirun";
  std::string state_dir;
  int metrics_port = -1;  // -1: not served
  std::string metrics_bind = "127.0.0.1";
  std::vector<std::string> command;
};

std::optional<int> parse_arguments(int argc, char** argv, Arguments& a) {
  CLI::App app{
      "agave_elastic: run an agave_trainer job with mpirun and, when hosts are lost, again on "
      "the live ones from the newest complete checkpoint"};
  app.set_version_flag("--version", version::describe("agave_elastic"));
  app.add_option("--ranks", a.ranks,
                 "MIN:MAX ranks (or N); the most the live hosts hold that "
                 "divide train.batch_size")
      ->required();
  app.add_option("--max-restarts", a.max_restarts, "restarts allowed after failures")
      ->required()
      ->check(CLI::NonNegativeNumber);
  auto* hosts = app.add_option("--hosts", a.hosts_file,
                               "hostfile, re-read each generation: lines 'host [slots=N]'");
  auto* discover = app.add_option("--discover", a.discover,
                                  "shell command printing the live hosts, 'host [slots=N]' a line");
  hosts->excludes(discover);
  app.add_option("--grace", a.grace,
                 "seconds mpirun gets to exit after the job reported how it ended, before "
                 "SIGTERM, and again before SIGKILL")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch", a.batch,
                 "global batch the rank count must divide (default: the command's "
                 "--print-config train.batch_size; with --batch the command is not asked for "
                 "its config: no resume step in the lines, no Prometheus target file)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--mpirun", a.mpirun, "mpirun and its own arguments, split at spaces")
      ->capture_default_str();
  app.add_option("--state-dir", a.state_dir,
                 "folder for hostfiles, exit codes and failure reports, seen by the host of "
                 "rank 0 (default: ./.agave-elastic.PID, removed at the end)");
  app.add_option("--metrics-port", a.metrics_port,
                 "serve agave_elastic_* Prometheus series on this port (0: any free port); its "
                 "address goes to <run.output_dir>/prometheus_targets/ like the trainer's")
      ->check(CLI::Range(0, 65535));
  app.add_option("--metrics-bind", a.metrics_bind, "address the metrics are served on")
      ->capture_default_str();
  app.add_option("command", a.command, "the job after --: agave_trainer CONFIG [ARGS]")->required();
  if (const auto code = launcher::parse_command_line(app, argc, argv)) return code;
  if (a.hosts_file.empty() && a.discover.empty()) {
    std::cerr << "agave_elastic: error: give --hosts FILE or --discover CMD\n";
    return launcher::code(launcher::ExitCode::kUserError);
  }
  return std::nullopt;
}

std::vector<std::string> split(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string s; in >> s;) out.push_back(s);
  return out;
}

std::string quoted(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    std::string q = "'";
    for (char c : w) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += (out.empty() ? "" : " ") + q + "'";
  }
  return out;
}

// What the job's resolved config says: the batch every rank count must divide (of every run of
// a sweep), where its runs write, and for a single run its checkpoint folder (as
// trainer::checkpoint_root has it: checkpoint.dir, else <output_dir>/<name>/checkpoints); a
// sweep's runs each have their own, so its lines say "auto".
struct JobFacts {
  int64_t batch = 0;
  std::string checkpoints;
  std::string output_dir;  // the first run's run.output_dir
};

JobFacts read_job_facts(const std::vector<std::string>& command) {
  // bound: output_of's timeout; --print-config reads the config and exits before MPI.
  const std::string yaml = elastic::output_of(quoted(command) + " --print-config", 300);
  JobFacts facts;
  const auto docs = YAML::LoadAll(yaml);
  for (const auto& doc : docs) {
    const auto train = doc["train"];
    const auto batch = train ? train["batch_size"].as<int64_t>(0) : int64_t{0};
    facts.batch = std::gcd(facts.batch, batch);
  }
  if (docs.empty() || !docs.front()["run"]) return facts;
  const auto& first = docs.front();
  facts.output_dir = first["run"]["output_dir"].as<std::string>("runs");
  if (docs.size() > 1) return facts;
  const auto dir = first["checkpoint"] ? first["checkpoint"]["dir"].as<std::string>("") : "";
  facts.checkpoints =
      !dir.empty()
          ? dir
          : (fs::path(facts.output_dir) / first["run"]["name"].as<std::string>("") / "checkpoints")
                .string();
  return facts;
}

std::string resume_point(const std::string& checkpoints) {
  if (checkpoints.empty()) return "auto";
  const auto latest = checkpoint::ShardedCheckpoint::latest(checkpoints);
  if (!latest) return "the start";
  const std::string name = fs::path(*latest).filename().string();
  const auto digits = name.find_first_of("0123456789");
  return digits == std::string::npos ? name
                                     : "step " + std::to_string(std::stoll(name.substr(digits)));
}

std::vector<elastic::Host> discover_hosts(const Arguments& a) {
  if (!a.discover.empty()) {
    // bound: output_of's timeout.
    return elastic::parse_hosts(elastic::output_of(a.discover, 60));
  }
  std::ifstream in(a.hosts_file);
  if (!in) throw std::runtime_error("--hosts " + a.hosts_file + ": cannot read");
  std::ostringstream text;
  text << in.rdbuf();
  return elastic::parse_hosts(text.str());
}

// Removes the folder it names ("" : none) when it goes out of scope.
struct StateDirGuard {
  std::string dir;
  ~StateDirGuard() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

// The supervisor's series, when asked for; Prometheus finds them where it finds the trainer's.
std::unique_ptr<elastic::ElasticMetrics> serve_metrics(const Arguments& a, const JobFacts& facts) {
  if (a.metrics_port < 0) return nullptr;
  if (!facts.output_dir.empty()) {
    monitoring::write_targets_into((fs::path(facts.output_dir) / "prometheus_targets").string());
  }
  monitoring::MonitoringOptions m;
  m.bind = a.metrics_bind;
  m.port = a.metrics_port;
  auto metrics = std::make_unique<elastic::ElasticMetrics>(m);
  std::cerr << "agave_elastic: Prometheus metrics at " << metrics->url() << std::endl;
  return metrics;
}

int run(int argc, char** argv) {
  Arguments a;
  if (const auto code = parse_arguments(argc, argv, a)) return *code;
  elastic::SupervisorOptions o;
  try {
    o.ranks = elastic::parse_rank_range(a.ranks);
  } catch (const std::invalid_argument& e) {
    std::cerr << "agave_elastic: error: " << e.what() << "\n";
    return launcher::code(launcher::ExitCode::kUserError);
  }
  JobFacts facts;
  if (a.batch < 0) {
    try {
      facts = read_job_facts(a.command);
    } catch (const std::runtime_error& e) {  // the job's own error line came first
      std::cerr << "agave_elastic: error: " << e.what() << "\n";
      return launcher::code(launcher::ExitCode::kUserError);
    }
  } else {
    facts.batch = a.batch;
  }
  const bool own_state_dir = a.state_dir.empty();
  if (own_state_dir) a.state_dir = ".agave-elastic." + std::to_string(getpid());
  fs::create_directories(a.state_dir);
  // Removed however the loop ends, an exception included.
  const StateDirGuard state_dir_guard{own_state_dir ? a.state_dir : ""};
  o.max_restarts = a.max_restarts;
  o.global_batch = facts.batch;
  o.discover = [&] { return discover_hosts(a); };
  o.resume_point = [&] { return resume_point(facts.checkpoints); };
  const auto metrics = serve_metrics(a, facts);
  if (metrics) {
    o.on_generation = [&](const elastic::Plan& p, size_t excluded) {
      metrics->generation_started(p, excluded);
    };
    o.on_restart = [&](elastic::FailureCause c) { metrics->restarted(c); };
  }
  const auto mpirun = split(a.mpirun);
  elastic::forward_stop_signals();
  o.run = [&](const elastic::Plan& plan) {
    return elastic::run_with_mpirun(plan, mpirun, a.command, a.state_dir, a.grace);
  };
  return elastic::supervise(o, std::cerr);
}

}  // namespace

int main(int argc, char** argv) {
  return agave::launcher::guarded_main("agave_elastic", [&] { return run(argc, argv); });
}
