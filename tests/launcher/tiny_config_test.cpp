// The builder the end-to-end tests write their configs with (tests/common/tiny_config.h) must
// produce what the launcher accepts, with every override landing on its typed option.
#include "tests/common/tiny_config.h"

#include <gtest/gtest.h>

#include "launcher/config.h"
#include "tests/common/test_files.h"

namespace agave::launcher {
namespace {

using agave::testing::TempDir;
using agave::testing::TinyConfig;

Config load(const TempDir& dir, const TinyConfig& tiny) {
  const auto runs = load_runs(dir.write("tiny.yaml", tiny.yaml()), {});
  EXPECT_EQ(runs.size(), 1u);
  return runs.at(0).config;
}

TEST(TinyConfig, DefaultsAreAValidFashionMnistRun) {
  TempDir dir;
  const Config c = load(dir, TinyConfig("tiny", "out", "shards"));
  EXPECT_EQ(c.run.name, "tiny");
  EXPECT_EQ(c.data.shards, "shards");
  EXPECT_EQ(c.model.image_channels(), 1);
  EXPECT_EQ(c.model.image_size(), 28);
  EXPECT_EQ(c.model.pixelcnn().nr_filters(), 8);
  EXPECT_EQ(c.model.aux().resolution(), 7);
  EXPECT_EQ(c.train.steps, 10);
  EXPECT_FALSE(c.monitoring.prometheus);
}

TEST(TinyConfig, OverridesReachTheirOptions) {
  TempDir dir;
  const Config c = load(dir, TinyConfig("r", "out", "shards")
                                 .cifar10()
                                 .seed(5)
                                 .dropout(0.5)
                                 .batch_size(2)
                                 .phases({{"pretrain_vae", 2}, {"joint", 5}})
                                 .lambda(12)
                                 .ema_decay(0.5)
                                 .eval(1, 4, 4, 0)
                                 .eval_every(3)
                                 .checkpoint(2, 4)
                                 .log_every(1)
                                 .prometheus_port(19999)
                                 .linger_seconds(7)
                                 .threads_per_rank(1)
                                 .timeout_seconds(20));
  EXPECT_EQ(c.model.image_channels(), 3);
  EXPECT_EQ(c.data.source, agave::testing::cifar10_source()) << "not the configs' default";
  EXPECT_EQ(c.model.image_size(), 32);
  EXPECT_EQ(c.model.vae().latent_resolution(), 8);
  EXPECT_EQ(c.model.aux().resolution(), 8);
  EXPECT_DOUBLE_EQ(c.model.pixelcnn().dropout(), 0.5);
  EXPECT_EQ(c.train.batch_size, 2);
  ASSERT_EQ(c.train.phases.size(), 2u);
  EXPECT_EQ(c.train.phases[1].steps, 5);
  EXPECT_DOUBLE_EQ(c.loss.lambda, 12.0);
  EXPECT_DOUBLE_EQ(c.train.ema_decay, 0.5);
  EXPECT_EQ(c.eval.every, 3);
  EXPECT_EQ(c.eval.subset, 4);
  EXPECT_EQ(c.checkpoint.every, 2);
  EXPECT_EQ(c.checkpoint.keep, 4);
  EXPECT_EQ(c.monitoring.log_every, 1);
  EXPECT_TRUE(c.monitoring.prometheus);
  EXPECT_EQ(c.monitoring.port, 19999);
  EXPECT_TRUE(c.monitoring.next_free_port);
  EXPECT_DOUBLE_EQ(c.monitoring.linger_seconds, 7.0);
  EXPECT_EQ(c.cluster.threads_per_rank, 1);
  EXPECT_DOUBLE_EQ(c.cluster.timeout_seconds, 20.0);
}

}  // namespace
}  // namespace agave::launcher
