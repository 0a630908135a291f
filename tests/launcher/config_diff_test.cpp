// The one line a resume prints about config changes: from two resolved configs as the trainer
// writes them (to_yaml_string), so the keys and values are those of real configs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "launcher/config.h"
#include "launcher/config_diff.h"
#include "launcher/config_error.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"

namespace agave::launcher {
namespace {

using agave::testing::TempDir;
using agave::trainer::join_changes;

using agave::testing::TinyConfig;
using agave::testing::TinyPhase;

// The resolved config of the tiny config with these phases and `overrides` applied.
std::string resolved(const std::vector<std::string>& overrides,
                     std::vector<TinyPhase> phases = {{"pretrain_vae", 10}, {"joint", 20}}) {
  TempDir dir;
  const auto yaml = TinyConfig("t", "out", "shards").lambda(2).phases(std::move(phases)).yaml();
  const auto runs = load_runs(dir.write("c.yaml", yaml), overrides);
  return to_yaml_string(runs.front().config);
}

TEST(ConfigChanges, NoneForTheSameConfig) {
  EXPECT_TRUE(config_changes(resolved({}), resolved({})).empty());
  EXPECT_EQ(describe_config_changes(resolved({}), resolved({})), "");
}

TEST(ConfigChanges, ListsChangedValuesByKey) {
  const auto changes =
      config_changes(resolved({}), resolved({"loss.lambda=1", "eval.importance_samples=7"}));
  EXPECT_EQ(changes,
            (std::vector<std::string>{"loss.lambda 2 → 1", "eval.importance_samples 2 → 7"}));
}

TEST(ConfigChanges, NamesAddedRemovedAndChangedPhases) {
  EXPECT_EQ(describe_config_changes(
                resolved({}), resolved({}, {{"pretrain_vae", 10}, {"joint", 25}, {"no_aux", 5}})),
            "train.steps 30 → 40, train.phases +no_aux, train.phases.joint.steps 20 → 25");
  EXPECT_EQ(describe_config_changes(resolved({}), resolved({}, {{"joint", 20}})),
            "train.steps 30 → 20, train.phases -pretrain_vae");
}

TEST(ConfigChanges, KeysOnlyOneSideHasAndUnreadableSavedConfigs) {
  EXPECT_EQ(config_changes("a: 1\nb: {c: 2}\n", "a: 1\nd: [1, 2]\n"),
            (std::vector<std::string>{"d (none) → [1, 2]", "b {c: 2} → (none)"}));
  EXPECT_THROW(config_changes("a: [", "a: 1"), ConfigError);
  EXPECT_NE(describe_config_changes("a: [", "a: 1").find("the saved config is not valid YAML"),
            std::string::npos);
}

// A resume at step 15 of pretrain_vae 10 + joint 20: what it has trained must not change.
TEST(ConfigDrift, WhatChangesTheTrainedStepsIsAResultChange) {
  const auto before = resolved({});
  for (const std::string key :
       {"loss.lambda=1", "run.seed=9", "model.vae.free_bits=0.5", "train.optimizer.lr=0.01",
        "train.batch_size=4", "aux.color_bins=8", "train.precision=bf16"}) {
    const auto drift = config_drift(before, resolved({key}), 15);
    EXPECT_EQ(drift.result.size(), 1u) << key;
    EXPECT_TRUE(drift.other.empty()) << key;
  }
}

TEST(ConfigDrift, EvaluationCheckpointsMonitoringAndClusterAreNot) {
  const auto drift =
      config_drift(resolved({}),
                   resolved({"eval.every=7", "checkpoint.keep=9", "monitoring.log_every=3",
                             "cluster.timeout_seconds=60", "data.prefetch_batches=3"}),
                   15);
  EXPECT_TRUE(drift.result.empty()) << join_changes(drift.result);
  EXPECT_EQ(drift.other.size(), 5u) << join_changes(drift.other);
}

TEST(ConfigDrift, NumbersCompareAsNumbersAndKeysOfAnotherBuildAreTaken) {
  EXPECT_TRUE(
      config_drift("loss: {lambda: 0.90000000000000002}\n", "loss: {lambda: 0.9}\n", 5).empty());
  const auto drift =
      config_drift("model: {kind: agave}\n", "model: {kind: agave, new_key: 1}\n", 5);
  EXPECT_TRUE(drift.result.empty());
  EXPECT_EQ(drift.other, (std::vector<std::string>{"model.new_key (none) → 1"}));
  EXPECT_EQ(config_drift("model: {kind: agave}\n", "model: {kind: other}\n", 5).result.size(), 1u);
}

TEST(ConfigDrift, PhasesCountOnlyWhereTheyHaveBeenTrained) {
  const auto before = resolved({});
  // More joint steps, or a phase after them: the run's future.
  EXPECT_TRUE(
      config_drift(before, resolved({}, {{"pretrain_vae", 10}, {"joint", 40}}), 15).result.empty());
  EXPECT_TRUE(
      config_drift(before, resolved({}, {{"pretrain_vae", 10}, {"joint", 20}, {"no_aux", 5}}), 30)
          .result.empty());
  // A finished run (step 30) extended: the same.
  EXPECT_TRUE(
      config_drift(before, resolved({}, {{"pretrain_vae", 10}, {"joint", 25}}), 30).result.empty());
  // The pretraining it did, shortened or lengthened; the joint phase cut before the step.
  EXPECT_FALSE(
      config_drift(before, resolved({}, {{"pretrain_vae", 12}, {"joint", 18}}), 15).result.empty());
  EXPECT_FALSE(
      config_drift(before, resolved({}, {{"pretrain_vae", 10}, {"joint", 3}}), 15).result.empty());
  // Before any step everything is still to come.
  EXPECT_TRUE(config_drift(before, resolved({}, {{"joint", 30}}), 0).result.empty());
  EXPECT_FALSE(config_drift(before, resolved({}, {{"joint", 30}}), 5).result.empty());
}

}  // namespace
}  // namespace agave::launcher
