#include "monitoring/metrics_exporter.h"

#include <netdb.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "monitoring/exposer_hub.h"
#include "monitoring/paper_axes.h"
#include "version/version.h"

namespace agave::monitoring {
namespace {

// 1 ms .. 100 s: covers a tiny CPU model's data wait up to a CIFAR step on a slow node.
const prometheus::Histogram::BucketBoundaries& seconds_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100};
  return b;
}
const prometheus::Histogram::BucketBoundaries& checkpoint_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.01, 0.05, 0.1, 0.5, 1,   5,
                                                            10,   30,   60,  120, 300, 600};
  return b;
}

prometheus::Labels with(prometheus::Labels l, const std::string& key, const std::string& value) {
  l[key] = value;
  return l;
}

// Counters only go up; the trainer reports absolute totals, so add what is new.
void advance(prometheus::Counter& c, int64_t total) {
  const double delta = static_cast<double>(total) - c.Value();
  if (delta > 0) c.Increment(delta);
}

}  // namespace

std::string listen_problem(const std::string& bind, int port) {
  std::string host = bind;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return "";
  const int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  // As the exposer binds: a port in TIME_WAIT from an earlier run is free, a listener is not.
  const int on = 1;
  const bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == 0 &&
                  ::bind(fd, found->ai_addr, found->ai_addrlen) == 0 && listen(fd, 1) == 0;
  const std::string problem = ok ? "" : std::strerror(errno);
  if (fd >= 0) close(fd);
  freeaddrinfo(found);
  return problem;
}

double resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  long long size_pages = 0, resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return 0;
  return static_cast<double>(resident_pages) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

struct MetricsExporter::Impl {
  std::shared_ptr<ExposerHub> hub;
  prometheus::Labels labels;
  std::mutex mutex;  // guards the phase map and multi-metric updates

  prometheus::Gauge* bpd_pixel;
  prometheus::Gauge* bpd_aux;
  prometheus::Gauge* bpd_kl;
  prometheus::Gauge* bpd_total;
  prometheus::Gauge* kl_nats;
  prometheus::Gauge* train_step;
  prometheus::Gauge* images_per_second;
  prometheus::Histogram* step_seconds;
  prometheus::Histogram* compute_seconds;
  prometheus::Histogram* allreduce_seconds;
  prometheus::Histogram* data_wait_seconds;
  prometheus::Counter* steps;
  prometheus::Counter* skipped;
  prometheus::Gauge* eval_elbo;
  prometheus::Gauge* eval_iw;
  prometheus::Gauge* eval_kl;
  prometheus::Gauge* eval_vae;
  prometheus::Gauge* eval_aux;
  prometheus::Gauge* eval_step;
  prometheus::Gauge* eval_samples;
  prometheus::Gauge* eval_pixel_matched;
  prometheus::Gauge* eval_pixel_shuffled;
  prometheus::Gauge* eval_latent_use;
  prometheus::Gauge* eval_active_channels;
  prometheus::Gauge* eval_latent_channels;
  std::vector<prometheus::Gauge*> eval_kl_layers;  // one per latent layer, from the first eval
  prometheus::Histogram* checkpoint_seconds;
  prometheus::Gauge* checkpoint_bytes;
  std::map<std::string, prometheus::Gauge*> phases;

