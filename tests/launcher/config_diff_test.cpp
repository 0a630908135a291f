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

}  // namespace
}  // namespace agave::launcher
