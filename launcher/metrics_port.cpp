#include "launcher/metrics_port.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "elastic/supervisor.h"

#include "launcher/config_error.h"
#include "launcher/entry_point.h"
#include "launcher/sweep_plan.h"
#include "monitoring/metrics_exporter.h"

namespace agave::launcher {
namespace {

constexpr std::chrono::seconds kRestartPortWait{30};

// Whether agave_elastic started this job as a later generation (elastic/supervisor.h).
bool restarted_generation() {
  const char* g = std::getenv(elastic::kGenerationVariable);
  return g != nullptr && std::atoi(g) > 1;
}

}  // namespace

void require_free_metrics_port(const Sweep& sweep, const std::string& config_file) {
  const auto& m = sweep.first().config.monitoring;
  if (!m.prometheus || m.port == 0 || m.next_free_port) return;
  const int rank = launcher_rank();
  // Without every_rank only the first rank of each run exports (trainer/trainer.cpp).
  if (!m.every_rank) {
    SweepPlan plan;
    try {
      plan = plan_sweep(sweep, launcher_world_size());
    } catch (const ConfigError&) {
      return;  // reported once MPI is up, as ever
    }
    const auto group = static_cast<size_t>(plan.group_of(rank));
    const bool exports = rank % plan.ranks_per_run == 0 && group < plan.groups.size() &&
                         !plan.groups[group].runs.empty();
    if (!exports) return;
  }
  const int local = launcher_local_rank();
  const int port = static_cast<int>(m.port) + local;
  std::string problem = monitoring::listen_problem(m.bind, port);
  if (problem.empty()) return;
  // A generation agave_elastic started again: the port may still be held by this host's rank
  // of the generation just ended, which is being killed. Exit 2 here would end the job (a config
  // error is never restarted), so the port gets kRestartPortWait to come free.
  if (restarted_generation()) {
    for (auto end = std::chrono::steady_clock::now() + kRestartPortWait;
         std::chrono::steady_clock::now() < end;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      if ((problem = monitoring::listen_problem(m.bind, port)).empty()) return;
    }
  }
  const std::string address = m.bind + ":" + std::to_string(port);
  if (problem != std::strerror(EADDRINUSE)) {
    throw RankConfigError(config_file + ": monitoring.bind: cannot serve metrics on " + address +
                          " (" + problem +
                          "); monitoring.bind must be an address of this host (127.0.0.1, "
                          "0.0.0.0 for every interface) and monitoring.port one it may use");
  }
  throw RankConfigError(
      config_file + ": monitoring.port: " + address +
      " is in use (this rank's metrics port: monitoring.port + node-local rank " +
      std::to_string(local) +
      "); choose another monitoring.port, set monitoring.next_free_port: true to " +
      "take the next free one, or monitoring.prometheus: false");
}

}  // namespace agave::launcher