  Impl(std::shared_ptr<ExposerHub> h, prometheus::Labels l)
      : hub(std::move(h)), labels(std::move(l)) {
    auto& r = *hub->registry;
    // Bits per dimension are named _bpd, the literature's abbreviation: promtool's lint reads a
    // "bits" name part as a data size ("use base unit bytes") and fails the check.
    const std::string bpd_help =
        "Training loss term in bits per dimension, mean over the last logged window";
    bpd_pixel = &gauge(r, "agave_train_loss_bpd", bpd_help, with(labels, "term", "pixel"));
    bpd_aux = &gauge(r, "agave_train_loss_bpd", bpd_help, with(labels, "term", "aux"));
    bpd_kl = &gauge(r, "agave_train_loss_bpd", bpd_help, with(labels, "term", "kl"));
    bpd_total = &gauge(r, "agave_train_loss_bpd", bpd_help, with(labels, "term", "total"));
    kl_nats = &gauge(r, "agave_kl_nats", "KL(q(z|x)||p(z)) per image in nats (training)", labels);
    train_step = &gauge(r, "agave_train_step", "Global step of the last logged window", labels);
    images_per_second = &gauge(r, "agave_images_per_second",
                               "Training images per second over all ranks of the run", labels);
    step_seconds = &histogram(r, "agave_step_seconds", "Wall time of one training step", labels,
                              seconds_buckets());
    compute_seconds = &histogram(r, "agave_compute_seconds",
                                 "Forward, backward and optimizer time of one training step",
                                 labels, seconds_buckets());
    allreduce_seconds = &histogram(r, "agave_allreduce_seconds",
                                   "Time one training step waited on the gradient all-reduce",
                                   labels, seconds_buckets());
    data_wait_seconds =
        &histogram(r, "agave_data_wait_seconds", "Time one training step waited for its batch",
                   labels, seconds_buckets());
    steps = &counter(r, "agave_steps_total", "Optimizer steps taken by the run", labels);
    skipped = &counter(r, "agave_nonfinite_steps_skipped_total",
                       "Steps skipped because the loss or a gradient was not finite", labels);
    const std::string eval_help = "Test-set negative log-likelihood bound in bits per dimension";
    eval_elbo = &gauge(r, "agave_eval_nll_bpd", eval_help, with(labels, "bound", "elbo"));
    eval_iw = &gauge(r, "agave_eval_nll_bpd", eval_help, with(labels, "bound", "iw"));
    eval_kl =
        &gauge(r, "agave_eval_kl_bpd", "Test-set KL(q(z|x)||p(z)) in bits per dimension", labels);
    eval_vae = &gauge(r, "agave_eval_nll_bpd", eval_help, with(labels, "bound", "vae"));
    eval_aux = &gauge(r, "agave_eval_aux_bpd",
                      "Test-set -ln p(y|z) of the VAE decoder in bits per dimension of x", labels);
    eval_step = &gauge(r, "agave_eval_step", "Global step of the last evaluation", labels);
    eval_samples = &gauge(r, "agave_eval_importance_samples",
                          "Importance samples per image of the last IW bound", labels);
    const std::string pixel_help =
        "Test-set -ln p(x|z) in bits per dimension with z ~ q(z|x) of the same image (matched) or "
        "of another image of the batch (shuffled)";
    eval_pixel_matched =
        &gauge(r, "agave_eval_pixel_bpd", pixel_help, with(labels, "z", "matched"));
    eval_pixel_shuffled =
        &gauge(r, "agave_eval_pixel_bpd", pixel_help, with(labels, "z", "shuffled"));
    eval_latent_use = &gauge(r, "agave_eval_latent_use_bpd",
                             "Test-set bits per dimension the likelihood of x takes from z: "
                             "-ln p(x|z) with shuffled z minus with matched z",
                             labels);
    eval_active_channels =
        &gauge(r, "agave_eval_active_latent_channels",
               "Latent channels with Cov_x(E_q[z]) > 0.01 (Burda et al.)", labels);
    eval_latent_channels =
        &gauge(r, "agave_eval_latent_channels", "Latent channels of all latent layers", labels);
    checkpoint_seconds = &histogram(r, "agave_checkpoint_seconds", "Wall time of one checkpoint",
                                    labels, checkpoint_buckets());
    checkpoint_bytes = &gauge(r, "agave_checkpoint_bytes",
                              "Bytes this rank wrote for the last checkpoint", labels);
    // Not measured yet is NaN, never 0: 0 bits/dim on a test panel (eval.every: 0 until the
    // final evaluation) or 0 images/s would read as a measurement; Grafana draws NaN as no data.
    for (auto* g : {bpd_pixel, bpd_aux, bpd_kl, bpd_total, kl_nats, images_per_second, eval_elbo,
                    eval_iw, eval_kl, eval_vae, eval_aux, eval_step, eval_samples,
                    eval_pixel_matched, eval_pixel_shuffled, eval_latent_use, eval_active_channels,
                    eval_latent_channels, checkpoint_bytes}) {
      g->Set(std::numeric_limits<double>::quiet_NaN());
    }
    // Every phase series exists (at 0) from the start, so dashboards and alerts see the run
    // before its first phase is set.
    for (const char* phase : {"pretrain_vae", "pretrain_pixelcnn", "joint", "no_aux", "done"}) {
      phases[phase] = &gauge(r, "agave_phase", "1 for the training phase the run is in, else 0",
                             with(labels, "phase", phase));
    }
  }

