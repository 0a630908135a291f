#pragma once
// The tiny AGAVE run that the end-to-end tests train with agave_trainer under mpirun: a model
// small enough for milliseconds per step on a loaded 2-core machine. One definition, so that a
// change to the config format is made once; each test sets only what it varies, and the text
// comes out in the same order and form as a hand-written config.
//
//   TinyConfig("r", out, shards).seed(5).dropout(0.5).phases({{"pretrain_vae", 2},
//       {"joint", 6}}).checkpoint(2, 3).yaml()
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/common/cifar10.h"

namespace agave::testing {

struct TinyPhase {
  std::string name;
  int steps;
  std::string extra = "";  // more keys of the phase, e.g. "conditioned: false"
};

class TinyConfig {
 public:
  // run.name, run.output_dir and data.shards: every test writes to and converts into its own
  // folders. Fashion-MNIST (28×28×1) unless cifar10().
  TinyConfig(std::string name, std::string output_dir, std::string shards)
      : name_(std::move(name)), output_dir_(std::move(output_dir)), shards_(std::move(shards)) {}

  TinyConfig& seed(int v) { return set(seed_, v); }
  // 32×32×3; latent and aux resolution 8 keep the model as small relative to the image.
  TinyConfig& cifar10() {
    dataset_ = "cifar10";
    latent_resolution_ = 8;
    aux_resolution_ = 8;
    return *this;
  }
  TinyConfig& dropout(double v) { return set(dropout_, v); }
  TinyConfig& batch_size(int v) { return set(batch_size_, v); }
  TinyConfig& phases(std::vector<TinyPhase> v) { return set(phases_, std::move(v)); }
  TinyConfig& pretrain(std::string v) { return set(pretrain_, std::move(v)); }
  TinyConfig& lambda(double v) { return set(lambda_, v); }
  TinyConfig& ema_decay(double v) { return set(ema_decay_, v); }
  TinyConfig& eval(int importance_samples, int subset, int batch_size, int sample_images) {
    eval_ = {importance_samples, subset, batch_size, sample_images};
    return *this;
  }
  TinyConfig& eval_every(int v) { return set(eval_every_, v); }
  TinyConfig& checkpoint(int every, int keep) {
    checkpoint_ = std::make_pair(every, keep);
    return *this;
  }
  TinyConfig& log_every(int v) { return set(log_every_, v); }
  // Serve Prometheus metrics from `port` (or the next free one); off by default, so tests
  // running side by side do not compete for ports.
  TinyConfig& prometheus_port(int port) { return set(port_, port); }
  TinyConfig& linger_seconds(int v) { return set(linger_seconds_, v); }
  TinyConfig& threads_per_rank(int v) { return set(threads_per_rank_, v); }
  TinyConfig& timeout_seconds(int v) { return set(timeout_seconds_, v); }
  // Whole sections the builder does not model (sweep:, …), appended as they are.
  TinyConfig& append(const std::string& yaml) {
    extra_ += yaml;
    return *this;
  }

  std::string yaml() const {
    std::ostringstream o;
    o << "run: {name: " << name_ << ", output_dir: " << output_dir_ << ", seed: " << seed_ << "}\n"
      << "data: {dataset: " << dataset_;
    // CIFAR-10 from the tests' copy, never the configs' default (tests/common/cifar10.h).
    if (dataset_ == "cifar10") o << ", source: " << cifar10_source();
    o << ", shards: " << shards_ << "}\n"
      << "model:\n"
      << "  vae: {depth: 1, width: 8, latent_channels: 2, latent_resolution: " << latent_resolution_
      << "}\n"
      << "  pixelcnn: {nr_resnet: 1, nr_filters: 8, nr_logistic_mix: 2, dropout: "
      << number(dropout_) << "}\n"
      << "aux: {resolution: " << aux_resolution_ << ", color_bins: 32}\n";
    if (lambda_) o << "loss: {lambda: " << number(*lambda_) << "}\n";
    o << "train:\n  batch_size: " << batch_size_ << "\n";
    if (pretrain_) o << "  pretrain: " << *pretrain_ << "\n";
    o << "  phases:\n";
    for (const auto& p : phases_) {
      o << "    - {name: " << p.name << ", steps: " << p.steps
        << (p.extra.empty() ? "" : ", " + p.extra) << "}\n";
    }
    if (ema_decay_) o << "  ema_decay: " << number(*ema_decay_) << "\n";
    o << "eval: {";
    if (eval_every_) o << "every: " << *eval_every_ << ", ";
    o << "importance_samples: " << eval_.importance_samples << ", subset: " << eval_.subset
      << ", final_subset: " << eval_.subset << ", batch_size: " << eval_.batch_size
      << ", sample_images: " << eval_.sample_images << ", samples_per_latent: 2}\n";
    if (checkpoint_) {
      o << "checkpoint: {every: " << checkpoint_->first << ", keep: " << checkpoint_->second
        << "}\n";
    }
    o << "monitoring: {log_every: " << log_every_ << ", progress: plain, ";
    if (port_) {
      o << "port: " << *port_ << ", next_free_port: true";
      if (linger_seconds_) o << ", linger_seconds: " << *linger_seconds_;
    } else {
      o << "prometheus: false";
    }
    o << "}\n";
    if (threads_per_rank_ || timeout_seconds_) {
      o << "cluster: {";
      if (threads_per_rank_) o << "threads_per_rank: " << *threads_per_rank_;
      if (threads_per_rank_ && timeout_seconds_) o << ", ";
      if (timeout_seconds_) o << "timeout_seconds: " << *timeout_seconds_;
      o << "}\n";
    }
    return o.str() + extra_;
  }

 private:
  struct Eval {
    int importance_samples, subset, batch_size, sample_images;
  };

  template <typename T, typename V>
  TinyConfig& set(T& field, V&& value) {
    field = std::forward<V>(value);
    return *this;
  }
  // Always with a decimal point, as a hand-written config has it ("0.0", not "0").
  static std::string number(double v) {
    std::ostringstream o;
    o << v;
    std::string s = o.str();
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
  }

  std::string name_, output_dir_, shards_;
  std::string dataset_ = "fashion_mnist";
  int latent_resolution_ = 7, aux_resolution_ = 7;
  int seed_ = 3;
  double dropout_ = 0.0;
  int batch_size_ = 8;
  std::vector<TinyPhase> phases_ = {{"pretrain_vae", 3}, {"pretrain_pixelcnn", 3}, {"joint", 4}};
  std::optional<std::string> pretrain_;
  std::optional<double> lambda_, ema_decay_;
  Eval eval_{2, 8, 8, 0};
  std::optional<int> eval_every_;
  std::optional<std::pair<int, int>> checkpoint_;
  int log_every_ = 2;
  std::optional<int> port_, linger_seconds_, threads_per_rank_, timeout_seconds_;
  std::string extra_;
};

}  // namespace agave::testing
