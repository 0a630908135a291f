#pragma once
// Prometheus metrics of a training run, served on http://<bind>:<port>/metrics (prometheus-cpp).
// Names, labels and units are documented in docs/metrics.md; the Grafana dashboard in
// monitoring/grafana/ and the test in tests/monitoring/ rely on them.
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "monitoring/options.h"
#include "monitoring/step_record.h"

namespace agave::monitoring {

// The label set of one run. Every series the run exports carries these labels, so the runs of a
// sweep that share one process (and one exposer) stay apart.
struct RunLabels {
  std::string run;     // run name, e.g. "lambda=12,aux_resolution=16,color_bins=32"
  std::string lambda;  // sweep values as strings; "" when not swept
  std::string aux_resolution;
  std::string color_bins;
  int rank = 0;  // world rank of the exporting process
};

inline constexpr double kNotMeasured = std::numeric_limits<double>::quiet_NaN();

struct EvalRecord {
  int64_t step = 0;
  double elbo_bpd = 0;
  double iw_bpd = 0;
  double kl_bpd = 0;
  double aux_bpd = 0;  // −ln p(y|z) per dimension of x
  double vae_bpd = 0;  // the VAE-decoder bound −ln p(y|z) + KL
  int64_t importance_samples = 0;
  // Latent use (docs/metrics.md, "Latent use"); NaN without latents (pixelcnn_only).
  double pixel_bpd = kNotMeasured;           // −ln p(x|z) with the image's own z
  double pixel_shuffled_bpd = kNotMeasured;  // with the z of another image
  double latent_use_bpd = kNotMeasured;      // their difference
  std::vector<double> kl_bpd_layers = {};    // KL per latent layer, bottom first
  double active_latent_channels = kNotMeasured;
  double latent_channels = kNotMeasured;
};

// The metrics of one run. All runs of a process share one HTTP exposer and one registry per
// (bind, port) requested: a sweep group trains runs one after another in the same process, and
// Prometheus should keep scraping one address while the run labels change. The exposer lives
// until the process exits, so a finished run's last values stay visible to the sweep panels.
//
// Thread-safe: record_* may be called from any thread.
class MetricsExporter {
 public:
  // Starts (or joins) the process's exposer on options.bind:options.port. When the port is in
  // use: throws std::runtime_error naming bind:port, or with options.next_free_port takes the
  // next free port above it (up to 100 further); a new exposer writes its address where
  // write_targets_into() says. With options.prometheus == false nothing is served and every
  // call is a no-op (port() == 0).
  MetricsExporter(const MonitoringOptions& options, RunLabels labels);
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  void record_step(const StepRecord& r);  // also sets the phase from r.phase when non-empty
  void record_eval(const EvalRecord& r);
  void record_checkpoint(double seconds, double bytes);
  void set_phase(const std::string& phase);  // agave_phase{phase=...}: 1 for it, 0 for others

  bool enabled() const { return impl_ != nullptr; }
  int port() const;         // the port actually served (0 when disabled)
  std::string url() const;  // http://<host>:<port>/metrics ("" when disabled)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Where the exposers this process starts from now on write their address for Prometheus's
// file-based discovery (<dir>/<host>-<port>.json); "" (the default) writes nothing. Process-wide
// like the exposers: the launcher sets <run.output_dir>/prometheus_targets before training.
void write_targets_into(const std::string& dir);

// Why a listening socket cannot bind bind:port now: "" when it can (also when bind does not
// resolve: the exporter reports that), else the system's reason ("Address already in use",
// "Cannot assign requested address" for an address not on this host, "Permission denied"). For
// finding a port in use before MPI starts; the exporter may still lose a race for it later.
std::string listen_problem(const std::string& bind, int port);
inline bool can_listen(const std::string& bind, int port) {
  return listen_problem(bind, port).empty();
}

// Resident set size of this process in bytes, from /proc/self/statm (0 when unreadable).
double resident_memory_bytes();

}  // namespace agave::monitoring
