// The documented range of every numeric config key (docs/configuration.md, "Ranges"): checked by
// YamlReader as each value is read, so an absurd value (lr: 1e308, batch_size: 2^63 - 1) stops
// with one line naming the key, the allowed range and the value, before anything is allocated
// or sized from it. Bounds are generous; they exist to catch mistakes and hostile files, not to
// limit experiments.
#include <cmath>
#include <map>
#include <string>

#include "launcher/yaml_reader.h"

namespace agave::launcher {
namespace {

constexpr double kBillion = 1e9;

const std::map<std::string, NumericRange>& ranges() {
  static const std::map<std::string, NumericRange> table = {
      {"run.seed", {0, 9223372036854775807.0}},
      {"data.images_per_shard", {1, 1e7}},
      {"data.prefetch_batches", {1, 1024}},
      {"model.vae.depth", {1, 64}},
      {"model.vae.width", {1, 4096}},
      {"model.vae.latent_channels", {1, 1024}},
      {"model.vae.latent_resolution", {1, 4096}},
      {"model.vae.free_bits", {0, 100}},
      {"model.vae.iaf_steps", {0, 64}},
      {"model.pixelcnn.nr_resnet", {1, 64}},
      {"model.pixelcnn.nr_filters", {1, 4096}},
      {"model.pixelcnn.nr_logistic_mix", {1, 100}},
      {"model.pixelcnn.dropout", {0, 1, false, true}},
      {"aux.resolution", {1, 4096}},
      {"aux.color_bins", {2, 256}},
      {"loss.lambda", {0, 1000}},
      {"train.batch_size", {1, 65536}},
      {"train.steps", {1, kBillion}},
      {"train.phases.steps", {1, kBillion}},
      {"train.pretrain_vae_ranks", {0, 65536}},
      {"train.phases.lambda", {0, 1000}},
      {"train.phases.free_bits", {0, 100}},
      {"train.optimizer.lr", {0, 1, true, false}},
      {"train.optimizer.beta1", {0, 1, false, true}},
      {"train.optimizer.beta2", {0, 1, false, true}},
      {"train.optimizer.eps", {0, 1, true, false}},
      {"train.grad_clip", {0, 1e6}},
      {"train.ema_decay", {0, 1, false, true}},
      {"train.max_nonfinite_steps", {1, 1e6}},
      {"eval.every", {0, kBillion}},
      {"eval.importance_samples", {1, 100000}},
      {"eval.subset", {0, kBillion}},
      {"eval.final_subset", {0, kBillion}},
      {"eval.samples_per_latent", {1, 64}},
      {"eval.batch_size", {1, 65536}},
      {"eval.sample_images", {0, 64}},
      {"checkpoint.every", {0, kBillion}},
      {"checkpoint.keep", {1, 1000}},
      {"monitoring.port", {0, 65535}},
      {"monitoring.log_every", {1, kBillion}},
      {"monitoring.linger_seconds", {0, 3600}},
      {"monitoring.profile_steps", {0, 1000}},
      {"cluster.threads_per_rank", {0, 1024}},
      {"cluster.timeout_seconds", {0, 604800, true, false}},
      {"cluster.bucket_mb", {0, 4096, true, false}},
      {"sweep.ranks_per_run", {0, 1048576}},
  };
  return table;
}

std::string bound_text(double v, bool integer) {
  if (integer && std::fabs(v) < 9e18) return std::to_string(static_cast<int64_t>(v));
  if (integer) return "9223372036854775807";
  std::string s = std::to_string(v);
  // "0.002000" -> "0.002", "1.000000" -> "1"
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

const NumericRange* numeric_range(const std::string& key_path) {
  // List elements share their list's range: train.phases[2].steps -> train.phases.steps.
  std::string key;
  for (size_t i = 0; i < key_path.size(); ++i) {
    if (key_path[i] == '[') {
      i = key_path.find(']', i);
      if (i == std::string::npos) break;
      continue;
    }
    key += key_path[i];
  }
  const auto it = ranges().find(key);
  return it == ranges().end() ? nullptr : &it->second;
}

bool NumericRange::contains(double v) const {
  return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
}

std::string NumericRange::text(bool integer) const {
  return std::string(lo_open ? "(" : "[") + bound_text(lo, integer) + ", " +
         bound_text(hi, integer) + (hi_open ? ")" : "]");
}

}  // namespace agave::launcher
