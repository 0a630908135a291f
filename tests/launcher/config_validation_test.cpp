// Configs that are missing values or absurd (issue 14): a key written without a value is an
// error naming it (not the default), every numeric key has a documented range that is checked
// with the range in the message, sweep grids above the cap are refused before expansion, and
// expansion is lazy.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "launcher/config.h"
#include "launcher/config_error.h"
#include "launcher/sweep_plan.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"

namespace agave::launcher {
namespace {

using agave::testing::kTrainer;
using agave::testing::TempDir;

// Valid and small; each test sets one key with --set-like YAML text.
const char* kBase = R"(run: {name: t, output_dir: out}
data: {dataset: fashion_mnist}
model:
  vae: {depth: 2, width: 16, latent_channels: 4, latent_resolution: 7}
  pixelcnn: {nr_resnet: 1, nr_filters: 16, nr_logistic_mix: 3, dropout: 0.0}
aux: {resolution: 14, color_bins: 32}
train: {batch_size: 32, steps: 10}
)";

std::string error_of(const std::string& file, const std::vector<std::string>& sets = {}) {
  try {
    load_sweep(file, sets);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// Every key of the resolved config, as a dotted path with its value (scalars only).
void leaves(const YAML::Node& n, const std::string& path,
            std::vector<std::pair<std::string, YAML::Node>>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n) {
      leaves(kv.second, path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar(), out);
    }
  } else if (n.IsScalar()) {
    out.emplace_back(path, n);
  }
}

TEST(ConfigValidation, EveryKeyWithoutAValueIsAnErrorNamingIt) {
  TempDir dir;
  const std::string file = dir.write("c.yaml", kBase);
  std::vector<std::pair<std::string, YAML::Node>> keys;
  leaves(to_yaml(load_sweep(file, {}).first().config), "", keys);
  ASSERT_GT(keys.size(), 40u);
  for (const auto& [key, value] : keys) {
    (void)value;
    // `--set key=`: the key with nothing after it.
    const std::string err = error_of(file, {key + "="});
    EXPECT_NE(err.find("--set " + key + "=: " + key + ": has no value (null)"), std::string::npos)
        << key << ": " << err;
  }
  // In the file itself: the file and line are named.
  const std::string f2 = dir.write("n.yaml", std::string(kBase) + "loss:\n  lambda:\n");
  const std::string err = error_of(f2);
  EXPECT_EQ(err.rfind(f2 + ":", 0), 0u) << err;
  EXPECT_NE(err.find(": loss.lambda: has no value (null); give a value, or remove the key to use "
                     "the default"),
            std::string::npos)
      << err;
  // A whole section without a value, and an empty string.
  const std::string f3 = dir.write("s.yaml", std::string(kBase) + "eval:\n");
  EXPECT_NE(error_of(f3).find("eval: has no value (null)"), std::string::npos) << error_of(f3);
  EXPECT_NE(error_of(file, {"checkpoint.dir=''"}).find("checkpoint.dir: is empty"),
            std::string::npos);
  EXPECT_NE(error_of(file, {"train.phases=~"}).find("train.phases: has no value"),
            std::string::npos);
}

TEST(ConfigValidation, AbsurdNumbersAreRefusedWithTheAllowedRange) {
  TempDir dir;
  const std::string file = dir.write("c.yaml", kBase);
  const std::string max = "9223372036854775807";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"loss.lambda=1e308", "loss.lambda: must be in [0, 1000], got 1e308"},
      {"train.optimizer.lr=1e308", "train.optimizer.lr: must be in (0, 1], got 1e308"},
      {"train.optimizer.lr=0", "train.optimizer.lr: must be in (0, 1], got 0"},
      {"train.ema_decay=1", "train.ema_decay: must be in [0, 1), got 1"},
      {"train.batch_size=" + max, "train.batch_size: must be in [1, 65536], got " + max},
      {"train.steps=" + max, "train.steps: must be in [1, 1000000000], got " + max},
      {"eval.importance_samples=" + max, "eval.importance_samples: must be in [1, 100000], got"},
      {"eval.subset=" + max, "eval.subset: must be in [0, 1000000000], got " + max},
      {"checkpoint.every=" + max, "checkpoint.every: must be in [0, 1000000000], got " + max},
      {"checkpoint.keep=" + max, "checkpoint.keep: must be in [1, 1000], got " + max},
      {"monitoring.log_every=" + max, "monitoring.log_every: must be in [1, 1000000000], got"},
      {"monitoring.port=70000", "monitoring.port: must be in [0, 65535], got 70000"},
      {"cluster.timeout_seconds=1e300", "cluster.timeout_seconds: must be in (0, 604800], got"},
      {"cluster.bucket_mb=1e9", "cluster.bucket_mb: must be in (0, 4096], got 1e9"},
      {"data.images_per_shard=" + max, "data.images_per_shard: must be in [1, 10000000], got"},
      {"model.pixelcnn.nr_filters=1000000", "model.pixelcnn.nr_filters: must be in [1, 4096]"},
  };
  for (const auto& [set, want] : cases) {
    const std::string err = error_of(file, {set});
    EXPECT_NE(err.find("--set " + set + ": " + want), std::string::npos) << set << ": " << err;
  }
  // In a phase of a list, and in a sweep value (named by its line).
  const std::string phased = dir.write(
      "p.yaml", std::string(kBase).replace(std::string(kBase).find("steps: 10"), 9,
                                           "phases: [{name: joint, steps: " + max + "}]"));
  EXPECT_NE(error_of(phased).find("train.phases[0].steps: must be in [1, 1000000000]"),
            std::string::npos)
      << error_of(phased);
  const std::string swept =
      dir.write("s.yaml", std::string(kBase) + "sweep:\n  grid:\n    loss.lambda: [1, 1e308]\n");
  EXPECT_NE(error_of(swept).find("loss.lambda: must be in [0, 1000], got 1e308"), std::string::npos)
      << error_of(swept);
}

