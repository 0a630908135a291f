#include "monitoring/exposer_hub.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "io/atomic_file.h"
#include "monitoring/metrics_exporter.h"
#include "version/version.h"

namespace agave::monitoring {
namespace {

// How far next_free_port looks: a node rarely runs more exporters than this.
constexpr int kPortSearch = 100;

// Series of the process rather than of a run, computed on every scrape: the standard
// process_resident_memory_bytes (what Prometheus's process collector names it) and
// agave_build_info (1, the build in labels), without run labels, once per exposer.
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily memory{"process_resident_memory_bytes",
                                    "Resident memory size in bytes",
                                    prometheus::MetricType::Gauge,
                                    {}};
    memory.metric.emplace_back();
    memory.metric.back().gauge.value = resident_memory_bytes();
    const auto& b = version::build_info();
    prometheus::MetricFamily build{"agave_build_info",
                                   "1, labelled with the agave build serving these metrics",
                                   prometheus::MetricType::Gauge,
                                   {}};
    build.metric.emplace_back();
    build.metric.back().label = {
        {"version", b.version}, {"commit", b.commit}, {"torch", b.torch}, {"cuda", b.cuda}};
    build.metric.back().gauge.value = 1;
    return {std::move(memory), std::move(build)};
  }
};

// A hub with what keeps it serving.
struct Hub : ExposerHub {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<ProcessCollector> process;
};

std::mutex& hubs_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, std::shared_ptr<Hub>>& hubs() {
  // Never destroyed: runs may still record from other threads while statics are torn down.
  static auto* h = new std::map<std::string, std::shared_ptr<Hub>>();
  return *h;
}

std::string& targets_dir() {  // guarded by hubs_mutex()
  static auto* d = new std::string();
  return *d;
}

std::unique_ptr<prometheus::Exposer> try_expose(const std::string& bind, int port) {
  try {
    // One worker thread is plenty for a scrape every few seconds and keeps threads per rank low.
    return std::make_unique<prometheus::Exposer>(bind + ":" + std::to_string(port), 1);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// <dir>/<host>-<port>.json, written whole (rename) so Prometheus never reads half a file.
// Without it nothing breaks but discovery: a warning, and the run goes on.
void write_targets_file(const std::string& dir, const std::string& host, int port) {
  const std::string target = host + ":" + std::to_string(port);
  const std::string path = dir + "/" + host + "-" + std::to_string(port) + ".json";
  try {
    std::filesystem::create_directories(dir);
    io::write_file_atomically(path,
                              nlohmann::json::array({{{"targets", {target}}}}).dump() + "\n");
  } catch (const std::exception& e) {
    std::cerr << "agave: warning: " << path << " not written (Prometheus's file discovery will "
              << "not find " << target << "): " << e.what() << std::endl;
  }
}

}  // namespace

void write_targets_into(const std::string& dir) {
  std::lock_guard<std::mutex> lock(hubs_mutex());
  targets_dir() = dir;
}

std::shared_ptr<ExposerHub> exposer_hub(const MonitoringOptions& o) {
  if (o.port < 0 || o.port > 65535) {
    throw std::runtime_error("monitoring.port " + std::to_string(o.port) +
                             " is not a TCP port (0..65535)");
  }
  const std::string key = o.bind + ":" + std::to_string(o.port);
  std::lock_guard<std::mutex> lock(hubs_mutex());
  auto it = hubs().find(key);
  if (it != hubs().end()) return it->second;

  auto hub = std::make_shared<Hub>();
  const int first = static_cast<int>(o.port);
  // Port 0 asks the kernel for a free port, so there is nothing to search.
  const int last = (o.next_free_port && first != 0) ? std::min(65535, first + kPortSearch) : first;
  for (int p = first; p <= last && !hub->exposer; ++p) hub->exposer = try_expose(o.bind, p);
  if (!hub->exposer) {
    if (first == last) {
      throw std::runtime_error("monitoring: cannot serve Prometheus metrics on " + key +
                               ": the address is in use or cannot be bound (set "
                               "monitoring.next_free_port: true to take the next free port, or "
                               "choose another monitoring.port)");
    }
    throw std::runtime_error("monitoring: cannot serve Prometheus metrics on " + o.bind +
                             ": ports " + std::to_string(first) + ".." + std::to_string(last) +
                             " are all in use or cannot be bound");
  }
  const auto ports = hub->exposer->GetListeningPorts();
  hub->port = ports.empty() ? first : ports.front();
  hub->host = o.bind;
  if (o.bind == "0.0.0.0" || o.bind == "::" || o.bind == "[::]") {
    char name[256] = {};
    hub->host = gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  }
  if (!targets_dir().empty()) write_targets_file(targets_dir(), hub->host, hub->port);
  hub->registry = std::make_shared<prometheus::Registry>();
  hub->exposer->RegisterCollectable(hub->registry);
  hub->process = std::make_shared<ProcessCollector>();
  hub->exposer->RegisterCollectable(hub->process);
  hubs()[key] = hub;
  return hub;
}

prometheus::Gauge& gauge(prometheus::Registry& r, const std::string& name, const std::string& help,
                         const prometheus::Labels& labels) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add(labels);
}
prometheus::Counter& counter(prometheus::Registry& r, const std::string& name,
                             const std::string& help, const prometheus::Labels& labels) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}
prometheus::Histogram& histogram(prometheus::Registry& r, const std::string& name,
                                 const std::string& help, const prometheus::Labels& labels,
                                 const prometheus::Histogram::BucketBoundaries& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add(labels, buckets);
}

}  // namespace agave::monitoring
