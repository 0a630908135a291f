#pragma once
// agave_elastic's own Prometheus series, served beside (not instead of) the trainer's: which
// generation the job is in, on how many ranks, how many hosts were excluded, and the restarts so
// far by cause. Names and meaning in docs/metrics.md ("agave_elastic").
#include <memory>
#include <string>

#include "elastic/supervisor.h"
#include "monitoring/options.h"

namespace agave::elastic {

class ElasticMetrics {
 public:
  // Serves on options.bind:options.port (the process's exposer, monitoring/exposer_hub.h); every
  // restart counter exists at 0 from the start so rate() and alerts see the job before its first
  // failure. Throws std::runtime_error naming bind:port when it cannot serve there.
  explicit ElasticMetrics(const monitoring::MonitoringOptions& options);
  ~ElasticMetrics();
  ElasticMetrics(const ElasticMetrics&) = delete;
  ElasticMetrics& operator=(const ElasticMetrics&) = delete;

  void generation_started(const Plan& plan, size_t excluded_hosts);
  void restarted(FailureCause cause);
  std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agave::elastic