TEST(ConfigValidation, SweepGridAboveTheCapIsRefusedBeforeExpansion) {
  TempDir dir;
  std::string list = "[";
  for (int i = 0; i < 101; ++i) list += (i ? ", " : "") + std::to_string(i);
  list += "]";
  const std::string file =
      dir.write("g.yaml", std::string(kBase) + "sweep:\n  grid:\n    loss.lambda: " + list +
                              "\n    run.seed: " + list + "\n");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string err = error_of(file);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(err.find("sweep.grid: has 101 x 101 points"), std::string::npos) << err;
  EXPECT_NE(err.find("more than the 10000 a sweep may have"), std::string::npos) << err;
  EXPECT_LT(seconds, 1.0) << "refused only after expanding";
}

TEST(ConfigValidation, SweepPointsAreExpandedLazily) {
  TempDir dir;
  std::string lambdas = "[", seeds = "[";
  for (int i = 0; i < 100; ++i) {
    lambdas += (i ? ", " : "") + std::to_string(i);
    seeds += (i ? ", " : "") + std::to_string(i + 1);
  }
  const std::string file =
      dir.write("g.yaml", std::string(kBase) +
                              "sweep:\n  ranks_per_run: 1\n  grid:\n    loss.lambda: " + lambdas +
                              "]\n    run.seed: " + seeds + "]\n");
  const auto t0 = std::chrono::steady_clock::now();
  const Sweep sweep = load_sweep(file, {});
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(sweep.size(), 10000u);
  // 10^4 points, of which loading expands the 199 that differ from point 0 in one axis.
  EXPECT_LT(load_s, 2.0);
  const RunSpec p = sweep.point(1234);
  EXPECT_EQ(p.name, "lambda=12,seed=35");
  EXPECT_EQ(p.config.loss.lambda, 12);
  EXPECT_EQ(p.config.run.seed, 35);
  EXPECT_EQ(p.output_dir, "out/t/lambda=12,seed=35");
  // The plan needs no expansion either: 10^4 runs over 4 groups.
  const SweepPlan plan = plan_sweep(sweep, 4);
  EXPECT_EQ(plan.groups[1].runs.size(), 2500u);
  EXPECT_EQ(plan.groups[1].runs[1], 5u);
}

TEST(ConfigValidation, TrainerRefusesAbsurdValuesWithExitTwoAndWritesNothing) {
  TempDir dir;
  const std::string cfg = dir.write(
      "c.yaml",
      std::string(kBase).replace(0, std::string("run: {name: t, output_dir: out}").size(),
                                 "run: {name: t, output_dir: " + dir.path().string() + "/runs}"));
  for (const std::string set :
       {"loss.lambda=", "train.optimizer.lr=1e308", "train.batch_size=9223372036854775807",
        "eval.importance_samples=9223372036854775807", "eval.subset=9223372036854775807",
        "checkpoint.every=9223372036854775807", "checkpoint.keep=9223372036854775807",
        "monitoring.log_every=9223372036854775807"}) {
    const auto r = agave::testing::sh(kTrainer + " --set " + set + " " + cfg);
    EXPECT_EQ(r.code, 2) << set << ": " << r.output;
    const std::string key = set.substr(0, set.find('='));
    EXPECT_EQ(r.output.rfind("agave_trainer: error: --set " + set + ": " + key + ": ", 0), 0u)
        << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "runs")) << set;
  }
}

}  // namespace
}  // namespace agave::launcher