  // Called with mutex held.
  void set_phase_locked(const std::string& phase) {
    if (!phases.count(phase)) {
      phases[phase] =
          &gauge(*hub->registry, "agave_phase", "1 for the training phase the run is in, else 0",
                 with(labels, "phase", phase));
    }
    for (auto& [name, g] : phases) g->Set(name == phase ? 1 : 0);
  }
};

MetricsExporter::MetricsExporter(const MonitoringOptions& options, RunLabels labels) {
  if (!options.prometheus) return;
  prometheus::Labels l = {{"run", labels.run}, {"rank", std::to_string(labels.rank)}};
  visit_paper_axes(labels, [&](const PaperAxis& axis, const std::string& value) {
    l.emplace(axis.label, value);
  });
  impl_ = std::make_unique<Impl>(exposer_hub(options), std::move(l));
}

MetricsExporter::~MetricsExporter() {
  // The series stay exposed (the sweep panels read finished runs' last values); only the phase
  // says the run is over.
  if (impl_) set_phase("done");
}

void MetricsExporter::record_step(const StepRecord& r) {
  if (!impl_) return;
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mutex);
  if (!r.phase.empty()) m.set_phase_locked(r.phase);
  m.bpd_pixel->Set(r.pixel_bpd);
  m.bpd_aux->Set(r.aux_bpd);
  m.bpd_kl->Set(r.kl_bpd);
  m.bpd_total->Set(r.loss_bpd);
  m.kl_nats->Set(r.kl_nats);
  m.train_step->Set(static_cast<double>(r.step));
  m.images_per_second->Set(r.images_per_second);
  // Observing each window mean once per step it covers keeps _sum and _count true totals, so
  // rate(_sum)/rate(_count) is the mean step time whatever log_every is.
  const int64_t n = std::max<int64_t>(1, r.window_steps);
  for (int64_t i = 0; i < n; ++i) {
    m.step_seconds->Observe(r.step_seconds);
    m.compute_seconds->Observe(r.compute_seconds);
    m.allreduce_seconds->Observe(r.allreduce_seconds);
    m.data_wait_seconds->Observe(r.data_wait_seconds);
  }
  advance(*m.steps, r.steps_done);
  advance(*m.skipped, r.skipped_steps_total);
}

void MetricsExporter::record_eval(const EvalRecord& r) {
  if (!impl_) return;
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mutex);
  m.eval_elbo->Set(r.elbo_bpd);
  m.eval_iw->Set(r.iw_bpd);
  m.eval_kl->Set(r.kl_bpd);
  m.eval_vae->Set(r.vae_bpd);
  m.eval_aux->Set(r.aux_bpd);
  m.eval_step->Set(static_cast<double>(r.step));
  m.eval_samples->Set(static_cast<double>(r.importance_samples));
  m.eval_pixel_matched->Set(r.pixel_bpd);
  m.eval_pixel_shuffled->Set(r.pixel_shuffled_bpd);
  m.eval_latent_use->Set(r.latent_use_bpd);
  m.eval_active_channels->Set(r.active_latent_channels);
  m.eval_latent_channels->Set(r.latent_channels);
  // The layer count is the model's, known from the first evaluation on: its series start there.
  while (m.eval_kl_layers.size() < r.kl_bpd_layers.size()) {
    m.eval_kl_layers.push_back(
        &gauge(*m.hub->registry, "agave_eval_kl_layer_bpd",
               "Test-set KL(q(z|x)||p(z)) of one latent layer (0 = bottom) in bits per dimension",
               with(m.labels, "layer", std::to_string(m.eval_kl_layers.size()))));
  }
  for (size_t l = 0; l < r.kl_bpd_layers.size(); ++l) m.eval_kl_layers[l]->Set(r.kl_bpd_layers[l]);
}

void MetricsExporter::record_checkpoint(double seconds, double bytes) {
  if (!impl_) return;
  impl_->checkpoint_seconds->Observe(seconds);
  impl_->checkpoint_bytes->Set(bytes);
}

void MetricsExporter::set_phase(const std::string& phase) {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->set_phase_locked(phase);
}

int MetricsExporter::port() const { return impl_ ? impl_->hub->port : 0; }

std::string MetricsExporter::url() const {
  if (!impl_) return "";
  return "http://" + impl_->hub->host + ":" + std::to_string(impl_->hub->port) + "/metrics";
}

}  // namespace agave::monitoring
