#pragma once
// The process's Prometheus exposers: one HTTP exposer and one registry per requested bind:port,
// kept for the life of the process, shared by every exporter of the process (the runs of a sweep
// group, agave_elastic's supervisor series). Each also serves process_resident_memory_bytes and
// agave_build_info, and writes its address for Prometheus's file discovery (write_targets_into).
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "monitoring/options.h"

namespace agave::monitoring {

struct ExposerHub {
  std::string host;  // as a scraper reaches it: the hostname when bound to every address
  int port = 0;      // the port served (the kernel's choice for port 0)
  std::shared_ptr<prometheus::Registry> registry;
  std::string url() const { return "http://" + host + ":" + std::to_string(port) + "/metrics"; }
};

// The hub serving options.bind:options.port, started on first use. When the port is in use:
// throws std::runtime_error naming bind:port, or with options.next_free_port takes the next free
// port above it (up to 100 further).
std::shared_ptr<ExposerHub> exposer_hub(const MonitoringOptions& options);

// One series of a family in `r` (the family is created on first use).
prometheus::Gauge& gauge(prometheus::Registry& r, const std::string& name, const std::string& help,
                         const prometheus::Labels& labels);
prometheus::Counter& counter(prometheus::Registry& r, const std::string& name,
                             const std::string& help, const prometheus::Labels& labels);
prometheus::Histogram& histogram(prometheus::Registry& r, const std::string& name,
                                 const std::string& help, const prometheus::Labels& labels,
                                 const prometheus::Histogram::BucketBoundaries& buckets);

}  // namespace agave::monitoring
