#pragma once
#include <string>

#include "launcher/config.h"

namespace agave::launcher {

// Before MPI starts: the metrics port this process will serve (monitoring.port + its node-local
// rank, when it exports at all) is free now. Found in use only once MPI is up, the job would
// end with code 1 and a run folder half begun. Only this process's own port can be known here,
// so each rank checks its own; throws RankConfigError naming the address and the keys that fix
// it. Nothing to check with monitoring.port 0, monitoring.next_free_port or no Prometheus. In a
// generation agave_elastic started again ($AGAVE_ELASTIC_GENERATION > 1) a port in use gets 30 s
// to come free first: the last generation's rank on this host may still hold it.
void require_free_metrics_port(const Sweep& sweep, const std::string& config_file);

}  // namespace agave::launcher
